"""Lipschitz diagnostics of a critic or a classifier: the norm each layer is left with, their product, and the
network's real slopes. Every key means the same for both tasks:

- `diag/sigma/<layer>`: exact sigma of the layer's weight as an (out, -1) matrix (what SN divides by);
- `diag/opnorm/<layer>`: a convolution's true operator norm at its real input size;
- `diag/sigma_hat/<layer>`: the method's own estimate of the norm it divides by or penalizes (SN's u^T W v,
  sn_conv's ||A u||, sn_projection's all-ones power iteration, spectral_reg's u), for methods that estimate one;
- `diag/sigma_hat_error/<layer>`: sigma_hat / sigma - 1, sigma the exact norm of the same (unnormalized) weight;
  power iteration never overshoots, so it is <= 0, and dividing W by sigma_hat leaves sigma 1 / (1 + error);
- `diag/lipschitz_bound`: the product of the layers' operator norms (sigma for a linear layer);
- `diag/grad_norm/...` (critic) and `diag/margin_grad_...` (classifier): input-gradient norms at data points.

Everything here runs in eval mode on its own RNG and differentiates w.r.t. inputs only, so a run logs the same
losses with diagnostics on or off: SN's u does not advance, no parameter gets a .grad, the global RNG is untouched.
"""
import math

import numpy as np
import torch
from torch import nn

from lipbench import require
from lipbench.layers import (
    constrained_layers,
    input_gradient_norm,
    layer_key,
    linear_map,
    spectral_norm,
    subspace_iteration,
)
from lipbench.methods import LipschitzMethod
from lipbench.models import given, with_labels
from lipbench.models.classifier import LabelledObjective, logit_margin

# Vectors of the block power iteration that measures an operator norm: a block converges where one vector crawls.
DIAGNOSTIC_VECTORS = 8


def operator_norm(layer: nn.Module, input_shape, generator: torch.Generator, weight: torch.Tensor | None = None,
                  tol: float = 1e-7, max_iters: int = 2000) -> float:
    """The layer's true Lipschitz constant on inputs of `input_shape` (no batch dim), with its weight or `weight`:
    block power iteration on A^T A for its linear map A (the bias plays no part) until it settles.

    For a convolution this is the norm of the whole operator at the real size, stride and padding, which can be
    up to k times the norm of its k x k kernel reshaped to a matrix.
    """
    weight = (layer.weight if weight is None else weight).detach()
    linear = linear_map(layer)
    vectors = min(DIAGNOSTIC_VECTORS, math.prod(input_shape))
    x = torch.randn((vectors, *input_shape), generator=generator, dtype=torch.float64).to(weight.device, weight.dtype)
    sigma = 0.0
    for _ in range(max_iters):
        x, values = subspace_iteration(lambda v: linear(v, weight), x, 1)
        previous, sigma = sigma, values[0].item()
        if abs(sigma - previous) <= tol * sigma:
            break
    return sigma


def input_shapes(critic: nn.Module, x: torch.Tensor) -> dict[nn.Module, torch.Size]:
    """The per-sample input shape of every constrained layer, recorded by hooks during one forward of `x[:1]`."""
    shapes = {}

    def record(module, args):
        """Keep the input shape; returning None leaves the forward's input as it is."""
        shapes.setdefault(module, args[0].shape[1:])

    hooks = [layer.register_forward_pre_hook(record) for layer in constrained_layers(critic)]
    try:
        with torch.no_grad():
            critic(x[:1])
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


def layer_norms(critic: nn.Module, x: torch.Tensor, generator: torch.Generator,
                estimates: dict | None = None, head: tuple[list[nn.Module], float] | None = None) -> dict[str, float]:
    """sigma of every layer's weight, the operator norm of every convolution, and their product (a Lipschitz bound);
    and beside each of the method's `estimates` (LipschitzMethod.sigma_estimates) its relative error.

    The product bounds the critic's Lipschitz constant when its activations are 1-Lipschitz (ReLU, LeakyReLU)
    and it has no normalization layers. Convolutions enter with their operator norm: their kernel's sigma, which
    SN divides by, is not a bound on what a convolution does to its input. `head`: layers that act in parallel on
    the last features (a projection critic's linear head and class embedding) and the norm they enter the product
    with in place of their own (Critic.class_head_norm).
    """
    shapes, estimates = input_shapes(critic, x), estimates or {}
    parallel, bound = head or ([], 1.0)
    norms = {}
    for index, layer in enumerate(constrained_layers(critic)):
        name = layer_key(index, layer)
        norm = norms[f"diag/sigma/{name}"] = spectral_norm(layer)
        if not isinstance(layer, nn.Linear) and layer in shapes:
            norm = norms[f"diag/opnorm/{name}"] = operator_norm(layer, shapes[layer], generator)
        if not any(layer is other for other in parallel):
            bound *= norm
        if layer in estimates:
            estimate = estimates[layer]
            exact = (operator_norm(layer, shapes[layer], generator, estimate.weight) if estimate.operator
                     else spectral_norm(layer, estimate.weight))
            norms[f"diag/sigma_hat/{name}"] = estimate.value
            norms[f"diag/sigma_hat_error/{name}"] = estimate.value / exact - 1
    norms["diag/lipschitz_bound"] = bound
    return norms


