"""`lipbench-report PATH...`: compare methods over finished runs: a table, plots, and a verdict on each claim.

Reads the run dirs `lipbench` writes (summary.json + metrics.jsonl, found recursively; local files only), groups
the runs by method and by every other key that varies across them except the seed, and writes report.md,
report.csv and PNG plots. A value is the mean ± std over the runs of a group, n = the runs that have it.
"""
import argparse
import csv
import io
import math
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lipbench import LipbenchError  # noqa: E402
from lipbench.files import atomic_write, read_json_or_none, read_jsonl  # noqa: E402

# A verdict needs at least this many runs on each side; with fewer it is "inconclusive" whatever the means say.
MIN_RUNS = 3
GRADIENT_KINDS = ("real", "fake", "interp")


def finite(value) -> bool:
    """True for a real, finite number (not None, NaN or inf)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


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
        self.method = self.config.get("method", {}).get("name", "unknown")
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

    def reach(self, threshold: float | None, key: str) -> float | None:
        """`key` (epoch, time/train_s) of the first evaluation at or below `threshold`, for complete runs."""
        if self.status != "complete" or threshold is None:
            return None
        reached = (r for r in self.records if finite(r.get(self.metric_key)) and r[self.metric_key] <= threshold)
        return next((r[key] for r in reached), None)

    def last(self, key: str):
        """The value of `key` in the last record that has it."""
        return next((r[key] for r in reversed(self.records) if key in r), None)

    def epoch_time(self) -> float | None:
        """Median seconds per epoch: robust to the first epoch's warm-up and to an occasional stall."""
        times = [r["time/epoch_s"] for r in self.records if finite(r.get("time/epoch_s"))]
        return statistics.median(times) if times else None

    def max_layer_sigma(self) -> float | None:
        """The largest per-layer sigma at the last diagnostics."""
        record = next((r for r in reversed(self.records) if "diag/lipschitz_bound" in r), {})
        return max((v for k, v in record.items() if k.startswith("diag/sigma/")), default=None)


# Per-run statistics: name -> (column title, value of a run given the quality threshold of its context).
STATISTICS = {
    "final": ("final", lambda run, threshold: run.quality("final_metric")),
    "best": ("best", lambda run, threshold: run.quality("best_metric")),
    "epochs_to_threshold": ("epochs to thr", lambda run, threshold: run.reach(threshold, "epoch")),
    "seconds_to_threshold": ("s to thr", lambda run, threshold: run.reach(threshold, "time/train_s")),
    "epoch_time": ("s/epoch", lambda run, threshold: run.epoch_time()),
    "grad_norm_interp_mean": ("‖∇D‖ interp mean", lambda run, threshold: run.last("diag/grad_norm/interp/mean")),
    "grad_norm_interp_max": ("‖∇D‖ interp max", lambda run, threshold: run.last("diag/grad_norm/interp/max")),
    "lipschitz_bound": ("Π layer norms", lambda run, threshold: run.last("diag/lipschitz_bound")),
    "max_layer_sigma": ("max layer σ", lambda run, threshold: run.max_layer_sigma()),
}


@dataclass
class Group:
    """The runs of one method in one context (the values of the other swept keys); seeds are its repeats."""

    method: str
    context: tuple[tuple[str, str], ...]
    runs: list[Run]

    @property
    def label(self) -> str:
        """The method, then the context as key=value."""
        return f"{self.method} {context_label(self.context)}" if self.context else self.method

    def count(self, status: str) -> int:
        """How many of the runs ended with `status`."""
        return sum(run.status == status for run in self.runs)

    def spread(self, statistic: str, threshold: float | None) -> Spread | None:
        """Mean ± std of a STATISTICS entry over the runs."""
        value = STATISTICS[statistic][1]
        return Spread.of(value(run, threshold) for run in self.runs)


@dataclass(frozen=True)
class Claim:
    """The claim that method `lower` has a lower `statistic` than `higher`, a method or a fixed reference number."""

    text: str
    statistic: str
    lower: str
    higher: str | float


