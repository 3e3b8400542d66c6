"""The one epoch loop: it owns the schedule (epochs, timing, evaluation cadence, logging, checkpoints, divergence)
while a task owns its step and its evaluation, as drqv2's Workspace owns the loop and its agent the update."""
import contextlib
import math
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import torch
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf
from torch import nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from lipbench import LipbenchError
from lipbench.checkpoint import restore, save
from lipbench.config import build, validate
from lipbench.files import atomic_write
from lipbench.methods import LipschitzMethod
from lipbench.progress import log
from lipbench.rundir import RunDir
from lipbench.tracking import Recorder


def lr_schedule(optimizer: torch.optim.Optimizer, decay: str, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The learning rate over a run's `steps` updates (train.lr_decay): constant, or linearly down to 0 at the last
    one (WGAN-GP's image setting), so that a run ends settled instead of oscillating at its full step size."""
    linear = decay == "linear"
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1.0 - step / max(steps, 1)) if linear else 1.0)


class Task(Protocol):
    """What a task (`task.build` builds it from the config) brings to the epoch loop."""

    primary: str                   # the quality metric, logged as eval/<primary>; lower is better
    protocol: dict                 # how that metric is measured, logged beside it
    stateful: dict                 # name -> object with state_dict/load_state_dict: what a checkpoint holds
    networks: list[nn.Module]      # put in eval mode while evaluating, so evaluation never alters training
    steps_per_epoch: int

    def epoch(self) -> Iterator[dict[str, torch.Tensor]]:
        """Train one epoch, yielding each step's detached scalars (a key may appear only on some steps)."""

    def evaluate(self, epoch: int, run_dir: Path) -> tuple[dict, dict]:
        """(scalars by full key, figures by name -> PNG path) of the networks as they are now."""


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
    """The run's device, with the global RNG seeded and cuDNN's kernels chosen as train.deterministic says."""
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        # The autotuner times candidate kernels in each process and may pick others in the next one, whose rounding
        # differs: fast, but a GAN's curve then drifts apart between two runs of one seed.
        torch.backends.cudnn.benchmark = not cfg.train.deterministic
        torch.backends.cudnn.deterministic = cfg.train.deterministic
    return device


def build_method(cfg: DictConfig) -> LipschitzMethod:
    """The configured method, validated, and refused before any training when it does not apply to the task."""
    method = build(cfg, "method")
    if cfg.task.name not in method.tasks:
        raise LipbenchError(f"method={method.name} only applies to task={' or '.join(method.tasks)}, "
                            f"not task={cfg.task.name}: choose another method=...")
    return method


