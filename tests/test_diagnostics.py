"""Diagnostics: exact layer norms, true operator norms of convolutions at their input size, no effect on training."""
import copy
import math

import pytest
import torch
from torch import nn

from lipbench.diagnostics import layer_norms, operator_norm
from lipbench.layers import spectral_norm
from lipbench.methods import SpectralNormalization
from tests.conftest import FAST, lipbench, read_metrics, read_summary, run_dirs

SMALL = ["model.critic.hidden=64", "model.generator.hidden=64"]


def explicit_matrix(layer: nn.Module, shape: tuple) -> torch.Tensor:
    """The layer's linear part (bias removed) as a dense float64 matrix, column i = its response to basis vector i."""
    layer = copy.deepcopy(layer).double()
    n = math.prod(shape)
    with torch.no_grad():
        responses = layer(torch.eye(n, dtype=torch.float64).reshape(n, *shape))
        return (responses - layer(torch.zeros(1, *shape, dtype=torch.float64))).flatten(1).T


def test_sigma_is_the_exact_largest_singular_value_of_the_reshaped_weight():
    torch.manual_seed(0)
    for layer, matrix in [
        (nn.Linear(7, 5), lambda w: w),
        (nn.Conv2d(3, 4, 3), lambda w: w.reshape(4, -1)),
        (nn.ConvTranspose2d(4, 3, 4), lambda w: w.transpose(0, 1).reshape(3, -1)),  # out-channels in dim 1
    ]:
        expected = torch.linalg.matrix_norm(matrix(layer.weight.detach()).double(), 2).item()
        assert spectral_norm(layer) == pytest.approx(expected, rel=1e-6)


def test_sigma_of_an_sn_layer_reads_its_weight_in_eval_mode_without_advancing_u():
    torch.manual_seed(0)
    layer = SpectralNormalization().wrap(nn.Sequential(nn.Linear(16, 32)))[0]
    for _ in range(3):
        layer(torch.randn(4, 16))  # training mode: u advances, as in training
    layer.eval()
    u = layer.parametrizations.weight[0]._u.clone()
    sigma = spectral_norm(layer)
    assert torch.equal(layer.parametrizations.weight[0]._u, u)
    assert sigma == pytest.approx(torch.linalg.matrix_norm(layer.weight.detach().double(), 2).item(), rel=1e-6)
    # W / sigma_hat with sigma_hat = u^T W v <= sigma(W): the normalized weight's exact norm is at least 1.
    assert 1 - 1e-6 <= sigma < 2


@pytest.mark.parametrize("layer, shape", [
    (nn.Conv2d(2, 3, 3, stride=2, padding=1), (2, 7, 7)),
    (nn.Conv2d(3, 2, 5, padding=2), (3, 6, 6)),
    (nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1), (3, 4, 4)),
    (nn.Conv1d(2, 2, 3, padding=1, padding_mode="circular"), (2, 9)),
])
def test_conv_operator_norm_matches_the_explicit_convolution_matrix(layer, shape):
    torch.manual_seed(1)
    layer.reset_parameters()
    expected = torch.linalg.matrix_norm(explicit_matrix(layer, shape), 2).item()
    assert operator_norm(layer, shape, torch.Generator().manual_seed(0)) == pytest.approx(expected, rel=1e-3)


def test_layer_norms_use_each_convs_real_input_size_and_multiply_to_the_bound():
    torch.manual_seed(2)
    critic = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 4, 4, stride=2, padding=1),
                           nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 4 * 4, 1))
    norms = layer_norms(critic, torch.randn(5, 1, 8, 8), torch.Generator().manual_seed(0))
    first = torch.linalg.matrix_norm(explicit_matrix(critic[0], (1, 8, 8)), 2).item()
    second = torch.linalg.matrix_norm(explicit_matrix(critic[2], (4, 8, 8)), 2).item()
    assert norms["diag/opnorm/0_conv2d"] == pytest.approx(first, rel=1e-3)
    assert norms["diag/opnorm/1_conv2d"] == pytest.approx(second, rel=1e-3)
    assert "diag/opnorm/2_linear" not in norms  # a linear layer's operator norm is its sigma
    assert norms["diag/sigma/2_linear"] == pytest.approx(spectral_norm(critic[5]), rel=1e-9)
    product = norms["diag/opnorm/0_conv2d"] * norms["diag/opnorm/1_conv2d"] * norms["diag/sigma/2_linear"]
    assert norms["diag/lipschitz_bound"] == pytest.approx(product, rel=1e-9)


@pytest.mark.slow
def test_diagnostics_do_not_change_training(tmp_path):
    lipbench(tmp_path, "-m", "method=sn,gp", "diagnostics.enabled=true,false", "train.eval_every=1", *FAST, *SMALL)
    runs = {(read_summary(d)["config"]["method"]["name"], read_summary(d)["config"]["diagnostics"]["enabled"]): d
            for d in run_dirs(tmp_path / "runs")}
    assert len(runs) == 4
    training = ("loss/critic", "loss/generator", "wasserstein_estimate", "penalty", "eval/w1")
    for method in ("sn", "gp"):
        on, off = read_metrics(runs[method, True]), read_metrics(runs[method, False])
        assert [[r[k] for k in training] for r in on] == [[r[k] for k in training] for r in off]
        assert not any(k.startswith("diag/") for r in off for k in r)
        for record in on:
            interp = record["diag/grad_norm/interp/hist"]
            assert sum(interp["counts"]) == 256 and len(interp["edges"]) == 31
            # For a ReLU MLP the product of layer norms bounds every input gradient.
            assert 0 < record["diag/grad_norm/interp/max"] <= record["diag/lipschitz_bound"] * (1 + 1e-5)
    for record in read_metrics(runs["sn", True]):
        sigmas = [v for k, v in record.items() if k.startswith("diag/sigma/")]
        assert len(sigmas) == 4 and all(1 - 1e-6 <= s < 2 for s in sigmas)


def test_a_bad_diagnostics_setting_is_one_line_before_training(tmp_path):
    proc = lipbench(tmp_path, "diagnostics.num_samples=0", *FAST, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "diagnostics.num_samples=0" in proc.stderr
    assert not list(tmp_path.rglob("metrics.jsonl"))
