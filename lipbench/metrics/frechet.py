"""Fréchet distance between feature statistics of generated images and a cached real reference (FID and kin)."""
import math
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import linalg  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from lipbench import LipbenchError  # noqa: E402
from lipbench.files import atomic_write, cached  # noqa: E402
from lipbench.metrics import requested_labels  # noqa: E402
from lipbench.models import given  # noqa: E402
from lipbench.progress import long_step, warn  # noqa: E402

# The reference subset is drawn with its own fixed seed, so every run and seed shares one cached statistics file.
REFERENCE_SEED = 0
GRID_SIZE = 64
# A conditional run's grid shows one row per class, for at most this many classes (the first ones).
GRID_CLASSES = 16
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
def embed(features, batches: Iterable[torch.Tensor], num_batches: int | None, what: str,
          classify=None) -> tuple[np.ndarray, torch.Tensor | None]:
    """`features(batch)` of every uint8 image batch (float64), with a bar (or start and end lines) saying `what`;
    and `classify(batch)`'s predicted classes when given, from the same pass over the images."""
    feats, predicted = [], []
    for batch in long_step(batches, num_batches, what):
        batch = batch.to(features.device)
        feats.append(features(batch).double().cpu())
        if classify is not None:
            predicted.append(classify(batch).cpu())
    return torch.cat(feats).numpy(), torch.cat(predicted) if classify is not None else None


def stats_of(feats: np.ndarray) -> Stats:
    """Mean and covariance of feature vectors [N, dim]."""
    return Stats(feats.mean(axis=0), np.cov(feats, rowvar=False))


