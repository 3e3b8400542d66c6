"""`clip`: weight clipping of the original WGAN (Arjovsky et al. 2017)."""
import torch
from torch import nn

from lipbench import is_number, require
from lipbench.methods.base import LipschitzMethod


class WeightClipping(LipschitzMethod):
    """Clamp every critic parameter to [-c, c] after each optimizer step."""

    def __init__(self, name: str = "clip", c: float = 0.01):
        super().__init__(name)
        require(is_number(c) and c > 0, "method.c", c, "a finite number > 0")
        self.c = float(c)

    @property
    def label(self) -> str:
        """`clip c=0.01`."""
        return f"{self.name} c={self.c:g}"

    @torch.no_grad()
    def after_step(self, module: nn.Module) -> None:
        """Clip all parameters, biases included, as the WGAN paper does."""
        for p in module.parameters():
            p.clamp_(-self.c, self.c)
