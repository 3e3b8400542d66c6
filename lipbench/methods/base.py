"""The interface every Lipschitz method implements, and the no-op method `none`."""
import torch
from torch import nn


class LipschitzMethod:
    """Base class: the training loop calls all three hooks for every method; each does nothing by default."""

    # The tasks (task.name) whose loop may use this method; a critic-only method narrows it to ("gan",).
    tasks = ("gan", "classify")

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


class NoConstraint(LipschitzMethod):
    """`none`: the unconstrained baseline."""
