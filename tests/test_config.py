"""Every config group composes and instantiates (the lightning-hydra-template way), and losses behave."""
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from lipbench import LipbenchError
from lipbench.config import build
from lipbench.data import Dataset
from lipbench.losses import GANLoss
from tests.conftest import CONFIG_DIR, composed

CONF = Path(CONFIG_DIR)


def options(group: str) -> list[str]:
    """The option names of a config group."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


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
    dataset = build(cfg, "dataset", device="cpu")
    generator, critic = instantiate(cfg.model.generator), instantiate(cfg.model.critic)
    batch = dataset.sample(32)
    assert isinstance(dataset, Dataset) and dataset.steps_per_epoch(cfg.train.batch_size) == 1000
    assert batch.shape == (32, 2) and torch.isfinite(batch).all()
    assert generator(torch.randn(32, generator.latent_dim)).shape == (32, 2)
    assert critic(batch).shape == (32,)


@pytest.mark.parametrize("name", options("metric"))
def test_every_metric_config_composes_with_its_settings_under_its_own_key(name):
    cfg = composed(f"metric={name}")
    assert cfg.metric.name == name
    expected = {"w1", "fid", "fd_classifier"} if name == "auto" else {name}
    assert set(cfg.metric) - {"name"} == expected


@pytest.mark.parametrize("overrides, lr, betas", [
    ([], 1e-3, [0.5, 0.9]),                               # toy2d selects its benchmark's Adam
    (["dataset=digits", "model=dcgan"], 1e-4, [0.5, 0.9]),  # image GANs: SN setting A
    (["task=classify"], 1e-3, [0.9, 0.999]),              # the classifier task's own Adam
    (["optim.lr=5e-4"], 5e-4, [0.5, 0.9]),                # the command line still wins
])
def test_the_dataset_or_task_selects_the_optimizer_setting(overrides, lr, betas):
    optim = composed(*overrides).optim
    assert (optim.lr, list(optim.betas)) == (lr, betas)


@pytest.mark.parametrize("overrides, key", [
    (["+dataset.steps_per_epok=5"], "dataset.steps_per_epok"),
    (["dataset=digits", "model=dcgan", "+dataset.image_sise=16"], "dataset.image_sise"),
])
def test_a_misspelt_dataset_key_is_refused_in_one_line(overrides, key):
    with pytest.raises(LipbenchError, match=key.replace(".", r"\.")) as error:
        build(composed(*overrides), "dataset", device="cpu")  # refused before anything is read
    assert "\n" not in str(error.value) and "fix its spelling" in str(error.value)


def test_every_logger_and_train_config_composes():
    for group in ("logger", "train", "task"):
        for name in options(group):
            assert composed(f"{group}={name}")[group] is not None


def test_mixture_statistics_count_modes():
    from lipbench.data.toy2d import Toy2D
    from lipbench.metrics.toy import mode_statistics

    data = Toy2D(distribution="8gaussians")
    stats = mode_statistics(data.sample(2000), data.centers, data.std)
    assert stats["modes_covered"] == 8 and stats["hq_share"] > 0.98
    collapsed = data.centers[0] + data.std * torch.randn(2000, 2)
    assert mode_statistics(collapsed, data.centers, data.std)["modes_covered"] == 1
