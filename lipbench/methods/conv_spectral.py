"""`sn_conv`: spectral normalization of each layer's true linear operator, so a convolution is divided by its norm
as a map on its real input, not by the sigma of its reshaped kernel.

A convolution's operator norm at its input size can be up to k times the sigma of its k x k kernel reshaped to a
matrix, which is all `sn` bounds: an SN critic's conv layers are not 1-Lipschitz. Here the power iteration runs on
the operator itself, A then A^T (the convolution and its transpose), on persistent input-shaped vectors, as Farnia,
Zhang & Tse (2019) do with one vector; Linear layers get `sn` as it is, their operator being their matrix.
"""
import torch
from torch import nn
from torch.nn.utils import parametrize

from lipbench import LipbenchError, is_int, require
from lipbench.layers import linear_map, subspace_iteration
from lipbench.methods.base import SigmaEstimate
from lipbench.methods.spectral import SpectralNormalization

# Iterations when the vectors are started, as torch's spectral_norm warms up its u at registration, so that sigma is
# close from the first step.
WARMUP_ITERATIONS = 50


class OperatorNormalization(nn.Module):
    """The parametrization W -> W / sigma_hat of a convolution: sigma_hat = ||A_W u|| for its operator A_W at the
    layer's input size and u, the first of `vectors` orthonormal input-shaped vectors (u[0] the top Ritz vector).

    The vectors advance `power_iterations` block power-iteration steps per forward in training mode and none in eval
    mode; they are a buffer, so they follow the module's device and are saved in checkpoints. Their size is the input
    size of the layer's first forward (a forward pre-hook starts them then): the method sees only the module, and a
    layer's input size depends on the dataset's image size and on every layer before it.
    """

    def __init__(self, layer: nn.Module, power_iterations: int, vectors: int):
        super().__init__()
        self.linear = linear_map(layer)
        self.power_iterations, self.vectors = power_iterations, vectors
        self.register_buffer("_u", layer.weight.new_empty(0))  # sized at the first forward, or by a checkpoint
        self.register_load_state_dict_pre_hook(self.take_saved_size)

    @torch.no_grad()
    def iterate(self, u: torch.Tensor, weight: torch.Tensor, steps: int) -> torch.Tensor:
        """The vectors after `steps` block power iterations on the operator with `weight`, in fp32 even under
        autocast."""
        with torch.autocast(weight.device.type, enabled=False):
            return subspace_iteration(lambda x: self.linear(x, weight), u, steps)[0]

    def start(self, layer: nn.Module, args: tuple) -> None:
        """Forward pre-hook: on the layer's first forward, random vectors of its input's size, warmed up; later, a
        check that the input size is the same, since sigma_hat is the operator's norm at that size."""
        size = args[0].shape[1:]
        if self._u.numel() == 0:
            weight = layer.parametrizations.weight.original.detach()
            start = torch.randn(self.vectors, *size, device=weight.device, dtype=weight.dtype)
            self._u = self.iterate(start, weight, WARMUP_ITERATIONS)
        elif self._u.shape[1:] != size:
            raise LipbenchError(f"method=sn_conv normalizes each convolution at the input size of its first forward, "
                                f"{tuple(self._u.shape[1:])}, but got {tuple(size)}: give the network one input size")

    def take_saved_size(self, module, state_dict: dict, prefix: str, *args) -> None:
        """Load-state-dict pre-hook: vectors not started yet take the size of the saved ones, so a checkpoint loads."""
        saved = state_dict.get(prefix + "_u")
        if saved is not None and self._u.numel() == 0:
            self._u = self._u.new_empty(saved.shape)

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        """sigma_hat = ||A_W u||, differentiable in W (u is a constant of the step, as in SN)."""
        # A copy of u: a second forward before backward (the gradient penalty's) advances the buffer in place.
        return self.linear(self._u[:1].clone(), weight).norm()

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        """W / sigma_hat, advancing the vectors first in training mode."""
        if self._u.numel() == 0:
            raise RuntimeError("sn_conv: a convolution's normalized weight exists once the layer has run forward")
        if self.training:
            self._u.copy_(self.iterate(self._u, weight.detach(), self.power_iterations))
        with torch.autocast(weight.device.type, enabled=False):
            return weight / self.sigma(weight)


class ConvSpectralNormalization(SpectralNormalization):
    """`sn_conv`: every convolution (transposed ones too) divided by its operator norm's power-iteration estimate,
    gradients through it; Linear layers as in `sn`."""

    capturable = False  # each forward's eigh (the Ritz rotation) checks its result on the host

    def __init__(self, name: str = "sn_conv", power_iterations: int = 1, vectors: int = 8):
        super().__init__(name, power_iterations)
        require(is_int(vectors) and vectors >= 1, "method.vectors", vectors, "an integer >= 1")
        self.vectors = int(vectors)

    def normalize(self, layer: nn.Module) -> None:
        """A convolution gets the operator-norm parametrization and the pre-hook that starts its vectors."""
        if isinstance(layer, nn.Linear):
            return super().normalize(layer)
        norm = OperatorNormalization(layer, self.power_iterations, self.vectors)
        # unsafe: registration would otherwise call the parametrization, which needs the input size it has not seen.
        parametrize.register_parametrization(layer, "weight", norm, unsafe=True)
        layer.register_forward_pre_hook(norm.start)

    @torch.no_grad()
    def estimate(self, layer: nn.Module) -> SigmaEstimate:
        """sigma_hat = ||A_W u|| of a convolution, what it is divided by in eval mode; sn's estimate for a Linear."""
        if isinstance(layer, nn.Linear):
            return super().estimate(layer)
        weight = layer.parametrizations.weight.original.detach()
        return SigmaEstimate(layer.parametrizations.weight[0].sigma(weight).item(), weight, operator=True)
