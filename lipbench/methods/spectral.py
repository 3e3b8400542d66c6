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
from lipbench.methods.base import LipschitzMethod

# Below this, a power-iteration estimate of sigma is treated as zero (a degenerate start, or an all-zero weight).
SIGMA_FLOOR = 1e-12


class SpectralNormalization(LipschitzMethod):
    """W/sigma(W) with sigma from power iteration on a persistent u; gradients flow through sigma.

    This is PyTorch's `parametrizations.spectral_norm`: u advances once per critic forward in training mode
    (one forward per critic step here, as real and fake go through the critic in one batch) and stays fixed in
    eval mode, which is how diagnostics read it without changing training.
    """

    def __init__(self, name: str = "sn", power_iterations: int = 1):
        super().__init__(name)
        require(is_int(power_iterations) and power_iterations >= 1, "method.power_iterations", power_iterations,
                "an integer >= 1")
        self.power_iterations = int(power_iterations)

    @property
    def label(self) -> str:
        """`sn 1 it.`: power iterations per step."""
        return f"{self.name} {self.power_iterations} it."

    def wrap(self, module: nn.Module) -> nn.Module:
        """Reparametrize the weight of every linear and convolution layer."""
        for layer in constrained_layers(module):
            parametrizations.spectral_norm(layer, n_power_iterations=self.power_iterations, dim=output_dim(layer))
        return module


class SpectralProjection(LipschitzMethod):
    """The Keras `kernel_constraint` behaviour: after each step W <- W/sigma(W), no gradient through sigma.

    sigma comes from `power_iterations` iterations started afresh from an all-ones vector at every step.
    """

    def __init__(self, name: str = "sn_projection", power_iterations: int = 5):
        super().__init__(name)
        require(is_int(power_iterations) and power_iterations >= 1, "method.power_iterations", power_iterations,
                "an integer >= 1")
        self.power_iterations = int(power_iterations)

    @property
    def label(self) -> str:
        """`sn_projection 5 it.`: power iterations from the all-ones vector."""
        return f"{self.name} {self.power_iterations} it."

    @torch.no_grad()
    def after_step(self, module: nn.Module) -> None:
        """Divide each weight by its power-iteration estimate of sigma."""
        for layer in constrained_layers(module):
            matrix = weight_matrix(layer, layer.weight)
            ones = torch.ones(matrix.shape[0], device=matrix.device, dtype=matrix.dtype)
            u, v = power_iteration(matrix, ones, self.power_iterations)
            sigma = u @ matrix @ v
            if sigma <= SIGMA_FLOOR:
                # The all-ones start is orthogonal to every singular vector (W^T 1 = 0) or W is 0: dividing would give
                # inf/NaN. Take the exact sigma instead; an all-zero weight is left as it is (its norm is 0 <= 1).
                sigma = torch.linalg.matrix_norm(matrix, 2)
                if sigma <= SIGMA_FLOOR:
                    continue
            layer.weight.div_(sigma)
