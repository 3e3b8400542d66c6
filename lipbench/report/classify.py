"""The classifier part of the report: test error, generalization gap, accuracy under attack and Lipschitz
diagnostics per group, and claims about generalization and robustness computed from the runs."""
import itertools
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import permutation_test, rankdata

from lipbench.naming import short_names
from lipbench.report.figures import Palette, plot_metric, save_figure
from lipbench.report.page import Table, Text
from lipbench.report.runs import (
    ALPHA,
    CLAIM_HEADER,
    COUNT_HEADER,
    MIN_RUNS,
    VERDICT_RULE,
    Group,
    Run,
    Sample,
    Section,
    best_group,
    claim_test,
    context_label,
    finite,
    group_counts,
    group_runs,
    spread_fields,
    swept_text,
    varying_settings,
)

ATTACKS = ("fgsm", "pgd")


def final(key: str):
    """The statistic "last logged value of `key`", of complete runs only."""
    return lambda run: run.final(key)


def budgets(runs: list[Run]) -> list[str]:
    """The attack budgets the runs logged, as in their keys (robust/pgd_eps<e>), smallest first."""
    keys = {key for run in runs for record in run.records for key in record if key.startswith("robust/pgd_eps")}
    return sorted((key.removeprefix("robust/pgd_eps") for key in keys), key=float)


def statistics(eps: list[str]) -> dict:
    """Per-run statistics: name -> (column title, value of a run), with accuracy under each attack at each budget."""
    return {
        "test_error": ("test error", lambda run: run.quality("final_metric")),
        "test_accuracy": ("test acc", final("test/accuracy")),
        "gap_accuracy": ("acc gap", final("gap/accuracy")),
        "gap_loss": ("loss gap", final("gap/loss")),
        **{f"{attack}_eps{e}": (f"{attack.upper()} acc ε={e}", final(f"robust/{attack}_eps{e}"))
           for attack in ATTACKS for e in eps},
        "lipschitz_bound": ("Π layer σ", final("diag/lipschitz_bound")),
        "margin_grad_mean": ("‖∇margin‖ mean", final("diag/margin_grad_mean")),
        "margin_grad_max": ("‖∇margin‖ max", final("diag/margin_grad_max")),
        "epoch_time": ("s/epoch", Run.epoch_time),
    }


@dataclass(frozen=True)
class Comparison:
    """The claim that method `better` generalizes better than `worse`, each taken at its best strength."""

    text: str
    better: str
    worse: str


COMPARISONS = (Comparison("spectral_reg generalizes better than l2", "spectral_reg", "l2"),)
# What "generalizes better" is judged on, each lower is better: the test error and the train-test gaps.
GENERALIZATION = ("test_error", "gap_accuracy", "gap_loss")


def side(group: Group, picked_of: int, value, shown: list[str]) -> tuple[str, Sample]:
    """The table cell and the runs' values of one side of a comparison: `value` over its group's runs, labelled with
    the method and its `shown` settings (the strength: λ=...); a diverged run counts as the worst value."""
    settings = group.runs[0].method_settings
    names = short_names([f"method.{key}" for key in shown])
    strength = " ".join([group.method, *(f"{names[f'method.{key}']}={settings[key]}" for key in shown
                                         if key in settings)])
    return f"{strength} (best of {picked_of}): {group.spread(value) or '-'}", group.sample(value, quality=True)


def generalization_claims(groups: list[Group], stats: dict) -> list:
    """Each comparison per context, on test error and on both gaps, between the two methods' best strengths."""
    rows = []
    for claim, context in itertools.product(COMPARISONS, sorted({group.context for group in groups})):
        better = best_group(groups, claim.better, context, stats["test_error"][1])
        worse = best_group(groups, claim.worse, context, stats["test_error"][1])
        if better is None or worse is None:
            continue
        # Label both sides with the settings that differ across the two methods' runs: the strengths picked.
        shown = varying_settings([run for group in groups if group.context == context
                                  and group.method in (claim.better, claim.worse) for run in group.runs])
        for name in GENERALIZATION:
            title, value = stats[name]
            (better_cell, better_values), (worse_cell, worse_values) = (side(*pick, value, shown)
                                                                        for pick in (better, worse))
            test = claim_test(better_values, worse_values)
            rows.append([claim.text, context_label(context), title, better_cell, worse_cell, *test.cells(),
                         test.verdict])
    uncovered = [claim.text for claim in COMPARISONS if claim.text not in {row[0] for row in rows}]
    table = (Table(CLAIM_HEADER, rows) if rows else Text("No comparison has both of its methods among these runs."))
    picking = ("Each side is the method's strength (its group) with the lowest mean final test error among its groups "
               "here, \"best of k\". That strength is picked on the test set itself, so both test errors are "
               "optimistic: an unbiased comparison would pick it on a validation split.")
    return [table, Text(picking + " " + VERDICT_RULE + (f" Not covered by these runs: {'; '.join(uncovered)}."
                                                        if uncovered else ""))]


