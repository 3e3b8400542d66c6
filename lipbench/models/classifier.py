"""Image classifiers: an MLP and a small CNN, for 28/32-px digits and CIFAR-10 alike. They output logits.

No BatchNorm: it rescales every channel outside the linear layers that Lipschitz methods act on, and couples the
samples of a batch (which breaks per-sample input gradients).
"""
import torch
import torch.nn.functional as F
from torch import nn

from lipbench import LipbenchError
from lipbench.models.mlp import mlp


class MLPClassifier(nn.Module):
    """Flattened image -> `depth` ReLU layers of width `hidden` -> `num_classes` logits."""

    def __init__(self, channels: int, image_size: int, num_classes: int, hidden: int = 256, depth: int = 2):
        super().__init__()
        self.net = mlp(channels * image_size * image_size, hidden, depth, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, S, S] -> [B, num_classes]."""
        return self.net(x.flatten(1))


class CNNClassifier(nn.Module):
    """Per stage an optional 3x3 conv, then a 4x4 stride-2 conv, with ReLU; then a hidden linear layer and the logits.

    Each stage halves the size and doubles the width: two stages take 28x28 to 7x7 and 32x32 to 8x8. The defaults
    are the "small" MNIST/CIFAR model of Wong & Kolter (2018); stage_depth=2, width=32, hidden=512 is their "large".
    """

    def __init__(self, channels: int, image_size: int, num_classes: int, width: int = 16, stages: int = 2,
                 stage_depth: int = 1, hidden: int = 100):
        super().__init__()
        if image_size % 2**stages:
            raise LipbenchError(f"model.classifier.stages={stages} halves dataset.image_size={image_size} too often: "
                                f"use fewer stages or an image size divisible by {2**stages}")
        if stage_depth not in (1, 2):
            raise LipbenchError(f"model.classifier.stage_depth={stage_depth} is invalid: use 1 or 2 (convs per stage)")
        layers, c_in = [], channels
        for stage in range(stages):
            c = width * 2**stage
            if stage_depth == 2:
                layers += [nn.Conv2d(c_in, c, 3, 1, 1), nn.ReLU()]
                c_in = c
            layers += [nn.Conv2d(c_in, c, 4, 2, 1), nn.ReLU()]
            c_in = c
        side = image_size // 2**stages
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * side * side, hidden), nn.ReLU(),
                                 nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, S, S] -> [B, num_classes]."""
        return self.net(x)


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each sample."""
    return F.cross_entropy(logits, labels, reduction="none")


def logit_margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The true class's logit minus the largest other one: positive iff the sample is classified correctly."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], float("-inf")).amax(dim=1)
    return true - others


class LabelledObjective(nn.Module):
    """x -> objective(model(x), labels) per sample: the classifier seen as a scalar function of its input, a critic."""

    def __init__(self, model: nn.Module, labels: torch.Tensor, objective):
        super().__init__()
        self.model, self.labels, self.objective = model, labels, objective

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, ...] -> [B]."""
        return self.objective(self.model(x), self.labels)
