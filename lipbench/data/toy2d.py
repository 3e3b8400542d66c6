"""2-D toy distributions of the WGAN-GP and mode-collapse literature, sampled on the fly on the training device."""
import math

import torch

from lipbench import LipbenchError, is_int, require

# Gaussian mixtures with a configurable number of modes (dataset.modes): the same mode σ whatever the count, so
# more modes only bring the centres closer. ring_mixture at 8 modes is 8gaussians, grid_mixture at 25 is 25gaussians.
MIXTURES = {"ring_mixture": 0.02, "grid_mixture": 0.05}
STDS = {"8gaussians": 0.02, "25gaussians": 0.05, "swissroll": 0.25 / 7.5, "ring": 0.05, **MIXTURES}
# A high-quality sample lies within this many σ of a mode centre (98.9% of a 2-D Gaussian's mass); neighbouring
# centres must be at least twice as far apart, so that no point is near two modes and "modes covered" is meaningful.
HQ_RADIUS = 3.0
RADIUS = 2.0  # of the ring mixtures; the grids span [-2, 2] on both axes


def ring_centers(modes: int) -> torch.Tensor:
    """`modes` centres evenly on the circle of radius RADIUS."""
    angles = torch.arange(modes) * (2 * math.pi / modes)
    return RADIUS * torch.stack([angles.cos(), angles.sin()], dim=1)


def grid_centers(modes: int) -> torch.Tensor:
    """A square grid of `modes` centres spanning [-RADIUS, RADIUS] on both axes."""
    axis = torch.linspace(-RADIUS, RADIUS, math.isqrt(modes))
    return torch.cartesian_prod(axis, axis)


def mixture_centers(distribution: str, modes: int | None = None) -> torch.Tensor | None:
    """Mode centres of the Gaussian mixtures; None for the continuous distributions."""
    if distribution == "8gaussians":
        return ring_centers(8)
    if distribution == "25gaussians":
        return grid_centers(25)
    if distribution == "ring_mixture":
        return ring_centers(modes)
    if distribution == "grid_mixture":
        return grid_centers(modes)
    return None


def check_modes(distribution: str, modes) -> None:
    """dataset.modes: a count for the *_mixture distributions (a square for grids, centres 2 × HQ_RADIUS σ apart),
    none for the others, whose modes are fixed."""
    if distribution not in MIXTURES:
        require(modes is None, "dataset.modes", modes,
                f"null for dataset.distribution={distribution} (its modes are fixed; ring_mixture and grid_mixture "
                "take a count)")
        return
    require(is_int(modes) and modes >= (4 if distribution == "grid_mixture" else 2), "dataset.modes", modes,
            f"an integer >= {4 if distribution == 'grid_mixture' else 2} for dataset.distribution={distribution}")
    if distribution == "grid_mixture":
        require(math.isqrt(modes) ** 2 == modes, "dataset.modes", modes, "a square (9, 16, 25, 36, 49, 64, ...) for "
                "dataset.distribution=grid_mixture")
        spacing = 2 * RADIUS / (math.isqrt(modes) - 1)
    else:
        spacing = 2 * RADIUS * math.sin(math.pi / modes)
    closest = 2 * HQ_RADIUS * MIXTURES[distribution]
    require(spacing >= closest, "dataset.modes", modes,
            f"small enough that neighbouring centres stay >= {closest:g} apart (2 x {HQ_RADIUS:g} σ; here "
            f"{spacing:.4g}), so that each point is near one mode at most")


class Toy2D:
    """An infinite 2-D dataset; an "epoch" is `steps_per_epoch` critic steps since there is no finite data."""

    def __init__(self, name: str = "toy2d", distribution: str = "8gaussians", steps_per_epoch: int = 500,
                 dim: int = 2, modes: int | None = None, device="cpu"):
        if dim != 2:
            raise LipbenchError(f"dataset.dim={dim} is invalid: toy2d's distributions are 2-D, so it must be 2")
        if distribution not in STDS:
            raise LipbenchError(f"dataset.distribution={distribution!r} is unknown: use one of {sorted(STDS)}")
        if steps_per_epoch < 1:
            raise LipbenchError(f"dataset.steps_per_epoch={steps_per_epoch} is invalid: it must be >= 1")
        check_modes(distribution, modes)
        self.name, self.distribution, self.modes = name, distribution, modes
        self.steps = int(steps_per_epoch)
        self.device = torch.device(device)
        self.std = STDS[distribution]
        centers = mixture_centers(distribution, modes)
        self.centers = None if centers is None else centers.to(self.device)
        # The mixtures are labelled by mode: the class of a point is the mode it was drawn from.
        self.num_classes = None if centers is None else len(centers)
        self.shape = (2,)

    def require_labels(self, why: str) -> int:
        """The number of classes; one line saying what has them when this distribution has none."""
        if self.num_classes is None:
            raise LipbenchError(f"{why} needs class labels, and dataset.distribution={self.distribution} has none: "
                                "use a mixture, labelled by mode (8gaussians, 25gaussians, ring_mixture, grid_mixture)")
        return self.num_classes

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` modes drawn uniformly (the mixtures weigh their modes equally), on the generator's device."""
        return torch.randint(len(self.centers), (n,), generator=generator,
                             device=self.device if generator is None else generator.device)

    def sample_labelled(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` points of a mixture and the mode each was drawn from, on self.device."""
        pick = self.sample_labels(n, generator)
        points = self.centers.to(pick.device)[pick] + self.std * torch.randn(n, 2, generator=generator,
                                                                           device=pick.device)
        return points.to(self.device), pick.to(self.device)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` points; the global RNG of the device unless an explicit `generator` (e.g. for evaluation)."""
        kw = {"device": self.device if generator is None else generator.device, "generator": generator}
        if self.centers is not None:
            return self.sample_labelled(n, generator)[0]
        if self.distribution == "swissroll":
            t = 1.5 * math.pi * (1 + 2 * torch.rand(n, **kw))
            points = torch.stack([t * t.cos(), t * t.sin()], dim=1) / 7.5 + self.std * torch.randn(n, 2, **kw)
        else:  # ring
            angle = 2 * math.pi * torch.rand(n, **kw)
            radius = RADIUS + self.std * torch.randn(n, **kw)
            points = radius[:, None] * torch.stack([angle.cos(), angle.sin()], dim=1)
        return points.to(self.device)

    def steps_per_epoch(self, batch_size: int) -> int:
        """dataset.steps_per_epoch at any batch size: there is no finite data to pass over."""
        return self.steps

    def default_metric(self, device) -> str:
        """Exact W1 is cheap in 2-D, on any device."""
        return "w1"
