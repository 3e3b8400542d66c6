"""sn_conv divides each convolution by its true operator norm at its input size, checked against the explicit
operator matrix; its vectors are persistent, input-shaped, checkpointed, and advance only in training mode."""
import copy

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import _SpectralNorm

from lipbench import LipbenchError
from lipbench.layers import spectral_norm
from lipbench.methods import ConvSpectralNormalization, SpectralNormalization
from lipbench.methods.conv_spectral import OperatorNormalization
from tests.test_diagnostics import explicit_matrix

LAYERS = [
    (lambda: nn.Conv2d(2, 3, 3, padding=1), (2, 6, 6)),
    (lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1), (2, 7, 7)),
    (lambda: nn.Conv2d(3, 2, 4, stride=2, padding=1, dilation=1), (3, 8, 8)),
    (lambda: nn.Conv2d(2, 2, 3, dilation=2, padding=2, groups=2), (2, 6, 6)),
    (lambda: nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1), (3, 4, 4)),
    (lambda: nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1), (2, 3, 3)),
    (lambda: nn.Conv1d(2, 2, 3, padding=1, padding_mode="circular"), (2, 9)),
]


def operator_norm_of(layer: nn.Module, shape: tuple) -> float:
    """Exact largest singular value of the layer's operator at `shape`, by SVD of its explicit matrix."""
    return torch.linalg.matrix_norm(explicit_matrix(layer, shape), 2).item()


def wrapped(layer: nn.Module, shape: tuple, forwards: int = 1, **options) -> nn.Module:
    """The layer under sn_conv after `forwards` training-mode forwards on random batches of `shape`."""
    net = ConvSpectralNormalization(**options).wrap(nn.Sequential(layer))
    for _ in range(forwards):
        net(torch.randn(4, *shape))
    return net


@pytest.mark.parametrize("make, shape", LAYERS)
def test_sn_conv_divides_by_the_exact_operator_norm(make, shape):
    torch.manual_seed(0)
    layer = make()
    raw = operator_norm_of(layer, shape)
    kernel_sigma = spectral_norm(layer)
    net = wrapped(layer, shape, forwards=3)
    estimate = ConvSpectralNormalization().estimate(net[0])
    assert estimate.operator and estimate.value == pytest.approx(raw, rel=1e-5)
    net.eval()
    assert operator_norm_of(net[0], shape) == pytest.approx(1.0, rel=1e-5)
    assert abs(raw / kernel_sigma - 1) > 1e-3  # the kernel's sigma, what sn divides by, is another number


def test_sn_conv_tracks_a_weight_that_changes_in_training():
    torch.manual_seed(0)
    shape = (3, 8, 8)
    net = wrapped(nn.Conv2d(3, 4, 3, padding=1), shape)
    original = net[0].parametrizations.weight.original
    with torch.no_grad():
        original.add_(torch.randn_like(original))  # a different operator altogether
    for _ in range(30):
        net(torch.randn(2, *shape))  # one block iteration per training forward
    net.eval()
    assert operator_norm_of(net[0], shape) == pytest.approx(1.0, rel=1e-4)


def test_vectors_are_an_input_shaped_buffer_that_advances_only_in_training_mode():
    torch.manual_seed(0)
    net = wrapped(nn.Conv2d(3, 4, 3, stride=2, padding=1), (3, 10, 10), forwards=0, vectors=5)
    norm = net[0].parametrizations.weight[0]
    assert isinstance(norm, OperatorNormalization) and norm._u.numel() == 0  # no input seen yet
    net(torch.randn(2, 3, 10, 10))
    assert norm._u.shape == (5, 3, 10, 10)
    flat = norm._u.flatten(1)
    assert torch.allclose(flat @ flat.T, torch.eye(5), atol=1e-5)  # orthonormal
    assert "0.parametrizations.weight.0._u" in net.state_dict()
    with torch.no_grad():
        net[0].parametrizations.weight.original.mul_(-1).add_(0.3)  # so that u has somewhere to go
    net.eval()
    before = norm._u.clone()
    net(torch.randn(2, 3, 10, 10))
    assert torch.equal(norm._u, before)
    net.train()
    net(torch.randn(2, 3, 10, 10))
    assert not torch.equal(norm._u, before)


def test_another_input_size_is_refused_in_one_line():
    net = wrapped(nn.Conv2d(1, 2, 3, padding=1), (1, 8, 8))
    with pytest.raises(LipbenchError, match=r"method=sn_conv .*\(1, 8, 8\), but got \(1, 16, 16\)") as info:
        net(torch.randn(2, 1, 16, 16))
    assert "\n" not in str(info.value)


def test_linear_layers_get_plain_sn():
    net = ConvSpectralNormalization(power_iterations=2).wrap(
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 1)))
    assert isinstance(net[0].parametrizations.weight[0], OperatorNormalization)
    (linear_norm,) = net[2].parametrizations.weight
    assert isinstance(linear_norm, _SpectralNorm) and linear_norm.n_power_iterations == 2


