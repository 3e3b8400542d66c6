"""The claim presets compose at both scales as their sweeps compose them, and a preset sweep runs from the CLI."""
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lipbench.cli import CONFIG_DIR
from tests.conftest import lipbench, read_summary, run_dirs

PRESETS = ["claim_speed", "claim_convergence", "claim_projection", "claim_one_sided"]
SCALES = {"cpu": ("toy2d", "mlp"), "digits": ("digits", "dcgan"), "gpu": ("cifar10", "dcgan")}
SCALE_KEY = "experiment/scale@_global_"


def compose_sweep_job(preset: str, scale: str):
    """The preset's resolved sweep params, and the config of its first job composed as the basic sweeper does."""
    command_line = [f"+experiment={preset}", f"experiment.scale={scale}"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        primary = compose("config", command_line, return_hydra_config=True)
        params = OmegaConf.to_container(primary.hydra.sweeper.params, resolve=True)
        first_job = [f"{key}={str(values).split(',')[0]}" for key, values in params.items()]
        job = compose("config", first_job + command_line, return_hydra_config=True)
    return params, job


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_composes(preset, scale):
    dataset, model = SCALES[scale]
    params, job = compose_sweep_job(preset, scale)
    assert params[SCALE_KEY] == scale  # experiment.scale=... became the config group override of every job
    methods, seeds = params["method"].split(","), params["seed"].split(",")
    assert len(methods) >= 2 and len(seeds) >= 3
    assert job.dataset.name == dataset and job.hydra.runtime.choices.model == model
    assert job.experiment.scale == scale and job.method.name == methods[0]
    assert job.train.epochs >= 1 and 1 <= job.train.eval_every <= job.train.epochs
    assert job.logger.wandb.group == f"{preset}-{scale}" and job.logger.wandb.job_type == methods[0]


def test_preset_sweep_runs_every_method_of_the_preset(tmp_path):
    lipbench(tmp_path, "-m", "+experiment=claim_projection", "seed=0", "train.epochs=1", "dataset.steps_per_epoch=5",
             "metric.w1.num_samples=100", "logger.wandb.mode=disabled")
    summaries = [read_summary(d) for d in run_dirs(tmp_path / "runs")]
    assert sorted(s["config"]["method"]["name"] for s in summaries) == ["sn", "sn_projection"]
    for summary in summaries:
        assert summary["status"] == "complete"
        config = summary["config"]
        assert config["model"]["critic"]["hidden"] == 128 and config["dataset"]["steps_per_epoch"] == 5
        assert config["logger"]["wandb"]["group"] == "claim_projection-cpu"
