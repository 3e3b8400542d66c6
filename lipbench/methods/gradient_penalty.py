"""`gp` and `gp_relu`: the gradient penalty of WGAN-GP (Gulrajani et al. 2017) and its one-sided variant.

For a classifier the "critic" is the per-sample training loss as a function of the input, at the training points
themselves (real = fake = x), and the target is 0: lambda * ||grad_x loss||^2, an input-gradient penalty.
"""
import torch
from torch import nn

from lipbench.methods.base import LipschitzMethod, require

# Inside the square root so that the gradient of the norm stays finite when the input gradient is exactly 0.
NORM_EPS = 1e-12


def interpolate(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Random points on the segments between paired real and fake samples, one alpha per sample."""
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    return alpha * real + (1 - alpha) * fake


def input_gradient_norm(critic: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample ||grad_x D(x)||_2 over all non-batch dims, differentiable w.r.t. the critic's parameters."""
    x = x.detach().requires_grad_(True)
    scores = critic(x)
    # create_graph: the penalty is itself differentiated, which is why GP needs a double backward.
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    # Norms in fp32: under bf16 autocast the sum of squares loses too much precision.
    return torch.sqrt(grad.float().flatten(1).pow(2).sum(dim=1) + NORM_EPS)


class GradientPenalty(LipschitzMethod):
    """lambda * E[(||grad D(x_hat)|| - target)^2] at random interpolates x_hat; one-sided keeps only norms above it."""

    def __init__(self, name: str = "gp", weight: float = 10.0, one_sided: bool = False, target: float = 1.0):
        super().__init__(name)
        require(weight >= 0, "method.weight", weight, ">= 0")
        require(target >= 0, "method.target", target, ">= 0")
        self.weight, self.target = float(weight), float(target)
        self.one_sided = bool(one_sided)
        if self.one_sided:  # a one-sided bound on a critic's slope; a loss's input gradient has no such target
            self.tasks = ("gan",)

    def penalty(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """The penalty at one interpolate per real/fake pair."""
        excess = input_gradient_norm(critic, interpolate(real, fake.detach())) - self.target
        if self.one_sided:
            excess = excess.clamp(min=0)
        return self.weight * excess.pow(2).mean()
