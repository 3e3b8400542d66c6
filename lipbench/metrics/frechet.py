"""Fréchet distance between feature statistics of generated images and a cached real reference (FID and kin)."""
import math
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from pytorch_fid.fid_score import calculate_frechet_distance  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from lipbench import LipbenchError  # noqa: E402
from lipbench.files import atomic_write, cached  # noqa: E402
from lipbench.progress import long_step, warn  # noqa: E402

# The reference subset is drawn with its own fixed seed, so every run and seed shares one cached statistics file.
REFERENCE_SEED = 0
GRID_SIZE = 64
# Inches of the sample-grid figure at 100 dpi: 8 samples of 16-32 px a row are drawn 2-4x larger, so they are visible.
GRID_INCHES = 6


class Stats(NamedTuple):
    """Mean and covariance of a set of feature vectors (float64)."""

    mu: np.ndarray
    sigma: np.ndarray


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] quantized to 8 bits, the pixel format the real images come in."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


@torch.no_grad()
def statistics(features, batches: Iterable[torch.Tensor], num_batches: int | None = None,
               what: str = "feature statistics (batches)") -> Stats:
    """Stats of `features(batch)` over uint8 image batches, with a bar (or start and end lines) saying `what`."""
    feats = torch.cat([features(batch.to(features.device)).double().cpu()
                       for batch in long_step(batches, num_batches, what)]).numpy()
    return Stats(feats.mean(axis=0), np.cov(feats, rowvar=False))


def stats_problem(stats: Stats) -> str | None:
    """What makes `stats` unusable for a Fréchet distance, or None: a mean that is not a vector, a covariance that is
    not its square, or NaN/inf (what the covariance of a single sample is)."""
    mu, sigma = np.asarray(stats.mu), np.asarray(stats.sigma)
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        return f"have a mean of shape {mu.shape} and a covariance of shape {sigma.shape}"
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        return "hold NaN or inf"
    return None


def frechet_distance(a: Stats, b: Stats, fix: str = "compute each from at least 2 finite feature vectors") -> float:
    """pytorch-fid's Fréchet distance between two Gaussians. Statistics it cannot use are a one-line LipbenchError
    ending in `fix`, raised before scipy's sqrtm, which can run for hours on a NaN matrix."""
    for name, stats in (("first", a), ("second", b)):
        problem = stats_problem(stats)
        if problem:
            raise LipbenchError(f"the {name} statistics of a Fréchet distance {problem}: {fix}")
    if a.mu.size != b.mu.size:
        raise LipbenchError(f"Fréchet statistics of {a.mu.size} and of {b.mu.size} features cannot be compared: {fix}")
    return float(calculate_frechet_distance(a.mu, a.sigma, b.mu, b.sigma))


def save_stats(stats: Stats, path: Path) -> None:
    """Write stats as .npz (pytorch-fid's mu/sigma layout); a file handle, so numpy keeps the temp name."""
    with open(path, "wb") as f:
        np.savez(f, mu=stats.mu, sigma=stats.sigma)


def load_stats(path: Path) -> Stats:
    """Read stats written by `save_stats`; raises on unusable ones (`cached` names the file and says delete it)."""
    with np.load(path) as f:
        stats = Stats(f["mu"], f["sigma"])
    problem = stats_problem(stats)
    if problem:
        raise ValueError(f"the statistics {problem}")
    return stats


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
        batches = subset.split(batch_size)
        return statistics(features, (images[i] for i in batches), len(batches),
                          f"{features.name} statistics of {n} real {dataset.name} images, cached (batches)")

    return cached(reference_path(dataset, split, n, features), compute, save_stats, load_stats)


def generated_batches(generator, num_images: int, batch_size: int, rng: torch.Generator, device):
    """`num_images` generated images in uint8 batches, from noise drawn with `rng`."""
    for start in range(0, num_images, batch_size):
        z = torch.randn(min(batch_size, num_images - start), generator.latent_dim, generator=rng)
        yield to_uint8(generator(z.to(device)))


