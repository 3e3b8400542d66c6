"""A run dir holds exactly one experiment, whole: a new run gets a dir no other run has, one process at a time may
use it, and it refuses to continue a checkpoint of a different experiment.

`experiment.json`, written before anything else, names what the dir holds: the config that defines the experiment,
the overrides it was started with (which `train.resume=true` matches in full) and the W&B run id, fixed before W&B
starts so that a run killed at any point resumes into the same W&B run.
"""
import fcntl
import hashlib
import itertools
import os
from datetime import datetime
from pathlib import Path

from omegaconf import ListConfig, OmegaConf
from wandb.sdk.lib.runid import generate_id

from lipbench import LipbenchError
from lipbench.files import read_json_or_none, remove_abandoned_temps, write_json

EXPERIMENT_FILE = "experiment.json"
LOCK_FILE = ".lock"
# What may differ when a run is continued: how long it trains, where and how it is logged, on which device.
MAY_CHANGE_ON_RESUME = ("train.epochs", "train.resume", "logger.", "device", "hydra.")
# A resumed run's dir is named after its overrides; the name is cut here, but runs are matched on the full overrides.
NAME_LENGTH = 200


def safe_name(override_dirname: str) -> str:
    """An override string usable as one directory name (values may hold '/', e.g. dataset.path)."""
    return "".join(c if c.isalnum() or c in "_.,=+-" else "_" for c in override_dirname)[:NAME_LENGTH]


def overrides_key(override_dirname: str) -> str:
    """A digest of the full override string: what `train.resume=true` matches a run dir on."""
    return hashlib.sha256(override_dirname.encode()).hexdigest()[:16]


def unfinished(run_dir: Path) -> bool:
    """A run dir that a run started (it has experiment.json, or a checkpoint) and did not complete."""
    summary = read_json_or_none(run_dir / "summary.json") or {}
    started = (run_dir / EXPERIMENT_FILE).exists() or (run_dir / "checkpoint.pt").exists()
    return started and summary.get("status") not in ("complete", "invalid")


def claim_new(base: str) -> str:
    """`base`, or `base_1`, `base_2`, ... : the first that this process creates itself (two runs started in the same
    second get two dirs)."""
    for suffix in itertools.count():
        candidate = Path(base if suffix == 0 else f"{base}_{suffix}")
        try:
            candidate.mkdir(parents=True)
            return str(candidate)
        except FileExistsError:
            continue


def run_dir(resume, override_dirname: str, root: str = "runs") -> str:
    """A new `root/date/time_overrides` dir, or with train.resume=true the newest unfinished run whose overrides
    are these, in full."""
    key = overrides_key(override_dirname)
    if str(resume).lower() == "true":
        matches = [d for d in Path(root).glob("*/*") if unfinished(d)
                   and (read_json_or_none(d / EXPERIMENT_FILE) or {}).get("overrides_key") == key]
        if matches:
            return str(max(matches, key=lambda d: d.stat().st_mtime))
    now, name = datetime.now(), safe_name(override_dirname)
    return claim_new(f"{root}/{now:%Y-%m-%d}/{now:%H-%M-%S}" + (f"_{name}" if name else ""))


def sweep_overrides(task_overrides) -> list[str]:
    """A sweep's command-line overrides without the bookkeeping ones, in a canonical order."""
    overrides = list(task_overrides) if isinstance(task_overrides, (list, ListConfig)) else []
    return sorted(o for o in overrides if not o.lstrip("+~").startswith(("train.resume", "logger.", "device")))


def sweep_dir(resume, task_overrides, root: str = "runs/multirun") -> str:
    """A new `root/date/time` sweep dir, or with train.resume=true the newest sweep of the same overrides that has an
    unfinished job (its jobs then resume in their own dirs)."""
    wanted = sweep_overrides(task_overrides)
    if str(resume).lower() == "true":
        matches = []
        for config in Path(root).glob("*/*/multirun.yaml"):
            previous = OmegaConf.load(config).hydra.overrides.task
            if sweep_overrides(previous) == wanted and any(unfinished(job) for job in config.parent.iterdir()
                                                            if job.is_dir()):
                matches.append(config.parent)
        if matches:
            return str(max(matches, key=lambda d: d.stat().st_mtime))
    now = datetime.now()
    return f"{root}/{now:%Y-%m-%d}/{now:%H-%M-%S}"


def flat(node, prefix: str = "") -> dict:
    """Nested settings as dotted keys."""
    if not isinstance(node, dict):
        return {prefix.rstrip("."): node}
    return {k: v for key, value in node.items() for k, v in flat(value, f"{prefix}{key}.").items()}


def defining(config: dict) -> dict:
    """The settings that define the experiment: every key but those that may change on resume."""
    return {k: v for k, v in flat(config).items() if not k.startswith(MAY_CHANGE_ON_RESUME)}


class RunDir:
    """The claim of one process on one run dir: locked while the process lives, holding one experiment."""

    def __init__(self, path: Path, config: dict, override_dirname: str):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.lock = open(self.path / LOCK_FILE, "w")  # released by the OS when the process ends, however it ends
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock.close()
            raise LipbenchError(f"run dir {self.path} is in use by another lipbench process: wait for it to end, or "
                                f"start a new run (without hydra.run.dir=...)") from None
        self.lock.write(f"{os.getpid()}\n")
        self.lock.flush()
        remove_abandoned_temps(self.path)  # e.g. a best.pt copy killed after the last checkpoint
        recorded = read_json_or_none(self.path / EXPERIMENT_FILE)
        if recorded is None:  # a new dir (or one from before experiment.json: its checkpoint is trusted as it is)
            recorded = {"config": defining(config), "overrides_key": overrides_key(override_dirname),
                        "overrides": override_dirname, "wandb_id": generate_id()}
            write_json(self.path / EXPERIMENT_FILE, recorded)
        self.refuse_another_experiment(recorded["config"], defining(config))
        self.wandb_id = recorded["wandb_id"]

    def refuse_another_experiment(self, there: dict, here: dict) -> None:
        """One line naming the settings that differ between the dir's experiment and this config, and the ways out."""
        differ = sorted(k for k in there.keys() | here.keys() if there.get(k, "<unset>") != here.get(k, "<unset>"))
        if differ:
            shown = "; ".join(f"{k}={there.get(k, '<unset>')} there, {here.get(k, '<unset>')} here"
                              for k in differ[:6])
            more = f" (and {len(differ) - 6} more)" if len(differ) > 6 else ""
            raise LipbenchError(f"run dir {self.path} holds another experiment: {shown}{more}: use a new run dir "
                                f"(drop hydra.run.dir=...), or delete {self.path} to start over with this config")
