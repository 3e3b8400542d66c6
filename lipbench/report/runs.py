"""Finished runs read back from their run dirs and grouped for comparison, and what every task's report shares:
spreads over seeds, the verdict rule, markdown tables and figures."""
import json
import math
import os
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from lipbench import LipbenchError
from lipbench.files import atomic_write, describe, read_jsonl

# A verdict needs at least this many runs on each side; with fewer it is "inconclusive" whatever the means say.
MIN_RUNS = 3


def finite(value) -> bool:
    """True for a real, finite number (not None, NaN or inf)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def flatten(node: dict, prefix: str = "") -> dict:
    """Nested settings as dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    flat = {}
    for key, value in node.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@dataclass(frozen=True)
class Spread:
    """Mean, sample std and count of one statistic over runs; a fixed reference number has n = inf and std 0."""

    mean: float
    std: float
    n: float

    @classmethod
    def of(cls, values) -> "Spread | None":
        """The spread of the finite values, or None when there are none."""
        values = [v for v in values if finite(v)]
        if not values:
            return None
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))

    def __str__(self) -> str:
        return f"{self.mean:.4g}" if math.isinf(self.n) else f"{self.mean:.4g} ± {self.std:.2g} (n={self.n})"


class Run:
    """One run dir: its summary.json, its metrics.jsonl records, and the settings it was launched with."""

    def __init__(self, path: Path, summary: dict, records: list[dict]):
        self.path, self.summary, self.records = path, summary, records
        self.status = summary.get("status", "unknown")
        self.config = summary.get("config") or {}
        self.task = self.config.get("task", {}).get("name", "gan")  # runs from before task=classify are GAN runs
        self.method = self.config.get("method", {}).get("name", "unknown")
        self.method_settings = flatten(self.config.get("method", {}))
        self.metric_key = f"eval/{summary.get('metric')}"
        self.overrides = dict(o.lstrip("+~").split("=", 1) for o in summary.get("overrides", []) if "=" in o)

    def setting(self, key: str) -> str:
        """The value of `key` in this run: from the resolved config (a config group by its name), else as typed."""
        node = self.config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node = node.get("name")
        return str(node) if node is not None else self.overrides.get(key, "default")

    def quality(self, key: str) -> float | None:
        """summary[key] (final_metric, best_metric) of a complete run; a diverged or unfinished run has none."""
        return self.summary.get(key) if self.status == "complete" else None

    def last(self, key: str):
        """The value of `key` in the last record that has it."""
        return next((r[key] for r in reversed(self.records) if key in r), None)

    def final(self, key: str):
        """The last logged value of `key` in a complete run; a diverged or unfinished run has none."""
        return self.last(key) if self.status == "complete" else None

    def epoch_time(self) -> float | None:
        """Median seconds per epoch: robust to the first epoch's warm-up and to an occasional stall."""
        times = [r["time/epoch_s"] for r in self.records if finite(r.get("time/epoch_s"))]
        return statistics.median(times) if times else None


@dataclass
class Group:
    """The runs of one method at one setting of its own (its variant) in one context (the values of the other swept
    keys); seeds are its repeats."""

    method: str
    variant: tuple[tuple[str, str], ...]
    context: tuple[tuple[str, str], ...]
    runs: list[Run]

    @property
    def arm(self) -> str:
        """The method and the settings of its own that differ across its runs: "l2 weight=0.001"."""
        return " ".join([self.method, *(f"{key}={value}" for key, value in self.variant)])

    @property
    def label(self) -> str:
        """The arm, then the context as key=value."""
        return f"{self.arm} {context_label(self.context)}" if self.context else self.arm

    def count(self, status: str) -> int:
        """How many of the runs ended with `status`."""
        return sum(run.status == status for run in self.runs)

    def spread(self, value: Callable[[Run], float | None]) -> Spread | None:
        """Mean ± std of value(run) over the runs."""
        return Spread.of(value(run) for run in self.runs)


def verdict(lower: Spread | None, higher: Spread | None) -> str:
    """supported / not supported when the mean ± std intervals are apart (n >= MIN_RUNS each), else inconclusive."""
    if lower is None or higher is None or min(lower.n, higher.n) < MIN_RUNS:
        return "inconclusive"
    if lower.mean + lower.std < higher.mean - higher.std:
        return "supported"
    if higher.mean + higher.std < lower.mean - lower.std:
        return "not supported"
    return "inconclusive"


VERDICT_RULE = (f"A claim is supported when the mean ± std intervals are apart in its direction with n >= {MIN_RUNS} "
                "on both sides, not supported when they are apart the other way, inconclusive otherwise.")


def read_run(run_dir: Path) -> Run:
    """The run in `run_dir`; a LipbenchError saying why when its summary.json or metrics.jsonl cannot be read."""
    summary_path, metrics_path = run_dir / "summary.json", run_dir / "metrics.jsonl"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: not JSON, or not UTF-8 text
        raise LipbenchError(f"{summary_path} is unreadable ({describe(error, summary_path)})") from None
    if not isinstance(summary, dict):
        raise LipbenchError(f"{summary_path} holds a JSON {type(summary).__name__}, not an object")
    try:
        records = read_jsonl(metrics_path) if metrics_path.exists() else []
    except OSError as error:
        raise LipbenchError(f"{metrics_path} is unreadable ({describe(error, metrics_path)})") from None
    return Run(run_dir, summary, records)


@dataclass(frozen=True)
class Unreadable:
    """A run dir that the report lists but cannot use, and why."""

    path: Path
    why: str


