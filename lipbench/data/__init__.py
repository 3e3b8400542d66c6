"""Datasets: each draws training batches on the training device with the global torch RNG.

The interface is written down here so that a new dataset (and the tests' stand-ins) can be checked against it.
"""
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Dataset(Protocol):
    """What the GAN task and the diagnostics use: batches of real samples, on the training device."""

    name: str
    shape: tuple[int, ...]         # one sample's shape: (2,) for toy2d, (C, H, W) for images
    device: torch.device           # where `sample` puts its batches

    num_classes: int | None        # classes of a labelled dataset (a toy mixture's modes), None when unlabelled

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` samples in the models' input range; the global RNG unless an explicit `generator` is given."""

    def sample_labelled(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` samples as `sample` draws them (the same RNG draws), with their int64 class labels, on self.device."""

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` labels drawn as the data's classes are distributed (for a conditional generator's samples)."""

    def require_labels(self, why: str) -> int:
        """num_classes; a one-line LipbenchError starting with `why` and saying how to get labels when there are
        none."""

    def steps_per_epoch(self, batch_size: int) -> int:
        """Critic steps that make one epoch at this batch size."""

    def default_metric(self, device) -> str:
        """The quality metric `metric=auto` picks on `device`."""


@runtime_checkable
class ImageSource(Dataset, Protocol):
    """A finite, possibly labelled image dataset: what the image metrics and the classifier task also use."""

    images: torch.Tensor           # uint8 [N, C, H, W] train split
    labels: torch.Tensor | None    # int64 [N] class of each train image, or None
    cache_dir: Path                # where derived files (decoded cache, reference statistics, classifiers) go

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 CPU images and labels (or None) of the "train" or "test" split."""
