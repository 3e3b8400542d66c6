"""train.lr_decay: the learning rates a run's optimizers use, step by step, and their survival across a resume."""
import pytest
import torch

from lipbench.classify import ClassifyTask
from lipbench.gan import GANTraining
from lipbench.training import build_method
from tests.conftest import composed

TINY = ["model.critic.hidden=8", "model.generator.hidden=8", "train.batch_size=4", "dataset.steps_per_epoch=10",
        "train.n_critic=5", "train.epochs=4", "optim.lr=1e-3"]


def trained(cfg, epochs: int) -> GANTraining:
    """A GANTraining after `epochs` epochs."""
    training = GANTraining(cfg, build_method(cfg), torch.device("cpu"))
    for _ in range(epochs):
        list(training.epoch())
    return training


@pytest.mark.parametrize("epochs", [0, 1, 3, 4])
def test_linear_decay_reaches_zero_at_the_last_step_of_both_networks(epochs):
    training = trained(composed(*TINY, "train.lr_decay=linear"), epochs)
    # 10 critic steps and 2 generator steps an epoch, of 40 and 8 in the run.
    assert training.opt_d.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - epochs / 4), abs=1e-12)
    assert training.opt_g.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - epochs / 4), abs=1e-12)


def test_no_decay_keeps_the_learning_rate():
    training = trained(composed(*TINY, "train.lr_decay=none"), 4)
    assert training.opt_d.param_groups[0]["lr"] == training.opt_g.param_groups[0]["lr"] == 1e-3


def test_the_schedules_are_checkpointed_so_a_resumed_run_continues_the_decay():
    cfg = composed(*TINY, "train.lr_decay=linear")
    state = {name: obj.state_dict() for name, obj in trained(cfg, 2).stateful.items()}
    resumed = GANTraining(cfg, build_method(cfg), torch.device("cpu"))
    for name, obj in resumed.stateful.items():
        obj.load_state_dict(state[name])
    list(resumed.epoch())
    assert resumed.opt_d.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - 3 / 4), abs=1e-12)


def test_a_classifier_decays_over_its_epochs_of_passes(shared):
    cfg = composed("task=classify", "train.epochs=2", "train.batch_size=128", "train.subset=256",
                   "train.lr_decay=linear")
    task = ClassifyTask(cfg, build_method(cfg), torch.device("cpu"))
    list(task.epoch())
    assert task.optimizer.param_groups[0]["lr"] == pytest.approx(cfg.optim.lr / 2, abs=1e-12)
