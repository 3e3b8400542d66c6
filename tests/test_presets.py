"""The claim presets compose at every scale as their sweeps compose them, a scale also works in a single run, and a
preset sweep runs from the CLI."""
import pytest
from omegaconf import OmegaConf

from tests.conftest import composed, lipbench, read_summary, run_dirs

PRESETS = ["claim_speed", "claim_convergence", "claim_projection", "claim_one_sided"]
SCALES = {"cpu": ("toy2d", "mlp"), "digits": ("digits", "dcgan"), "gpu": ("cifar10", "dcgan"),
          "paper": ("cifar10", "dcgan")}


def compose_sweep_job(preset: str, scale: str):
    """The preset's resolved sweep params, and the config of its first job composed as the basic sweeper does."""
    command_line = [f"+experiment={preset}", f"scale={scale}"]
    params = OmegaConf.to_container(composed(*command_line, hydra=True).hydra.sweeper.params, resolve=True)
    first_job = [f"{key}={str(values).split(',')[0]}" for key, values in params.items()]
    return params, composed(*first_job, *command_line, hydra=True)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_composes(preset, scale):
    dataset, model = SCALES[scale]
    params, job = compose_sweep_job(preset, scale)
    assert set(params) == {"method", "seed"}
    methods, seeds = params["method"].split(","), params["seed"].split(",")
    assert len(methods) >= 2 and seeds == ["0", "1", "2", "3", "4"]  # 5 seeds: 3 a side can never give p < 0.05
    assert job.dataset.name == dataset and job.hydra.runtime.choices.model == model
    assert job.scale.name == scale and job.hydra.runtime.choices.scale == scale and job.method.name == methods[0]
    assert job.train.epochs >= 1 and 1 <= job.train.eval_every <= job.train.epochs
    assert job.logger.wandb.group == f"{preset}-{scale}" and job.logger.wandb.job_type == methods[0]


@pytest.mark.slow
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


def test_a_scale_is_a_config_group_of_a_single_run_too():
    # The form README gives: a preset at the GPU scale, resolved, without a sweep.
    job = composed("+experiment=claim_speed", "scale=gpu")
    assert (job.dataset.name, job.train.batch_size, job.train.epochs) == ("cifar10", 64, 3)
    assert job.logger.wandb.group == "claim_speed-gpu"
    digits = composed("scale=digits")  # a scale alone: its dataset, model and metric, with the default method
    assert (digits.dataset.name, digits.dataset.image_size, digits.metric.name) == ("digits", 16, "fd_classifier")
    assert composed("+experiment=claim_speed").scale.name == "cpu"  # each preset's default scale


@pytest.mark.parametrize("scale", SCALES)
def test_power_iteration_preset_sweeps_the_iterations_of_both_estimates(scale):
    params, job = compose_sweep_job("claim_power_iteration", scale)
    assert params["method"].split(",") == ["sn", "sn_projection"]
    assert params["method.power_iterations"].split(",") == ["1", "2", "5", "10"]
    assert len(params["seed"].split(",")) >= 3
    assert (job.method.name, job.method.power_iterations) == ("sn", 1)
    assert job.dataset.name == SCALES[scale][0] and 1 <= job.train.eval_every < job.train.epochs
    assert job.logger.wandb.group == f"claim_power_iteration-{scale}" and job.logger.wandb.job_type == "sn-r1"
    projection = composed("+experiment=claim_power_iteration", f"scale={scale}", "method=sn_projection",
                          "method.power_iterations=5")
    assert projection.method.power_iterations == 5 and projection.logger.wandb.job_type == "sn_projection-r5"


@pytest.mark.parametrize("preset", PRESETS[1:])  # claim_speed times 3 epochs at every scale
def test_paper_scale_is_the_sngan_cifar10_standard_cnn_setting(preset):
    job = composed(f"+experiment={preset}", "scale=paper")
    alone = composed("scale=paper", "method=sn", "loss=ns")  # one run at the paper's setting, without a preset
    for config in (job, alone):
        assert (config.dataset.name, config.model.name, config.model.critic.width) == ("cifar10", "dcgan", 64)
        assert config.model.generator.latent_dim == 128 and config.train.batch_size == 64
        # Setting A of Miyato et al. 2018, Table 1.
        assert (config.optim.lr, list(config.optim.betas), config.train.n_critic) == (1e-4, [0.5, 0.9], 5)
        assert (config.metric.name, config.metric.fid.num_samples) == ("fid", 10_000)
        # 100k generator updates: an epoch is 50000 // 64 critic steps, a generator step after every 5th.
        updates = config.train.epochs * (50_000 // config.train.batch_size // config.train.n_critic)
        assert 100_000 <= updates < 100_000 + 156
    assert job.train.epochs == alone.train.epochs and job.logger.wandb.group == f"{preset}-paper"


def test_many_modes_preset_sweeps_methods_and_mode_counts_on_a_grid():
    params = OmegaConf.to_container(composed("+experiment=claim_many_modes", hydra=True).hydra.sweeper.params,
                                    resolve=True)
    assert params == {"method": "gp,gp_relu,sn", "dataset.modes": "9,25,64", "seed": "0,1,2,3,4"}
    job = composed("+experiment=claim_many_modes", "method=gp", "dataset.modes=64")
    assert (job.dataset.distribution, job.dataset.modes, job.model.critic.hidden) == ("grid_mixture", 64, 128)
    assert job.train.epochs >= 1 and job.logger.wandb.group == "claim_many_modes-cpu"


def test_many_classes_preset_sweeps_methods_conditioning_and_class_counts():
    params = OmegaConf.to_container(composed("+experiment=claim_many_classes", hydra=True).hydra.sweeper.params,
                                    resolve=True)
    assert params == {"method": "gp,gp_relu,sn", "dataset.modes": "8,64", "task.conditional": "false,true",
                      "seed": "0,1,2,3,4"}
    job = composed("+experiment=claim_many_classes", "method=sn", "dataset.modes=64", "task.conditional=true")
    assert (job.dataset.distribution, job.dataset.modes, job.task.conditional) == ("ring_mixture", 64, True)
    assert job.train.epochs >= 1 and job.logger.wandb.group == "claim_many_classes-cpu"
    assert composed("+experiment=claim_many_modes").task.conditional is False  # the other presets stay unconditional