@torch.no_grad()
def save_sample_grid(generator, seed: int, device, title: str, path: Path) -> Path:
    """An 8x8 grid from the same noise every evaluation (so PNGs across epochs show one latent's evolution),
    upscaled with nearest-neighbour pixels and titled."""
    z = torch.randn(GRID_SIZE, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    images = (generator(z.to(device)).float().cpu().clamp(-1, 1) + 1) / 2
    grid = make_grid(images, nrow=8, padding=2, pad_value=1.0).permute(1, 2, 0).numpy()
    fig, ax = plt.subplots(figsize=(GRID_INCHES, GRID_INCHES + 0.5), dpi=100)
    ax.imshow(grid, interpolation="nearest", cmap="gray" if images.shape[1] == 1 else None, vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", bbox_inches="tight"))
    plt.close(fig)
    return path


class FrechetEvaluator:
    """Fréchet distance between `features` of `num_samples` generated images and of real ones (lower is better)."""

    primary: str  # the subclass names its metric

    def __init__(self, dataset, device, seed: int, features, num_samples: int, batch_size: int, split: str):
        self.dataset, self.device, self.seed, self.features = dataset, torch.device(device), seed, features
        self.num_samples, self.batch_size = int(num_samples), int(batch_size)
        split_size = len(dataset.split(split)[0])
        self.num_reference = min(self.num_samples, split_size)
        # A covariance needs 2 samples; from 1 it is NaN, and the distance would never return (scipy's sqrtm).
        if self.num_samples < 2:
            raise LipbenchError(f"metric.{self.primary}.num_samples={self.num_samples} is too few: a Fréchet distance "
                                f"needs a covariance, so it must be >= 2 (better {features.dim} or more)")
        if split_size < 2:
            raise LipbenchError(f"metric.{self.primary}.split={split}: dataset={dataset.name} has {split_size} "
                                f"image(s) in that split, and a Fréchet distance needs at least 2 real images: "
                                f"use a larger dataset" + (f" or metric.{self.primary}.split=train"
                                                           if split != "train" else ""))
        if min(self.num_samples, self.num_reference) < features.dim:
            warn(f"{self.primary} on {min(self.num_samples, self.num_reference)} images, fewer than its "
                 f"{features.dim} feature dimensions: the covariances are singular and the distance is biased "
                 f"upwards; compare only runs with the same metric.{self.primary}.num_samples, or use at least "
                 f"{features.dim}")
        self.reference, _ = reference_statistics(dataset, split, self.num_reference, features, self.batch_size)
        # Strings and constants that define the number: the loop can log them to the W&B config/summary.
        self.protocol = {f"{self.primary}/{k}": v for k, v in {
            "split": split, "num_generated": self.num_samples, "num_reference": self.num_reference,
            "reference_stats": str(reference_path(dataset, split, self.num_reference, features)),
            **features.protocol}.items()}

    @torch.no_grad()
    def __call__(self, generator, critic, epoch: int, run_dir: Path, label: str = ""):
        """The distance, its sample counts and a sample grid titled `label`; its own RNG, so evaluating never shifts
        training's."""
        rng = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        batches = generated_batches(generator, self.num_samples, self.batch_size, rng, self.device)
        stats = statistics(self.features, batches, math.ceil(self.num_samples / self.batch_size),
                           f"{self.primary} of {self.num_samples} generated images (batches)")
        weights = self.protocol[f"{self.primary}/weights"]
        value = frechet_distance(stats, self.reference, f"metric={self.primary}'s feature weights {weights} give NaN "
                                 "or inf on these images: replace that file (or delete it, if lipbench trained it)")
        scalars = {self.primary: value, f"{self.primary}_num_generated": float(self.num_samples),
                   f"{self.primary}_num_reference": float(self.num_reference)}
        grid_path = Path(run_dir) / "figures" / f"samples_epoch_{epoch:04d}.png"
        title = f"{label}\nepoch {epoch}: {self.primary} {value:.4g} ({self.num_samples} samples)".strip()
        return scalars, {"samples": save_sample_grid(generator, self.seed, self.device, title, grid_path)}
