"""`sn` and `sn_projection`: spectral normalization as a reparametrization (Miyato et al. 2018) or as a projection."""
import torch
from torch import nn
from torch.nn.utils import parametrizations

from lipbench import is_int, require
from lipbench.layers import (
    constrained_layers,
    output_dim,
    power_iteration,
    weight_matrix,
)
from lipbench.methods.base import LipschitzMethod, SigmaEstimate

# Below this, a power-iteration estimate of sigma is treated as zero (a degenerate start, or an all-zero weight).
SIGMA_FLOOR = 1e-12


class PowerIterationMethod(LipschitzMethod):
    """A method whose sigma comes from `power_iterations` power iterations per step."""

    def __init__(self, name: str, power_iterations: int):
        super().__init__(name)
        require(is_int(power_iterations) and power_iterations >= 1, "method.power_iterations", power_iterations,
                "an integer >= 1")
        self.power_iterations = int(power_iterations)

    @property
    def label(self) -> str:
        """`sn 1 it.`: the power iterations per step."""
        return f"{self.name} {self.power_iterations} it."


class SpectralNormalization(PowerIterationMethod):
    """W/sigma(W) with sigma from power iteration on a persistent u; gradients flow through sigma.

    This is PyTorch's `parametrizations.spectral_norm`: u advances once per critic forward in training mode
    (one forward per critic step here, as real and fake go through the critic in one batch) and stays fixed in
    eval mode, which is how diagnostics read it without changing training.
    """

    def __init__(self, name: str = "sn", power_iterations: int = 1):
        super().__init__(name, power_iterations)

    def wrap(self, module: nn.Module) -> nn.Module:
        """Reparametrize the weight of every linear and convolution layer."""
        for layer in constrained_layers(module):
            self.normalize(layer)
        return module

    def normalize(self, layer: nn.Module) -> None:
        """Reparametrize one layer: W/sigma of its (out, -1) weight matrix."""
        parametrizations.spectral_norm(layer, n_power_iterations=self.power_iterations, dim=output_dim(layer))

    def sigma_estimates(self, module: nn.Module) -> dict[nn.Module, SigmaEstimate]:
        """The sigma_hat each layer's weight is divided by in eval mode."""
        return {layer: self.estimate(layer) for layer in constrained_layers(module)}

    @torch.no_grad()
    def estimate(self, layer: nn.Module) -> SigmaEstimate:
        """u^T W v from torch's stored u and v: what `spectral_norm` divides by in eval mode."""
        weight = layer.parametrizations.weight.original.detach()
        norm = layer.parametrizations.weight[0]
        return SigmaEstimate((norm._u @ weight_matrix(layer, weight) @ norm._v).item(), weight)


class SpectralProjection(PowerIterationMethod):
    """The Keras `kernel_constraint` behaviour: after each step W <- W/sigma(W), no gradient through sigma.

    sigma comes from `power_iterations` iterations started afresh from an all-ones vector at every step.
    """

    capturable = False  # after_step branches on sigma's value (the degenerate all-ones start)

    def __init__(self, name: str = "sn_projection", power_iterations: int = 5):
        super().__init__(name, power_iterations)

    @torch.no_grad()
    def after_step(self, module: nn.Module) -> None:
        """Divide each weight by its power-iteration estimate of sigma."""
        for layer in constrained_layers(module):
            sigma = self.estimate(layer.weight, layer)
            if sigma <= SIGMA_FLOOR:
                # The all-ones start is orthogonal to every singular vector (W^T 1 = 0) or W is 0: dividing would give
                # inf/NaN. Take the exact sigma instead; an all-zero weight is left as it is (its norm is 0 <= 1).
                sigma = torch.linalg.matrix_norm(weight_matrix(layer, layer.weight), 2)
                if sigma <= SIGMA_FLOOR:
                    continue
            layer.weight.div_(sigma)

    @torch.no_grad()
    def estimate(self, weight: torch.Tensor, layer: nn.Module) -> torch.Tensor:
        """u^T W v after `power_iterations` iterations from an all-ones u."""
        matrix = weight_matrix(layer, weight)
        ones = torch.ones(matrix.shape[0], device=matrix.device, dtype=matrix.dtype)
        u, v = power_iteration(matrix, ones, self.power_iterations)
        return u @ matrix @ v

    def sigma_estimates(self, module: nn.Module) -> dict[nn.Module, SigmaEstimate]:
        """The estimate the next step would divide each weight, as it is now, by."""
        return {layer: SigmaEstimate(self.estimate(layer.weight, layer).item(), layer.weight.detach())
                for layer in constrained_layers(module)}
