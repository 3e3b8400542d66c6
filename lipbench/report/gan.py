"""The GAN part of the report: training curves, quality, speed to a quality threshold, cost per epoch and critic
diagnostics per group, and claims from the literature about the critic's Lipschitz methods, compared on matched
settings."""
import itertools
import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import yaml
from matplotlib.ticker import LogLocator, NullFormatter

from lipbench.report.figures import (
    PLAIN,
    Palette,
    epoch_axis,
    grid_shape,
    legend_below,
    mean_curve,
    plot_curves,
    plot_metric,
    save_figure,
)
from lipbench.report.page import Table, Text
from lipbench.report.runs import (
    CLAIM_HEADER,
    COUNT_HEADER,
    RESAMPLES,
    RESAMPLING_SEED,
    VERDICT_RULE,
    Group,
    Run,
    Sample,
    Section,
    Spread,
    best_group,
    claim_test,
    context_label,
    finite,
    group_counts,
    group_runs,
    sort_key,
    spread_fields,
    swept_text,
    trend_test,
)

GRADIENT_KINDS = ("real", "fake", "interp")


def reach(run: Run, threshold: float | None, key: str) -> float | None:
    """`key` (epoch, time/train_s) of the run's first evaluation at or below `threshold`, for complete runs."""
    if run.status != "complete" or threshold is None:
        return None
    reached = (r for r in run.records if finite(r.get(run.metric_key)) and r[run.metric_key] <= threshold)
    return next((r[key] for r in reached), None)


def reach_or_end(run: Run, threshold: float | None, key: str) -> float | None:
    """`reach` for a claim's test: a complete run that never got to the threshold counts as getting there at its
    last record (a lower bound of when it would have: its run ended first), not as missing."""
    reached = reach(run, threshold, key)
    if reached is not None or run.status != "complete" or threshold is None:
        return reached
    return max((r[key] for r in run.records if finite(r.get(key))), default=None)


def final_metric(run: Run) -> float | None:
    """The run's final quality (complete runs only)."""
    return run.quality("final_metric")


def max_layer_sigma(run: Run) -> float | None:
    """The largest per-layer sigma at the run's last diagnostics."""
    record = next((r for r in reversed(run.records) if "diag/lipschitz_bound" in r), {})
    return max_over(record, "diag/sigma/", float)


def max_sigma_hat_error(run: Run) -> float | None:
    """The largest |sigma_hat / sigma - 1| of the method's own estimates, over layers and every diagnostics."""
    return max((abs(v) for r in run.records for k, v in r.items() if k.startswith("diag/sigma_hat_error/")),
               default=None)


def noise_floor(run: Run) -> float | None:
    """The run's W1 noise floor (toy runs): the mean exact W1 between two real samples of the evaluation size."""
    value = (run.summary.get("protocol") or {}).get("w1/noise_floor")
    return value if finite(value) else None


def over_floor(run: Run) -> float | None:
    """The run's final metric as a multiple of its noise floor (toy runs; complete runs only)."""
    final, floor = final_metric(run), noise_floor(run)
    return final / floor if finite(final) and floor else None


def noise_floors(runs: list[Run]) -> dict[str, float]:
    """Each toy setting's noise floor among the runs: "8gaussians, 2000 points" -> value."""
    floors = {}
    for run in runs:
        if (floor := noise_floor(run)) is not None:
            data = run.config.get("dataset", {})
            setting = (data.get("distribution", "toy2d"), data.get("modes") or 0,
                       run.summary["protocol"].get("w1/num_generated"))
            floors[setting] = floor
    return {f"{name}{f' with {modes} modes' if modes else ''}, {points} points": floor
            for (name, modes, points), floor in sorted(floors.items())}


