"""L2 adversarial attacks, FGSM and PGD, on images in the [-1, 1] range that every lipbench model sees.

Budgets `eps` are in [0, 1] pixel units, the convention of the robustness literature. Datasets feed a model 2p - 1
for a pixel p in [0, 1], so a budget of eps pixels is an L2 ball of radius 2 * eps around the model's input.
Run them with the model in eval mode (SN's u then stays put); only input gradients are taken.
"""
import torch
import torch.nn.functional as F
from torch import nn

# Model-input units per pixel unit: lipbench.data.images.to_inputs maps [0, 1] pixels onto [-1, 1].
MODEL_UNITS_PER_PIXEL = 2.0
LOW, HIGH = -1.0, 1.0
# A zero gradient has no direction: norms are floored so that the step is 0 rather than NaN.
MIN_NORM = 1e-12
# PGD's step is this share of the radius per step (Madry et al. 2018): enough to cross the ball and come back.
PGD_STEP_SHARE = 2.5


def per_sample_norm(v: torch.Tensor) -> torch.Tensor:
    """The L2 norm of each sample over all non-batch dims, shaped to broadcast against `v`."""
    return v.flatten(1).norm(dim=1).view(-1, *[1] * (v.dim() - 1))


def loss_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """grad_x of the summed cross-entropy, i.e. each sample's own loss gradient (no BatchNorm couples them)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
    return grad


def ascent_direction(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss gradient scaled to unit L2 norm per sample: the steepest L2 ascent direction."""
    grad = loss_gradient(model, x, y)
    return grad / per_sample_norm(grad).clamp(min=MIN_NORM)


def project(x_adv: torch.Tensor, x: torch.Tensor, radius: float) -> torch.Tensor:
    """The nearest point of the L2 ball of `radius` around x, clamped to the valid range.

    The clamp is the projection onto a box that holds x, so it never moves a point farther from x.
    """
    delta = x_adv - x
    delta = delta * (radius / per_sample_norm(delta).clamp(min=MIN_NORM)).clamp(max=1)
    return (x + delta).clamp(LOW, HIGH)


def fgsm_l2(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """The L2 fast gradient method: one step of the full budget `eps` (pixel units) along the ascent direction."""
    radius = MODEL_UNITS_PER_PIXEL * eps
    return (x + radius * ascent_direction(model, x, y)).clamp(LOW, HIGH).detach()


def pgd_l2(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 10) -> torch.Tensor:
    """L2 PGD from x: `steps` ascent steps of 2.5 * radius / steps, each projected onto the ball and the range."""
    radius = MODEL_UNITS_PER_PIXEL * eps
    step = PGD_STEP_SHARE * radius / steps
    x_adv = x.detach()
    for _ in range(steps):
        x_adv = project(x_adv + step * ascent_direction(model, x_adv, y), x, radius).detach()
    return x_adv
