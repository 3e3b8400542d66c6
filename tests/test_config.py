"""Every config group composes and instantiates (the lightning-hydra-template way), and losses behave."""
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

import lipbench.cli  # noqa: F401  (registers the run-dir resolvers the config uses)
from lipbench.losses import GANLoss

CONF = Path(lipbench.cli.CONFIG_DIR)


def options(group: str) -> list[str]:
    """The option names of a config group."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def composed(*overrides: str):
    """The full config for `overrides`, as `lipbench OVERRIDES` would see it."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.mark.parametrize("name", options("method"))
def test_every_method_instantiates(name):
    method = instantiate(composed(f"method={name}").method)
    assert method.name == name


@pytest.mark.parametrize("name", options("loss"))
def test_every_loss_instantiates_and_orders_scores(name):
    loss = instantiate(composed(f"loss={name}").loss)
    assert isinstance(loss, GANLoss) and loss.name == name
    good, bad = torch.full((8,), 3.0), torch.full((8,), -3.0)
    # A critic that scores real high and fake low has a lower loss than the reverse; the generator wants high scores.
    assert loss.critic(good, bad) < loss.critic(bad, good)
    assert loss.generator(good) < loss.generator(bad)


@pytest.mark.parametrize("name", options("optim"))
def test_every_optimizer_instantiates(name):
    cfg = composed(f"optim={name}")
    optimizer = instantiate(cfg.optim)([torch.nn.Parameter(torch.zeros(2))])
    assert isinstance(optimizer, torch.optim.Optimizer)


@pytest.mark.parametrize("distribution", ["8gaussians", "25gaussians", "swissroll", "ring"])
def test_toy_datasets_and_mlp_models_instantiate(distribution):
    cfg = composed(f"dataset.distribution={distribution}")
    dataset = instantiate(cfg.dataset, device="cpu", batch_size=cfg.train.batch_size)
    generator, critic = instantiate(cfg.model.generator), instantiate(cfg.model.critic)
    batch = dataset.sample(32)
    assert batch.shape == (32, 2) and torch.isfinite(batch).all()
    assert generator(torch.randn(32, generator.latent_dim)).shape == (32, 2)
    assert critic(batch).shape == (32,)


@pytest.mark.parametrize("name", options("metric"))
def test_every_metric_config_composes(name):
    cfg = composed(f"metric={name}")
    assert cfg.metric.name == name


def test_every_logger_and_train_config_composes():
    for group in ("logger", "train", "task"):
        for name in options(group):
            assert composed(f"{group}={name}")[group] is not None


def test_mixture_statistics_count_modes():
    from lipbench.data.toy2d import Toy2D
    from lipbench.metrics.toy import mode_statistics

    data = Toy2D("8gaussians")
    stats = mode_statistics(data.sample(2000), data.centers, data.std)
    assert stats["modes_covered"] == 8 and stats["hq_share"] > 0.98
    collapsed = data.centers[0] + data.std * torch.randn(2000, 2)
    assert mode_statistics(collapsed, data.centers, data.std)["modes_covered"] == 1
