"""Hydra callbacks: what a sweep says when all its jobs are done."""
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lipbench.files import read_json_or_none


def sweep_table(sweep_dir: Path) -> str:
    """One line per job of the sweep: its number, status, final metric and overrides."""
    rows = [("job", "status", "final metric", "overrides")]
    for summary_path in sorted(sweep_dir.glob("*/summary.json"), key=lambda p: (len(p.parent.name), p.parent.name)):
        summary = read_json_or_none(summary_path) or {}
        final = summary.get("final_metric")
        rows.append((summary_path.parent.name.split("_", 1)[0], summary.get("status", "unreadable"),
                     "-" if final is None else f"{summary.get('metric')} {final:.4g}",
                     " ".join(summary.get("overrides", []))))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3]
                     for row in rows)


class SweepSummary(Callback):
    """At the end of a multirun: a table of its jobs, and the command that compares them."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        """Print the table to stdout (the jobs' own logs are in their run dirs)."""
        sweep_dir = Path(config.hydra.sweep.dir)
        print(f"sweep done: {sweep_dir}\n{sweep_table(sweep_dir)}\ncompare them: lipbench-report {sweep_dir}",
              flush=True)
