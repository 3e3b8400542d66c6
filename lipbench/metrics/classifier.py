"""Classifier FD: the Fréchet distance on a small CNN's penultimate features, a fast CPU stand-in for FID.

The CNN is trained on the dataset's own labels on first use and cached beside the data with its test accuracy.
Its numbers are comparable only with each other (same dataset, same cached classifier), never with published FIDs.
"""
import hashlib
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from lipbench import LipbenchError
from lipbench.data.images import to_inputs
from lipbench.files import cached
from lipbench.metrics.frechet import FrechetEvaluator
from lipbench.progress import long_step, warn

# Below this test accuracy the classifier's features may not tell the classes apart: the FD then means little.
MIN_ACCURACY = 0.9
# Fixed, so every run and seed measures with the same classifier.
CLASSIFIER_SEED = 0
TRAIN_BATCH = 128
FEATURE_DIM = 128
# Adam steps of the cached classifier (metric.fd_classifier.train_steps); a conditional run with metric=fid judges
# class consistency with the classifier of this many steps.
DEFAULT_TRAIN_STEPS = 2000


class SmallCNN(nn.Module):
    """Three stride-2 convolutions, global pooling and a 128-d penultimate layer; any image size."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(128, FEATURE_DIM), nn.ReLU(),
        )
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self.head(self.features(x))


@torch.no_grad()
def accuracy(model: SmallCNN, images: torch.Tensor, labels: torch.Tensor, device, batch_size: int = 1000) -> float:
    """Share of `images` classified as `labels`."""
    correct = sum(int((model(to_inputs(x.to(device))).argmax(1).cpu() == y).sum())
                  for x, y in zip(images.split(batch_size), labels.split(batch_size)))
    return correct / len(labels)


def train_classifier(dataset, device, train_steps: int) -> dict:
    """Adam on random minibatches of the train split; returns CPU weights and test-split accuracy."""
    images, labels = (t.to(device) for t in dataset.split("train"))
    # A forked RNG, seeded: the classifier is reproducible and the run's own RNG stream is left untouched.
    with torch.random.fork_rng():
        torch.manual_seed(CLASSIFIER_SEED)
        model = SmallCNN(dataset.shape[0], dataset.num_classes).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in long_step(range(train_steps), train_steps, f"training the FD classifier of {dataset.name} (steps)"):
            index = torch.randint(len(images), (TRAIN_BATCH,), device=device)
            loss = F.cross_entropy(model(to_inputs(images[index])), labels[index])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    test_images, test_labels = dataset.split("test")
    return {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
            "test_accuracy": accuracy(model, test_images, test_labels, device)}


def load_classifier(path: Path, channels: int, num_classes: int) -> dict:
    """What `train_classifier` returned, from its cache file; raises on a file that does not hold finite weights of
    this dataset's SmallCNN (`cached` then names the file and says delete it)."""
    trained = torch.load(path, map_location="cpu", weights_only=True)
    SmallCNN(channels, num_classes).load_state_dict(trained["state_dict"])  # raises on missing or misshapen weights
    if not all(weight.isfinite().all() for weight in trained["state_dict"].values()):
        raise ValueError("its weights hold NaN or inf")
    float(trained["test_accuracy"])
    return trained


class ClassifierFeatures:
    """uint8 images -> 128-d penultimate features of the dataset's cached classifier (trained on first use)."""

    dim = FEATURE_DIM

    def __init__(self, dataset, device, train_steps: int):
        self.device = torch.device(device)
        path = Path(dataset.cache_dir) / f"{dataset.name}_classifier_{train_steps}steps.pt"
        trained, self.computed = cached(path, lambda: train_classifier(dataset, self.device, train_steps), torch.save,
                                        lambda p: load_classifier(p, dataset.shape[0], dataset.num_classes))
        self.model = SmallCNN(dataset.shape[0], dataset.num_classes)
        self.model.load_state_dict(trained["state_dict"])
        self.model.to(self.device).eval()
        self.test_accuracy = trained["test_accuracy"]
        if self.test_accuracy < MIN_ACCURACY:
            warn(f"the FD classifier of dataset={dataset.name} reaches only {self.test_accuracy:.0%} test accuracy "
                 f"(below {MIN_ACCURACY:.0%}): its features may not separate the classes, so fd_classifier means "
                 f"little; raise metric.fd_classifier.train_steps (delete {path} to retrain)")
        # Reference statistics are keyed on these exact weights, so a retrained classifier never meets stale ones.
        self.name = "classifier_" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        self.protocol = {"features": f"lipbench SmallCNN penultimate layer ({FEATURE_DIM}-d)", "weights": str(path),
                         "classifier_test_accuracy": self.test_accuracy}

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 128] features of uint8 images [B, C, H, W]."""
        return self.model.features(to_inputs(images))

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """[B] the class the classifier assigns to each uint8 image."""
        return self.model(to_inputs(images)).argmax(dim=1)


class ClassifierFDEvaluator(FrechetEvaluator):
    """Classifier FD between `num_samples` generated and min(num_samples, split size) real images (lower is better)."""

    primary = "fd_classifier"

    def __init__(self, dataset, device, seed: int, conditional: bool = False, num_samples: int = 5000,
                 batch_size: int = 500, split: str = "train", train_steps: int = DEFAULT_TRAIN_STEPS):
        if dataset.labels is None:
            raise LipbenchError(f"metric=fd_classifier needs labels and dataset {dataset.name} has none: "
                                "use metric=fid")
        features = ClassifierFeatures(dataset, device, train_steps)
        super().__init__(dataset, device, seed, features, num_samples, batch_size, split, conditional, features)