def find_runs(paths: list[Path]) -> tuple[list[Run], list[Unreadable]]:
    """Every run under `paths` (a dir holding summary.json), each once, and the run dirs that cannot be read."""
    found, unreadable = {}, {}
    for path in paths:
        if not path.is_dir():
            raise LipbenchError(f"report path {path} is not a directory: pass run dirs or multirun dirs (runs/...)")
        for summary_path in sorted(path.rglob("summary.json")):
            run_dir = summary_path.parent
            try:
                found[run_dir.resolve()] = read_run(run_dir)
            except LipbenchError as error:
                # The table's first column names the run dir: the reason names the file within it.
                unreadable[run_dir.resolve()] = Unreadable(run_dir, str(error).replace(f"{run_dir}{os.sep}", ""))
    if not found:
        where = " ".join(map(str, paths))
        first = next(iter(unreadable.values()), None)
        why = f" ({len(unreadable)} unreadable run dirs, e.g. {first.path}: {first.why})" if first else ""
        raise LipbenchError(f"no readable summary.json under {where}{why}: pass the dirs that lipbench wrote "
                            "(runs/...)")
    return list(found.values()), list(unreadable.values())


def varying_settings(runs: list[Run]) -> list[str]:
    """The method settings (but name and class) whose value differs across the runs that have them."""
    settings = [run.method_settings for run in runs]
    keys = set().union(*settings) - {"name", "_target_"}
    return sorted(k for k in keys if len({str(s[k]) for s in settings if k in s}) > 1)


def group_runs(runs: list[Run]) -> tuple[list[str], list[Group]]:
    """The swept keys (overridden keys whose value differs across runs, but the seed and the method's) and the
    groups. A method is split by its own settings that differ across its runs: `method=l2/1e-3,l2/1e-2` gives the
    groups "l2 weight=0.001" and "l2 weight=0.01"."""
    keys = sorted({key for run in runs for key in run.overrides if key != "seed" and key.split(".")[0] != "method"})
    swept = [key for key in keys if len({run.setting(key) for run in runs}) > 1]
    varying = {method: varying_settings([run for run in runs if run.method == method])
               for method in {run.method for run in runs}}
    groups = defaultdict(list)
    for run in runs:
        variant = tuple((key, str(run.method_settings.get(key))) for key in varying[run.method])
        groups[run.method, variant, tuple((key, run.setting(key)) for key in swept)].append(run)
    ordered = sorted(groups.items(), key=lambda item: (item[0][2], item[0][0] != "none", item[0][0], item[0][1]))
    return swept, [Group(method, variant, context, runs) for (method, variant, context), runs in ordered]


def context_label(context: tuple[tuple[str, str], ...]) -> str:
    """The swept values other than the method, as key=value; "all runs" when only the method varies."""
    return " ".join(f"{k}={v}" for k, v in context) or "all runs"


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("-" if cell is None else str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# The first columns of every task's results table, filled by group_counts.
COUNT_HEADER = ["group", "runs", "complete", "diverged"]


def group_counts(group: Group) -> tuple[list, dict]:
    """The group's first table cells (COUNT_HEADER) and its CSV fields: its settings and how its runs ended."""
    runs, complete, diverged = len(group.runs), group.count("complete"), group.count("diverged")
    cells = [group.label, runs, complete, f"{diverged}/{runs} ({diverged / runs:.0%})"]
    fields = {"task": group.runs[0].task, "group": group.label, "method": group.method,
              **{f"method.{key}": value for key, value in group.variant}, **dict(group.context),
              "runs": runs, "complete": complete, "diverged": diverged, "diverged_share": diverged / runs}
    return cells, fields


def spread_fields(spreads: dict[str, Spread | None]) -> dict:
    """The CSV fields NAME_mean, NAME_std and NAME_n of each spread (empty when None)."""
    return {f"{name}_{field}": getattr(s, field) if s else None for name, s in spreads.items()
            for field in ("mean", "std", "n")}


@dataclass
class Section:
    """One task's part of the report: its text blocks, the plots it wrote and its rows of report.csv."""

    title: str
    summary: str
    results: str
    notes: str
    claims: str
    plots: list[str]
    csv_rows: list[dict]


def save_figure(fig, path: Path) -> None:
    """Write a figure as PNG atomically and free it."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", bbox_inches="tight", dpi=110))
    plt.close(fig)


def plot_metric(groups: list[Group], x_key: str, xlabel: str, path: Path) -> None:
    """The quality metric against `x_key` (epoch or train seconds, averaged over runs), shaded ± std over runs."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for group in groups:
        points = defaultdict(list)
        for run in group.runs:
            for record in run.records:
                if finite(record.get(run.metric_key)):
                    points[record["epoch"]].append((record[x_key], record[run.metric_key]))
        if not points:
            continue
        curve = [np.array(points[epoch]) for epoch in sorted(points)]
        x = np.array([p[:, 0].mean() for p in curve])
        mean = np.array([p[:, 1].mean() for p in curve])
        std = np.array([p[:, 1].std(ddof=1) if len(p) > 1 else 0.0 for p in curve])
        (line,) = ax.plot(x, mean, marker="." if len(x) < 3 else None, label=group.label)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    metrics = sorted({run.metric_key.removeprefix("eval/") for group in groups for run in group.runs})
    ax.set_xlabel(xlabel), ax.set_ylabel(f"{' / '.join(metrics)} (lower is better)")
    ax.legend(fontsize=8), ax.grid(alpha=0.3)
    save_figure(fig, path)