@contextlib.contextmanager
def evaluating(networks: list[nn.Module]):
    """Eval mode for the block (SN's u stays put, BatchNorm uses its running stats), then training mode again."""
    for net in networks:
        net.eval()
    try:
        yield
    finally:
        for net in networks:
            net.train()


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM (Slurm's preemption and time limit): the run stops, recorded as `interrupted`."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum  # the shell's convention, so a scheduler sees the signal


def raise_interrupted(signum: int, frame) -> None:
    """Signal handler: unwind the loop as Ctrl-C does, so the run is recorded and its W&B run closed."""
    raise Interrupted(signum)


@contextlib.contextmanager
def failures_recorded(recorder: Recorder):
    """Record a crash, Ctrl-C or SIGTERM as the run's status (failed / interrupted), then let it propagate."""
    previous = {sig: signal.signal(sig, raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except BaseException as error:
        interrupted = isinstance(error, KeyboardInterrupt)
        recorder.finish("interrupted" if interrupted else "failed", error=str(error) if interrupted else repr(error))
        if interrupted and not isinstance(error, Interrupted):
            raise Interrupted(signal.SIGINT) from None
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def epoch_means(steps: Iterator[dict[str, torch.Tensor]], progress: tqdm) -> dict[str, float]:
    """Run the epoch's steps; the mean of every scalar over the steps that yielded it.

    Sums stay on the device during the epoch and are read once at its end: one host sync per epoch.
    """
    sums, counts = {}, {}
    for scalars in steps:
        for key, value in scalars.items():
            sums[key] = sums[key] + value if key in sums else value.float()
            counts[key] = counts.get(key, 0) + 1
        progress.update()
    if not sums:
        return {}
    means = torch.stack([sums[key] / counts[key] for key in sums]).tolist()
    return dict(zip(sums, means))


def epoch_line(epoch: int, epochs: int, scalars: dict, primary: str, best: float | None) -> str:
    """The epoch's one log line: step means, seconds, and the quality metric when it was evaluated."""
    parts = [f"epoch {epoch}/{epochs}"]
    parts += [f"{key} {value:.4g}" for key, value in scalars.items() if "/" not in key or key.startswith("loss/")]
    parts.append(f"{scalars['time/epoch_s']:.1f} s")
    if f"eval/{primary}" in scalars:
        parts.append(f"{primary} {scalars[f'eval/{primary}']:.4g} (best {best:.4g})")
    return " | ".join(parts)


def finite_scalars(values: dict) -> bool:
    """Whether every number in a record is finite (histograms, logged as dicts, are checked where they are made)."""
    return all(math.isfinite(v) for v in values.values() if isinstance(v, (int, float)))


def train(cfg: DictConfig, run_dir: Path, overrides: list[str], override_dirname: str = "") -> dict:
    """Train the configured task epoch by epoch, logging every epoch; returns the final summary fields."""
    # Check the whole config, then claim the run dir, then build: bad values are errors before any work starts.
    validate(cfg)
    device = start(cfg)
    method = build_method(cfg)
    config = OmegaConf.to_container(cfg, resolve=True)
    claim = RunDir(run_dir, config, override_dirname)
    task: Task = get_method(cfg.task.build)(cfg, method, device)

    # Resume: a checkpoint in the run dir means this run was started before and is continued, exactly.
    checkpoint_path = run_dir / "checkpoint.pt"
    state = restore(checkpoint_path, task.stateful)
    start_epoch = state["epoch"] if state else 0
    train_time = state["train_time_s"] if state else 0.0
    recorder = Recorder(run_dir, config, overrides, config["logger"]["wandb"], task.primary, task.protocol,
                        claim.wandb_id, state["recorder"] if state else None)

    tc, steps = cfg.train, task.steps_per_epoch
    status = "complete"
    log.info(f"{method.name}: {tc.epochs} epochs of {steps} steps, evaluated every {tc.eval_every}; run dir {run_dir}"
             + (f" (resumed after epoch {start_epoch})" if start_epoch else ""))
    # The bar is for terminals only (disable=None); the epoch lines go to stdout and the run's log file everywhere.
    with failures_recorded(recorder), logging_redirect_tqdm(), \
            tqdm(total=tc.epochs * steps, initial=start_epoch * steps, disable=None, desc=method.name) as progress:
        for epoch in range(start_epoch + 1, tc.epochs + 1):
            synchronize(device)
            t0 = time.perf_counter()
            scalars = epoch_means(task.epoch(), progress)
            synchronize(device)
            epoch_time = time.perf_counter() - t0
            train_time += epoch_time
            finite = finite_scalars(scalars)
            scalars.update({"time/epoch_s": epoch_time, "time/steps_per_s": steps / epoch_time,
                            "time/train_s": train_time})
            images = {}
            if not finite:
                status = "diverged"
            elif epoch % tc.eval_every == 0 or epoch == tc.epochs:
                t0 = time.perf_counter()
                with evaluating(task.networks):
                    values, images = task.evaluate(epoch, run_dir)
                scalars.update(values)
                scalars["time/eval_s"] = time.perf_counter() - t0
                if not finite_scalars(values):  # a critic whose slopes or outputs blew up is a diverged run too
                    status = "diverged"
            recorder.log(epoch, scalars, images)
            log.info(epoch_line(epoch, tc.epochs, scalars, task.primary, recorder.state["best"]))
            progress.set_postfix_str(f"epoch {epoch}" + (f", {task.primary} {recorder.state['last']:.4g}"
                                                         if recorder.state["last"] is not None else ""))
            if status == "diverged":
                log.warning(f"non-finite values at epoch {epoch}: run recorded as diverged")
                break
            recorder.state["epoch"] = epoch
            save(checkpoint_path, task.stateful, epoch=epoch, train_time_s=train_time, recorder=recorder.state)
            if recorder.state["best_epoch"] == epoch:  # the generator (or model) to sample from is the best one
                atomic_write(run_dir / "best.pt", lambda tmp: shutil.copyfile(checkpoint_path, tmp))
    return finish(recorder, status, train_time, run_dir)


def finish(recorder: Recorder, status: str, train_time: float, run_dir: Path) -> dict:
    """Close the run with its status and timings, and say where its results are; returns them as the job's result."""
    epochs_done = recorder.state.get("epoch", 0)
    result = {"epochs_completed": epochs_done, "train_time_s": train_time,
              "mean_epoch_time_s": train_time / max(epochs_done, 1)}
    recorder.finish(status, **result)
    state, metric = recorder.state, recorder.primary
    if state["best"] is not None:
        log.info(f"{status}: final {metric} {state['last']:.4g}, best {state['best']:.4g} at epoch "
                 f"{state['best_epoch']} (best.pt), {epochs_done} epochs in {train_time:.0f} s of training")
    else:
        log.info(f"{status}: no {metric} was measured, {epochs_done} epochs in {train_time:.0f} s of training")
    log.info(f"results: {run_dir} (metrics.jsonl, summary.json, figures/, wandb/); "
             f"compare runs with: lipbench-report {run_dir}")
    return {"status": status, **result}
