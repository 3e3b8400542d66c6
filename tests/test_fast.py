"""The fast mode (train.optimizer_impl, train.compile; train.cuda_graph in tests/test_cuda.py) changes no result
beyond floating-point noise: a few training steps with and without it give the same losses and weights."""
import copy
import itertools
from pathlib import Path

import pytest
import torch

from lipbench.config import build
from lipbench.fast import RECOMPILE_LIMIT
from lipbench.gan import GANTraining
from lipbench.layers import constrained_layers
from lipbench.naming import CONFIG_DIR
from lipbench.training import build_method
from tests.conftest import composed

METHODS = sorted(p.stem for p in Path(CONFIG_DIR, "method").glob("*.yaml"))
EAGER = ["train.optimizer_impl=for_loop", "train.compile=false", "train.cuda_graph=false"]
TOY = ["model.critic.hidden=32", "model.generator.hidden=32", "train.batch_size=32", "train.n_critic=2"]
# A narrow DCGAN on 16x16 digits: convolutions, where sn_conv differs from sn.
IMAGES = ["scale=digits", "model.critic.width=8", "model.generator.width=8", "train.batch_size=16", "train.n_critic=2"]
STEPS = 6
# The first step agrees to float precision. After it, Adam moves each weight by about lr * sign(its gradient): a
# gradient that is ~0 (its sign set by summation order) moves a weight by up to 2 lr one way or the other, and the
# losses of the next steps drift by ~1e-4 (measured: compiled vs eager on the toy MLPs, up to 7e-4 after 6 steps;
# another seed moves them by ~1e-1).
FIRST_STEP_TOLERANCE = 1e-5
LOSS_TOLERANCE = 5e-3


def train(overrides: list[str], device: str = "cpu") -> tuple[list[dict], dict]:
    """The scalars of STEPS critic steps (and the generator steps they imply) and the final parameters of both nets
    (not buffers: a power iteration's vector swings where the top two singular values are close, as an estimate may)."""
    cfg = composed(*overrides)
    torch.manual_seed(0)
    training = GANTraining(cfg, build_method(cfg), torch.device(device))
    scalars = [{key: value.item() for key, value in step.items()} for step in itertools.islice(training.epoch(), STEPS)]
    weights = {f"{name}.{key}": value.detach().cpu().clone()
               for name in ("critic", "generator") for key, value in training.stateful[name].named_parameters()}
    return scalars, weights


def assert_same_training(eager: tuple[list[dict], dict], fast: tuple[list[dict], dict], lr: float,
                         median: float = 0.01) -> None:
    """The same first step, losses within LOSS_TOLERANCE after it, and weights within 2 lr a step, half of them within
    `median` lr."""
    (eager_scalars, eager_weights), (fast_scalars, fast_weights) = eager, fast
    assert fast_scalars[0] == pytest.approx(eager_scalars[0], rel=FIRST_STEP_TOLERANCE, abs=FIRST_STEP_TOLERANCE)
    for step_eager, step_fast in zip(eager_scalars, fast_scalars, strict=True):
        assert step_fast == pytest.approx(step_eager, rel=LOSS_TOLERANCE, abs=LOSS_TOLERANCE)
    assert fast_weights.keys() == eager_weights.keys()
    differences = torch.cat([(fast_weights[k].float() - eager_weights[k].float()).abs().flatten()
                             for k in eager_weights])
    assert differences.max() <= 2 * lr * STEPS
    assert differences.median() <= median * lr  # noise in a few weights, not a different training run


@pytest.mark.parametrize("impl", ["foreach", "fused"])
@pytest.mark.parametrize("method", METHODS)
def test_multi_tensor_optimizers_train_as_the_for_loop_one(method, impl, one_thread):
    overrides = [*TOY, f"method={method}"]
    eager = train([*overrides, *EAGER])
    fast = train([*overrides, *EAGER, f"train.optimizer_impl={impl}"])
    assert_same_training(eager, fast, lr=composed(*overrides).optim.lr)


def test_the_defaults_on_cpu_are_foreach_adam_eager_models_and_no_graphs():
    cfg = composed()
    training = GANTraining(cfg, build_method(cfg), torch.device("cpu"))
    assert (training.fast.optimizer_impl, training.fast.compile, training.fast.cuda_graph) == ("foreach", False, False)
    assert training.opt_d.defaults["foreach"] is True and not training.opt_d.defaults.get("fused")


def test_compiling_keeps_room_for_every_model_of_a_multirun():
    """Dynamo's default of 8 compiled versions of one function, after which it runs eagerly without a word, is
    raised when models are compiled (every model's forward is one base-class method)."""
    cfg = composed(*TOY, "train.compile=true")
    with torch._dynamo.config.patch(recompile_limit=8):  # restored on exit, for the tests after this one
        GANTraining(cfg, build_method(cfg), torch.device("cpu"))
        assert torch._dynamo.config.recompile_limit == RECOMPILE_LIMIT >= 64


@pytest.mark.slow
@pytest.mark.parametrize("method, compile_penalty", [("none", False), ("gp", False), ("gp", True), ("sn", False),
                                                     ("spectral_reg", False)])
def test_compiled_models_train_as_eager_ones(method, compile_penalty, one_thread):
    """gp: its penalty eager, or compiled as its own graph with the double backward; sn: a parametrization whose u
    advances in place during the compiled forward."""
    overrides = [*TOY, f"method={method}", *EAGER]
    eager = train(overrides)
    fast = train([*overrides, "train.compile=true", f"train.compile_penalty={str(compile_penalty).lower()}"])
    assert_same_training(eager, fast, lr=composed(*overrides).optim.lr)


def test_the_gradient_penalty_compiles_whole_with_its_double_backward(one_thread):
    """torch.func.grad lets Dynamo trace the input gradient: no graph break, so no eager critic forward in the step."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    cfg = composed(*TOY, "method=gp", *EAGER, "train.compile=true", "train.compile_penalty=true")
    training = GANTraining(cfg, build_method(cfg), torch.device("cpu"))
    assert training.fast.describe().endswith("compiled models and penalty, steps launched one kernel at a time")
    next(training.epoch())
    assert not torch._dynamo.utils.counters["graph_break"]
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 3  # critic, generator, penalty


@pytest.mark.slow
def test_a_compiled_sn_conv_critic_scores_as_the_eager_one(one_thread):
    """sn_conv's training is compared forward by forward: within a cluster of near-equal singular values its Ritz
    vectors are defined only up to a rotation, so any float noise (a kernel, a thread count) picks another basis and
    a few steps drift apart, eager or compiled alike; its scores and sigmas do not depend on that basis."""
    cfg = composed(*IMAGES, "method=sn_conv")
    method = build_method(cfg)
    torch.manual_seed(0)
    eager = method.wrap(build(cfg, "model.critic"))
    images = torch.rand(8, 1, 16, 16) * 2 - 1
    eager(images)  # sizes and warms up the vectors, which the copy then shares
    twin = copy.deepcopy(eager)
    compiled = torch.compile(twin, dynamic=False)
    for _ in range(3):  # each training-mode forward advances the vectors
        torch.testing.assert_close(compiled(images), eager(images), rtol=1e-5, atol=1e-6)
    sigmas = [method.estimate(layer).value for layer in constrained_layers(twin)]
    assert sigmas == pytest.approx([method.estimate(layer).value for layer in constrained_layers(eager)], rel=1e-5)
