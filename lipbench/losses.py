"""GAN losses, a separate axis from the Lipschitz method: each maps critic scores to (critic, generator) losses."""
import torch
import torch.nn.functional as F


class GANLoss:
    """Base class: `critic` is minimized by the critic, `generator` by the generator."""

    def __init__(self, name: str):
        self.name = name

    def critic(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        """The critic's loss on scores of real and generated samples."""
        raise NotImplementedError

    def generator(self, d_fake: torch.Tensor) -> torch.Tensor:
        """The generator's loss on scores of its samples."""
        raise NotImplementedError


class Wasserstein(GANLoss):
    """WGAN: the critic maximizes E[D(real)] - E[D(fake)]."""

    def critic(self, d_real, d_fake):
        return d_fake.mean() - d_real.mean()

    def generator(self, d_fake):
        return -d_fake.mean()


class Hinge(GANLoss):
    """Hinge loss of SNGAN / Geometric GAN."""

    def critic(self, d_real, d_fake):
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()

    def generator(self, d_fake):
        return -d_fake.mean()


class NonSaturating(GANLoss):
    """The original GAN loss with the non-saturating generator objective; D outputs logits."""

    def critic(self, d_real, d_fake):
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()

    def generator(self, d_fake):
        return F.softplus(-d_fake).mean()
