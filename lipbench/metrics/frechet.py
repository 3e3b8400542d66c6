"""Fréchet distance between feature statistics of generated images and a cached real reference (FID and kin)."""
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from torchvision.utils import save_image

from lipbench.files import atomic_write, cached

# The reference subset is drawn with its own fixed seed, so every run and seed shares one cached statistics file.
REFERENCE_SEED = 0
GRID_SIZE = 64


class Stats(NamedTuple):
    """Mean and covariance of a set of feature vectors (float64)."""

    mu: np.ndarray
    sigma: np.ndarray


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] quantized to 8 bits, the pixel format the real images come in."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


@torch.no_grad()
def statistics(features, batches: Iterable[torch.Tensor]) -> Stats:
    """Stats of `features(batch)` over uint8 image batches."""
    feats = torch.cat([features(batch.to(features.device)).double().cpu() for batch in batches]).numpy()
    return Stats(feats.mean(axis=0), np.cov(feats, rowvar=False))


def frechet_distance(a: Stats, b: Stats) -> float:
    """pytorch-fid's Fréchet distance between two Gaussians."""
    return float(calculate_frechet_distance(a.mu, a.sigma, b.mu, b.sigma))


def save_stats(stats: Stats, path: Path) -> None:
    """Write stats as .npz (pytorch-fid's mu/sigma layout); a file handle, so numpy keeps the temp name."""
    with open(path, "wb") as f:
        np.savez(f, mu=stats.mu, sigma=stats.sigma)


def load_stats(path: Path) -> Stats:
    """Read stats written by `save_stats`."""
    with np.load(path) as f:
        return Stats(f["mu"], f["sigma"])


def reference_path(dataset, split: str, num_images: int, features) -> Path:
    """Cache file for one (dataset, split, image count, image size, feature extractor)."""
    shape = "x".join(map(str, dataset.shape))
    return Path(dataset.cache_dir) / f"{dataset.name}_{split}_{num_images}_{shape}_{features.name}.npz"


def reference_statistics(dataset, split: str, num_images: int, features, batch_size: int) -> tuple[Stats, bool]:
    """Stats of a fixed random subset of min(num_images, split size) real images, cached; (stats, computed)."""
    images, _ = dataset.split(split)
    n = min(num_images, len(images))

    def compute():
        subset = torch.randperm(len(images), generator=torch.Generator().manual_seed(REFERENCE_SEED))[:n]
        return statistics(features, (images[i] for i in subset.split(batch_size)))

    return cached(reference_path(dataset, split, n, features), compute, save_stats, load_stats)


def generated_batches(generator, num_images: int, batch_size: int, rng: torch.Generator, device):
    """`num_images` generated images in uint8 batches, from noise drawn with `rng`."""
    for start in range(0, num_images, batch_size):
        z = torch.randn(min(batch_size, num_images - start), generator.latent_dim, generator=rng)
        yield to_uint8(generator(z.to(device)))


@torch.no_grad()
def save_sample_grid(generator, seed: int, device, path: Path) -> Path:
    """An 8x8 grid from the same noise every evaluation, so PNGs across epochs show one latent's evolution."""
    z = torch.randn(GRID_SIZE, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    images = generator(z.to(device)).float().cpu()
    return atomic_write(path, lambda tmp: save_image(images, tmp, nrow=8, normalize=True, value_range=(-1, 1),
                                                     format="png"))


class FrechetEvaluator:
    """Fréchet distance between `features` of `num_samples` generated images and of real ones (lower is better)."""

    primary: str  # the subclass names its metric

    def __init__(self, dataset, device, seed: int, features, num_samples: int, batch_size: int, split: str):
        self.dataset, self.device, self.seed, self.features = dataset, torch.device(device), seed, features
        self.num_samples, self.batch_size = int(num_samples), int(batch_size)
        self.num_reference = min(self.num_samples, len(dataset.split(split)[0]))
        self.reference, _ = reference_statistics(dataset, split, self.num_reference, features, self.batch_size)
        # Strings and constants that define the number: the loop can log them to the W&B config/summary.
        self.protocol = {f"{self.primary}/{k}": v for k, v in {
            "split": split, "num_generated": self.num_samples, "num_reference": self.num_reference,
            "reference_stats": str(reference_path(dataset, split, self.num_reference, features)),
            **features.protocol}.items()}

    @torch.no_grad()
    def __call__(self, generator, critic, epoch: int, run_dir: Path):
        """The distance, its sample counts and a sample grid; its own RNG, so evaluating never shifts training's."""
        rng = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        batches = generated_batches(generator, self.num_samples, self.batch_size, rng, self.device)
        value = frechet_distance(statistics(self.features, batches), self.reference)
        scalars = {self.primary: value, f"{self.primary}_num_generated": float(self.num_samples),
                   f"{self.primary}_num_reference": float(self.num_reference)}
        grid_path = Path(run_dir) / "figures" / f"samples_epoch_{epoch:04d}.png"
        return scalars, {"samples": save_sample_grid(generator, self.seed, self.device, grid_path)}
