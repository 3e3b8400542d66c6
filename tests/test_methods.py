"""Each Lipschitz method does what its definition says, checked against exact linear algebra."""
import functools

import pytest
import torch
from torch import nn

from lipbench import LipbenchError
from lipbench.gan import critic_penalty, critic_step
from lipbench.layers import constrained_layers
from lipbench.losses import Wasserstein
from lipbench.methods import (
    ConvSpectralNormalization,
    GradientPenalty,
    NoConstraint,
    SpectralNormalization,
    SpectralProjection,
    WeightClipping,
)
from lipbench.methods.gradient_penalty import interpolate
from lipbench.models.mlp import MLPCritic, MLPGenerator


def exact_sigmas(module: nn.Module) -> list[float]:
    """Largest singular value of each layer's effective weight, by SVD."""
    return [torch.linalg.matrix_norm(layer.weight.detach().flatten(1), 2).item()
            for layer in constrained_layers(module)]


def linear_critic(weight: torch.Tensor) -> nn.Module:
    """D(x) = <w, flatten(x)>: its input gradient is w at every point."""
    layer = nn.Linear(weight.numel(), 1, bias=False)
    layer.weight.data.copy_(weight.reshape(1, -1))
    return nn.Sequential(nn.Flatten(), layer)


def train_critic(method, steps: int = 30) -> nn.Module:
    """A few critic steps of `method` on Gaussian data; returns the critic."""
    torch.manual_seed(0)
    generator, critic = MLPGenerator(hidden=32), method.wrap(MLPCritic(hidden=32))
    opt = torch.optim.Adam(critic.parameters(), lr=1e-2)
    for _ in range(steps):
        critic_step(critic, generator, functools.partial(critic_penalty, method, critic), method,
                    Wasserstein("wasserstein"), opt, (64, 2), "none", torch.randn(64, 2) + 2)
    return critic


def test_clip_bounds_every_parameter():
    critic = train_critic(WeightClipping(c=0.01))
    for p in critic.parameters():
        assert p.abs().max() <= 0.01 + 1e-7
    assert max(p.abs().max().item() for p in critic.parameters()) == pytest.approx(0.01)  # the bound is active


def test_sn_gives_unit_spectral_norm_by_svd():
    critic = train_critic(SpectralNormalization(power_iterations=1))
    critic.eval()
    assert exact_sigmas(critic) == pytest.approx([1.0] * 4, abs=0.05)


def test_sn_projection_projects_to_unit_spectral_norm():
    critic = train_critic(SpectralProjection(power_iterations=5))
    assert exact_sigmas(critic) == pytest.approx([1.0] * 4, abs=0.05)


def test_no_constraint_leaves_large_weights():
    critic = train_critic(NoConstraint("none"))
    assert max(exact_sigmas(critic)) > 1.5


def gradient_along_weight(method) -> float:
    """<dL/dW, W> for the first layer's trained parameter: 0 iff the loss is invariant to rescaling W."""
    torch.manual_seed(0)
    critic = method.wrap(MLPCritic(hidden=16))
    critic(torch.randn(8, 2)).sum().backward()
    first = constrained_layers(critic)[0]
    weight = first.parametrizations.weight.original if hasattr(first, "parametrizations") else first.weight
    return (weight.grad * weight.detach()).sum().item() / weight.grad.norm().item()


def test_sn_gradient_flows_through_sigma():
    # W/sigma(W) is invariant to rescaling W, so with the gradient through sigma the gradient is orthogonal to W.
    assert gradient_along_weight(SpectralNormalization()) == pytest.approx(0.0, abs=1e-5)


def test_sn_wraps_every_layer_in_a_spectral_norm_parametrization():
    critic = MLPCritic(hidden=16)
    assert SpectralNormalization(power_iterations=3).wrap(critic) is critic
    for layer in constrained_layers(critic):
        (parametrization,) = layer.parametrizations.weight
        assert parametrization.n_power_iterations == 3


def test_sn_projection_has_no_gradient_through_sigma():
    method = SpectralProjection()
    critic = MLPCritic(hidden=16)
    before = {k: v.clone() for k, v in critic.state_dict().items()}
    assert method.wrap(critic) is critic  # a projection leaves the module as it is until after a step
    assert all(torch.equal(before[k], v) for k, v in critic.state_dict().items())
    assert not any(hasattr(layer, "parametrizations") for layer in constrained_layers(critic))
    assert abs(gradient_along_weight(method)) > 1e-2


