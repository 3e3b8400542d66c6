"""Checkpoints: everything a killed run needs to continue exactly where it stopped."""
from pathlib import Path

import torch

from lipbench import LipbenchError
from lipbench.files import atomic_write


def rng_state() -> dict:
    """The global RNG states of torch on CPU and on every CUDA device."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` saved."""
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: dict) -> None:
    """Write `state` atomically: a run killed while saving keeps its previous checkpoint."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint with `weights_only=True`; a corrupt file is an error, never a silent fresh start."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise LipbenchError(
            f"checkpoint {path} is unreadable ({type(error).__name__}): restore it, or delete it to train from scratch"
        ) from error


def restore(path: Path, stateful: dict) -> dict | None:
    """Resume: load every object's state (models, optimizers) and the RNG from `path`; None when there is none."""
    if not path.exists():
        return None
    state = load_checkpoint(path)
    for name, obj in stateful.items():
        obj.load_state_dict(state[name])
    set_rng_state(state["rng"])
    return state


def save(path: Path, stateful: dict, **progress) -> None:
    """Checkpoint every object's state, the RNG and `progress` (epoch, timings, recorder state)."""
    states = {name: obj.state_dict() for name, obj in stateful.items()}
    save_checkpoint(path, {**progress, "rng": rng_state(), **states})