def test_gradient_flows_through_sigma():
    # W / ||A_W u|| is invariant to rescaling W, so with the gradient through sigma it is orthogonal to W.
    torch.manual_seed(0)
    net = wrapped(nn.Conv2d(2, 3, 3, stride=2, padding=1), (2, 8, 8))
    net(torch.randn(4, 2, 8, 8)).square().sum().backward()
    weight = net[0].parametrizations.weight.original
    assert (weight.grad * weight.detach()).sum().item() / weight.grad.norm().item() == pytest.approx(0.0, abs=1e-5)
    assert weight.grad.norm() > 1e-3


def test_two_training_forwards_before_one_backward():
    # The gradient penalty's forward advances u between the critic's forward and the backward.
    torch.manual_seed(0)
    net = wrapped(nn.Conv2d(2, 3, 3, padding=1), (2, 6, 6))
    loss = net(torch.randn(4, 2, 6, 6)).sum() + net(torch.randn(4, 2, 6, 6)).sum()
    loss.backward()
    assert torch.isfinite(net[0].parametrizations.weight.original.grad).all()


def test_a_checkpoint_carries_the_vectors_and_training_continues_exactly():
    def build():
        torch.manual_seed(1)
        return ConvSpectralNormalization().wrap(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(0.1),
                                                              nn.Conv2d(4, 4, 4, stride=2, padding=1)))

    def steps(net, optimizer, n):
        outputs = []
        for _ in range(n):
            out = net(torch.randn(8, 1, 8, 8))
            optimizer.zero_grad()
            out.square().mean().backward()
            optimizer.step()
            outputs.append(out.detach())
        return torch.stack(outputs)

    net = build()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    steps(net, optimizer, 5)
    saved = copy.deepcopy({"net": net.state_dict(), "opt": optimizer.state_dict(), "rng": torch.get_rng_state()})
    straight = steps(net, optimizer, 5)

    resumed = build()  # fresh: its vectors are not started until a forward or a checkpoint sizes them
    resumed_optimizer = torch.optim.Adam(resumed.parameters(), lr=1e-2)
    resumed.load_state_dict(saved["net"])
    resumed_optimizer.load_state_dict(saved["opt"])
    torch.set_rng_state(saved["rng"])
    assert torch.equal(steps(resumed, resumed_optimizer, 5), straight)


def test_under_bf16_autocast_sigma_is_computed_in_fp32():
    torch.manual_seed(0)
    net = wrapped(nn.Conv2d(2, 3, 3, padding=1), (2, 6, 6))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(torch.randn(4, 2, 6, 6))
        weight = net[0].weight
    assert out.dtype == torch.bfloat16 and weight.dtype == torch.float32
    net.eval()
    assert operator_norm_of(net[0], (2, 6, 6)) == pytest.approx(1.0, rel=1e-4)


def test_sn_conv_and_sn_agree_on_linear_only_networks():
    net_sn, net_conv = (m.wrap(nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 1)))
                        for m in (SpectralNormalization(), ConvSpectralNormalization()))
    net_conv.load_state_dict(net_sn.state_dict())
    x = torch.randn(3, 5)
    assert torch.equal(net_sn(x), net_conv(x))


def critic_diagnostics(method: str, steps: int) -> dict:
    """Diagnostics of the digits-scale DCGAN critic (16x16, width 16) after `steps` critic steps of `method`."""
    import itertools

    from lipbench.bench import forever
    from lipbench.diagnostics import Diagnostics
    from lipbench.gan import GANTraining
    from lipbench.training import build_method, evaluating
    from tests.conftest import composed

    cfg = composed("scale=digits", f"method={method}", "device=cpu")
    torch.manual_seed(0)
    training = GANTraining(cfg, build_method(cfg), torch.device("cpu"))
    for _ in itertools.islice(forever(training), steps):
        pass
    with evaluating(training.networks):
        return Diagnostics(seed=0).for_critic(training.critic, training.generator, training.dataset, 1,
                                              training.method)


@pytest.mark.slow
def test_a_dcgan_critic_under_sn_conv_is_1_lipschitz_where_sn_leaves_it_far_above(one_thread):
    conv_keys = [f"diag/opnorm/{i}_conv2d" for i in range(5)]
    slopes = [f"diag/grad_norm/{kind}/max" for kind in ("real", "fake", "interp")]
    sn_conv, sn = critic_diagnostics("sn_conv", 100), critic_diagnostics("sn", 100)
    assert all(0.98 <= sn_conv[key] <= 1.02 for key in conv_keys), {k: sn_conv[k] for k in conv_keys}
    assert sn_conv["diag/sigma/5_linear"] == pytest.approx(1.0, abs=0.02)
    assert 0.98 <= sn_conv["diag/lipschitz_bound"] <= 1.1
    assert all(0 < sn_conv[key] <= 1.02 for key in slopes)
    assert max(sn[key] for key in conv_keys) > 1.3 and min(sn[key] for key in slopes) > 2
