"""Every dataset runs with the model it chooses, every pair meant to work trains, and a pair that cannot is refused."""
import itertools

import pytest
import torch

from lipbench import LipbenchError
from lipbench.gan import GANTraining
from lipbench.training import build_method
from tests.conftest import composed, lipbench, run_dirs
from tests.image_files import write_dataset

# dataset -> the model it chooses; every other (dataset, model) pair that must train.
DEFAULT_MODEL = {"toy2d": "mlp", "digits": "dcgan", "mnist": "dcgan", "cifar10": "dcgan", "celeba": "dcgan",
                 "folder": "dcgan"}
MORE_PAIRS = [("mnist", "resnet", []), ("cifar10", "resnet", []), ("celeba", "resnet", []),
              ("folder", "resnet", ["dataset.image_size=32"]), ("digits", "dcgan", ["dataset.image_size=16"])]
CASES = [(name, model, []) for name, model in DEFAULT_MODEL.items()] + MORE_PAIRS


@pytest.mark.parametrize("name, model, extra", CASES, ids=[f"{n}-{m}-{len(e)}" for n, m, e in CASES])
def test_dataset_and_model_build_and_take_a_critic_and_a_generator_step(name, model, extra, tmp_path, shared):
    explicit = [] if DEFAULT_MODEL[name] == model and not extra else [f"model={model}"]
    narrow = ["model.critic.hidden=16"] if model == "mlp" else ["model.generator.width=8", "model.critic.width=8"]
    cfg = composed(f"dataset={name}", *write_dataset(name, tmp_path, shared), *explicit, *extra, *narrow,
                   "train.batch_size=2", "train.n_critic=1")
    assert cfg.model.name == model  # the dataset's own choice, or the explicit one
    torch.manual_seed(0)
    training = GANTraining(cfg, build_method(cfg), torch.device("cpu"))
    (step,) = itertools.islice(training.epoch(), 1)
    assert set(step) == {"loss/critic", "wasserstein_estimate", "penalty", "loss/generator"}
    assert all(torch.isfinite(value) for value in step.values())


@pytest.mark.parametrize("overrides, message", [
    (["dataset=digits", "model=mlp"], "model=mlp cannot serve dataset=digits (images of dataset.image_size=32): "
                                      "use model=dcgan or model=resnet"),
    (["model=dcgan"], "model=dcgan cannot serve dataset=toy2d (2-D points): use model=mlp"),
    (["dataset=digits", "dataset.image_size=16", "model=resnet"], "model=resnet cannot serve dataset=digits "
                                                                  "(images of dataset.image_size=16): use model=dcgan"),
    (["model=classifier_cnn"], "model=classifier_cnn has no generator/critic pair for task=gan: use model=mlp"),
])
def test_a_model_that_cannot_serve_the_dataset_is_refused_naming_both_keys(overrides, message):
    cfg = composed(*overrides)
    with pytest.raises(LipbenchError) as error:
        GANTraining(cfg, build_method(cfg), torch.device("cpu"))
    assert str(error.value) == message


def test_the_refusal_reaches_the_user_as_one_line_and_exit_2(tmp_path):
    proc = lipbench(tmp_path, "dataset=celeba", "model=mlp", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "lipbench: error: model=mlp cannot serve dataset=celeba (images of dataset.image_size=64): "
        "use model=dcgan or model=resnet"]
    assert not [d for d in run_dirs(tmp_path) if (d / "metrics.jsonl").exists()]
