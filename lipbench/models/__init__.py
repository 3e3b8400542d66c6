"""Generator/critic pairs. Architectures never mention Lipschitz methods: methods act on them from outside."""
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
