"""Toy 2-D quality: exact W1 by optimal transport, its noise floor, mode coverage and sample quality, and a critic
contour plot."""
import functools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import ot  # noqa: E402
import torch  # noqa: E402

from lipbench.data.toy2d import HQ_RADIUS, Toy2D  # noqa: E402
from lipbench.models import given  # noqa: E402

# PacGAN's protocol: a mode counts as covered when it holds at least this share of its expected sample count.
MIN_MODE_SHARE = 0.2


def exact_w1(x: np.ndarray, y: np.ndarray) -> float:
    """Exact Wasserstein-1 distance between two equal-weight point clouds (network simplex, POT)."""
    cost = ot.dist(x, y, metric="euclidean")
    return float(ot.emd2(np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y)), cost, numItermax=10_000_000))


# The noise floor's own seed, the same for every run: runs of one setting share one floor.
NOISE_FLOOR_SEED = 20_180_215
# Pairs of real samples the floor averages: one pair's W1 varies by ~25% on 8gaussians at 2000 points (the share of
# each mode differs from sample to sample), the mean of five by ~10%.
NOISE_FLOOR_PAIRS = 5


@functools.cache
def noise_floor(distribution: str, modes: int | None, num_samples: int) -> tuple[float, float]:
    """Mean and sample std over NOISE_FLOOR_PAIRS pairs of the exact W1 between two independent real samples of
    `num_samples` points each: what a generator that samples the data distribution itself scores at this evaluation
    size. A generator that blurs modes the sample cannot resolve (64 modes on a ring: a uniform ring) scores below
    it. Computed once per setting in a process."""
    data = Toy2D(distribution=distribution, modes=modes)
    rng = torch.Generator().manual_seed(NOISE_FLOOR_SEED)
    distances = [exact_w1(*(data.sample(num_samples, generator=rng).double().numpy() for _ in range(2)))
                 for _ in range(NOISE_FLOOR_PAIRS)]
    return float(np.mean(distances)), float(np.std(distances, ddof=1))


def mode_statistics(points: torch.Tensor, centers: torch.Tensor, std: float) -> dict[str, float]:
    """Modes covered and share of high-quality samples (within HQ_RADIUS std of the nearest mode centre)."""
    distance, nearest = torch.cdist(points, centers).min(dim=1)
    good = distance < HQ_RADIUS * std
    counts = torch.bincount(nearest[good], minlength=len(centers))
    expected = len(points) / len(centers)
    return {
        "modes_covered": int((counts >= MIN_MODE_SHARE * expected).sum()),
        "hq_share": float(good.float().mean()),
    }


def class_statistics(real: torch.Tensor, real_labels: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor,
                     centers: torch.Tensor) -> dict[str, float]:
    """A conditional generator's per-class numbers: `w1_intra_class`, the mean over modes of the exact W1 between
    the points generated for a mode and that mode's real points, and `class_consistency`, the share of generated
    points whose nearest mode centre is the one requested."""
    distances = [exact_w1(real[real_labels == c].double().numpy(), fake[labels == c].double().numpy())
                 for c in range(len(centers)) if (real_labels == c).any() and (labels == c).any()]
    nearest = torch.cdist(fake, centers).argmin(dim=1)
    return {"w1_intra_class": float(np.mean(distances)),
            "class_consistency": (nearest == labels).double().mean().item()}


