"""MLP generator and critic for low-dimensional data (the 2-D toy benchmarks)."""
from torch import nn

from lipbench import LipbenchError


def mlp(in_dim: int, hidden: int, depth: int, out_dim: int, norm: str = "none") -> nn.Sequential:
    """`depth` hidden layers of width `hidden` with ReLU, then a linear output layer."""
    norms = {"none": nn.Identity, "layer": nn.LayerNorm}
    if norm not in norms:
        raise LipbenchError(f"model critic norm={norm!r} is unknown: use one of {sorted(norms)}")
    layers, width = [], in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), norms[norm](hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """z ~ N(0, I) of size `latent_dim` -> a point of size `out_dim`."""

    def __init__(self, latent_dim: int = 2, out_dim: int = 2, hidden: int = 512, depth: int = 3):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = mlp(latent_dim, hidden, depth, out_dim)

    def forward(self, z):
        return self.net(z)


class MLPCritic(nn.Module):
    """A point -> one unbounded score per sample. No BatchNorm: it would couple samples and break GP."""

    image_sizes = None  # flat vectors, not images (lipbench.config.require_model_fits reads it)

    def __init__(self, in_dim: int = 2, hidden: int = 512, depth: int = 3, critic_norm: str = "none"):
        super().__init__()
        self.net = mlp(in_dim, hidden, depth, 1, critic_norm)

    def forward(self, x):
        return self.net(x.flatten(1)).squeeze(1)
