"""The classifier task's pieces: weight penalties, the input-gradient penalty, attacks, models and diagnostics."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lipbench import LipbenchError
from lipbench.attacks import MODEL_UNITS_PER_PIXEL, fgsm_l2, pgd_l2
from lipbench.data.images import ImageDataset, to_inputs
from lipbench.diagnostics import Diagnostics
from lipbench.layers import constrained_layers
from lipbench.methods import GradientPenalty, L2Penalty, SpectralPenalty
from lipbench.methods.weight_penalty import U_BUFFER
from lipbench.models.classifier import CNNClassifier, MLPClassifier, logit_margin
from lipbench.training import build_method
from tests.conftest import composed


def exact_sigma(layer: nn.Module) -> float:
    """Largest singular value of the layer's weight as an (out, -1) matrix, by SVD."""
    return torch.linalg.matrix_norm(layer.weight.detach().flatten(1).double(), 2).item()


def with_spectrum(layer: nn.Module, top: float) -> nn.Module:
    """Give the layer a weight with singular values (top, top/3, top/9, ...): a clear gap for power iteration."""
    matrix = layer.weight.detach().flatten(1)
    u, _, vh = torch.linalg.svd(torch.randn_like(matrix), full_matrices=False)
    spectrum = top / 3.0 ** torch.arange(len(vh), dtype=matrix.dtype)
    layer.weight.data.copy_((u @ torch.diag(spectrum) @ vh).view_as(layer.weight))
    nn.init.normal_(layer.bias)  # nonzero biases, which no weight penalty may count
    return layer


def two_layer_model() -> nn.Module:
    """A conv and a linear layer with known top singular values 2 and 3."""
    torch.manual_seed(0)
    return nn.Sequential(with_spectrum(nn.Conv2d(2, 4, 3), 2.0), nn.Flatten(), with_spectrum(nn.Linear(16, 6), 3.0))


def test_l2_penalty_is_lambda_times_squared_frobenius_norms_of_the_weights():
    model, x = two_layer_model(), torch.randn(5, 2, 4, 4)
    penalty = L2Penalty(weight=0.3).penalty(model, x, torch.randn_like(x))
    expected = 0.3 * sum(layer.weight.pow(2).sum().item() for layer in constrained_layers(model))
    assert penalty.item() == pytest.approx(expected, rel=1e-6)
    penalty.backward()
    for layer in constrained_layers(model):
        assert torch.allclose(layer.weight.grad, 0.6 * layer.weight.detach(), atol=1e-6)
        assert layer.bias.grad is None


def test_spectral_reg_penalty_is_lambda_times_squared_sigmas_with_the_gradient_through_sigma():
    model, x = two_layer_model(), torch.randn(5, 2, 4, 4)
    method = SpectralPenalty(weight=0.5, power_iterations=30)
    method.wrap(model)
    penalty = method.penalty(model, x, x)
    assert penalty.item() == pytest.approx(0.5 * (2.0**2 + 3.0**2), rel=1e-4)
    penalty.backward()
    for layer in constrained_layers(model):
        # d(lambda sigma^2)/dW = 2 lambda sigma u1 v1^T, from the exact SVD.
        u, s, vh = torch.linalg.svd(layer.weight.detach().flatten(1))
        expected = 2 * 0.5 * s[0] * torch.outer(u[:, 0], vh[0])
        assert torch.allclose(layer.weight.grad.flatten(1), expected, atol=1e-4)
        assert layer.weight.grad.abs().max() > 0.1


def test_spectral_reg_keeps_its_power_iteration_vectors_between_steps():
    model = two_layer_model()
    method = SpectralPenalty(weight=1.0, power_iterations=1)
    method.wrap(model)
    for layer in constrained_layers(model):  # forget the warm-up: start from a poor u
        getattr(layer, U_BUFFER).copy_(F.normalize(torch.ones_like(getattr(layer, U_BUFFER)), dim=0))
    x = torch.randn(1, 2, 4, 4)
    first = method.penalty(model, x, x).item()
    for _ in range(40):
        last = method.penalty(model, x, x).item()
    assert first < 0.95 * 13.0  # one iteration from a poor start underestimates sigma...
    assert last == pytest.approx(13.0, rel=1e-4)  # ...and one iteration per step converges as u persists
    assert U_BUFFER in "".join(model.state_dict())  # so checkpoints carry it


def test_gp_with_target_zero_is_lambda_times_squared_input_gradient():
    torch.manual_seed(0)
    w = torch.randn(6)
    critic = nn.Linear(6, 1, bias=False)
    critic.weight.data.copy_(w[None])
    x = torch.randn(8, 6)
    scores = lambda inputs: critic(inputs).squeeze(1)  # noqa: E731
    assert GradientPenalty(weight=2, target=0).penalty(scores, x, x).item() == pytest.approx(2 * w.norm().item() ** 2,
                                                                                          rel=1e-5)
    assert GradientPenalty(weight=2).penalty(scores, x, x).item() == pytest.approx(2 * (w.norm().item() - 1) ** 2,
                                                                                   rel=1e-5)


def test_the_task_sets_the_gradient_penalty_target():
    assert build_method(composed("method=gp")).target == 1.0
    assert build_method(composed("task=classify", "method=gp")).target == 0.0
    assert build_method(composed("task=classify", "method=gp", "method.target=0.5")).target == 0.5


def test_classify_defaults_to_a_cnn_on_digits_without_a_method():
    cfg = composed("task=classify")
    assert (cfg.dataset.name, cfg.method.name, cfg.model.classifier.width) == ("digits", "none", 16)
    assert "loss" not in cfg and "metric" not in cfg


