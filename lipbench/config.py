"""The config: where it lives, objects built from its nodes with every key checked, and choices that must fit."""
import inspect
from pathlib import Path

from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from lipbench import LipbenchError

# The configs live at the top of the repo (conf/), beside the package; an absolute path works from any cwd.
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


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