def standardized_ranks(values) -> np.ndarray:
    """Ranks (ties averaged, as spearmanr does) shifted to mean 0 and scaled to norm 1."""
    ranks = rankdata(values)
    ranks -= ranks.mean()
    return ranks / np.linalg.norm(ranks)


def rank_correlation(x: list[float], y: list[float]) -> tuple[float, float] | None:
    """Spearman's rho of (x, y) and its two-sided permutation p-value, exact over every pairing up to 7 points
    (else 9999 random ones); None when either side is constant. spearmanr's own p-value is a t approximation that
    is far too small for a few runs: rho = -1 on 3 runs gives p = 0, the exact p is 1/3."""
    if len(set(x)) < 2 or len(set(y)) < 2:
        return None
    # rho is the dot product of the standardized ranks; a permutation keeps their mean and norm, so permuting x's
    # ranks gives the null distribution in one vectorized product.
    ranks_x, ranks_y = standardized_ranks(x), standardized_ranks(y)
    test = permutation_test((ranks_x,), lambda ranks, axis: ranks @ ranks_y, vectorized=True,
                            permutation_type="pairings", rng=0)
    return float(test.statistic), float(test.pvalue)


def correlation_verdict(correlation: tuple[float, float] | None, n: int) -> str:
    """supported when rho < 0 with p < ALPHA and n >= MIN_RUNS, not supported when rho >= 0 with p < ALPHA, else
    inconclusive."""
    if correlation is None or n < MIN_RUNS or not correlation[1] < ALPHA:
        return "inconclusive"
    return "supported" if correlation[0] < 0 else "not supported"


def robustness_claims(groups: list[Group], eps: list[str]) -> list:
    """Across the complete runs of each context: does a smaller final Lipschitz bound go with higher PGD accuracy?"""
    rows = []
    for context, e in itertools.product(sorted({group.context for group in groups}), eps):
        pairs = [(run.final("diag/lipschitz_bound"), run.final(f"robust/pgd_eps{e}"))
                 for group in groups if group.context == context for run in group.runs]
        pairs = [(bound, accuracy) for bound, accuracy in pairs if finite(bound) and finite(accuracy)]
        correlation = rank_correlation(*zip(*pairs)) if pairs else None
        rho, p = (f"{correlation[0]:.3f}", f"{correlation[1]:.3g}") if correlation else ("-", "-")
        rows.append(["smaller Lipschitz bound → higher accuracy under attack", context_label(context),
                     f"Π layer σ vs PGD acc ε={e}", rho, p, len(pairs), correlation_verdict(correlation, len(pairs))])
    rule = (f"Spearman's rank correlation across runs (one point per complete run) between the final product of "
            f"layer σ and the final PGD accuracy; p is a two-sided permutation p-value (exact up to 7 runs). "
            f"Supported when ρ < 0 with p < {ALPHA} and n >= {MIN_RUNS}, not supported when ρ >= 0 with p < {ALPHA}, "
            f"inconclusive otherwise (ρ is undefined, \"-\", when either side is the same for every run).")
    table = (Table(["claim", "runs", "statistic", "ρ", "p", "n", "verdict"], rows)
             if rows else Text("No run logged an accuracy under PGD: no rank correlation to compute."))
    return [table, Text(rule)]


def results_table(groups: list[Group], stats: dict) -> tuple[Table, list[dict]]:
    """The per-group table, and the same numbers as CSV rows."""
    header = [*COUNT_HEADER, *(title for title, _ in stats.values())]
    rows, csv_rows = [], []
    for group in groups:
        spreads = {name: group.spread(value) for name, (_, value) in stats.items()}
        cells, fields = group_counts(group)
        rows.append([*cells, *spreads.values()])
        csv_rows.append({**fields, **spread_fields(spreads)})
    return Table(header, rows), csv_rows


