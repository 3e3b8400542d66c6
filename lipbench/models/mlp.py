"""MLP generator and critic for low-dimensional data (the 2-D toy benchmarks)."""
from collections.abc import Callable

from torch import nn

from lipbench import LipbenchError
from lipbench.models import ClassAffine, Critic, LabelledSequential, check_labels

NORMS = {"none": nn.Identity, "layer": nn.LayerNorm}


def mlp(in_dim: int, hidden: int, depth: int, out_dim: int, norm: str | Callable[[int], nn.Module] = "none"
        ) -> LabelledSequential:
    """`depth` hidden layers of width `hidden` with `norm` (a name of NORMS, or width -> module) and ReLU, then a
    linear output layer."""
    if isinstance(norm, str):
        if norm not in NORMS:
            raise LipbenchError(f"model critic norm={norm!r} is unknown: use one of {sorted(NORMS)}")
        norm = NORMS[norm]
    layers, width = [], in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), norm(hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return LabelledSequential(*layers)


class MLPGenerator(nn.Module):
    """z ~ N(0, I) of size `latent_dim` -> a point of size `out_dim`; with `num_classes`, each hidden layer gets its
    class's gain and bias (conditional BatchNorm's affine without the normalization, which the unconditional MLP
    does not have either: the two differ only by the conditioning)."""

    def __init__(self, latent_dim: int = 2, out_dim: int = 2, hidden: int = 512, depth: int = 3,
                 num_classes: int | None = None):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        norm = "none" if num_classes is None else (lambda width: ClassAffine(width, num_classes))
        self.net = mlp(latent_dim, hidden, depth, out_dim, norm)

    def forward(self, z, y=None):
        """[B, latent_dim] (and labels [B] when conditional) -> [B, out_dim]."""
        check_labels(self, y)
        return self.net(z, y)


class MLPCritic(Critic):
    """A point -> one unbounded score per sample. No BatchNorm: it would couple samples and break GP."""

    image_sizes = None  # flat vectors, not images (lipbench.config.require_model_fits reads it)

    def __init__(self, in_dim: int = 2, hidden: int = 512, depth: int = 3, critic_norm: str = "none",
                 num_classes: int | None = None):
        super().__init__()
        self.net = mlp(in_dim, hidden, depth, 1, critic_norm)
        self.add_projection(num_classes, hidden)

    @property
    def head(self) -> nn.Linear:
        """The last linear layer: hidden features -> score."""
        return self.net[-1]

    def features(self, x):
        """The last hidden layer's activations."""
        return self.net[:-1](x.flatten(1))
