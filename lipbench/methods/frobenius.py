"""`fro_clip` and `fro_penalty`: bounds on each layer's Frobenius norm ||W||_F, which is at least its sigma.

With c = 1 every layer's sigma is at most 1 (fro_clip) or is pushed there (fro_penalty): for a linear layer that is
a Lipschitz bound of 1; a convolution's operator norm can exceed its kernel's Frobenius norm (up to k times
for a k x k kernel at stride 1).
"""
import torch
from torch import nn

from lipbench import is_number, require
from lipbench.layers import constrained_layers
from lipbench.methods.clip import WeightClipping
from lipbench.methods.weight_penalty import WeightPenalty


class FrobeniusClipping(WeightClipping):
    """`fro_clip`: after each optimizer step W <- W * min(1, c / ||W||_F) for every layer (biases are free).

    A weight is rescaled as a whole, so its direction, unlike under elementwise clipping, is left as it was.
    """

    def __init__(self, name: str = "fro_clip", c: float = 1.0):
        super().__init__(name, c)

    @torch.no_grad()
    def after_step(self, module: nn.Module) -> None:
        """Scale down every weight whose Frobenius norm exceeds c onto the sphere of radius c."""
        for layer in constrained_layers(module):
            layer.weight.mul_((self.c / layer.weight.norm()).clamp(max=1.0))


class FrobeniusPenalty(WeightPenalty):
    """`fro_penalty`: lambda * sum over layers of max(||W||_F - c, 0)^2; layers within the ball cost nothing."""

    def __init__(self, name: str = "fro_penalty", weight: float = 10.0, c: float = 1.0):
        super().__init__(name, weight)
        require(is_number(c) and c > 0, "method.c", c, "a finite number > 0")
        self.c = float(c)

    @property
    def label(self) -> str:
        """`fro_penalty λ=10 c=1`."""
        return f"{self.name} λ={self.weight:g} c={self.c:g}"

    def layer_penalty(self, layer: nn.Module) -> torch.Tensor:
        """The squared excess of the weight's Frobenius norm over c."""
        return (layer.weight.norm() - self.c).clamp(min=0).pow(2)
