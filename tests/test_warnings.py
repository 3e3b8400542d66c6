"""Setups that run but cannot mean what the user thinks are said, as one warning line each."""
import logging

import pytest
import torch
from torch import nn

from lipbench import LipbenchError
from lipbench.gan import warn_about_setup
from lipbench.metrics import build_metric
from lipbench.models.mlp import MLPCritic
from tests.image_standin import DigitsImages


@pytest.fixture
def warnings(caplog):
    """The warning lines lipbench logs during the test."""
    caplog.set_level(logging.INFO, logger="lipbench")
    return lambda: [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_fewer_critic_steps_per_epoch_than_n_critic_is_a_generator_that_never_moves(warnings):
    warn_about_setup(MLPCritic(hidden=8), steps_per_epoch=3, n_critic=5)
    (message,) = warnings()
    assert "an epoch has 3 critic steps but train.n_critic=5: the generator never takes a step" in message
    warn_about_setup(MLPCritic(hidden=8), steps_per_epoch=5, n_critic=5)
    assert len(warnings()) == 1


def test_a_critic_with_batchnorm_is_named(warnings):
    critic = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    warn_about_setup(critic, steps_per_epoch=10, n_critic=5)
    (message,) = warnings()
    assert "the critic has BatchNorm layers" in message and "critic_norm=layer" in message


def test_a_frechet_distance_on_fewer_samples_than_features_and_a_weak_classifier_are_named(tmp_path, warnings):
    dataset = DigitsImages(tmp_path)
    settings = {"num_samples": 100, "batch_size": 50, "train_steps": 3}  # 3 steps: a classifier near chance
    evaluator = build_metric({"name": "fd_classifier", "fd_classifier": settings}, dataset, "cpu", seed=0)
    accuracy = evaluator.protocol["fd_classifier/classifier_test_accuracy"]
    weak, few = warnings()
    assert f"reaches only {accuracy:.0%} test accuracy" in weak and "metric.fd_classifier.train_steps" in weak
    assert "fd_classifier on 100 images, fewer than its 128 feature dimensions" in few


def test_auto_choosing_fid_on_a_cpu_says_how_long_and_how_to_make_it_cheaper(tmp_path, warnings):
    unlabelled = DigitsImages(tmp_path, labelled=False)
    with pytest.raises(LipbenchError):  # no Inception weights here: the warning comes first
        build_metric({"name": "auto", "fid": {"weights": str(tmp_path / "none.pth"), "num_samples": 10000}},
                     unlabelled, torch.device("cpu"), seed=0)
    (message,) = warnings()
    assert "metric=auto chose FID on a CPU" in message and "~14 min" in message
    assert "metric.fid.num_samples" in message and "train.eval_every" in message
