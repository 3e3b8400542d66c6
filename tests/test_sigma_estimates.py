"""Each method's own sigma estimate beside the exact value (diag/sigma_hat, diag/sigma_hat_error), and the power
iteration claim: from an all-ones start a few iterations underestimate sigma; a persistent u tracks it."""
import pytest
import torch
from torch import nn

from lipbench.diagnostics import layer_norms
from lipbench.layers import power_iteration
from lipbench.methods import (
    ConvSpectralNormalization,
    FrobeniusPenalty,
    GradientPenalty,
    SpectralNormalization,
    SpectralPenalty,
    SpectralProjection,
)
from tests.test_methods import train_critic

ESTIMATING = [SpectralNormalization(), SpectralProjection(power_iterations=2), SpectralPenalty(weight=0.1),
              ConvSpectralNormalization()]


def conv_critic() -> nn.Module:
    """A small plain conv critic on 1x8x8 inputs."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(4, 8, 4, stride=2, padding=1),
                         nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(8 * 4 * 4, 1))


def trained_conv_critic(method) -> nn.Module:
    """conv_critic wrapped by `method` after 20 Adam steps on a loss that grows its weights, in eval mode."""
    critic = method.wrap(conv_critic())
    optimizer = torch.optim.Adam(critic.parameters(), lr=1e-2)
    for _ in range(20):
        x = torch.randn(16, 1, 8, 8)
        loss = -critic(x).std() + method.penalty(critic, x, x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        method.after_step(critic)
    return critic.eval()


@pytest.mark.parametrize("method", ESTIMATING, ids=lambda m: m.name)
def test_every_layer_gets_an_underestimate_beside_its_exact_norm(method):
    critic = trained_conv_critic(method)
    state = {k: v.clone() for k, v in critic.state_dict().items()}
    norms = layer_norms(critic, torch.randn(4, 1, 8, 8), torch.Generator().manual_seed(0),
                        method.sigma_estimates(critic))
    assert all(torch.equal(state[k], v) for k, v in critic.state_dict().items())  # reading them changes nothing
    names = ["0_conv2d", "1_conv2d", "2_linear"]
    for name in names:
        assert norms[f"diag/sigma_hat/{name}"] > 0
        assert -0.5 < norms[f"diag/sigma_hat_error/{name}"] <= 1e-6  # power iteration never overshoots


@pytest.mark.parametrize("method", [SpectralNormalization(), ConvSpectralNormalization()], ids=lambda m: m.name)
def test_a_normalized_layer_is_left_with_norm_one_over_one_plus_the_error(method):
    critic = trained_conv_critic(method)
    norms = layer_norms(critic, torch.randn(4, 1, 8, 8), torch.Generator().manual_seed(0),
                        method.sigma_estimates(critic))
    # sn divides the kernel matrix by its estimate, sn_conv the convolution's operator
    checked = "sigma" if method.name == "sn" else "opnorm"
    for name in ("0_conv2d", "1_conv2d"):
        error = norms[f"diag/sigma_hat_error/{name}"]
        assert norms[f"diag/{checked}/{name}"] == pytest.approx(1 / (1 + error), rel=1e-5)


def test_methods_without_an_estimate_log_none():
    for method in (GradientPenalty(), FrobeniusPenalty()):
        critic = trained_conv_critic(method)
        assert method.sigma_estimates(critic) == {}
        norms = layer_norms(critic, torch.randn(4, 1, 8, 8), torch.Generator().manual_seed(0),
                            method.sigma_estimates(critic))
        assert not any(k.startswith("diag/sigma_hat") for k in norms)


def relative_errors(matrix: torch.Tensor, steps: list[int]) -> list[float]:
    """sigma_hat / sigma - 1 after each number of power iterations from an all-ones u (sn_projection's estimate)."""
    exact = torch.linalg.matrix_norm(matrix, 2).item()
    ones = torch.ones(matrix.shape[0], dtype=matrix.dtype)
    return [(lambda u, v: (u @ matrix @ v).item() / exact - 1)(*power_iteration(matrix, ones, r)) for r in steps]


def test_from_all_ones_five_iterations_leave_a_normalized_layer_more_than_one_percent_above_one():
    steps = [1, 2, 5, 10, 20]
    for seed in range(5):
        layer = nn.Linear(128, 128, dtype=torch.float64)  # torch's default init
        torch.nn.init.kaiming_uniform_(layer.weight, a=5**0.5, generator=torch.Generator().manual_seed(seed))
        errors = relative_errors(layer.weight.detach(), steps)
        assert all(-1 < e <= 1e-12 for e in errors)  # always an underestimate
        assert all(abs(b) <= abs(a) + 1e-12 for a, b in zip(errors, errors[1:]))  # closer with every iteration
        assert 1 / (1 + errors[steps.index(5)]) > 1.01  # sigma(W / sigma_hat) after sn_projection at r = 5
        assert abs(errors[-1]) < abs(errors[0]) / 10


def test_with_a_persistent_u_one_iteration_per_step_tracks_sigma_in_training():
    method = SpectralNormalization(power_iterations=1)
    critic = train_critic(method, steps=100).eval()
    errors = [estimate.value / torch.linalg.matrix_norm(estimate.weight.double(), 2).item() - 1
              for estimate in method.sigma_estimates(critic).values()]
    assert len(errors) == 4 and all(-0.01 < e <= 1e-6 for e in errors)