def histogram(values: torch.Tensor, bins: int) -> dict[str, list]:
    """Counts and bin edges of the finite values: plain JSON for metrics.jsonl, and what wandb.Histogram takes as
    np_histogram. Non-finite values (a critic that blew up) are left out; the mean and max keys show them."""
    finite = values[torch.isfinite(values)].cpu().double().numpy()
    if not len(finite):
        return {"counts": [0] * bins, "edges": list(range(bins + 1))}
    counts, edges = np.histogram(finite, bins=bins)
    return {"counts": counts.tolist(), "edges": edges.tolist()}


class Diagnostics:
    """All diagnostics as `diag/...` keys: layer norms, and input-gradient norms at data points."""

    def __init__(self, seed: int, enabled: bool = True, num_samples: int = 256, histogram_bins: int = 30):
        require(num_samples >= 1, "diagnostics.num_samples", num_samples, ">= 1")
        require(histogram_bins >= 1, "diagnostics.histogram_bins", histogram_bins, ">= 1")
        self.seed, self.enabled = seed, bool(enabled)
        self.num_samples, self.histogram_bins = int(num_samples), int(histogram_bins)

    def for_critic(self, critic: nn.Module, generator: nn.Module, dataset, epoch: int,
                   method: LipschitzMethod | None = None) -> dict:
        """The epoch's diagnostics of a GAN critic ({} when disabled), with `method`'s own sigma estimates; call with
        both networks in eval mode.

        Samples, latents and interpolation weights come from a generator seeded by (seed, epoch), never from the
        global RNG that training draws from. A class-conditional critic is measured as training sees it: at each
        real point for its label, the fake generated for that label, and the interpolate of the two.
        """
        if not self.enabled:
            return {}
        n, device = self.num_samples, next(critic.parameters()).device
        rng = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        conditional = getattr(critic, "num_classes", None) is not None
        if not conditional:
            real, labels = dataset.sample(n, generator=rng).to(device), None
        else:
            real, labels = (t.to(device) for t in dataset.sample_labelled(n, generator=rng))
        with torch.no_grad():
            z = torch.randn(n, generator.latent_dim, generator=rng).to(device)
            fake = generator(z, *given(labels)).to(real.dtype)
        alpha = torch.rand((n,) + (1,) * (real.dim() - 1), generator=rng).to(device, real.dtype)
        points = {"real": real, "fake": fake, "interp": alpha * real + (1 - alpha) * fake}

        head = ([critic.head, critic.embed], critic.class_head_norm()) if conditional else None
        values = layer_norms(with_labels(critic, None if labels is None else labels[:1]), real, rng,
                             method and method.sigma_estimates(critic), head)
        for kind, x in points.items():
            with torch.enable_grad():
                norms = input_gradient_norm(with_labels(critic, labels), x).detach()
            values[f"diag/grad_norm/{kind}/mean"] = norms.mean().item()
            values[f"diag/grad_norm/{kind}/max"] = norms.max().item()
            values[f"diag/grad_norm/{kind}/hist"] = histogram(norms, self.histogram_bins)
        return values

    def for_classifier(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, epoch: int,
                       method: LipschitzMethod | None = None, batch_size: int = 500) -> dict:
        """The epoch's diagnostics of a classifier at the points (x, y) ({} when disabled), with `method`'s own sigma
        estimates, in eval mode.

        The slope measured is that of the logit margin (true class minus the best other), which decides robustness:
        a margin is the difference of two logits, so its slope is at most sqrt(2) times the network's bound.
        """
        if not self.enabled:
            return {}
        values = layer_norms(model, x, torch.Generator().manual_seed(self.seed * 1_000_003 + epoch),
                             method and method.sigma_estimates(model))
        with torch.enable_grad():
            norms = torch.cat([input_gradient_norm(LabelledObjective(model, yb, logit_margin), xb).detach()
                               for xb, yb in zip(x.split(batch_size), y.split(batch_size))])
        values["diag/margin_grad_mean"] = norms.mean().item()
        values["diag/margin_grad_max"] = norms.max().item()
        return values
