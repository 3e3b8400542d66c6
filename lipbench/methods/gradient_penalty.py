"""`gp` and `gp_relu`: the gradient penalty of WGAN-GP (Gulrajani et al. 2017) and its one-sided variant.

In a class-conditional GAN the critic the penalty gets is bound to the real batch's labels, and the task generates
the fakes with those same labels: each interpolate lies between a real and a fake sample of one class, and the slope
is measured for that class's critic, never across classes.

For a classifier the "critic" is the per-sample training loss as a function of the input, at the training points
themselves (real = fake = x), and the target is 0: lambda * ||grad_x loss||^2, an input-gradient penalty.
"""
import torch
from torch import nn

from lipbench import is_number, require
from lipbench.layers import input_gradient_norm
from lipbench.methods.base import LipschitzMethod


def interpolate(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Random points on the segments between paired real and fake samples, one alpha per sample."""
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    return alpha * real + (1 - alpha) * fake


class GradientPenalty(LipschitzMethod):
    """lambda * E[(||grad D(x_hat)|| - target)^2] at random interpolates x_hat; one-sided keeps only norms above it."""

    def __init__(self, name: str = "gp", weight: float = 10.0, one_sided: bool = False, target: float = 1.0):
        super().__init__(name)
        require(is_number(weight) and weight >= 0, "method.weight", weight, "a finite number >= 0")
        require(is_number(target) and target >= 0, "method.target", target, "a finite number >= 0")
        self.weight, self.target = float(weight), float(target)
        self.one_sided = bool(one_sided)
        if self.one_sided:  # a one-sided bound on a critic's slope; a loss's input gradient has no such target
            self.tasks = ("gan",)

    @property
    def label(self) -> str:
        """`gp λ=10`, with the target when it is not the task's usual 1 (GAN) or 0 (classifier)."""
        target = f" target={self.target:g}" if self.target not in (0.0, 1.0) else ""
        return f"{self.name} λ={self.weight:g}{target}"

    def penalty(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """The penalty at one interpolate per real/fake pair."""
        excess = input_gradient_norm(critic, interpolate(real, fake.detach())) - self.target
        if self.one_sided:
            excess = excess.clamp(min=0)
        return self.weight * excess.pow(2).mean()