# Per-run statistics: name -> (column title, value of a run given the quality threshold of its context).
STATISTICS = {
    "final": ("final", lambda run, threshold: final_metric(run)),
    "best": ("best", lambda run, threshold: run.quality("best_metric")),
    "epochs_to_threshold": ("epochs to thr", lambda run, threshold: reach(run, threshold, "epoch")),
    "seconds_to_threshold": ("s to thr", lambda run, threshold: reach(run, threshold, "time/train_s")),
    "epoch_time": ("s/epoch", lambda run, threshold: run.epoch_time()),
    "grad_norm_interp_mean": ("‖∇D‖ interp mean", lambda run, threshold: run.last("diag/grad_norm/interp/mean")),
    "grad_norm_interp_max": ("‖∇D‖ interp max", lambda run, threshold: run.last("diag/grad_norm/interp/max")),
    "lipschitz_bound": ("Π layer norms", lambda run, threshold: run.last("diag/lipschitz_bound")),
    "max_layer_sigma": ("max layer σ", lambda run, threshold: max_layer_sigma(run)),
    "max_sigma_hat_error": ("max σ̂ error", lambda run, threshold: max_sigma_hat_error(run)),
    "final_over_floor": ("final ÷ noise floor", lambda run, threshold: over_floor(run)),
    # Class-conditional runs: the final per-class quality (lower is better) and class consistency (higher is).
    "final_intra_class": ("final intra-class", lambda run, threshold: run.final(f"{run.metric_key}_intra_class")),
    "class_consistency": ("class consistency", lambda run, threshold: run.final("eval/class_consistency")),
}


# What a claim's test takes of a threshold statistic: a run that never reached it counts at its end (reach_or_end).
TESTED = {**STATISTICS,
          "epochs_to_threshold": ("epochs to thr", lambda run, threshold: reach_or_end(run, threshold, "epoch")),
          "seconds_to_threshold": ("s to thr", lambda run, threshold: reach_or_end(run, threshold, "time/train_s"))}
# The statistics a diverged run has no value of: in a claim's test it counts as the worst value instead.
QUALITY = {"final", "best", "epochs_to_threshold", "seconds_to_threshold"}


def spread(group: Group, statistic: str, threshold: float | None) -> Spread | None:
    """Mean ± std of a STATISTICS entry over the group's runs."""
    value = STATISTICS[statistic][1]
    return group.spread(lambda run: value(run, threshold))


@dataclass(frozen=True)
class Claim:
    """The claim that method `lower` has a lower `statistic` than `higher`, a method or a fixed reference number."""

    text: str
    statistic: str
    lower: str | float
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


# The training curves every GAN run logs each epoch: key -> panel title.
CURVES = {
    "loss/critic": "critic loss (with penalty)",
    "loss/generator": "generator loss",
    "wasserstein_estimate": "W estimate: mean D(real) − mean D(fake)",
    "penalty": "penalty term of the critic loss",
}


def plot_training_curves(groups: list[Group], palette: Palette, path: Path) -> Path:
    """The critic and generator losses, the W estimate and the penalty against epoch, one panel each."""
    rows, columns = grid_shape(len(CURVES))
    fig, axes = plt.subplots(rows, columns, figsize=(12, 4 * rows), squeeze=False)
    for ax, (key, title) in zip(axes.flat, CURVES.items()):
        plot_curves(ax, groups, palette, key)
        epoch_axis(ax)
        ax.set_title(title, fontsize=10)
    fig.suptitle("Training curves (epoch means of each step's value): mean over seeds, band min–max")
    fig.tight_layout()
    legend_below(fig, axes.flat[0])
    return save_figure(fig, path)


