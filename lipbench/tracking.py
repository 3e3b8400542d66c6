"""Where a run's numbers go: metrics.jsonl and summary.json in the run dir, and Weights & Biases."""
import json
import math
import os
from pathlib import Path

import wandb

from lipbench.files import atomic_write, read_jsonl, write_json
from lipbench.wandb_files import logged_epochs


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
        self.wandb = wandb.init(
            project=wandb_cfg["project"],
            entity=wandb_cfg.get("entity"),
            group=wandb_cfg.get("group"),
            job_type=wandb_cfg.get("job_type"),
            tags=list(wandb_cfg.get("tags") or []),
            name=",".join(overrides) or "defaults",
            config={**config, "metric_protocol": protocol},
            dir=str(self.run_dir),
            mode=wandb_cfg["mode"],
            id=wandb_id,
            resume="allow",
            settings=wandb.Settings(console="off", silent=True),  # no banners between the epoch lines
        )
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
            **extra,
            "config": self.config,
        }
        write_json(self.summary_path, summary)

    def finish(self, status: str, **extra) -> None:
        """Final summary to the run dir and W&B; a non-complete status is also a W&B tag so it can be filtered."""
        self.write_summary(status, **extra)
        self.wandb.summary.update({"status": status, f"best/{self.primary}": self.state["best"], **extra})
        if status != "complete":
            self.wandb.tags = tuple(self.wandb.tags or ()) + (status,)
        self.wandb.finish(exit_code=0 if status == "complete" else 1)
