"""Generator/critic pairs. Architectures never mention Lipschitz methods: methods act on them from outside."""
import torch
import torch.nn.functional as F
from torch import nn

from lipbench import LipbenchError

# Per-sample normalizations a critic may use: BatchNorm would couple the samples of a batch (and break GP).
CRITIC_NORMS = {"none": lambda channels: nn.Identity(), "layer": lambda channels: nn.GroupNorm(1, channels)}


def critic_norm_layer(kind: str, channels: int) -> nn.Module:
    """`layer`: LayerNorm over (C, H, W) of each sample, per-channel affine (WGAN-GP's choice); `none`: identity."""
    if kind not in CRITIC_NORMS:
        raise LipbenchError(f"model.critic.critic_norm={kind!r} is unknown: use one of {sorted(CRITIC_NORMS)}")
    return CRITIC_NORMS[kind](channels)


def require_image_size(model: str, image_size: int, supported) -> None:
    """One-line error when an architecture has no variant for the dataset's image size."""
    if image_size not in supported:
        raise LipbenchError(f"model={model} has no variant for dataset.image_size={image_size}: use a dataset "
                            f"of size {' or '.join(map(str, sorted(supported)))} (e.g. dataset.size=32)")


def check_labels(model: nn.Module, y) -> None:
    """A class-conditional network needs labels and an unconditional one takes none: a caller that forgets them
    would otherwise train a different model without a word."""
    if (model.num_classes is None) != (y is None):
        kind = f"class-conditional ({model.num_classes} classes)" if model.num_classes else "unconditional"
        raise ValueError(f"{type(model).__name__} is {kind} but was called {'without' if y is None else 'with'} "
                         "labels")


class TakesLabels(nn.Module):
    """A layer whose forward is (x, y): LabelledSequential hands it the batch's class labels (or None)."""


class LabelledSequential(nn.Sequential):
    """nn.Sequential that also passes the labels to its TakesLabels layers; the other layers see x alone."""

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self:
            x = layer(x, y) if isinstance(layer, TakesLabels) else layer(x)
        return x


class ClassAffine(TakesLabels):
    """h * gain[y] + bias[y] per channel (dim 1): the per-class gain and bias of conditional BatchNorm, started at
    gain 1 and bias 0 as in the SNGAN/projection reference code (CategoricalConditionalBatchNormalization)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.gain, self.bias = nn.Embedding(num_classes, channels), nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """[B, C, ...] with each sample scaled and shifted by its class's parameters."""
        shape = (len(h), -1) + (1,) * (h.dim() - 2)
        return h * self.gain(y).view(shape) + self.bias(y).view(shape)


class ConditionalBatchNorm2d(TakesLabels):
    """BatchNorm without its own affine, then the per-class gain and bias of the sample's label (de Vries et al.
    2017; Miyato & Koyama 2018's generator)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.affine = ClassAffine(channels, num_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Batch-normalized x with its class's gain and bias."""
        return self.affine(self.norm(x), y)


def batch_norm(channels: int, num_classes: int | None) -> nn.Module:
    """A generator's BatchNorm: plain, or conditional on the class when the generator is."""
    return nn.BatchNorm2d(channels) if num_classes is None else ConditionalBatchNorm2d(channels, num_classes)


class Critic(nn.Module):
    """A critic as features phi(x) and a linear head psi: score = psi(phi(x)). Built with `num_classes`, it is the
    projection critic of Miyato & Koyama (2018): score = psi(phi(x)) + <embed(y), phi(x)>.

    The class embedding is an nn.Linear on one-hot labels (bias-free), the same map as an embedding table, so a
    Lipschitz method treats it as the layer it is: SN divides it by its sigma as the reference code's SNEmbedID does.
    For a fixed label the score is the linear head w + embed_y on phi(x), with slope up to ||w|| + ||embed_y|| times
    phi's (2 under SN, not 1: as in the reference code).
    """

    num_classes: int | None = None
    head: nn.Linear

    def add_projection(self, num_classes: int | None, feature_dim: int) -> None:
        """The class embedding (Glorot-uniform, as the reference code's), for a class-conditional critic."""
        self.num_classes = num_classes
        if num_classes is not None:
            self.embed = nn.Linear(num_classes, feature_dim, bias=False)
            nn.init.xavier_uniform_(self.embed.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, ...] -> phi(x) [B, feature_dim]."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """[B, ...] (and labels [B] for a conditional critic) -> [B] scores."""
        check_labels(self, y)
        h = self.features(x)
        score = self.head(h).squeeze(1)
        if y is None:
            return score
        return score + (self.embed(F.one_hot(y, self.num_classes).to(h.dtype)) * h).sum(dim=1)

    def class_head_norm(self) -> float | None:
        """max over classes of ||w + embed_y||, the slope of the score in phi for a fixed label (None unconditional)."""
        if self.num_classes is None:
            return None
        heads = self.head.weight + self.embed.weight.t()  # [classes, feature_dim]
        return heads.detach().norm(dim=1).max().item()


class WithLabels(nn.Module):
    """x -> critic(x, labels): a conditional critic as a function of its input for fixed labels, which is how a
    Lipschitz method's penalty sees it (a module holding the critic, so weight penalties still find its layers)."""

    def __init__(self, critic: nn.Module, labels: torch.Tensor):
        super().__init__()
        self.critic, self.labels = critic, labels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, ...] -> [B]."""
        return self.critic(x, self.labels)


def with_labels(critic: nn.Module, labels: torch.Tensor | None) -> nn.Module:
    """The critic for fixed labels; an unconditional critic (labels None) as it is."""
    return critic if labels is None else WithLabels(critic, labels)


def given(labels: torch.Tensor | None) -> tuple:
    """The extra call arguments of a network: (labels,) when conditional, none otherwise."""
    return () if labels is None else (labels,)
