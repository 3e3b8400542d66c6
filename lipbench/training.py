"""What every training loop shares: device and seed, the method checked against the task, and the run's record."""
import contextlib
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lipbench import LipbenchError
from lipbench.checkpoint import save
from lipbench.methods import LipschitzMethod
from lipbench.tracking import Recorder


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; `cuda` on a machine without it is an error, not a silent CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LipbenchError(f"device={name} but no CUDA device is visible: use device=cpu or device=auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise LipbenchError(f"device={name!r} is unknown: use auto, cpu or cuda")
    return torch.device(name)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so wall-clock times measure the work, not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def start(cfg: DictConfig) -> torch.device:
    """The run's device, with the global RNG seeded and cuDNN free to pick its fastest kernels."""
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return device


def build_method(cfg: DictConfig) -> LipschitzMethod:
    """The configured method, validated, and refused before any training when it does not apply to the task."""
    method = instantiate(cfg.method)
    if cfg.task.name not in method.tasks:
        raise LipbenchError(f"method={method.name} only applies to task={' or '.join(method.tasks)}, "
                            f"not task={cfg.task.name}: choose another method=...")
    return method


def open_recorder(cfg: DictConfig, run_dir: Path, overrides: list[str], primary: str, protocol: dict,
                  state: dict | None) -> Recorder:
    """The run's Recorder, continuing the checkpointed one when the run resumes."""
    config = OmegaConf.to_container(cfg, resolve=True)
    previous = state["recorder"] if state else None
    return Recorder(run_dir, config, overrides, config["logger"]["wandb"], primary, protocol, previous)


@contextlib.contextmanager
def failures_recorded(recorder: Recorder):
    """Record a crash or Ctrl-C as the run's status (failed / interrupted), then let it propagate."""
    try:
        yield
    except BaseException as error:
        recorder.finish("interrupted" if isinstance(error, KeyboardInterrupt) else "failed", error=repr(error))
        raise


def end_epoch(recorder: Recorder, progress, epoch: int, scalars: dict, images: dict, status: str,
              checkpoint_path: Path, stateful: dict, train_time: float) -> bool:
    """Log the epoch, then checkpoint it; a diverged epoch is logged and announced, and ends training (True)."""
    recorder.log(epoch, scalars, images)
    if status == "diverged":
        progress.write(f"non-finite loss at epoch {epoch}; run recorded as diverged")
        return True
    recorder.state["epoch"] = epoch
    save(checkpoint_path, stateful, epoch=epoch, train_time_s=train_time, recorder=recorder.state)
    return False


def finish(recorder: Recorder, status: str, train_time: float) -> dict:
    """Close the run with its status and timings; returns them as the job's result."""
    epochs_done = recorder.state.get("epoch", 0)
    result = {"epochs_completed": epochs_done, "train_time_s": train_time,
              "mean_epoch_time_s": train_time / max(epochs_done, 1)}
    recorder.finish(status, **result)
    return {"status": status, **result}
