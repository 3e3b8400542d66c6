"""Objects built from config nodes, with every key checked against what the object takes."""
import inspect

from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from lipbench import LipbenchError


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
