"""The config: where it lives, objects built from its nodes with every key checked, and choices that must fit."""
import inspect
from pathlib import Path

from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from lipbench import LipbenchError, is_int, is_number, require
from lipbench.fast import OPTIMIZER_IMPLS
from lipbench.naming import CONFIG_DIR


def build(cfg: DictConfig, key: str, **kwargs):
    """instantiate(cfg.<key>, **kwargs), refusing in one line a setting the target does not take (a typo)."""
    node = OmegaConf.select(cfg, key)
    target = get_object(node._target_)
    params = inspect.signature(target).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = [name for name in node if not name.startswith("_") and name not in params]
        if unknown:
            known = [name for name in params if name not in kwargs and name != "self"]
            raise LipbenchError(f"{key}.{unknown[0]} is not a setting of {key} ({node._target_} takes "
                                f"{', '.join(known)}): fix its spelling or remove it")
    return instantiate(node, **kwargs)


def serves(critic_target: str, image_size: int | None) -> bool:
    """Whether a critic class takes this data: its class attribute `image_sizes` lists the image sizes it has a
    variant for, None meaning it takes flat vectors (2-D points)."""
    sizes = getattr(get_object(critic_target), "image_sizes", None)
    return image_size is None if sizes is None else image_size in sizes


def gan_models_for(image_size: int | None) -> list[str]:
    """The GAN models in conf/model/ (those with a critic) that serve this data."""
    models = []
    for path in sorted(Path(CONFIG_DIR, "model").glob("*.yaml")):
        critic = OmegaConf.load(path).get("critic")
        if critic is not None and serves(critic._target_, image_size):
            models.append(path.stem)
    return models


def require_model_fits(cfg: DictConfig) -> None:
    """Refuse in one line, before anything is built, a GAN model that cannot serve the dataset; name those that can."""
    image_size = cfg.dataset.get("image_size")  # image datasets have one; toy2d's points do not
    fits = " or ".join(f"model={name}" for name in gan_models_for(image_size))
    if "critic" not in cfg.model:
        raise LipbenchError(f"model={cfg.model.name} has no generator/critic pair for task=gan: use {fits}")
    if not serves(cfg.model.critic._target_, image_size):
        data = f"images of dataset.image_size={image_size}" if image_size is not None else "2-D points"
        raise LipbenchError(f"model={cfg.model.name} cannot serve dataset={cfg.dataset.name} ({data}): "
                            f"use {fits or 'another dataset.image_size'}")


def validate(cfg: DictConfig) -> None:
    """Refuse, in one line naming the key, every value the run could not mean, before anything is built or read."""
    require(is_int(cfg.seed) and cfg.seed >= 0, "seed", cfg.seed, "an integer >= 0")
    for key in ("epochs", "batch_size", "eval_every") + (("n_critic",) if "n_critic" in cfg.train else ()):
        require(is_int(cfg.train[key]) and cfg.train[key] >= 1, f"train.{key}", cfg.train[key], "an integer >= 1")
    for key in ("resume", "deterministic", "compile_penalty"):
        require(isinstance(cfg.train[key], bool), f"train.{key}", cfg.train[key], "true or false")
    require(cfg.train.lr_decay in ("none", "linear"), "train.lr_decay", cfg.train.lr_decay, "none or linear")
    if "amp" in cfg.train:
        require(cfg.train.amp in ("none", "bf16"), "train.amp", cfg.train.amp, "none or bf16")
        require(isinstance(cfg.train.channels_last, bool), "train.channels_last", cfg.train.channels_last,
                "true or false")
    require(cfg.train.optimizer_impl in OPTIMIZER_IMPLS, "train.optimizer_impl", cfg.train.optimizer_impl,
            " or ".join(OPTIMIZER_IMPLS))
    for key in ("compile", "cuda_graph"):
        require(cfg.train[key] == "auto" or isinstance(cfg.train[key], bool), f"train.{key}", cfg.train[key],
                "auto, true or false")
    require(is_number(cfg.optim.get("lr")) and cfg.optim.lr > 0, "optim.lr", cfg.optim.get("lr"),
            "a finite number > 0")
    if "betas" in cfg.optim:
        betas = cfg.optim.betas
        require(isinstance(betas, ListConfig) and len(betas) == 2 and all(is_number(b) and 0 <= b < 1 for b in betas),
                "optim.betas", betas, "two numbers in [0, 1), e.g. [0.5,0.9]")
    wandb_cfg = cfg.logger.wandb
    require(wandb_cfg.mode in ("offline", "online", "disabled"), "logger.wandb.mode", wandb_cfg.mode,
            "offline, online or disabled")
    require(isinstance(wandb_cfg.project, str) and wandb_cfg.project.strip() != "", "logger.wandb.project",
            wandb_cfg.project, "a non-empty name")
    if cfg.task.name == "gan":
        require(isinstance(cfg.task.conditional, bool), "task.conditional", cfg.task.conditional, "true or false")
        require_model_fits(cfg)
        validate_metric(cfg)
    if cfg.task.name == "classify":
        if "image_size" not in cfg.dataset:
            raise LipbenchError(f"dataset={cfg.dataset.name} has no labels: task=classify needs a labelled dataset "
                                f"(dataset=digits, mnist or cifar10)")
        if "classifier" not in cfg.model:
            raise LipbenchError(f"model={cfg.model.name} has no classifier: task=classify needs one, "
                                "e.g. model=classifier_cnn or model=classifier_mlp")
        subset, eps = cfg.train.subset, cfg.eval.eps
        require(subset is None or (is_int(subset) and subset >= 1), "train.subset", subset, "null or an integer >= 1")
        eps = list(eps) if isinstance(eps, ListConfig) else [eps]
        require(len(eps) > 0 and all(is_number(e) and e >= 0 for e in eps), "eval.eps", eps,
                "a list of budgets >= 0 (pixel units)")
        for key in ("pgd_steps", "num_samples"):
            require(is_int(cfg.eval[key]) and cfg.eval[key] >= 1, f"eval.{key}", cfg.eval[key], "an integer >= 1")


def validate_metric(cfg: DictConfig) -> None:
    """The quality metric must fit the data (W1 is for 2-D points, FID and FD for images) and have the samples a
    distance needs."""
    name, images = cfg.metric.name, "image_size" in cfg.dataset
    if name == "w1" and images:
        raise LipbenchError(f"metric=w1 is the exact W1 of 2-D points, not of dataset={cfg.dataset.name}'s images: "
                            "use metric=auto, fid or fd_classifier")
    if name in ("fid", "fd_classifier") and not images:
        raise LipbenchError(f"metric={name} compares images, and dataset={cfg.dataset.name} holds 2-D points: "
                            "use metric=auto or w1")
    for metric in [name] if name != "auto" else (["fid", "fd_classifier"] if images else ["w1"]):
        settings = cfg.metric[metric]
        fewest = 1 if metric == "w1" else 2  # a covariance needs two samples
        require(is_int(settings.num_samples) and settings.num_samples >= fewest, f"metric.{metric}.num_samples",
                settings.num_samples, f"an integer >= {fewest}")
        if "batch_size" in settings:
            require(is_int(settings.batch_size) and settings.batch_size >= 1, f"metric.{metric}.batch_size",
                    settings.batch_size, "an integer >= 1")
        if "train_steps" in settings:
            require(is_int(settings.train_steps) and settings.train_steps >= 1, f"metric.{metric}.train_steps",
                    settings.train_steps, "an integer >= 1")
        if "split" in settings:
            require(settings.split in ("train", "test"), f"metric.{metric}.split", settings.split, "train or test")
