"""The interface every Lipschitz method implements, and the no-op method `none`."""
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SigmaEstimate:
    """A method's own estimate of one layer's norm, the number it divides the weight by (or penalizes)."""

    value: float
    weight: torch.Tensor    # the weight it is an estimate for: the raw weight, before any normalization
    operator: bool = False  # True: the norm of the layer's whole operator at its input size; False: of the (out, -1)
                            # kernel matrix, as SN computes it


class LipschitzMethod:
    """Base class: the training loop calls all three hooks for every method; each does nothing by default."""

    # The tasks (task.name) whose loop may use this method; a critic-only method narrows it to ("gan",).
    tasks = ("gan", "classify")
    # Whether a CUDA graph can record a step that calls the hooks (train.cuda_graph): they launch GPU work only,
    # with no value read on the host (no Python branch on a tensor, no op that syncs) and static shapes.
    capturable = True

    def __init__(self, name: str):
        self.name = name

    @property
    def label(self) -> str:
        """The method and its strength, as figure titles and summaries show it (e.g. `gp λ=10`)."""
        return self.name

    def wrap(self, module: nn.Module) -> nn.Module:
        """Reparametrize the critic once before training (e.g. W -> W/sigma(W)); returns the module to train."""
        return module

    def penalty(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """A term added to the critic loss at every critic step (e.g. the gradient penalty)."""
        return real.new_zeros(())

    def after_step(self, module: nn.Module) -> None:
        """Project the weights after each optimizer step of the critic (e.g. clipping)."""

    def sigma_estimates(self, module: nn.Module) -> dict[nn.Module, SigmaEstimate]:
        """For diagnostics: the method's current estimate of each layer's norm, for methods that estimate one
        (power iteration); read in eval mode, it must not change the module."""
        return {}


class NoConstraint(LipschitzMethod):
    """`none`: the unconstrained baseline."""
