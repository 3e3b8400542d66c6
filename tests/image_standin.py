"""A tiny stand-in for lipbench's image dataset interface (`lipbench.data.ImageSource`): sklearn's bundled 8x8 digits
as they are, with a train split as small as a test needs, so that Inception runs on a few images."""
from pathlib import Path

import torch
from sklearn.datasets import load_digits


class DigitsImages:
    """sklearn digits as uint8 [N, 1, 8, 8]: the first `num_train` images are the train split, the rest test."""

    name = "digits"
    shape = (1, 8, 8)
    num_classes = 10

    def __init__(self, cache_dir: Path, num_train: int = 1500, labelled: bool = True):
        digits = load_digits()
        images = torch.tensor(digits.images * (255 / 16)).round().to(torch.uint8).unsqueeze(1)
        labels = torch.tensor(digits.target, dtype=torch.int64)
        self.splits = {"train": (images[:num_train], labels[:num_train]),
                       "test": (images[num_train:], labels[num_train:])}
        self.images = images[:num_train]
        self.labels = labels[:num_train] if labelled else None
        self.num_classes = 10 if labelled else None
        self.cache_dir, self.device = Path(cache_dir), torch.device("cpu")

    def sample(self, n: int, generator=None) -> torch.Tensor:
        """n random train images as floats in [-1, 1]."""
        return self.sample_labelled(n, generator)[0]

    def sample_labelled(self, n: int, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """n random train images as floats in [-1, 1], with their labels."""
        index = torch.randint(len(self.images), (n,), generator=generator)
        return self.images[index].float() / 127.5 - 1, self.splits["train"][1][index]

    def sample_labels(self, n: int, generator=None) -> torch.Tensor:
        """The labels of n random train images."""
        return self.sample_labelled(n, generator)[1]

    def require_labels(self, why: str) -> int:
        """The number of classes (the stand-in is labelled unless built otherwise)."""
        if self.num_classes is None:
            raise ValueError(f"{why} needs labels")
        return self.num_classes

    def steps_per_epoch(self, batch_size: int) -> int:
        """One pass over the train split."""
        return max(len(self.images) // batch_size, 1)

    def split(self, name: str):
        """(uint8 images, labels or None) of the split."""
        images, labels = self.splits[name]
        return images, labels if self.labels is not None else None

    def default_metric(self, device) -> str:
        """FID on CUDA, else the classifier FD when labels exist."""
        return "fid" if torch.device(device).type == "cuda" or self.labels is None else "fd_classifier"


class TinyGenerator(torch.nn.Module):
    """z -> tanh images of the given shape: the minimal generator the evaluators need."""

    def __init__(self, shape, latent_dim: int = 8):
        super().__init__()
        self.shape, self.latent_dim = tuple(shape), latent_dim
        self.net = torch.nn.Linear(latent_dim, int(torch.tensor(shape).prod()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1]."""
        return torch.tanh(self.net(z)).view(len(z), *self.shape)