CLAIMS = (
    Claim("SN reaches the threshold in fewer epochs than GP", "epochs_to_threshold", "sn", "gp"),
    Claim("SN ends with a better final metric than GP", "final", "sn", "gp"),
    Claim("GP takes more time per epoch than SN", "epoch_time", "sn", "gp"),
    Claim("sn (reparametrized) ends better than sn_projection (projected after each step)", "final", "sn",
          "sn_projection"),
    Claim("gp_relu (one-sided penalty) ends better than gp", "final", "gp_relu", "gp"),
    Claim("gp_relu reaches the threshold in fewer epochs than gp", "epochs_to_threshold", "gp_relu", "gp"),
    Claim("clip ends worse than gp", "final", "gp", "clip"),
    Claim("clip ends better than no constraint", "final", "clip", "none"),
    Claim("clip underuses capacity: its critic is flatter than gp's at interpolates", "grad_norm_interp_mean",
          "clip", "gp"),
    Claim("clip leaves every critic layer with sigma below 1", "max_layer_sigma", "clip", 1.0),
)


def verdict(lower: Spread | None, higher: Spread | None) -> str:
    """supported / not supported when the mean ± std intervals are apart (n >= MIN_RUNS each), else inconclusive."""
    if lower is None or higher is None or min(lower.n, higher.n) < MIN_RUNS:
        return "inconclusive"
    if lower.mean + lower.std < higher.mean - higher.std:
        return "supported"
    if higher.mean + higher.std < lower.mean - lower.std:
        return "not supported"
    return "inconclusive"


def find_runs(paths: list[Path]) -> list[Run]:
    """Every run under `paths` (a dir holding summary.json), each once."""
    found = {}
    for path in paths:
        if not path.is_dir():
            raise LipbenchError(f"report path {path} is not a directory: pass run dirs or multirun dirs (runs/...)")
        for summary_path in sorted(path.rglob("summary.json")):
            summary = read_json_or_none(summary_path)
            metrics_path = summary_path.parent / "metrics.jsonl"
            if isinstance(summary, dict):
                records = read_jsonl(metrics_path) if metrics_path.exists() else []
                found[summary_path.parent.resolve()] = Run(summary_path.parent, summary, records)
    if not found:
        where = " ".join(map(str, paths))
        raise LipbenchError(f"no summary.json under {where}: pass the dirs that lipbench wrote (runs/...)")
    return list(found.values())


