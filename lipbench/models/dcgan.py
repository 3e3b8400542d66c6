"""The "standard CNN" of SNGAN (Miyato et al. 2018, Table 3), with one stage per doubling of size above 4x4.

At 32x32 (CIFAR-10, MNIST padded to 32) it is Table 3, with BatchNorm and ReLU after the generator's dense layer
as in the authors' code; 16x16 drops a stage and 64x64 (CelebA) adds one, doubling the widths as DCGAN does
(1024 channels at 4x4).
"""
import math

import torch
from torch import nn

from lipbench.models import Critic, LabelledSequential, batch_norm, check_labels, critic_norm_layer, require_image_size

SIZES = (16, 32, 64)


def stage_widths(image_size: int, width: int) -> list[int]:
    """Channels from the 4x4 bottom up to full size, e.g. [512, 256, 128, 64] at 32x32 with width 64."""
    require_image_size("dcgan", image_size, SIZES)
    stages = int(math.log2(image_size)) - 2
    return [width * 2**i for i in reversed(range(stages + 1))]


def dcgan_init(module: nn.Module) -> None:
    """N(0, 0.02) weights and zero biases, the DCGAN initialization used by the SNGAN reference code."""
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """z (latent_dim) -> linear to 4x4 -> x2 deconvs with BatchNorm and ReLU -> 3x3 conv to `channels`, tanh; with
    `num_classes`, every BatchNorm is conditional on the class."""

    def __init__(self, latent_dim: int = 128, channels: int = 3, image_size: int = 32, width: int = 64,
                 num_classes: int | None = None):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        widths = stage_widths(image_size, width)
        self.project = nn.Linear(latent_dim, 4 * 4 * widths[0])
        layers = [batch_norm(widths[0], num_classes), nn.ReLU()]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), batch_norm(c_out, num_classes), nn.ReLU()]
        layers += [nn.Conv2d(widths[-1], channels, 3, 1, 1), nn.Tanh()]
        self.net = LabelledSequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """[B, latent_dim] (and labels [B] when conditional) -> [B, C, S, S] in [-1, 1]."""
        check_labels(self, y)
        return self.net(self.project(z).view(len(z), -1, 4, 4), y)


class DCGANCritic(Critic):
    """Per stage a 3x3 conv then a 4x4 stride-2 conv, LeakyReLU(0.1); a last 3x3 conv; linear to one score. With
    `num_classes`, a projection critic on the flattened last features."""

    image_sizes = SIZES  # the data it can serve (lipbench.config.require_model_fits reads it)

    def __init__(self, channels: int = 3, image_size: int = 32, width: int = 64, critic_norm: str = "none",
                 num_classes: int | None = None):
        super().__init__()
        widths = stage_widths(image_size, width)[::-1]  # e.g. [64, 128, 256, 512] at 32x32
        layers, c_in = [], channels
        for c in widths[:-1]:
            layers += [nn.Conv2d(c_in, c, 3, 1, 1), nn.Conv2d(c, c, 4, 2, 1)]
            c_in = c
        layers.append(nn.Conv2d(c_in, widths[-1], 3, 1, 1))
        # Norm after every conv but the first, as DCGAN leaves the input layer unnormalized.
        body = []
        for i, conv in enumerate(layers):
            norm = nn.Identity() if i == 0 else critic_norm_layer(critic_norm, conv.out_channels)
            body += [conv, norm, nn.LeakyReLU(0.1)]  # not in-place: GP differentiates through the activations
        self.net = nn.Sequential(*body, nn.Flatten(), nn.Linear(4 * 4 * widths[-1], 1))
        self.apply(dcgan_init)
        self.add_projection(num_classes, 4 * 4 * widths[-1])

    @property
    def head(self) -> nn.Linear:
        """The last linear layer: flattened features -> score."""
        return self.net[-1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, S, S] -> the flattened 4x4 features [B, 16 * channels]."""
        return self.net[:-1](x)