def plot_epoch_time(groups: list[Group], palette: Palette, path: Path) -> Path:
    """Seconds per epoch of every group, error bars ± std over runs, coloured by method."""
    spreads = [(group, spread(group, "epoch_time", None)) for group in groups]
    spreads = [(group, s) for group, s in spreads if s is not None]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 + 0.7 * len(spreads)), 4.5))
    bars = ax.bar(range(len(spreads)), [s.mean for _, s in spreads], yerr=[s.std for _, s in spreads], capsize=4,
                  color=[palette.colour(group) for group, _ in spreads], edgecolor="white")
    for bar, (group, _) in zip(bars, spreads):
        bar.set_hatch(palette.hatch(group))
    ax.set_xticks(range(len(spreads)), [group.label for group, _ in spreads], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("seconds per epoch"), ax.grid(axis="y", alpha=0.3)
    ax.set_title("Training time per epoch (each run's median; mean ± std over seeds)")
    return save_figure(fig, path)


# The power-iteration figure's panels: a run's per-record value (the largest over its layers), title, reference line.
SIGMA_PANELS = (
    (lambda record: max_over(record, "diag/sigma_hat_error/", abs), "the method's own σ̂: max over layers of |σ̂/σ − 1|",
     0.01),
    (lambda record: max_over(record, "diag/sigma/", float), "the normalized weights: max over layers of exact σ", 1.0),
)


def max_over(record: dict, prefix: str, value) -> float | None:
    """The largest value(v) of a record's finite values under `prefix`, or None."""
    return max((value(v) for k, v in record.items() if k.startswith(prefix) and finite(v)), default=None)


def plot_sigma_estimates(groups: list[Group], palette: Palette, path: Path) -> Path | None:
    """For the methods with a power-iteration estimate (sn, sn_projection, spectral_reg, sn_conv): its error and the
    exact sigma of the weights the critic uses, against epoch (mean and min-max over seeds); None when no run logged
    an estimate."""
    estimated = [g for g in groups if any("diag/sigma_hat_error/" in k for r in g.runs for rec in r.records
                                          for k in rec)]
    if not estimated:
        return None
    fig, axes = plt.subplots(1, len(SIGMA_PANELS), figsize=(12, 4.5))
    for ax, (value, title, reference) in zip(axes, SIGMA_PANELS):
        for group in estimated:
            if (curve := mean_curve(group, value)) is None:
                continue
            epochs, mean, low, high = curve
            # A min-max band: a mean - std band would cross 0 on the log axis of a spread-out error.
            ax.plot(epochs, mean, **palette.line(group))
            ax.fill_between(epochs, low, high, color=palette.colour(group), alpha=0.12, linewidth=0)
        ax.axhline(reference, color="0.3", linestyle="--", linewidth=1)
        if "σ̂" in title:
            ax.set_yscale("log")
        epoch_axis(ax)
        ax.grid(alpha=0.3)
        ax.set_title(title, fontsize=10)
    fig.suptitle("Power iteration: the estimate's error and the resulting σ over training (mean over seeds, band "
                 "min–max; dashed: 1% error, σ = 1)")
    fig.tight_layout()
    legend_below(fig, axes[0])
    return save_figure(fig, path)


def plot_gradient_histograms(groups: list[Group], palette: Palette, path: Path) -> Path | None:
    """Distribution of ||grad_x D|| at the last diagnostics, per point kind, pooled over each group's runs."""
    fig, axes = plt.subplots(1, len(GRADIENT_KINDS), figsize=(5 * len(GRADIENT_KINDS), 4))
    drawn = False
    for ax, kind in zip(axes, GRADIENT_KINDS):
        hists = [(group, [h for h in (run.last(f"diag/grad_norm/{kind}/hist") for run in group.runs) if h])
                 for group in groups]
        edges = [e for _, hs in hists for h in hs for e in (h["edges"][0], h["edges"][-1])]
        if not edges:
            continue
        # Log-spaced common bins: a clipped critic and an unconstrained one differ by orders of magnitude.
        bins = np.geomspace(max(min(edges), 1e-8), max(max(edges), 2e-8), 41)
        for group, hs in hists:
            if hs:
                centers = np.concatenate([(np.array(h["edges"][1:]) + h["edges"][:-1]) / 2 for h in hs])
                counts, _ = np.histogram(centers, bins, weights=np.concatenate([h["counts"] for h in hs]))
                style = palette.line(group)
                ax.stairs(counts / max(counts.sum(), 1), bins, color=style["color"], linestyle=style["linestyle"],
                          label=group.label)
                drawn = True
        ax.set_xscale("log")
        # Labelled ticks at 1, 2, 5 x 10^k over a narrow range, at the decades over a wide one; matplotlib's own
        # labels every minor tick within one decade, and they overlap.
        narrow = bins[-1] / bins[0] < 100
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if narrow else (1.0,)))
        ax.xaxis.set_major_formatter(PLAIN)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"‖∇ₓD(x)‖ at {kind} points", fontsize=10), ax.set_xlabel("‖∇ₓD(x)‖")
    axes[0].set_ylabel("share of points")
    fig.suptitle("Critic input-gradient norms at the last evaluation, pooled over each group's runs")
    fig.tight_layout()
    legend_below(fig, axes[0])
    if drawn:
        return save_figure(fig, path)
    plt.close(fig)
    return None


PUBLISHED = Path(__file__).with_name("published.yaml")


