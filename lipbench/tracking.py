"""Where a run's numbers go: metrics.jsonl and summary.json in the run dir, and Weights & Biases, organised for
comparison: one W&B group per sweep, the method as job type, and the keys the sweep varies as tags, flat config keys
and the run's short name."""
import json
import math
import os
from pathlib import Path

import wandb
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import OmegaConf

from lipbench.files import atomic_write, read_jsonl, write_json
from lipbench.naming import parse_overrides, short_names
from lipbench.wandb_files import logged_epochs

# W&B refuses longer tags.
MAX_TAG_LENGTH = 64


def sweep_values(override) -> int:
    """How many values a parsed override gives its key: several for a sweep (`a,b`, `range(...)`, `glob(...)`)."""
    if not override.is_sweep_override():
        return 1
    try:
        return len(list(override.sweep_string_iterator()))
    except HydraException:  # a glob lists config-group options, which only Hydra's config loader knows
        return 2


def swept_keys(sweep_dir: Path) -> list[str]:
    """The keys the sweep in `sweep_dir` gave several values, from the multirun.yaml Hydra writes there when the
    sweep starts: the sweeper's params (a preset's), overridden by the command line, as the sweeper merges them."""
    sweep_cfg = OmegaConf.load(sweep_dir / "multirun.yaml").hydra
    params = sweep_cfg.sweeper.get("params") or {}
    typed = [*(f"{key}={value}" for key, value in params.items()), *sweep_cfg.overrides.task]
    counts = {o.key_or_group: sweep_values(o) for o in OverridesParser.create().parse_overrides(typed)}
    return [key for key, count in counts.items() if count > 1]


def this_sweep() -> Path | None:
    """The sweep dir of the Hydra job this process runs in, or None for a single run (or outside Hydra)."""
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return Path(hydra_cfg.runtime.cwd) / hydra_cfg.sweep.dir


def sweep_label(sweep_dir: Path) -> str:
    """A sweep's name: its dir below `multirun/` (the default layout, runs/multirun/<date>/<time>), else its dir's
    name."""
    parts = sweep_dir.parts
    below = parts[len(parts) - parts[::-1].index("multirun"):] if "multirun" in parts else ()
    return "/".join(below) or sweep_dir.name


def setting_value(config: dict, key: str, typed: str):
    """The value a run has for `key`: the resolved config's leaf (a number stays a number), the typed choice for a
    config group (method=l2/1e-3), the last part of a path (a name, never a path)."""
    node = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None or isinstance(node, (dict, list)):
        return typed
    return Path(node).name if isinstance(node, str) and "/" in node else node


class RunIdentity:
    """How one run appears on W&B: group, job type, tags, short name and flat config keys of its swept settings."""

    def __init__(self, config: dict, overrides: list[str], wandb_cfg: dict, sweep_dir: Path | None):
        method = config["method"]["name"]
        typed = parse_overrides(overrides)
        if sweep_dir is not None:
            # In a sweep the keys it varies identify a run; in a single run, everything typed does.
            keys = [key for key in swept_keys(sweep_dir) if key in typed]
            group = sweep_label(sweep_dir)
        else:
            keys = list(typed)
            group = f"{config['dataset']['name']}-{config['task']['name']}"
        varied = {key: setting_value(config, key, typed[key]) for key in keys}
        self.swept = varied if sweep_dir is not None else {}
        self.group = wandb_cfg.get("group") or group
        self.job_type = wandb_cfg["job_type"]
        self.tags = list(dict.fromkeys([*(wandb_cfg.get("tags") or []),
                                        *(f"{key}={value}"[:MAX_TAG_LENGTH] for key, value in self.swept.items())]))
        # The method (or its typed choice, l2/1e-3, when that is what varies), then the varied values: "gp λ=10 seed=1".
        names = short_names([key for key in varied if key != "method"])
        self.name = wandb_cfg.get("name") or " ".join(
            [str(varied.get("method", method)), *(f"{names[key]}={value}" for key, value in varied.items()
                                                  if key != "method")])
        self.flat_config = {f"swept/{key}": value for key, value in self.swept.items()}

    def as_dict(self) -> dict:
        """The identity as summary.json keeps it, for the report to find the group and names."""
        return {"group": self.group, "job_type": self.job_type, "tags": self.tags, "name": self.name,
                "swept": self.swept}


