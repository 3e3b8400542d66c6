"""FID: the Fréchet distance on pytorch-fid's InceptionV3 pool3 features (2048-d), the standard image GAN metric."""
from pathlib import Path
from unittest import mock

import pytorch_fid.inception
import torch
from pytorch_fid.inception import FID_WEIGHTS_URL, InceptionV3

from lipbench import LipbenchError
from lipbench.metrics.classifier import DEFAULT_TRAIN_STEPS, ClassifierFeatures
from lipbench.metrics.frechet import FrechetEvaluator

WEIGHTS_NAME = Path(FID_WEIGHTS_URL).name  # pt_inception-2015-12-05-6726825d.pth


def hub_weights() -> Path:
    """Where pytorch-fid's download lands and is looked up: the torch hub cache ($TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME


def load_inception(weights: str | None) -> InceptionV3:
    """pytorch-fid's InceptionV3 up to pool3, from a local `weights` file or else the torch hub cache / download."""
    block = [InceptionV3.BLOCK_INDEX_BY_DIM[2048]]
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise LipbenchError(f"metric.fid.weights={weights} is not a file: point it at {WEIGHTS_NAME}")
        # pytorch-fid only fetches its weights by URL: hand it the local file instead.
        local = lambda *args, **kwargs: torch.load(path, map_location="cpu")  # noqa: E731
        with mock.patch.object(pytorch_fid.inception, "load_state_dict_from_url", local):
            return InceptionV3(block)
    try:
        return InceptionV3(block)
    except OSError:  # URLError, HTTP and socket errors: offline, and nothing in the hub cache
        raise LipbenchError(f"FID Inception weights are not cached and could not be downloaded: "
                            f"put {WEIGHTS_NAME} at {hub_weights()} or set metric.fid.weights=PATH") from None


def write_random_inception(path: Path) -> str:
    """Save pytorch-fid's FID Inception with random weights to `path`: for speed and device checks where the trained
    weights cannot be had (the GPU machine is offline and they exceed what a call carries); never for a metric."""
    torch.manual_seed(0)
    net = pytorch_fid.inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    # fid_inception_v3's blocks, as it swaps them into torchvision's network before loading the trained weights.
    blocks = pytorch_fid.inception
    for name, block in [("Mixed_5b", blocks.FIDInceptionA(192, pool_features=32)),
                        ("Mixed_5c", blocks.FIDInceptionA(256, pool_features=64)),
                        ("Mixed_5d", blocks.FIDInceptionA(288, pool_features=64)),
                        ("Mixed_6b", blocks.FIDInceptionC(768, channels_7x7=128)),
                        ("Mixed_6c", blocks.FIDInceptionC(768, channels_7x7=160)),
                        ("Mixed_6d", blocks.FIDInceptionC(768, channels_7x7=160)),
                        ("Mixed_6e", blocks.FIDInceptionC(768, channels_7x7=192)),
                        ("Mixed_7b", blocks.FIDInceptionE_1(1280)),
                        ("Mixed_7c", blocks.FIDInceptionE_2(2048))]:
        setattr(net, name, block)
    for conv in (m for m in net.modules() if isinstance(m, torch.nn.Conv2d)):
        torch.nn.init.kaiming_normal_(conv.weight)  # torchvision's init, meant for training, shrinks features to ~1e-8
    torch.save(net.state_dict(), path)
    return str(path)


class InceptionFeatures:
    """uint8 images -> pool3 features; grayscale is repeated to RGB, pytorch-fid resizes to 299 and rescales."""

    name = "inception_pool3"
    dim = 2048

    def __init__(self, weights: str | None, device):
        self.device = torch.device(device)
        self.model = load_inception(weights).to(self.device).eval()
        self.protocol = {"features": "pytorch-fid InceptionV3 pool3 (2048-d)",
                         "weights": str(weights or hub_weights())}

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 2048] features of uint8 images [B, C, H, W]."""
        x = images.float().div(255).expand(-1, 3, -1, -1)  # [0, 1], as pytorch-fid expects; C=1 -> RGB
        return self.model(x)[0].flatten(1)


class FIDEvaluator(FrechetEvaluator):
    """FID between `num_samples` generated images and min(num_samples, split size) real ones (lower is better);
    conditional, also intra-class FID, and class consistency by the dataset's cached classifier (the one
    metric=fd_classifier trains)."""

    primary = "fid"

    def __init__(self, dataset, device, seed: int, conditional: bool = False, weights: str | None = None,
                 num_samples: int = 10_000, batch_size: int = 100, split: str = "train"):
        classifier = ClassifierFeatures(dataset, device, DEFAULT_TRAIN_STEPS) if conditional else None
        super().__init__(dataset, device, seed, InceptionFeatures(weights, device), num_samples, batch_size, split,
                         conditional, classifier)
