"""`sn` and `sn_projection`: spectral normalization as a reparametrization (Miyato et al. 2018) or as a projection."""
import torch
from torch import nn
from torch.nn.utils import parametrizations

from lipbench import require
from lipbench.layers import (
    constrained_layers,
    output_dim,
    power_iteration,
    weight_matrix,
)
from lipbench.methods.base import LipschitzMethod


class SpectralNormalization(LipschitzMethod):
    """W/sigma(W) with sigma from power iteration on a persistent u; gradients flow through sigma.

    This is PyTorch's `parametrizations.spectral_norm`: u advances once per critic forward in training mode
    (one forward per critic step here, as real and fake go through the critic in one batch) and stays fixed in
    eval mode, which is how diagnostics read it without changing training.
    """

    def __init__(self, name: str = "sn", power_iterations: int = 1):
        super().__init__(name)
        require(power_iterations >= 1, "method.power_iterations", power_iterations, ">= 1")
        self.power_iterations = int(power_iterations)

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
        require(power_iterations >= 1, "method.power_iterations", power_iterations, ">= 1")
        self.power_iterations = int(power_iterations)

    @torch.no_grad()
    def after_step(self, module: nn.Module) -> None:
        """Divide each weight by its power-iteration estimate of sigma."""
        for layer in constrained_layers(module):
            matrix = weight_matrix(layer, layer.weight)
            ones = torch.ones(matrix.shape[0], device=matrix.device, dtype=matrix.dtype)
            u, v = power_iteration(matrix, ones, self.power_iterations)
            layer.weight.div_(u @ matrix @ v)