@pytest.mark.parametrize("shape", [(16, 2), (16, 3, 4, 4)])
def test_gp_is_zero_for_unit_norm_linear_critic(shape):
    # For NCHW input the norm must be over all non-batch dims; a per-pixel norm (dim=1) would not give 0 here.
    torch.manual_seed(0)
    w = torch.randn(shape[1:])
    real, fake = torch.randn(shape), torch.randn(shape)
    penalty = GradientPenalty(weight=10).penalty
    assert penalty(linear_critic(w / w.norm()), real, fake).item() == pytest.approx(0, abs=1e-6)
    assert penalty(linear_critic(2 * w / w.norm()), real, fake).item() == pytest.approx(10.0, rel=1e-4)


def test_gp_relu_is_zero_below_unit_norm_while_gp_is_not():
    torch.manual_seed(0)
    w = torch.randn(2)
    critic = linear_critic(0.5 * w / w.norm())
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    assert GradientPenalty(weight=10, one_sided=True).penalty(critic, real, fake).item() == 0.0
    assert GradientPenalty(weight=10).penalty(critic, real, fake).item() == pytest.approx(10 * 0.25, rel=1e-4)


def test_gp_has_finite_gradient_at_zero_input_gradient():
    critic = linear_critic(torch.zeros(2))
    penalty = GradientPenalty(weight=10).penalty(critic, torch.randn(4, 2), torch.randn(4, 2))
    penalty.backward()
    assert torch.isfinite(critic[1].weight.grad).all()


def test_interpolation_draws_one_alpha_per_sample():
    torch.manual_seed(0)
    x = interpolate(torch.ones(64, 3, 2, 2), torch.zeros(64, 3, 2, 2))
    per_sample = x.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample))  # one alpha within a sample
    assert per_sample[:, 0].std() > 0.2  # different alphas across samples (uniform: std ~0.29)


@pytest.mark.parametrize("build, key", [
    (lambda: GradientPenalty(weight=-1), "method.weight"),
    (lambda: WeightClipping(c=0), "method.c"),
    (lambda: SpectralNormalization(power_iterations=0), "method.power_iterations"),
    (lambda: SpectralProjection(power_iterations=0), "method.power_iterations"),
    (lambda: ConvSpectralNormalization(vectors=0), "method.vectors"),
    (lambda: ConvSpectralNormalization(power_iterations=0), "method.power_iterations"),
])
def test_invalid_values_name_the_key(build, key):
    with pytest.raises(LipbenchError, match=key) as info:
        build()
    assert "\n" not in str(info.value)


def test_gp_under_bf16_autocast_matches_fp32():
    # The PyTorch AMP recipe: the input gradient is taken inside autocast and its norm in fp32, so bf16 changes the
    # penalty only by rounding.
    from lipbench.gan import autocast
    from lipbench.models.dcgan import DCGANCritic

    torch.manual_seed(0)
    critic = DCGANCritic(channels=1, image_size=16, width=8, critic_norm="none")
    real, fake = torch.randn(8, 1, 16, 16), torch.randn(8, 1, 16, 16)
    gp = GradientPenalty(weight=10)
    torch.manual_seed(1)
    full = gp.penalty(critic, real, fake)
    torch.manual_seed(1)
    with autocast(torch.device("cpu"), "bf16"):
        half = gp.penalty(critic, real, fake)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), rel=0.05)
    half.backward()
    assert all(torch.isfinite(p.grad).all() for p in critic.parameters() if p.grad is not None)


@pytest.mark.parametrize("weight", [
    torch.zeros(3, 4),                                                    # all zero: sigma is 0
    torch.tensor([[1.0, -1.0, 0.0], [2.0, -2.0, 0.0], [0.0, 0.0, 0.0]]).t(),  # W^T 1 = 0: the all-ones start fails
])
def test_sn_projection_never_divides_by_a_zero_estimate(weight):
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    layer.weight.data.copy_(weight)
    SpectralProjection(power_iterations=5).after_step(nn.Sequential(layer))
    assert torch.isfinite(layer.weight).all()
    expected = 0.0 if weight.abs().sum() == 0 else 1.0
    assert torch.linalg.matrix_norm(layer.weight.detach(), 2).item() == pytest.approx(expected, abs=1e-6)
