"""fro_clip and fro_penalty against exact Frobenius norms: the projection, the penalty's value and its gradient."""
import pytest
import torch
from torch import nn

from lipbench import LipbenchError
from lipbench.layers import constrained_layers
from lipbench.methods import FrobeniusClipping, FrobeniusPenalty
from tests.test_methods import train_critic


def two_layer_net(big: float, small: float) -> nn.Module:
    """A conv with Frobenius norm `big` and a linear layer with Frobenius norm `small`, both with biases."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 2 * 2, 4))
    with torch.no_grad():
        for layer, norm in ((net[0], big), (net[2], small)):
            layer.weight.mul_(norm / layer.weight.norm())
    return net


def test_fro_clip_scales_only_the_weights_above_c_onto_the_sphere():
    net = two_layer_net(big=3.0, small=0.5)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    FrobeniusClipping(c=1.0).after_step(net)
    assert net[0].weight.norm().item() == pytest.approx(1.0, rel=1e-6)
    assert torch.allclose(net[0].weight, before["0.weight"] / 3.0, rtol=1e-5, atol=1e-7)  # direction kept
    assert torch.equal(net[2].weight, before["2.weight"])  # inside the ball: untouched
    assert torch.equal(net[0].bias, before["0.bias"]) and torch.equal(net[2].bias, before["2.bias"])


def test_fro_clip_bounds_every_layer_in_training():
    critic = train_critic(FrobeniusClipping(c=0.7))
    norms = [layer.weight.norm().item() for layer in constrained_layers(critic)]
    assert max(norms) == pytest.approx(0.7, rel=1e-5)  # the bound is active
    assert all(n <= 0.7 * (1 + 1e-6) for n in norms)
    # sigma <= ||W||_F: every layer's sigma is bounded too
    assert all(torch.linalg.matrix_norm(layer.weight.detach(), 2) <= 0.7 * (1 + 1e-6)
               for layer in constrained_layers(critic))


def test_fro_penalty_value_and_gradient_are_the_formula():
    net = two_layer_net(big=3.0, small=0.5)
    penalty = FrobeniusPenalty(weight=10.0, c=1.0).penalty(net, torch.zeros(2), torch.zeros(2))
    assert penalty.item() == pytest.approx(10.0 * (3.0 - 1.0) ** 2, rel=1e-5)  # the small layer costs nothing
    penalty.backward()
    weight = net[0].weight.detach()
    # d/dW of lambda (||W|| - c)^2 = 2 lambda (||W|| - c) W / ||W||
    assert torch.allclose(net[0].weight.grad, 2 * 10.0 * (3.0 - 1.0) * weight / 3.0, rtol=1e-5, atol=1e-6)
    assert torch.count_nonzero(net[2].weight.grad) == 0
    assert net[0].bias.grad is None and net[2].bias.grad is None


def test_fro_penalty_pulls_the_norms_toward_c_in_training():
    free, penalized = (train_critic(method, steps=60) for method in
                       (FrobeniusPenalty(weight=0.0), FrobeniusPenalty(weight=100.0, c=0.5)))
    excess = [max(layer.weight.norm().item() - 0.5, 0) for layer in constrained_layers(penalized)]
    free_excess = [max(layer.weight.norm().item() - 0.5, 0) for layer in constrained_layers(free)]
    assert max(free_excess) > 1.0 and max(excess) < 0.1 * max(free_excess)


@pytest.mark.parametrize("build, key", [
    (lambda: FrobeniusClipping(c=0), "method.c"),
    (lambda: FrobeniusPenalty(c=-1), "method.c"),
    (lambda: FrobeniusPenalty(weight=-1), "method.weight"),
])
def test_invalid_values_name_the_key(build, key):
    with pytest.raises(LipbenchError, match=key) as info:
        build()
    assert "\n" not in str(info.value)