def plot_robustness(groups: list[Group], palette: Palette, eps: list[str], path: Path) -> Path:
    """Accuracy against the attack budget per group, one panel per attack, error bars ± std over runs; the clean
    accuracy of the same points is budget 0."""
    fig, axes = plt.subplots(1, len(ATTACKS), figsize=(6 * len(ATTACKS), 4.5), sharey=True)
    for ax, attack in zip(axes, ATTACKS):
        for group in groups:
            spreads = [group.spread(final(key))
                       for key in ["robust/clean", *(f"robust/{attack}_eps{e}" for e in eps)]]
            points = [(budget, s) for budget, s in zip([0.0, *map(float, eps)], spreads) if s]
            if points:
                ax.errorbar([b for b, _ in points], [s.mean for _, s in points], yerr=[s.std for _, s in points],
                            capsize=3, **palette.line(group))
        ax.set_title(f"L2 {attack.upper()}"), ax.set_xlabel("ε (L2, pixel units; 0 = clean)"), ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy on the attacked test points"), axes[0].legend(fontsize=8)
    fig.suptitle("Accuracy under attack at the last evaluation: mean ± std over seeds")
    return save_figure(fig, path)


def plot_bound_vs_robustness(groups: list[Group], palette: Palette, eps: list[str], path: Path) -> Path:
    """Final Lipschitz bound (log scale) against final PGD accuracy, one point per run, coloured by method, one
    panel per budget."""
    fig, axes = plt.subplots(1, len(eps), figsize=(5 * len(eps), 4.5), sharey=True, squeeze=False)
    for ax, e in zip(axes[0], eps):
        for group in groups:
            points = [(run.final("diag/lipschitz_bound"), run.final(f"robust/pgd_eps{e}")) for run in group.runs]
            points = [(bound, accuracy) for bound, accuracy in points if finite(bound) and finite(accuracy)]
            line = palette.line(group)
            ax.scatter([b for b, _ in points], [a for _, a in points], color=line["color"], marker=line["marker"],
                       label=group.label)
        ax.set_xscale("log"), ax.set_title(f"PGD ε={e}"), ax.set_xlabel("Π layer σ (final)"), ax.grid(alpha=0.3)
        # Within one decade matplotlib labels the minor ticks too, in wide scientific notation: tilt them apart.
        ax.tick_params(axis="x", which="both", labelrotation=45, labelsize=8)
    axes[0][0].set_ylabel("PGD accuracy (final)"), axes[0][0].legend(fontsize=8)
    fig.suptitle("Lipschitz bound against accuracy under PGD, one point per run")
    return save_figure(fig, path)


def run_rows(groups: list[Group], stats: dict) -> list[dict]:
    """One row per run for the W&B report run: its group, W&B name and id, and its own statistics."""
    return [{"group": group.label, "wandb_name": run.wandb.get("name"), "wandb_id": run.summary.get("wandb_id"),
             "status": run.status, **{name: value(run) for name, (_, value) in stats.items()}}
            for group in groups for run in group.runs]


def section(runs: list[Run], out: Path) -> Section:
    """The classifier runs' section, its figures written into `out`."""
    swept, groups = group_runs(runs)
    eps = budgets(runs)
    stats = statistics(eps)
    results, csv_rows = results_table(groups, stats)
    summary = (f"{len(runs)} runs in {len(groups)} groups. Metric: test_error (lower is better). "
               f"{swept_text(swept, runs)} L2 attack budgets ε (pixel units): {', '.join(eps) or 'none'}.")
    notes = ("Mean ± std over complete runs (n = runs with a value; one run shows its value alone), all at the last "
             "evaluation. test error = 1 - test "
             "accuracy; acc gap = train - test accuracy and loss gap = test - train loss (positive when the model "
             "overfits); FGSM/PGD acc: accuracy under L2 attacks of budget ε on the fixed attacked test points; "
             "Π layer σ: the product of each layer's largest singular value (of the reshaped kernel for a "
             "convolution); ‖∇margin‖: input-gradient norm of the logit margin on those points; s/epoch: each run's "
             "median epoch time.")
    claims = [*generalization_claims(groups, stats), *robustness_claims(groups, eps)]
    palette = Palette(groups)
    figures = [plot_metric(groups, palette, "epoch", "epoch", "Test error against epoch",
                           out / "test_error_vs_epoch.png"),
               plot_robustness(groups, palette, eps, out / "robust_vs_eps.png")]
    if eps:  # none when no run got to an evaluation
        figures.append(plot_bound_vs_robustness(groups, palette, eps, out / "bound_vs_pgd.png"))
    return Section("Classifier runs", summary, results, notes, claims, figures, csv_rows, run_rows(groups, stats))