@dataclass(frozen=True)
class Published:
    """A published number a group's runs can be set against, and where it comes from."""

    value: float
    row: str
    short: str
    source: str
    setting: str


def published(group: Group) -> Published | None:
    """The published number whose setting (dataset, model, method and its settings, loss, metric) every run of the
    group matches, if any."""
    for table in yaml.safe_load(PUBLISHED.read_text(encoding="utf-8")):
        for row in table["rows"]:
            if all(run.config.get("dataset", {}).get("name") == table["dataset"]
                   and run.config.get("model", {}).get("name") == table["model"]
                   and run.summary.get("metric") == table["metric"] and run.method == row["method"]
                   and run.config.get("loss", {}).get("name") == row["loss"]
                   and all(run.method_settings.get(key) == value for key, value in row["settings"].items())
                   for run in group.runs):
                return Published(row["value"], row["row"], table["short"], table["source"], table["setting"])
    return None


def statistic_cell(group: Group, name: str, value: Spread | None, threshold: float | None) -> str:
    """A statistic's cell; a threshold column also says how many complete runs never reached the threshold."""
    never = sum(run.status == "complete" and reach(run, threshold, "epoch") is None for run in group.runs)
    if not name.endswith("_to_threshold") or threshold is None or not never:
        return str(value or "-")
    runs = f"{never}/{group.count('complete')}"
    return f"never ({runs} runs)" if value is None else f"{value}, {runs} never"


def results_table(groups: list[Group], thresholds: dict) -> tuple[Table, list[dict], list[Published]]:
    """The per-group table, the same numbers as CSV rows, and the published numbers it shows (a "published" column
    beside "final", only when some group matches a published setting)."""
    by_arm = {(group.arm, group.context): group for group in groups}
    matches = [published(group) for group in groups]
    titles = [title for title, _ in STATISTICS.values()]
    if any(matches):
        titles.insert(1, "published")
    header = [*COUNT_HEADER, *titles, "s/epoch ÷ none"]
    rows, csv_rows = [], []
    for group, match in zip(groups, matches):
        threshold = thresholds[group.context]
        spreads = {name: spread(group, name, threshold) for name in STATISTICS}
        base = by_arm.get(("none", group.context))
        base_time = spread(base, "epoch_time", None) if base else None
        ratio = spreads["epoch_time"].mean / base_time.mean if base_time and spreads["epoch_time"] else None
        cells, fields = group_counts(group)
        statistics_cells = [statistic_cell(group, name, s, threshold) for name, s in spreads.items()]
        if any(matches):
            statistics_cells.insert(1, f"{match.value:g} ({match.short}: {match.row})" if match else None)
        rows.append([*cells, *statistics_cells, None if ratio is None else f"{ratio:.2f}"])
        csv_rows.append({**fields, "threshold": threshold, **spread_fields(spreads),
                         "published": match.value if match else None, "epoch_time_ratio_to_none": ratio})
    return Table(header, rows), csv_rows, [match for match in matches if match]


def matched_pairs(lower: list[Group], higher: list[Group]) -> list[tuple[Group, Group]]:
    """The pairs of groups a claim compares like with like: every arm against a method that comes at one setting
    (SN against GP at each λ), else the arms that agree on the settings both methods vary (gp λ=10 against
    gp_relu λ=10); none when the two methods vary unrelated settings (those meet only at their best)."""
    if min(len(lower), len(higher)) <= 1:  # a method absent (no pair) or at one setting (against each arm)
        return list(itertools.product(lower, higher))
    shared = {key for key, _ in lower[0].variant} & {key for key, _ in higher[0].variant}
    return [(a, b) for a, b in itertools.product(lower, higher)
            if shared and all(dict(a.variant)[key] == dict(b.variant)[key] for key in shared)]