class Toy2DEvaluator:
    """Exact W1 between `num_samples` generated and `num_samples` fresh real points (lower is better), logged with
    its noise floor (w1/noise_floor in the protocol). Conditional: each point is generated for a mode drawn at random
    with the mixture's own (equal) weights, as a real point's mode is, so that the floor holds for conditional runs
    too (exact shares would remove the real sample's share noise and let a run beat the floor); `class_statistics`
    adds the per-class numbers."""

    primary = "w1"

    def __init__(self, dataset, device, seed: int, conditional: bool = False, num_samples: int = 2000,
                 plot: bool = True):
        self.dataset, self.device, self.seed = dataset, torch.device(device), seed
        self.num_samples, self.plot = int(num_samples), plot
        self.conditional = conditional
        floor, floor_std = noise_floor(dataset.distribution, dataset.modes, self.num_samples)
        self.protocol = {"w1/num_generated": self.num_samples, "w1/num_reference": self.num_samples,
                         "w1/solver": "exact, POT ot.emd2 (network simplex), euclidean cost",
                         "w1/noise_floor": floor, "w1/noise_floor_std": floor_std,
                         "w1/noise_floor_definition": f"mean over {NOISE_FLOOR_PAIRS} pairs of the exact W1 between "
                                                      f"two independent real samples of {self.num_samples} points "
                                                      f"(seed {NOISE_FLOOR_SEED})"}

    @torch.no_grad()
    def __call__(self, generator, critic, epoch: int, run_dir: Path, label: str = ""):
        """Scalars and a scatter-over-contour PNG titled `label`; its own RNG, so evaluating never shifts training's."""
        rng = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        if not self.conditional:
            real = self.dataset.sample(self.num_samples, generator=rng).cpu()
        else:  # the same draws as `sample`, with the mode of each point
            real, real_labels = (t.cpu() for t in self.dataset.sample_labelled(self.num_samples, generator=rng))
        z = torch.randn(self.num_samples, generator.latent_dim, generator=rng).to(self.device)
        labels = (torch.randint(self.dataset.num_classes, (self.num_samples,), generator=rng)
                  if self.conditional else None)
        fake = generator(z, *given(None if labels is None else labels.to(self.device))).float().cpu()
        scalars = {"w1": exact_w1(real.double().numpy(), fake.double().numpy())}
        if self.dataset.centers is not None:
            scalars.update(mode_statistics(fake, self.dataset.centers.cpu(), self.dataset.std))
        if self.conditional:
            scalars.update(class_statistics(real, real_labels, fake, labels, self.dataset.centers.cpu()))
        images = {}
        if self.plot:
            stats = ", ".join(f"{k.replace('_', ' ')} {v:.3g}" for k, v in scalars.items())
            title = f"{label}\nepoch {epoch}: {stats}".strip()
            images["samples"] = self.draw(critic, real, fake, title,
                                          Path(run_dir) / "figures" / f"epoch_{epoch:04d}.png")
        return scalars, images

    def draw(self, critic, real: torch.Tensor, fake: torch.Tensor, title: str, path: Path) -> Path:
        """Generated and real points (real on top, so a collapsed generator cannot hide them) over the critic; a
        conditional critic scores each point as the class of its nearest mode, the class real data there has."""
        lim = float(max(real.abs().max(), 1.0)) * 1.3
        axis = torch.linspace(-lim, lim, 160)
        grid = torch.cartesian_prod(axis, axis)
        nearest = None if not self.conditional else torch.cdist(grid, self.dataset.centers.cpu()).argmin(dim=1)
        scores = critic(grid.to(self.device), *given(None if nearest is None else nearest.to(self.device)))
        scores = scores.float().cpu().reshape(len(axis), len(axis))
        fig, ax = plt.subplots(figsize=(6, 5.2), dpi=100)
        levels = ax.contourf(axis.numpy(), axis.numpy(), scores.T.numpy(), levels=20, cmap="viridis", alpha=0.8)
        score = "critic score D(x)" if not self.conditional else "critic score D(x, nearest mode's class)"
        fig.colorbar(levels, ax=ax, label=score, fraction=0.046, pad=0.04)
        ax.scatter(fake[:, 0], fake[:, 1], s=3, c="orangered", alpha=0.6, linewidths=0, label="generated")
        ax.scatter(real[:, 0], real[:, 1], s=5, c="white", edgecolors="black", linewidths=0.3, label="real")
        ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim), ax.set_aspect("equal")
        ax.set_title(title, fontsize=9)
        ax.legend(loc="upper right", markerscale=3, fontsize=8)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, bbox_inches="tight")
        plt.close(fig)
        return path
