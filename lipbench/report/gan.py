"""The GAN part of the report: quality, speed to a quality threshold, cost per epoch and critic diagnostics per
group, and claims from the literature about the critic's Lipschitz methods."""
import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from lipbench.report.runs import (
    COUNT_HEADER,
    VERDICT_RULE,
    Group,
    Run,
    Section,
    Spread,
    context_label,
    finite,
    group_counts,
    group_runs,
    markdown_table,
    plot_metric,
    save_figure,
    spread_fields,
    verdict,
)

GRADIENT_KINDS = ("real", "fake", "interp")


def reach(run: Run, threshold: float | None, key: str) -> float | None:
    """`key` (epoch, time/train_s) of the run's first evaluation at or below `threshold`, for complete runs."""
    if run.status != "complete" or threshold is None:
        return None
    reached = (r for r in run.records if finite(r.get(run.metric_key)) and r[run.metric_key] <= threshold)
    return next((r[key] for r in reached), None)


def max_layer_sigma(run: Run) -> float | None:
    """The largest per-layer sigma at the run's last diagnostics."""
    record = next((r for r in reversed(run.records) if "diag/lipschitz_bound" in r), {})
    return max((v for k, v in record.items() if k.startswith("diag/sigma/")), default=None)


def max_sigma_hat_error(run: Run) -> float | None:
    """The largest |sigma_hat / sigma - 1| of the method's own estimates, over layers and every diagnostics."""
    return max((abs(v) for r in run.records for k, v in r.items() if k.startswith("diag/sigma_hat_error/")),
               default=None)


# Per-run statistics: name -> (column title, value of a run given the quality threshold of its context).
STATISTICS = {
    "final": ("final", lambda run, threshold: run.quality("final_metric")),
    "best": ("best", lambda run, threshold: run.quality("best_metric")),
    "epochs_to_threshold": ("epochs to thr", lambda run, threshold: reach(run, threshold, "epoch")),
    "seconds_to_threshold": ("s to thr", lambda run, threshold: reach(run, threshold, "time/train_s")),
    "epoch_time": ("s/epoch", lambda run, threshold: run.epoch_time()),
    "grad_norm_interp_mean": ("‖∇D‖ interp mean", lambda run, threshold: run.last("diag/grad_norm/interp/mean")),
    "grad_norm_interp_max": ("‖∇D‖ interp max", lambda run, threshold: run.last("diag/grad_norm/interp/max")),
    "lipschitz_bound": ("Π layer norms", lambda run, threshold: run.last("diag/lipschitz_bound")),
    "max_layer_sigma": ("max layer σ", lambda run, threshold: max_layer_sigma(run)),
    "max_sigma_hat_error": ("max σ̂ error", lambda run, threshold: max_sigma_hat_error(run)),
}


def spread(group: Group, statistic: str, threshold: float | None) -> Spread | None:
    """Mean ± std of a STATISTICS entry over the group's runs."""
    value = STATISTICS[statistic][1]
    return group.spread(lambda run: value(run, threshold))


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
    Claim("fro_clip (Frobenius-norm clipping) ends better than clip", "final", "fro_clip", "clip"),
    Claim("fro_penalty converges slowly: more epochs to the threshold than sn", "epochs_to_threshold", "sn",
          "fro_penalty"),
    Claim("fro_penalty converges slowly: more epochs to the threshold than gp", "epochs_to_threshold", "gp",
          "fro_penalty"),
    Claim("sn_conv bounds the critic's slope at interpolates by 1 (+2%)", "grad_norm_interp_max", "sn_conv", 1.02),
    Claim("with a persistent u, sn's sigma estimate stays within 1% over training", "max_sigma_hat_error", "sn", 0.01),
    Claim("from a fresh all-ones start, sn_projection leaves a layer's sigma more than 1% above 1", "max_layer_sigma",
          1.01, "sn_projection"),
)


def plot_epoch_time(groups: list[Group], path: Path) -> None:
    """Seconds per epoch of every group, error bars ± std over runs."""
    spreads = [(group.label, spread(group, "epoch_time", None)) for group in groups]
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