def claims_blocks(groups: list[Group], thresholds: dict) -> list:
    """A verdict for every claim whose two sides are among the groups, per context: one row per matched pair of
    settings, and one between each method's best setting when a side comes at several."""
    rows = []
    for claim, context in itertools.product(CLAIMS, thresholds):
        threshold = thresholds[context]

        def cell(group: Group, picked_of: int = 1) -> tuple[str, Sample]:
            """A side's label with its spread of the claim's statistic, and its runs' values for the test."""
            value = TESTED[claim.statistic][1]
            best = f" (best of {picked_of})" if picked_of > 1 else ""
            text = statistic_cell(group, claim.statistic, spread(group, claim.statistic, threshold), threshold)
            return (f"{group.arm}{best}: {text}",
                    group.sample(lambda run: value(run, threshold), claim.statistic in QUALITY))

        def arms(method: str) -> list[Group]:
            """The groups of `method` in this context."""
            return [group for group in groups if group.method == method and group.context == context]

        def fixed(number: float) -> tuple[str, float]:
            """A fixed reference number's cell and value."""
            return f"{number:g} (fixed)", number

        if isinstance(claim.lower, float):
            sides = [(fixed(claim.lower), cell(group)) for group in arms(claim.higher)]
        elif isinstance(claim.higher, float):
            sides = [(cell(group), fixed(claim.higher)) for group in arms(claim.lower)]
        else:
            lower, higher = arms(claim.lower), arms(claim.higher)
            sides = [(cell(a), cell(b)) for a, b in matched_pairs(lower, higher)]
            if lower and higher and max(len(lower), len(higher)) > 1:
                best_lower = best_group(groups, claim.lower, context, final_metric)
                best_higher = best_group(groups, claim.higher, context, final_metric)
                if best_lower and best_higher:
                    sides.append((cell(*best_lower), cell(*best_higher)))
        for (lower_cell, lower_values), (higher_cell, higher_values) in sides:
            test = claim_test(lower_values, higher_values)
            rows.append([claim.text, context_label(context), STATISTICS[claim.statistic][0], lower_cell,
                         higher_cell, *test.cells(), test.verdict])
    uncovered = [claim.text for claim in CLAIMS if claim.text not in {row[0] for row in rows}]
    table = (Table(CLAIM_HEADER, rows) if rows else Text("No claim compares groups present in these runs."))
    pairing = ("Sides are compared on matched settings: a method at one setting against each setting of the other "
               "(SN against GP at each λ; a loss is a method's setting too, so SN at hinge meets GP at the Wasserstein "
               "loss, as the SN paper compares them), methods that vary the same setting at equal values "
               "(gp λ=10 against gp_relu λ=10), and, when a side comes at several settings, each method at its best "
               "one (\"best of k\": the lowest mean final metric, picked on these same runs, which flatters both "
               "sides).")
    return [table, Text(" ".join([pairing, VERDICT_RULE, *([f"Not covered by these runs: {'; '.join(uncovered)}."]
                                                          if uncovered else [])]))]


@dataclass(frozen=True)
class Axis:
    """A swept key that a trend claim is tested along: how its values become numbers, and how the table says so."""

    x: Callable[[str], float]  # the key's value, as a run records it, -> the x of the regression
    cell: Callable[[float], str]  # an x -> its name in the table
    statistic: str  # the slope's column title
    by: str  # what the cells of the gap column are by


AXES = {
    "dataset.modes": Axis(lambda value: math.log2(float(value)), lambda x: f"{2 ** x:g}", "slope per doubling",
                          "modes (classes)"),
    # Two cells, 0 and 1: the slope of the means is the conditional mean gap minus the unconditional one.
    "task.conditional": Axis(lambda value: float(value == "True"), lambda x: "conditional" if x else "unconditional",
                             "Δ conditional − unconditional", "conditioning"),
}


@dataclass(frozen=True)
class Trend:
    """The claim that method `worse`'s final-metric gap to `better` grows along the swept `key` (an AXES key)."""

    text: str
    worse: str
    better: str
    key: str = "dataset.modes"


TRENDS = (Trend("GP's quality gap to SN grows with the number of modes (classes)", "gp", "sn"),
          Trend("gp_relu's quality gap to SN grows with the number of modes (classes)", "gp_relu", "sn"),
          Trend("GP's quality gap to SN is larger in conditional than in unconditional generation", "gp", "sn",
                "task.conditional"),
          Trend("gp_relu's quality gap to SN is larger in conditional than in unconditional generation", "gp_relu",
                "sn", "task.conditional"))