class Recorder:
    """Logs one record per epoch to every sink and keeps summary.json current (status, final and best metric)."""

    def __init__(self, run_dir: Path, config: dict, overrides: list[str], wandb_cfg: dict, primary: str,
                 protocol: dict, wandb_id: str, state=None):
        self.run_dir = Path(run_dir)
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.summary_path = self.run_dir / "summary.json"
        self.config, self.overrides, self.primary, self.protocol = config, overrides, primary, protocol
        self.wandb_id = wandb_id
        self.state = state or {"best": None, "best_epoch": None, "last": None}
        kept = self.drop_records_after(self.state.get("epoch", 0))
        # A resumed offline run: the epochs its earlier W&B files hold are not sent again (the resumed curve is the
        # same, exactly), and those that a kill kept from W&B are sent first, so W&B holds every epoch once.
        self.in_wandb = logged_epochs(self.run_dir) if wandb_cfg["mode"] == "offline" else set()
        self.identity = RunIdentity(config, overrides, wandb_cfg, this_sweep())
        self.wandb = wandb.init(
            project=wandb_cfg["project"],
            entity=wandb_cfg.get("entity"),
            group=self.identity.group,
            job_type=self.identity.job_type,
            tags=self.identity.tags,
            name=self.identity.name,
            config={**config, **self.identity.flat_config, "metric_protocol": protocol},
            dir=str(self.run_dir),
            mode=wandb_cfg["mode"],
            id=wandb_id,
            resume="allow",
            settings=wandb.Settings(console="off", silent=True),  # no banners between the epoch lines
        )
        # Epochs are the step of every chart; time/train_s (training seconds, evaluation excluded) is the other
        # x-axis a chart can pick.
        self.wandb.define_metric("epoch")
        self.wandb.define_metric("time/train_s", summary="max")
        self.wandb.define_metric(f"eval/{primary}", step_metric="epoch", summary="min,last")
        self.wandb.define_metric("*", step_metric="epoch")
        if wandb_cfg["mode"] == "offline":
            for record in kept:
                self.send(record["epoch"], {k: v for k, v in record.items() if k != "epoch"}, {})
        self.write_summary("running")

    def drop_records_after(self, epoch: int) -> list[dict]:
        """On resume, forget epochs logged after the checkpoint so the curve is logged exactly once; the kept ones."""
        if not self.metrics_path.exists():
            return []
        kept = [r for r in read_jsonl(self.metrics_path) if r.get("epoch", epoch + 1) <= epoch]
        atomic_write(self.metrics_path, lambda tmp: tmp.write_text("".join(json.dumps(r) + "\n" for r in kept)))
        return kept

    def log(self, epoch: int, scalars: dict, images: dict[str, Path]) -> None:
        """Append the epoch's record; track the best value of the primary metric (lower is better)."""
        record = {"epoch": epoch, **scalars}
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        value = scalars.get(f"eval/{self.primary}")
        if value is not None and math.isfinite(value):
            self.state["last"] = value
            if self.state["best"] is None or value < self.state["best"]:
                self.state["best"], self.state["best_epoch"] = value, epoch
        self.send(epoch, scalars, images)

    def send(self, epoch: int, scalars: dict, images: dict[str, Path]) -> None:
        """The epoch to W&B at step = epoch, unless W&B already holds it."""
        if epoch in self.in_wandb:
            return
        self.in_wandb.add(epoch)
        media = {f"eval/{k}": wandb.Image(str(p)) for k, p in images.items()}
        # Histograms travel in the record as {"counts", "edges"}: plain JSON here, a wandb.Histogram on W&B.
        media.update({k: wandb.Histogram(np_histogram=(v["counts"], v["edges"]))
                      for k, v in scalars.items() if isinstance(v, dict)})
        self.wandb.log({**scalars, **media, "epoch": epoch}, step=epoch)

    def write_summary(self, status: str, **extra) -> None:
        """summary.json: the run's status and headline numbers, rewritten atomically."""
        summary = {
            "status": status,
            "metric": self.primary,
            "protocol": self.protocol,
            "final_metric": self.state["last"],
            "best_metric": self.state["best"],
            "best_epoch": self.state["best_epoch"],
            "overrides": self.overrides,
            "wandb_id": self.wandb_id,
            "wandb": self.identity.as_dict(),
            **extra,
            "config": self.config,
        }
        write_json(self.summary_path, summary)

    def finish(self, status: str, **extra) -> None:
        """Final summary to the run dir and W&B; a non-complete status is also a W&B tag so it can be filtered."""
        self.write_summary(status, **extra)
        self.wandb.summary.update({"status": status, f"final/{self.primary}": self.state["last"],
                                   f"best/{self.primary}": self.state["best"],
                                   f"best_epoch/{self.primary}": self.state["best_epoch"], **extra})
        if status != "complete":
            self.wandb.tags = tuple(self.wandb.tags or ()) + (status,)
        self.wandb.finish(exit_code=0 if status == "complete" else 1)