def group_runs(runs: list[Run]) -> tuple[list[str], list[Group]]:
    """The swept keys (overridden keys whose value differs across runs, but seed and method) and the groups."""
    keys = sorted({key for run in runs for key in run.overrides} - {"seed", "method"})
    swept = [key for key in keys if len({run.setting(key) for run in runs}) > 1]
    groups = defaultdict(list)
    for run in runs:
        groups[run.method, tuple((key, run.setting(key)) for key in swept)].append(run)
    ordered = sorted(groups.items(), key=lambda item: (item[0][1], item[0][0] != "none", item[0][0]))
    return swept, [Group(method, context, group_runs) for (method, context), group_runs in ordered]


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("-" if cell is None else str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


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
        (line,) = ax.plot(x, mean, label=group.label)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    metrics = sorted({run.metric_key.removeprefix("eval/") for group in groups for run in group.runs})
    ax.set_xlabel(xlabel), ax.set_ylabel(f"{' / '.join(metrics)} (lower is better)")
    ax.legend(fontsize=8), ax.grid(alpha=0.3)
    save_figure(fig, path)


def plot_epoch_time(groups: list[Group], path: Path) -> None:
    """Seconds per epoch of every group, error bars ± std over runs."""
    spreads = [(group.label, group.spread("epoch_time", None)) for group in groups]
    spreads = [(label, s) for label, s in spreads if s is not None]
    fig, ax = plt.subplots(figsize=(max(4, 1 + 0.9 * len(spreads)), 4))
    ax.bar(range(len(spreads)), [s.mean for _, s in spreads], yerr=[s.std for _, s in spreads], capsize=4)
    ax.set_xticks(range(len(spreads)), [label for label, _ in spreads], rotation=30, ha="right")
    ax.set_ylabel("seconds per epoch (median per run)"), ax.grid(axis="y", alpha=0.3)
    save_figure(fig, path)


def plot_gradient_histograms(groups: list[Group], path: Path) -> bool:
    """Distribution of ||grad_x D|| at the last diagnostics, per point kind, pooled over each group's runs."""
    fig, axes = plt.subplots(1, len(GRADIENT_KINDS), figsize=(5 * len(GRADIENT_KINDS), 4))
    drawn = False
    for ax, kind in zip(axes, GRADIENT_KINDS):
        hists = {group.label: [h for h in (run.last(f"diag/grad_norm/{kind}/hist") for run in group.runs) if h]
                 for group in groups}
        edges = [e for hs in hists.values() for h in hs for e in (h["edges"][0], h["edges"][-1])]
        if not edges:
            continue
        # Log-spaced common bins: a clipped critic and an unconstrained one differ by orders of magnitude.
        bins = np.geomspace(max(min(edges), 1e-8), max(max(edges), 2e-8), 41)
        for label, hs in hists.items():
            if hs:
                centers = np.concatenate([(np.array(h["edges"][1:]) + h["edges"][:-1]) / 2 for h in hs])
                counts, _ = np.histogram(centers, bins, weights=np.concatenate([h["counts"] for h in hs]))
                ax.stairs(counts / max(counts.sum(), 1), bins, label=label)
                drawn = True
        ax.set_xscale("log"), ax.set_title(f"‖∇ₓD(x)‖ at {kind} points"), ax.set_ylabel("share of points")
        ax.legend(fontsize=7)
    if drawn:
        save_figure(fig, path)
    plt.close(fig)
    return drawn


def context_label(context: tuple[tuple[str, str], ...]) -> str:
    """The swept values other than the method, as key=value; "all runs" when only the method varies."""
    return " ".join(f"{k}={v}" for k, v in context) or "all runs"


def results_table(groups: list[Group], thresholds: dict) -> tuple[str, list[dict]]:
    """The per-group markdown table, and the same numbers as CSV rows."""
    by_key = {(group.method, group.context): group for group in groups}
    header = ["group", "runs", "complete", "diverged", *(title for title, _ in STATISTICS.values()), "s/epoch ÷ none"]
    rows, csv_rows = [], []
    for group in groups:
        spreads = {name: group.spread(name, thresholds[group.context]) for name in STATISTICS}
        base = by_key.get(("none", group.context))
        base_time = base.spread("epoch_time", None) if base else None
        ratio = spreads["epoch_time"].mean / base_time.mean if base_time and spreads["epoch_time"] else None
        runs, complete, diverged = len(group.runs), group.count("complete"), group.count("diverged")
        rows.append([group.label, runs, complete, f"{diverged}/{runs} ({diverged / runs:.0%})", *spreads.values(),
                     None if ratio is None else f"{ratio:.2f}"])
        csv_rows.append({
            "group": group.label, "method": group.method, **dict(group.context),
            "runs": runs, "complete": complete, "diverged": diverged, "diverged_share": diverged / runs,
            "threshold": thresholds[group.context],
            **{f"{name}_{field}": getattr(s, field) if s else None
               for name, s in spreads.items() for field in ("mean", "std", "n")},
            "epoch_time_ratio_to_none": ratio,
        })
    return markdown_table(header, rows), csv_rows


def claims_table(groups: list[Group], thresholds: dict) -> str:
    """A verdict for every claim whose two sides are among the groups, in each context where they are."""
    by_key = {(group.method, group.context): group for group in groups}

    def side(name: str | float, claim: Claim, context) -> tuple[str, Spread | None] | None:
        """The label and spread of one side of a claim; None when these runs have no such group."""
        if isinstance(name, float):
            return f"{name:g} (fixed)", Spread(name, 0.0, math.inf)
        group = by_key.get((name, context))
        if group is None:
            return None
        spread = group.spread(claim.statistic, thresholds[context])
        return f"{name}: {spread or '-'}", spread

    rows = []
    for claim in CLAIMS:
        for context in thresholds:
            sides = [side(claim.lower, claim, context), side(claim.higher, claim, context)]
            if None not in sides:
                (lower, lower_spread), (higher, higher_spread) = sides
                rows.append([claim.text, context_label(context), STATISTICS[claim.statistic][0], lower, higher,
                             verdict(lower_spread, higher_spread)])
    uncovered = [claim.text for claim in CLAIMS if claim.text not in {row[0] for row in rows}]
    table = (markdown_table(["claim", "runs", "statistic", "expected lower", "expected higher", "verdict"], rows)
             if rows else "No claim compares groups present in these runs.")
    rule = (f"A claim is supported when the mean ± std intervals are apart in its direction with n >= {MIN_RUNS} on "
            "both sides, not supported when they are apart the other way, inconclusive otherwise.")
    return "\n\n".join([table, rule + (f" Not covered by these runs: {'; '.join(uncovered)}." if uncovered else "")])


def write_plots(groups: list[Group], out: Path) -> list[str]:
    """All plots into `out`; returns their file names."""
    plot_metric(groups, "epoch", "epoch", out / "metric_vs_epoch.png")
    plot_metric(groups, "time/train_s", "training seconds (mean over runs)", out / "metric_vs_time.png")
    plot_epoch_time(groups, out / "epoch_time.png")
    plots = ["metric_vs_epoch.png", "metric_vs_time.png", "epoch_time.png"]
    if plot_gradient_histograms(groups, out / "grad_norm_hist.png"):
        plots.append("grad_norm_hist.png")
    return plots


def write_report(paths: list[Path], out: Path, threshold: float | None = None) -> str:
    """Write report.md, report.csv and the plots into `out`; returns the tables as printed."""
    runs = find_runs(paths)
    swept, groups = group_runs(runs)
    # One threshold per context: by default the worst group's final mean, a level every group can be timed to.
    thresholds = {}
    for context in sorted({group.context for group in groups}):
        finals = [s.mean for g in groups if g.context == context and (s := g.spread("final", None))]
        thresholds[context] = threshold if threshold is not None else max(finals, default=None)

    results, csv_rows = results_table(groups, thresholds)
    claims = claims_table(groups, thresholds)
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(groups, out)
    incomplete = [[str(run.path), run.status, run.summary.get("epochs_completed", len(run.records))]
                  for run in runs if run.status != "complete"]
    metrics = sorted({run.metric_key.removeprefix("eval/") for run in runs})
    threshold_text = ", ".join(f"{context_label(c)}: {t:.4g}" for c, t in thresholds.items() if t is not None)
    summary = (f"{len(runs)} runs in {len(groups)} groups. Metric: {', '.join(metrics)} (lower is better). "
               f"Swept: {', '.join(['method', *swept])}. Threshold: {threshold_text or 'none (no complete run)'}.")
    text = "\n\n".join([
        "# lipbench report", summary, "## Results", results,
        "Mean ± std over runs (n = runs with a value). final, best and the threshold columns use complete runs "
        "(a run that never reached the threshold is left out of its n); s/epoch is each run's median epoch time; "
        "‖∇D‖ and the layer norms are from the last diagnostics.",
        "## Claims", claims,
        "## Plots", *(f"![{name}]({name})" for name in plots),
        "## Incomplete runs",
        markdown_table(["run", "status", "epochs"], incomplete) if incomplete else "None: every run completed.",
    ]) + "\n"
    atomic_write(out / "report.md", lambda tmp: tmp.write_text(text))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(k for row in csv_rows for k in row)))
    writer.writeheader()
    writer.writerows(csv_rows)
    atomic_write(out / "report.csv", lambda tmp: tmp.write_text(buffer.getvalue()))
    return "\n\n".join([summary, results, claims, f"Wrote {out / 'report.md'}, report.csv and {len(plots)} plots."])


def main(argv: list[str] | None = None) -> None:
    """The `lipbench-report` command; bad input exits 2 with one line naming what to fix."""
    parser = argparse.ArgumentParser(prog="lipbench-report", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="run dirs or multirun dirs, searched recursively for summary.json")
    parser.add_argument("--out", type=Path,
                        help="where report.md, report.csv and the plots go (default: the first PATH)")
    parser.add_argument("--threshold", type=float,
                        help="quality level for epochs/seconds-to-threshold (default: the worst group's final mean)")
    args = parser.parse_args(argv)
    try:
        print(write_report(args.paths, args.out or args.paths[0], args.threshold))
    except LipbenchError as error:
        print(f"lipbench-report: error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