def seed_gaps(worse: Group, better: Group) -> list[float]:
    """`worse`'s final metric minus `better`'s at each seed both ran; a diverged run counts as the worst (highest)
    final metric of the two groups, an unfinished one is left out."""
    finals = {id(run): final_metric(run) for run in [*worse.runs, *better.runs]}
    worst = max((v for v in finals.values() if finite(v)), default=None)

    def by_seed(group: Group) -> dict:
        return {str(run.config.get("seed")): worst if run.status == "diverged" else finals[id(run)]
                for run in group.runs}

    a, b = by_seed(worse), by_seed(better)
    return [a[seed] - b[seed] for seed in sorted(set(a) & set(b)) if finite(a[seed]) and finite(b[seed])]


TREND_RULE = (
    "Trend claims: at each value of the swept key (a number of modes, or unconditional and conditional generation), "
    "the gap is a seed's final metric of the first method minus SN's at the same seed (a diverged run counts as the "
    "worst final metric of the two at that value); the statistic is the least-squares slope of the mean gap against "
    "log2(modes), the gap's growth per doubling of the modes, or against 0 (unconditional) and 1 (conditional), "
    "which is the conditional mean gap minus the unconditional one. "
    f"Its 95% interval bootstraps the seeds within each value ({RESAMPLES} resamples, seed {RESAMPLING_SEED}); p is "
    "one-sided, from permutations that shuffle the gaps across the values; r is Pearson's correlation of the gaps "
    "with x. The verdict follows the rule above with the slope in place of Δ; a method at several settings enters "
    "at its best (lowest mean final metric) at each value. Every other swept key (the other axis, the dataset) "
    "gets a row of its own.")


def trend_blocks(groups: list[Group]) -> list:
    """A table per AXES key that the runs sweep: a row for each trend claim along it and each setting of the other
    swept keys."""
    tables = []
    for key, axis in AXES.items():
        rows = []
        for trend in (trend for trend in TRENDS if trend.key == key):
            gaps = defaultdict(dict)  # the other swept keys' values -> {x: the seeds' gaps}
            for context in sorted({group.context for group in groups},
                                  key=lambda context: [sort_key(value) for _, value in context]):
                values = dict(context)
                worse = best_group(groups, trend.worse, context, final_metric)
                better = best_group(groups, trend.better, context, final_metric)
                if key in values and worse and better:
                    rest = tuple((other, value) for other, value in context if other != key)
                    gaps[rest][axis.x(values[key])] = seed_gaps(worse[0], better[0])
            for rest, cells in gaps.items():
                test = trend_test(cells)
                means = ", ".join(f"{axis.cell(x)}: {statistics.fmean(gap):.3g} (n={len(gap)})"
                                  for x, gap in sorted(cells.items()) if gap)
                rows.append([trend.text, context_label(rest), means, *test.cells(), test.verdict])
        if rows:
            header = ["claim", "runs", f"mean gap of final metric by {axis.by}", axis.statistic,
                      f"95% CI of {axis.statistic.split(' ')[0]}", "p (one-sided)", "Pearson r", "verdict"]
            tables.append(Table(header, rows))
    return [*tables, Text(TREND_RULE)] if tables else []


def value_at(run: Run, epoch: int) -> float | None:
    """The run's metric at its first evaluation at or after `epoch`."""
    return next((r[run.metric_key] for r in run.records if r["epoch"] >= epoch and finite(r.get(run.metric_key))),
                None)


def default_threshold(groups: list[Group]) -> tuple[float | None, str]:
    """A level that tells groups apart: the mean metric the best group (lowest final mean) had half-way through
    its run. Returns it and how it was found."""
    finals = [(s.mean, group) for group in groups if (s := spread(group, "final", None))]
    if not finals:
        return None, "none (no complete run)"
    best = min(finals, key=lambda item: item[0])[1]
    epochs = max(run.config.get("train", {}).get("epochs", 1) for run in best.runs)
    half = math.ceil(epochs / 2)
    level = Spread.of(value_at(run, half) for run in best.runs if run.status == "complete")
    if level is None:
        return None, "none (the best group has no evaluation half-way)"
    return level.mean, f"{level.mean:.4g}, the mean of the best group ({best.label}) at epoch {half} of {epochs}"