def statistics(features, batches: Iterable[torch.Tensor], num_batches: int | None = None,
               what: str = "feature statistics (batches)") -> Stats:
    """Stats of `features(batch)` over uint8 image batches, with a bar (or start and end lines) saying `what`."""
    return stats_of(embed(features, batches, num_batches, what)[0])


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
    """|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), as pytorch-fid 0.3's calculate_frechet_distance computes it.

    Statistics it cannot use are a one-line LipbenchError ending in `fix`, raised before scipy's sqrtm, which can run
    for hours on a NaN matrix. pytorch-fid's own function passes `disp=False` to sqrtm, an argument newer scipy
    releases removed (a TypeError on the GPU image), so its steps are repeated here: a singular product gets 1e-6 on
    both diagonals, and an imaginary part of the root's diagonal above 1e-3 is an error, below it dropped noise.
    """
    for name, stats in (("first", a), ("second", b)):
        problem = stats_problem(stats)
        if problem:
            raise LipbenchError(f"the {name} statistics of a Fréchet distance {problem}: {fix}")
    if a.mu.size != b.mu.size:
        raise LipbenchError(f"Fréchet statistics of {a.mu.size} and of {b.mu.size} features cannot be compared: {fix}")
    diff = a.mu - b.mu
    # Covariances from fewer samples than features, or with a constant feature (a dead ReLU unit), make a singular
    # product, and newer scipy warns on every call; the root is used as pytorch-fid uses it (kept when finite),
    # whose disp=False kept scipy quiet. Too few samples get their own warning, once, in the evaluators.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(a.sigma @ b.sigma)
        if not np.isfinite(covmean).all():
            warn("the Fréchet distance's covariance product is singular: 1e-6 added to both diagonals")
            offset = np.eye(a.sigma.shape[0]) * 1e-6
            covmean = linalg.sqrtm((a.sigma + offset) @ (b.sigma + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise LipbenchError(f"the Fréchet distance's matrix square root has an imaginary part of "
                                f"{np.abs(covmean.imag).max():.3g}: compute the statistics from more samples")
        covmean = covmean.real
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * np.trace(covmean))


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


def reference_path(dataset, split: str, num_images: int, features, label: int | None = None) -> Path:
    """Cache file for one (dataset, split, class or all, image count, image size, feature extractor)."""
    shape = "x".join(map(str, dataset.shape))
    of_class = "" if label is None else f"_class{label}"
    return Path(dataset.cache_dir) / f"{dataset.name}_{split}{of_class}_{num_images}_{shape}_{features.name}.npz"


def class_images(dataset, split: str, label: int | None) -> torch.Tensor:
    """The uint8 images of a split, or of one class of it."""
    images, labels = dataset.split(split)
    return images if label is None else images[labels == label]


def reference_statistics(dataset, split: str, num_images: int, features, batch_size: int,
                         label: int | None = None) -> tuple[Stats, bool]:
    """Stats of a fixed random subset of min(num_images, split size) real images (of class `label` when given),
    cached; (stats, computed)."""
    images = class_images(dataset, split, label)
    n = min(num_images, len(images))

    def compute():
        subset = torch.randperm(len(images), generator=torch.Generator().manual_seed(REFERENCE_SEED))[:n]
        batches = subset.split(batch_size)
        what = f"{features.name} statistics of {n} real {dataset.name} images" + (
            "" if label is None else f" of class {label}")
        return statistics(features, (images[i] for i in batches), len(batches), f"{what}, cached (batches)")

    return cached(reference_path(dataset, split, n, features, label), compute, save_stats, load_stats)


def generated_batches(generator, num_images: int, batch_size: int, rng: torch.Generator, device,
                      labels: torch.Tensor | None = None):
    """`num_images` generated images in uint8 batches, from noise drawn with `rng` (and for `labels`, one each, when
    the generator is conditional)."""
    for start in range(0, num_images, batch_size):
        z = torch.randn(min(batch_size, num_images - start), generator.latent_dim, generator=rng)
        requested = None if labels is None else labels[start:start + len(z)].to(device)
        yield to_uint8(generator(z.to(device), *given(requested)))


@torch.no_grad()
def save_sample_grid(generator, seed: int, device, title: str, path: Path, num_classes: int | None = None) -> Path:
    """An 8x8 grid from the same noise every evaluation (so PNGs across epochs show one latent's evolution),
    upscaled with nearest-neighbour pixels and titled; a conditional generator's has one row per class (the first
    GRID_CLASSES), labelled on the left."""
    columns = 8
    rows = columns if num_classes is None else min(num_classes, GRID_CLASSES)
    z = torch.randn(rows * columns, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    labels = None if num_classes is None else torch.arange(rows).repeat_interleave(columns).to(device)
    images = (generator(z.to(device), *given(labels)).float().cpu().clamp(-1, 1) + 1) / 2
    grid = make_grid(images, nrow=columns, padding=2, pad_value=1.0).permute(1, 2, 0).numpy()
    fig, ax = plt.subplots(figsize=(GRID_INCHES, GRID_INCHES * rows / columns + 0.5), dpi=100)
    ax.imshow(grid, interpolation="nearest", cmap="gray" if images.shape[1] == 1 else None, vmin=0, vmax=1)
    ax.set_axis_off()
    if num_classes is not None:
        side = images.shape[-2] + 2
        for row in range(rows):
            ax.text(-2, 2 + row * side + side / 2, str(row), ha="right", va="center", fontsize=9)
        shown = f"the first {rows} of {num_classes}" if rows < num_classes else f"all {num_classes}"
        title = f"{title}\nrow i: samples requested for class i ({shown} classes)"
    ax.set_title(title, fontsize=9)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", bbox_inches="tight"))
    plt.close(fig)
    return path


class FrechetEvaluator:
    """Fréchet distance between `features` of `num_samples` generated images and of real ones (lower is better).

    Conditional (the generator takes labels): the generated images are requested in the train split's class
    proportions (`requested_labels`), which keeps the distance above comparable with an unconditional run's, and two
    more numbers come from the same images: `<primary>_intra_class`, the mean over classes of the distance between a
    class's generated images and its real ones (intra-class FID with Inception features, Miyato & Koyama 2018), and
    `class_consistency`, the share of generated images that `classifier` assigns to the class they were requested for.
    """

    primary: str  # the subclass names its metric

    def __init__(self, dataset, device, seed: int, features, num_samples: int, batch_size: int, split: str,
                 conditional: bool = False, classifier=None):
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
        self.labels, self.classifier = None, classifier
        if conditional:
            self.prepare_classes(split)

    def prepare_classes(self, split: str) -> None:
        """The requested labels, each class's cached real statistics, and the protocol of the per-class numbers."""
        _, train_labels = self.dataset.split("train")
        self.labels = requested_labels(torch.bincount(train_labels, minlength=self.dataset.num_classes),
                                       self.num_samples)
        generated = torch.bincount(self.labels, minlength=self.dataset.num_classes)
        real = [min(self.num_samples, len(class_images(self.dataset, split, c))) for c in range(len(generated))]
        fewest = min(int(generated.min()), min(real))
        if fewest < 2:
            raise LipbenchError(f"metric.{self.primary}.num_samples={self.num_samples}: a class gets {fewest} "
                                f"generated or {split} images, and its Fréchet distance needs >= 2: raise num_samples "
                                "(the classes share it as the data does)")
        if fewest < self.features.dim:
            warn(f"{self.primary}_intra_class on as few as {fewest} images of a class, fewer than its "
                 f"{self.features.dim} feature dimensions: each class's distance is biased upwards; compare only runs "
                 f"with the same metric.{self.primary}.num_samples")
        self.class_references = [reference_statistics(self.dataset, split, self.num_samples, self.features,
                                                      self.batch_size, c)[0] for c in range(len(generated))]
        self.protocol.update({
            f"{self.primary}_intra_class/definition": "mean over classes of the distance between the images generated "
                                                      "for a class and that class's real images (up to num_generated)",
            f"{self.primary}_intra_class/generated_per_class": generated.tolist(),
            f"{self.primary}_intra_class/real_per_class": real,
            "class_consistency/classifier": self.classifier.protocol["weights"],
            "class_consistency/classifier_test_accuracy": self.classifier.test_accuracy})

    @torch.no_grad()
    def __call__(self, generator, critic, epoch: int, run_dir: Path, label: str = ""):
        """The distance, its sample counts and a sample grid titled `label` (and the per-class numbers of a
        conditional generator); its own RNG, so evaluating never shifts training's."""
        rng = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        batches = generated_batches(generator, self.num_samples, self.batch_size, rng, self.device, self.labels)
        classify = None if self.labels is None else self.classifier.predict
        feats, predicted = embed(self.features, batches, math.ceil(self.num_samples / self.batch_size),
                                 f"{self.primary} of {self.num_samples} generated images (batches)", classify)
        weights = self.protocol[f"{self.primary}/weights"]
        fix = (f"metric={self.primary}'s feature weights {weights} give NaN or inf on these images: replace that file "
               "(or delete it, if lipbench trained it)")
        value = frechet_distance(stats_of(feats), self.reference, fix)
        scalars = {self.primary: value, f"{self.primary}_num_generated": float(self.num_samples),
                   f"{self.primary}_num_reference": float(self.num_reference)}
        if self.labels is not None:
            per_class = [frechet_distance(stats_of(feats[(self.labels == c).numpy()]), reference, fix)
                         for c, reference in enumerate(self.class_references)]
            scalars[f"{self.primary}_intra_class"] = float(np.mean(per_class))
            scalars["class_consistency"] = (predicted == self.labels).double().mean().item()
        grid_path = Path(run_dir) / "figures" / f"samples_epoch_{epoch:04d}.png"
        title = f"{label}\nepoch {epoch}: {self.primary} {value:.4g} ({self.num_samples} samples)".strip()
        if self.labels is not None:
            title += (f", intra-class {scalars[f'{self.primary}_intra_class']:.4g}, class consistency "
                      f"{scalars['class_consistency']:.1%}")
        num_classes = None if self.labels is None else self.dataset.num_classes
        return scalars, {"samples": save_sample_grid(generator, self.seed, self.device, title, grid_path, num_classes)}
