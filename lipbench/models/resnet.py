"""The ResNet generator and critic of SNGAN (Miyato et al. 2018), for 32x32 and 64x64 images.

Widths are multiples of `width` (64 in the papers): at 32x32 the generator keeps 256 channels and the critic
128; at 64x64 the generator halves from 1024 and the critic doubles up to 1024, as in the reference code.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from lipbench.models import (
    Critic,
    LabelledSequential,
    TakesLabels,
    batch_norm,
    check_labels,
    critic_norm_layer,
    require_image_size,
)

# Per image size, in multiples of `width`: generator widths from 4x4 up; critic blocks as (width, downsample).
GENERATOR_WIDTHS = {32: [4, 4, 4, 4], 64: [16, 8, 4, 2, 1]}
CRITIC_BLOCKS = {32: [(2, True), (2, True), (2, False), (2, False)],
                 64: [(1, True), (2, True), (4, True), (8, True), (16, False)]}


def conv(c_in: int, c_out: int, kernel: int, gain: float = 1.0) -> nn.Conv2d:
    """A same-padding conv with the reference Xavier-uniform init (gain sqrt 2 on residual 3x3 convs)."""
    layer = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)
    nn.init.xavier_uniform_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class GeneratorBlock(TakesLabels):
    """BN-ReLU-upsample-conv-BN-ReLU-conv, plus an upsampled 1x1-conv shortcut; doubles the size. With
    `num_classes` both BatchNorms are conditional on the class, as in the reference code's Block."""

    def __init__(self, c_in: int, c_out: int, num_classes: int | None = None):
        super().__init__()
        self.residual = LabelledSequential(
            batch_norm(c_in, num_classes), nn.ReLU(), nn.Upsample(scale_factor=2), conv(c_in, c_out, 3, math.sqrt(2)),
            batch_norm(c_out, num_classes), nn.ReLU(), conv(c_out, c_out, 3, math.sqrt(2)))
        self.shortcut = nn.Sequential(nn.Upsample(scale_factor=2), conv(c_in, c_out, 1))

    def forward(self, x, y=None):
        """Residual branch plus shortcut."""
        return self.residual(x, y) + self.shortcut(x)


class CriticBlock(nn.Module):
    """[norm]-ReLU-conv-[norm]-ReLU-conv, average-pooled when downsampling; 1x1-conv shortcut when shapes change.

    The first block ("optimized" in SNGAN) starts with the conv, as there is no activation to pre-activate.
    """

    def __init__(self, c_in: int, c_out: int, downsample: bool, critic_norm: str, first: bool = False):
        super().__init__()
        pool = nn.AvgPool2d(2) if downsample else nn.Identity()
        pre = [] if first else [critic_norm_layer(critic_norm, c_in), nn.ReLU()]
        mid = [nn.ReLU()] if first else [critic_norm_layer(critic_norm, c_out), nn.ReLU()]
        self.residual = nn.Sequential(*pre, conv(c_in, c_out, 3, math.sqrt(2)), *mid,
                                      conv(c_out, c_out, 3, math.sqrt(2)), pool)
        if first:  # pool before the 1x1 conv: the same map, four times cheaper
            self.shortcut = nn.Sequential(pool, conv(c_in, c_out, 1))
        elif c_in != c_out or downsample:
            self.shortcut = nn.Sequential(conv(c_in, c_out, 1), pool)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        """Residual branch plus shortcut."""
        return self.residual(x) + self.shortcut(x)


class ResNetGenerator(nn.Module):
    """z -> linear to 4x4 -> upsampling residual blocks -> BN-ReLU-conv to `channels`, tanh. With `num_classes`
    the blocks' BatchNorms are conditional; the last BatchNorm stays plain, as in the reference code (b5)."""

    def __init__(self, latent_dim: int = 128, channels: int = 3, image_size: int = 32, width: int = 64,
                 num_classes: int | None = None):
        super().__init__()
        require_image_size("resnet", image_size, GENERATOR_WIDTHS)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        widths = [width * m for m in GENERATOR_WIDTHS[image_size]]
        self.project = nn.Linear(latent_dim, 4 * 4 * widths[0])
        nn.init.xavier_uniform_(self.project.weight)
        self.blocks = LabelledSequential(*[GeneratorBlock(c_in, c_out, num_classes)
                                           for c_in, c_out in zip(widths, widths[1:])])
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(), conv(widths[-1], channels, 3), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """[B, latent_dim] (and labels [B] when conditional) -> [B, C, S, S] in [-1, 1]."""
        check_labels(self, y)
        return self.out(self.blocks(self.project(z).view(len(z), -1, 4, 4), y))


class ResNetCritic(Critic):
    """Residual blocks with average-pool downsampling, ReLU, global sum pooling, linear to one score; with
    `num_classes`, the projection critic of the reference code (SNResNetProjectionDiscriminator) on the pooled
    features."""

    image_sizes = tuple(CRITIC_BLOCKS)  # the data it can serve (lipbench.config.require_model_fits reads it)

    def __init__(self, channels: int = 3, image_size: int = 32, width: int = 64, critic_norm: str = "none",
                 num_classes: int | None = None):
        super().__init__()
        require_image_size("resnet", image_size, CRITIC_BLOCKS)
        blocks, c_in = [], channels
        for i, (m, downsample) in enumerate(CRITIC_BLOCKS[image_size]):
            blocks.append(CriticBlock(c_in, width * m, downsample, critic_norm, first=i == 0))
            c_in = width * m
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(c_in, 1)
        nn.init.xavier_uniform_(self.linear.weight)
        self.add_projection(num_classes, c_in)

    @property
    def head(self) -> nn.Linear:
        """The linear layer: pooled features -> score."""
        return self.linear

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, S, S] -> ReLU then global sum pooling of the last block [B, channels]."""
        return F.relu(self.blocks(x)).sum(dim=(2, 3))
