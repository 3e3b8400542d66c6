"""How a run's settings are named for people, the same in W&B run names and in the report's group labels; where
the configs are and which of their keys are bookkeeping."""
from pathlib import Path

from omegaconf import OmegaConf

# The configs live at the top of the repo (conf/), beside the package; an absolute path works from any cwd.
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")

# The symbols researchers use for a setting; any other key goes by its last part.
SYMBOLS = {"method.weight": "λ"}


def short_names(keys: list[str]) -> dict[str, str]:
    """Each key's short name: its symbol or last part ("method.power_iterations" -> "power_iterations"); keys whose
    last parts collide (model.critic.hidden, model.generator.hidden) keep their full name."""
    short = {key: SYMBOLS.get(key, key.rsplit(".", 1)[-1]) for key in keys}
    taken = list(short.values())
    return {key: name if taken.count(name) == 1 else key for key, name in short.items()}


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """key -> value as typed, the prefix of `+key=...` dropped; a deletion (`~key`) has no value and is left out."""
    return dict(o.lstrip("+~").split("=", 1) for o in overrides if "=" in o)


def bookkeeping_keys() -> tuple[str, ...]:
    """The overrides that say where or how a run is logged, not what it computes (conf/config.yaml lists them)."""
    root = OmegaConf.load(Path(CONFIG_DIR, "config.yaml"))
    return tuple(root.hydra.job.config.override_dirname.exclude_keys)
