"""2-D toy distributions of the WGAN-GP and mode-collapse literature, sampled on the fly on the training device."""
import math

import torch

from lipbench import LipbenchError


def mixture_centers(distribution: str) -> torch.Tensor | None:
    """Mode centres of the Gaussian mixtures; None for the continuous distributions."""
    if distribution == "8gaussians":
        angles = torch.arange(8) * (2 * math.pi / 8)
        return 2.0 * torch.stack([angles.cos(), angles.sin()], dim=1)
    if distribution == "25gaussians":
        grid = torch.arange(-2, 3, dtype=torch.float32)
        return torch.cartesian_prod(grid, grid)
    return None


STDS = {"8gaussians": 0.02, "25gaussians": 0.05, "swissroll": 0.25 / 7.5, "ring": 0.05}


class Toy2D:
    """An infinite 2-D dataset; an "epoch" is `steps_per_epoch` critic steps since there is no finite data."""

    def __init__(self, name: str = "toy2d", distribution: str = "8gaussians", steps_per_epoch: int = 500,
                 dim: int = 2, device="cpu"):
        if dim != 2:
            raise LipbenchError(f"dataset.dim={dim} is invalid: toy2d's distributions are 2-D, so it must be 2")
        if distribution not in STDS:
            raise LipbenchError(f"dataset.distribution={distribution!r} is unknown: use one of {sorted(STDS)}")
        if steps_per_epoch < 1:
            raise LipbenchError(f"dataset.steps_per_epoch={steps_per_epoch} is invalid: it must be >= 1")
        self.name, self.distribution = name, distribution
        self.steps = int(steps_per_epoch)
        self.device = torch.device(device)
        self.std = STDS[distribution]
        centers = mixture_centers(distribution)
        self.centers = None if centers is None else centers.to(self.device)
        self.shape = (2,)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` points; the global RNG of the device unless an explicit `generator` (e.g. for evaluation)."""
        kw = {"device": self.device if generator is None else generator.device, "generator": generator}
        if self.centers is not None:
            pick = torch.randint(len(self.centers), (n,), **kw)
            points = self.centers.to(kw["device"])[pick] + self.std * torch.randn(n, 2, **kw)
        elif self.distribution == "swissroll":
            t = 1.5 * math.pi * (1 + 2 * torch.rand(n, **kw))
            points = torch.stack([t * t.cos(), t * t.sin()], dim=1) / 7.5 + self.std * torch.randn(n, 2, **kw)
        else:  # ring
            angle = 2 * math.pi * torch.rand(n, **kw)
            radius = 2.0 + self.std * torch.randn(n, **kw)
            points = radius[:, None] * torch.stack([angle.cos(), angle.sin()], dim=1)
        return points.to(self.device)

    def steps_per_epoch(self, batch_size: int) -> int:
        """dataset.steps_per_epoch at any batch size: there is no finite data to pass over."""
        return self.steps

    def default_metric(self, device) -> str:
        """Exact W1 is cheap in 2-D, on any device."""
        return "w1"
