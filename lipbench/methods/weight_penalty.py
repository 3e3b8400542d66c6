"""`l2` and `spectral_reg`: penalties on the weights themselves, added to the loss; the inputs are never looked at.

Both act on the weight of every linear and convolution layer (biases are free), for a critic or a classifier alike.
"""
import torch
import torch.nn.functional as F
from torch import nn

from lipbench import is_int, is_number, require
from lipbench.layers import constrained_layers, power_iteration, weight_matrix
from lipbench.methods.base import LipschitzMethod, SigmaEstimate

# spectral_reg keeps each layer's left singular vector estimate in this buffer, so checkpoints carry it.
U_BUFFER = "spectral_reg_u"
# Power iterations when u is created, as torch's spectral_norm does, so that sigma is accurate from the first step.
WARMUP_ITERATIONS = 15


class WeightPenalty(LipschitzMethod):
    """lambda * sum over layers of `layer_penalty(layer)`; subclasses say what a layer costs."""

    def __init__(self, name: str, weight: float):
        super().__init__(name)
        require(is_number(weight) and weight >= 0, "method.weight", weight, "a finite number >= 0")
        self.weight = float(weight)

    @property
    def label(self) -> str:
        """`l2 λ=0.0001`."""
        return f"{self.name} λ={self.weight:g}"

    def layer_penalty(self, layer: nn.Module) -> torch.Tensor:
        """The differentiable cost of one layer's weight."""
        raise NotImplementedError

    def penalty(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """lambda * the summed cost of every layer of `critic`; `real` and `fake` are ignored."""
        return self.weight * sum((self.layer_penalty(layer) for layer in constrained_layers(critic)),
                                 real.new_zeros(()))


class L2Penalty(WeightPenalty):
    """`l2`: lambda * sum ||W||_F^2, i.e. weight decay written as a loss term."""

    def __init__(self, name: str = "l2", weight: float = 1e-4):
        super().__init__(name, weight)

    def layer_penalty(self, layer: nn.Module) -> torch.Tensor:
        """The squared Frobenius norm of the weight."""
        return layer.weight.pow(2).sum()


class SpectralPenalty(WeightPenalty):
    """`spectral_reg`: lambda * sum sigma(W)^2, spectral norm regularization (Yoshida & Miyato 2017).

    sigma = u^T W v from `power_iterations` iterations per step on a persistent u, as SN estimates it; u and v are
    constants of the step, so the gradient through sigma is u v^T. Convolutions use their (out, -1) kernel matrix.
    """

    def __init__(self, name: str = "spectral_reg", weight: float = 0.01, power_iterations: int = 1):
        super().__init__(name, weight)
        require(is_int(power_iterations) and power_iterations >= 1, "method.power_iterations", power_iterations,
                "an integer >= 1")
        self.power_iterations = int(power_iterations)

    def wrap(self, module: nn.Module) -> nn.Module:
        """Give every layer its persistent u (a buffer: it moves with the module and is saved in checkpoints)."""
        for layer in constrained_layers(module):
            matrix = weight_matrix(layer, layer.weight.detach())
            start = F.normalize(torch.randn(matrix.shape[0], dtype=matrix.dtype), dim=0)
            layer.register_buffer(U_BUFFER, power_iteration(matrix, start, WARMUP_ITERATIONS)[0])
        return module

    def layer_penalty(self, layer: nn.Module) -> torch.Tensor:
        """sigma(W)^2, advancing the layer's u by `power_iterations` steps."""
        matrix = weight_matrix(layer, layer.weight)
        u = getattr(layer, U_BUFFER)
        with torch.no_grad():
            u_next, v = power_iteration(matrix.detach(), u, self.power_iterations)
            u.copy_(u_next)
        return (u @ matrix @ v).pow(2)

    @torch.no_grad()
    def sigma_estimates(self, module: nn.Module) -> dict[nn.Module, SigmaEstimate]:
        """sigma_hat = u^T W v with v = W^T u / ||W^T u|| from each layer's persistent u: where the next step starts."""
        estimates = {}
        for layer in constrained_layers(module):
            weight = layer.weight.detach()
            sigma_hat = (weight_matrix(layer, weight).t() @ getattr(layer, U_BUFFER)).norm()
            estimates[layer] = SigmaEstimate(sigma_hat.item(), weight)
        return estimates