def test_critic_only_method_refuses_the_classifier_task_in_one_line():
    for method in ("none", "l2", "spectral_reg", "sn", "sn_projection", "clip", "gp"):
        assert build_method(composed("task=classify", f"method={method}")).name == method
    with pytest.raises(LipbenchError) as error:
        build_method(composed("task=classify", "method=gp_relu"))
    message = str(error.value)
    assert "method=gp_relu" in message and "task=classify" in message and "\n" not in message


@pytest.mark.parametrize("build, key", [
    (lambda: L2Penalty(weight=-1), "method.weight"),
    (lambda: SpectralPenalty(weight=-0.1), "method.weight"),
    (lambda: SpectralPenalty(power_iterations=0), "method.power_iterations"),
    (lambda: GradientPenalty(target=-1), "method.target"),
])
def test_invalid_values_name_the_key(build, key):
    with pytest.raises(LipbenchError, match=key) as info:
        build()
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An MLP trained for 300 steps on 16x16 digits, in eval mode, and 200 test points in model units."""
    torch.manual_seed(0)
    data = ImageDataset("digits", channels=1, image_size=16, root=str(tmp_path_factory.mktemp("data")))
    model = MLPClassifier(1, 16, 10, hidden=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(300):
        index = torch.randint(len(data.images), (64,))
        loss = F.cross_entropy(model(to_inputs(data.images[index])), data.labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    images, labels = data.split("test")
    return model.eval(), to_inputs(images[:200]), labels[:200]


def accuracy(model, x, y) -> float:
    """Share of correct predictions."""
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()


@pytest.mark.parametrize("attack", [fgsm_l2, lambda m, x, y, eps: pgd_l2(m, x, y, eps, steps=10)])
def test_attacks_stay_in_the_ball_and_the_pixel_range_and_lower_accuracy(trained, attack):
    model, x, y = trained
    clean = accuracy(model, x, y)
    assert clean > 0.85
    eps = 1.0  # pixel units: radius 2.0 for the model's [-1, 1] inputs
    x_adv = attack(model, x, y, eps)
    distance = (x_adv - x).flatten(1).norm(dim=1)
    assert distance.max() <= MODEL_UNITS_PER_PIXEL * eps * (1 + 1e-5)
    assert distance.max() > 0.75 * MODEL_UNITS_PER_PIXEL * eps  # the budget is used, in the right units
    assert x_adv.min() >= -1 and x_adv.max() <= 1
    assert accuracy(model, x_adv, y) < clean - 0.2
    assert torch.equal(attack(model, x, y, 0.0), x)


def test_pgd_is_at_least_as_strong_as_fgsm(trained):
    model, x, y = trained
    assert accuracy(model, pgd_l2(model, x, y, 0.5, steps=10), y) <= accuracy(model, fgsm_l2(model, x, y, 0.5), y)


def test_logit_margin_is_true_minus_best_other():
    logits = torch.tensor([[2.0, 5.0, 1.0], [0.0, -1.0, 3.0]])
    assert logit_margin(logits, torch.tensor([1, 0])).tolist() == [3.0, -3.0]


def test_diagnostics_report_exact_sigmas_and_a_bound_on_the_margin_gradient(trained):
    model, x, y = trained
    values = Diagnostics(seed=0).for_classifier(model, x, y, epoch=1)
    layers = constrained_layers(model)
    sigmas = [values[f"diag/sigma/{i}_linear"] for i in range(len(layers))]
    assert sigmas == pytest.approx([exact_sigma(layer) for layer in layers], rel=1e-6)
    assert values["diag/lipschitz_bound"] == pytest.approx(torch.tensor(sigmas).prod().item(), rel=1e-5)
    # A margin is the difference of two logits, so its slope is at most sqrt(2) times the network's.
    assert 0 < values["diag/margin_grad_mean"] <= values["diag/margin_grad_max"]
    assert values["diag/margin_grad_max"] <= 2**0.5 * values["diag/lipschitz_bound"]


@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("build", [MLPClassifier, CNNClassifier,
                                   lambda *shape: CNNClassifier(*shape, stage_depth=2, width=32, hidden=512)])
def test_classifiers_give_one_logit_per_class(size, build):
    assert build(3, size, 10)(torch.randn(4, 3, size, size)).shape == (4, 10)


def test_cnn_refuses_sizes_its_stages_cannot_halve():
    with pytest.raises(LipbenchError, match="model.classifier.stages"):
        CNNClassifier(1, 30, 10)


def test_generalization_preset_sweeps_each_method_at_its_own_strengths():
    preset = composed("+experiment=claim_generalization", hydra=True)
    arms = preset.hydra.sweeper.params.method.split(",")
    assert arms[:2] == ["none", "sn"] and preset.hydra.sweeper.params.seed == "0,1,2,3,4"
    methods = [composed("+experiment=claim_generalization", f"method={arm}") for arm in arms]
    assert {(cfg.task.name, cfg.dataset.name, cfg.train.subset) for cfg in methods} == {("classify", "mnist", 4000)}
    strengths = [(cfg.method.name, cfg.method.get("weight")) for cfg in methods]
    assert strengths == [("none", None), ("sn", None), ("l2", 1e-4), ("l2", 1e-3), ("l2", 1e-2),
                         ("spectral_reg", 1e-3), ("spectral_reg", 1e-2), ("spectral_reg", 1e-1)]
    assert all(build_method(cfg).name == name for cfg, (name, _) in zip(methods, strengths))