def results_table(groups: list[Group], thresholds: dict) -> tuple[str, list[dict]]:
    """The per-group markdown table, and the same numbers as CSV rows."""
    by_arm = {(group.arm, group.context): group for group in groups}
    header = [*COUNT_HEADER, *(title for title, _ in STATISTICS.values()), "s/epoch ÷ none"]
    rows, csv_rows = [], []
    for group in groups:
        spreads = {name: spread(group, name, thresholds[group.context]) for name in STATISTICS}
        base = by_arm.get(("none", group.context))
        base_time = spread(base, "epoch_time", None) if base else None
        ratio = spreads["epoch_time"].mean / base_time.mean if base_time and spreads["epoch_time"] else None
        cells, fields = group_counts(group)
        rows.append([*cells, *spreads.values(), None if ratio is None else f"{ratio:.2f}"])
        csv_rows.append({**fields, "threshold": thresholds[group.context], **spread_fields(spreads),
                         "epoch_time_ratio_to_none": ratio})
    return markdown_table(header, rows), csv_rows


def claims_table(groups: list[Group], thresholds: dict) -> str:
    """A verdict for every claim whose two sides are among the groups, in each context where they are (one row per
    pair of arms when a method comes at several settings)."""

    def sides(name: str | float, claim: Claim, context) -> list[tuple[str, Spread | None]]:
        """The label and spread of each group that is one side of a claim; a fixed number is a side of its own."""
        if isinstance(name, float):
            return [(f"{name:g} (fixed)", Spread(name, 0.0, math.inf))]
        matching = [group for group in groups if group.method == name and group.context == context]
        spreads = [spread(group, claim.statistic, thresholds[context]) for group in matching]
        return [(f"{group.arm}: {s or '-'}", s) for group, s in zip(matching, spreads)]

    rows = []
    for claim in CLAIMS:
        for context in thresholds:
            pairs = itertools.product(sides(claim.lower, claim, context), sides(claim.higher, claim, context))
            for (lower, lower_spread), (higher, higher_spread) in pairs:
                rows.append([claim.text, context_label(context), STATISTICS[claim.statistic][0], lower, higher,
                             verdict(lower_spread, higher_spread)])
    uncovered = [claim.text for claim in CLAIMS if claim.text not in {row[0] for row in rows}]
    table = (markdown_table(["claim", "runs", "statistic", "expected lower", "expected higher", "verdict"], rows)
             if rows else "No claim compares groups present in these runs.")
    return "\n\n".join([table, VERDICT_RULE + (f" Not covered by these runs: {'; '.join(uncovered)}."
                                               if uncovered else "")])


def write_plots(groups: list[Group], out: Path) -> list[str]:
    """All plots into `out`; returns their file names."""
    plot_metric(groups, "epoch", "epoch", out / "metric_vs_epoch.png")
    plot_metric(groups, "time/train_s", "training seconds (mean over runs)", out / "metric_vs_time.png")
    plot_epoch_time(groups, out / "epoch_time.png")
    plots = ["metric_vs_epoch.png", "metric_vs_time.png", "epoch_time.png"]
    if plot_gradient_histograms(groups, out / "grad_norm_hist.png"):
        plots.append("grad_norm_hist.png")
    return plots


def section(runs: list[Run], out: Path, threshold: float | None = None) -> Section:
    """The GAN runs' section, its plots written into `out`; `threshold` is the quality level to time groups to."""
    swept, groups = group_runs(runs)
    # One threshold per context: by default the worst group's final mean, a level every group can be timed to.
    finals = defaultdict(list)
    for group in groups:
        if final := spread(group, "final", None):
            finals[group.context].append(final.mean)
    thresholds = {context: threshold if threshold is not None else max(finals[context], default=None)
                  for context in sorted({group.context for group in groups})}
    results, csv_rows = results_table(groups, thresholds)
    metrics = sorted({run.metric_key.removeprefix("eval/") for run in runs})
    threshold_text = ", ".join(f"{context_label(c)}: {t:.4g}" for c, t in thresholds.items() if t is not None)
    summary = (f"{len(runs)} runs in {len(groups)} groups. Metric: {', '.join(metrics)} (lower is better). "
               f"Swept: {', '.join(['method', *swept])}. Threshold: {threshold_text or 'none (no complete run)'}.")
    notes = ("Mean ± std over runs (n = runs with a value). final, best and the threshold columns use complete runs "
             "(a run that never reached the threshold is left out of its n); s/epoch is each run's median epoch "
             "time; ‖∇D‖ and the layer norms are from the last diagnostics; max σ̂ error is the largest "
             "|σ̂/σ − 1| of the method's own estimates over layers and evaluations.")
    return Section("GAN runs", summary, results, notes, claims_table(groups, thresholds), write_plots(groups, out),
                   csv_rows)