def section(runs: list[Run], out: Path, threshold: float | None = None) -> Section:
    """The GAN runs' section, its figures written into `out`; `threshold` is the quality level to time groups to."""
    swept, groups = group_runs(runs)
    contexts = sorted({group.context for group in groups}, key=lambda context: [sort_key(v) for _, v in context])
    found = {context: (threshold, f"{threshold:.4g}, set by --threshold") if threshold is not None
             else default_threshold([group for group in groups if group.context == context]) for context in contexts}
    thresholds = {context: level for context, (level, _) in found.items()}
    results, csv_rows, matches = results_table(groups, thresholds)
    metrics = sorted({run.metric_key.removeprefix("eval/") for run in runs})
    threshold_text = "; ".join(f"{context_label(context)}: {text}" if len(found) > 1 else text
                               for context, (_, text) in found.items())
    floors = noise_floors(runs)
    floor_text = ("; ".join(f"{label}: {value:.4g}" for label, value in floors.items()))
    summary = (f"{len(runs)} runs in {len(groups)} groups. Metric: {', '.join(metrics)} (lower is better). "
               f"{swept_text(swept, runs)} Threshold: {threshold_text}."
               + (f" Noise floor (the mean exact W1 between two independent real samples of the evaluation size; "
                  f"a generator of the data scores it on average, one that blurs modes the sample cannot resolve "
                  f"may score below it): {floor_text}." if floors else ""))
    notes = ("Mean ± std over runs (n = runs with a value; one run shows its value alone). final, best and the "
             "threshold columns use complete runs. The threshold is, unless --threshold sets it, the mean metric "
             "that the best group (lowest final mean) had at the first evaluation half-way through its run, so "
             "groups that get there sooner take fewer epochs; \"k/n never\" counts the complete runs that never "
             "reached it, which the mean leaves out. s/epoch is each run's median epoch time; ‖∇D‖ and the layer "
             "norms are from the last diagnostics; max σ̂ error is the largest |σ̂/σ − 1| of the method's own "
             "estimates over layers and evaluations; final ÷ noise floor (toy runs) is each run's final W1 over the "
             "floor of its setting: 1 is a generator as good as the data's own sampling noise. Class-conditional runs "
             "(task.conditional=true) add the final intra-class metric (the metric between each class's generated "
             "and real samples, averaged over classes) and class consistency (the share of generated samples that "
             "the dataset's classifier, or the nearest mode on toy mixtures, assigns to the class requested)."
             + "".join(f" published: {source}. Its setting: {setting}"
                       for source, setting in dict.fromkeys((match.source, match.setting) for match in matches)))
    palette = Palette(groups)
    figures = [plot_training_curves(groups, palette, out / "training_curves.png"),
               plot_metric(groups, palette, "epoch", "epoch", "Quality against epoch", out / "metric_vs_epoch.png",
                           floors),
               plot_metric(groups, palette, "time/train_s", "training seconds (mean over seeds; evaluation excluded)",
                           "Quality against training time", out / "metric_vs_time.png", floors),
               plot_epoch_time(groups, palette, out / "epoch_time.png"),
               plot_gradient_histograms(groups, palette, out / "grad_norm_hist.png"),
               plot_sigma_estimates(groups, palette, out / "sigma_estimates.png")]
    return Section("GAN runs", summary, results, notes, [*claims_blocks(groups, thresholds), *trend_blocks(groups)],
                   [figure for figure in figures if figure], csv_rows, run_rows(groups, thresholds),
                   samples(groups))


def run_rows(groups: list[Group], thresholds: dict) -> list[dict]:
    """One row per run for the W&B report run: its group, W&B name and id, and its own statistics."""
    return [{"group": group.label, "wandb_name": run.wandb.get("name"), "wandb_id": run.summary.get("wandb_id"),
             "status": run.status, "threshold": thresholds[group.context],
             **{name: value(run, thresholds[group.context]) for name, (_, value) in STATISTICS.items()}}
            for group in groups for run in group.runs]


def samples(groups: list[Group]) -> list[tuple[str, Path]]:
    """The last sample figure of each group's best run (lowest final metric), captioned with the group."""
    shown = []
    for group in groups:
        ranked = sorted((run for run in group.runs if finite(run.quality("final_metric"))),
                        key=lambda run: run.quality("final_metric"))
        if ranked and (grid := ranked[0].sample_grid()):
            shown.append((f"{group.label}: seed {ranked[0].config.get('seed')}, "
                          f"{ranked[0].summary.get('metric')} {ranked[0].quality('final_metric'):.4g}", grid))
    return shown
