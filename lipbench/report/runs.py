"""Finished runs read back from their run dirs and grouped for comparison, and what every task's report shares:
spreads over seeds, the verdict rule, the swept settings, picking a method's best strength."""
import json
import math
import os
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import bootstrap, permutation_test

from lipbench import LipbenchError
from lipbench.files import describe, read_jsonl
from lipbench.naming import bookkeeping_keys, parse_overrides, short_names
from lipbench.report.page import Table

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
        if math.isinf(self.n):
            return f"{self.mean:.4g}"
        # One run has no spread to show: "± 0" would claim a precision that was never measured.
        return f"{self.mean:.4g} (n=1)" if self.n == 1 else f"{self.mean:.4g} ± {self.std:.2g} (n={self.n})"


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
        self.overrides = parse_overrides(summary.get("overrides", []))
        # How the run appears on W&B (group, name, ...); runs from before it was recorded have none.
        self.wandb = summary.get("wandb") or {}

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

    def sample_grid(self) -> Path | None:
        """The last figure the run's evaluations drew (samples over the data), if any."""
        return max((self.path / "figures").glob("*.png"), default=None)

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
        """The method and the settings of its own that differ across its runs, named as in W&B: "l2 λ=0.001"; with the
        training choices that differ across the report ("sn loss=hinge")."""
        names = short_names([key for key, _ in self.variant])
        return " ".join([self.method, *(f"{names[key]}={value}" for key, value in self.variant)])

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

    def sample(self, value: Callable[[Run], float | None], quality: bool) -> "Sample":
        """The finite values of value(run) over the runs, for a claim's test; when `quality` (a statistic that a
        diverged run lacks: final, best, epochs to a threshold), with the count of diverged runs."""
        values = [v for run in self.runs if finite(v := value(run))]
        return Sample(values, self.count("diverged") if quality else 0)


# Significance level of every claim's one-sided test.
ALPHA = 0.05
# Bootstrap resamples; a permutation test is exact (every split of the runs) when there are at most this many splits.
RESAMPLES = 9999
# The resampling's fixed seed: the same runs always give the same intervals and p-values.
RESAMPLING_SEED = 0


@dataclass(frozen=True)
class Sample:
    """One side of a claim: the values of its runs, and how many of its runs diverged (each counts as the worst
    value of the comparison; 0 for a statistic a diverged run still has, such as its time per epoch)."""

    values: list[float]
    diverged: int = 0


def mean_difference(higher, lower, axis=-1):
    """mean(higher) - mean(lower) along `axis` (vectorized for scipy's resampling)."""
    return np.mean(higher, axis=axis) - np.mean(lower, axis=axis)


def hedges_g(samples: tuple[np.ndarray, ...], difference: float) -> float:
    """Hedges' g: `difference` over the pooled sample std (one-sample: the sample's std), times the small-sample
    correction 1 - 3 / (4 df - 1); +-inf when the values do not vary at all, NaN below 2 degrees of freedom."""
    df = sum(len(s) - 1 for s in samples)
    if df < 2:  # the correction is 0 at df = 1: no effect size from two runs
        return math.nan
    pooled = math.sqrt(sum((len(s) - 1) * np.var(s, ddof=1) for s in samples) / df)
    if pooled == 0:
        return math.copysign(math.inf, difference) if difference else math.nan
    return difference / pooled * (1 - 3 / (4 * df - 1))


@dataclass(frozen=True)
class Test:
    """A claim's statistic: difference = mean(expected higher) - mean(expected lower), positive when the claim
    holds; its 95% bootstrap interval [low, high]; the one-sided permutation p-value of difference > 0; Hedges' g.
    All None when a side has fewer than 2 runs."""

    difference: float | None = None
    low: float | None = None
    high: float | None = None
    p: float | None = None
    g: float | None = None

    @property
    def verdict(self) -> str:
        """VERDICT_RULE."""
        if self.low is None:
            return "inconclusive"
        if self.low > 0 and self.p < ALPHA:
            return "supported"
        return "not supported" if self.high < 0 else "inconclusive"

    def cells(self) -> list[str | None]:
        """Its table cells: difference, interval, p, g (None shows as "-")."""
        if self.difference is None:
            return [None] * 4
        g = (None if math.isnan(self.g) else "∞" if self.g == math.inf else "-∞" if self.g == -math.inf
             else f"{self.g:.2f}")
        return [f"{self.difference:.4g}", f"[{self.low:.4g}, {self.high:.4g}]", f"{self.p:.3g}", g]


def with_worst(sample: Sample, worst: float) -> np.ndarray:
    """The sample's values with each diverged run counted as `worst`."""
    return np.array([*sample.values, *[worst] * sample.diverged], dtype=float)


def claim_test(lower: Sample | float, higher: Sample | float) -> Test:
    """The test of "lower < higher", each side a sample of runs or a fixed reference number (then one-sample: the
    bootstrap interval of the other side's mean and a sign-flip permutation test). A diverged run counts as the
    highest value measured in the comparison (every claimed statistic is lower-is-better for a working run)."""
    measured = [v for side in (lower, higher) if isinstance(side, Sample) for v in side.values]
    measured += [side for side in (lower, higher) if not isinstance(side, Sample)]
    if not measured:
        return Test()
    worst = max(measured)
    low, high = (with_worst(side, worst) if isinstance(side, Sample) else side for side in (lower, higher))
    resampling = {"vectorized": True, "rng": RESAMPLING_SEED}
    if isinstance(low, np.ndarray) and isinstance(high, np.ndarray):
        if min(len(low), len(high)) < 2:
            return Test()
        samples, statistic, permutation = (high, low), mean_difference, "independent"
    else:  # one side is a fixed number: test the other side's distance to it, positive when the claim holds
        values = high - low  # an array either way
        if len(values) < 2:
            return Test()
        samples, statistic, permutation = (values,), lambda x, axis=-1: np.mean(x, axis=axis), "samples"
    difference = float(statistic(*samples))
    interval = bootstrap(samples, statistic, n_resamples=RESAMPLES, method="percentile", **resampling)
    p = permutation_test(samples, statistic, permutation_type=permutation, alternative="greater",
                         n_resamples=RESAMPLES, **resampling).pvalue
    return Test(difference, float(interval.confidence_interval.low), float(interval.confidence_interval.high),
                float(p), hedges_g(samples, difference))


def slope_of_means(x: np.ndarray):
    """The statistic of a trend: the least-squares slope of the cell means against `x` (one cell per x value)."""
    centred = x - x.mean()

    def slope(*cells, axis=-1):
        means = np.stack([np.mean(cell, axis=axis) for cell in cells], axis=-1)
        return (means * centred).sum(axis=-1) / (centred ** 2).sum()
    return slope


def trend_test(cells: dict[float, list[float]]) -> Test:
    """The test of "the values grow with x": the slope of the cell means against x (cells: x -> values), its
    bootstrap interval (resampling within each cell), the one-sided permutation p-value of slope > 0 (shuffling
    the values across cells) and, as the effect size, Pearson's r between x and the values. None fields when there
    are fewer than 2 cells with 2 values each."""
    cells = {x: np.asarray(values, dtype=float) for x, values in sorted(cells.items()) if len(values) >= 2}
    if len(cells) < 2:
        return Test()
    statistic = slope_of_means(np.array(list(cells), dtype=float))
    samples = tuple(cells.values())
    resampling = {"vectorized": True, "rng": RESAMPLING_SEED, "n_resamples": RESAMPLES}
    interval = bootstrap(samples, statistic, method="percentile", **resampling).confidence_interval
    p = permutation_test(samples, statistic, permutation_type="independent", alternative="greater",
                         **resampling).pvalue
    x = np.concatenate([[key] * len(values) for key, values in cells.items()])
    values = np.concatenate(samples)
    r = float(np.corrcoef(x, values)[0, 1]) if values.std() > 0 else math.nan
    return Test(float(statistic(*samples)), float(interval.low), float(interval.high), float(p), r)


# The columns of every claim table.
CLAIM_HEADER = ["claim", "runs", "statistic", "expected lower", "expected higher", "Δ (higher − lower)", "95% CI of Δ",
                "p (one-sided)", "Hedges' g", "verdict"]

VERDICT_RULE = (
    "Each claim row gives Δ = mean of the expected-higher side − mean of the expected-lower side (positive when the "
    f"claim holds), its 95% percentile-bootstrap interval over runs ({RESAMPLES} resamples of each side's runs, "
    f"seed {RESAMPLING_SEED}), the one-sided permutation p-value of Δ > 0 (exact, over every split of the runs, "
    f"when there are at most {RESAMPLES} splits: 252 for 5 + 5 runs) and Hedges' g (Δ over the pooled sample std, "
    "times 1 − 3/(4·df − 1)). Against a fixed number the same is computed on one side: the bootstrap interval of "
    "its mean distance to the number and a sign-flip permutation test. A claim is supported when the interval lies "
    f"above 0 and p < {ALPHA}, not supported when the interval lies below 0, and inconclusive otherwise (or with "
    "fewer than 2 runs a side). A run that diverged counts as the worst value measured in the comparison (the "
    "highest, on either side), not as missing; a complete run that never reached a threshold counts as reaching it "
    "at its last epoch (a lower bound: the run ended first); unfinished runs are left out. With 3 runs a side the "
    "smallest "
    "possible p is 1/20 = 0.05, so a verdict needs at least 4 runs a side: the claim presets run 5 seeds.")


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


def sort_key(value: str) -> tuple:
    """Settings in numeric order where they are numbers (1, 10, 100), else alphabetically."""
    try:
        return 0, float(value), ""
    except ValueError:
        return 1, 0.0, value


# Swept keys that belong to how a method is trained, as its own settings do: the published comparisons give each
# method its own loss (SN paper: WGAN-GP the Wasserstein loss, SN-GANs hinge), so such runs are still compared.
TRAINING_CHOICES = ("loss",)


def group_runs(runs: list[Run]) -> tuple[dict[str, list[str]], list[Group]]:
    """The swept settings (every one whose value differs across the runs, seeds aside, with its values) and the
    groups. A method is split by its own settings that differ across its runs (`method=l2/1e-3,l2/1e-2` gives the
    groups "l2 λ=0.001" and "l2 λ=0.01") and by the TRAINING_CHOICES that differ across all runs ("sn loss=hinge",
    "gp loss=wasserstein"); any other swept key is the group's context. Bookkeeping keys (where a run is logged)
    split nothing, also in runs recorded before a key joined conf/config.yaml's list of them."""
    ignored = ("seed", *bookkeeping_keys())
    keys = sorted({key for run in runs for key in run.overrides
                   if key not in ignored and key.split(".")[0] != "method"})
    swept_keys = [key for key in keys if len({run.setting(key) for run in runs}) > 1]
    choices = [key for key in swept_keys if key.split(".")[0] in TRAINING_CHOICES]
    context_keys = [key for key in swept_keys if key not in choices]
    methods = sorted({run.method for run in runs})
    varying = {method: varying_settings([run for run in runs if run.method == method]) for method in methods}
    groups = defaultdict(list)
    for run in runs:
        variant = tuple((f"method.{key}", str(run.method_settings.get(key))) for key in varying[run.method])
        variant += tuple((key, run.setting(key)) for key in choices)
        groups[run.method, variant, tuple((key, run.setting(key)) for key in context_keys)].append(run)

    def order(item):
        (method, variant, context), _ = item
        return ([sort_key(value) for _, value in context], method != "none", method,
                [sort_key(value) for _, value in variant])

    ordered = [Group(method, variant, context, members)
               for (method, variant, context), members in sorted(groups.items(), key=order)]

    def values(setting: Callable[[Run], object]) -> list[str]:
        """The distinct values of a setting over the runs, in order."""
        return sorted({str(setting(run)) for run in runs if setting(run) is not None}, key=sort_key)

    swept = {"method": methods} if len(methods) > 1 else {}
    for key in sorted(set().union(*varying.values())):
        swept[f"method.{key}"] = values(lambda run: run.method_settings.get(key))
    swept.update({key: values(lambda run: run.setting(key)) for key in choices + context_keys})
    return swept, ordered


def swept_text(swept: dict[str, list[str]], runs: list[Run]) -> str:
    """The "Swept:" sentence: each key that varies with its values, then the seeds."""
    seeds = sorted({str(run.config.get("seed")) for run in runs}, key=sort_key)
    keys = "; ".join(f"{key} ({', '.join(values)})" for key, values in swept.items()) or "nothing"
    return f"Swept: {keys}. Seeds: {', '.join(seeds)}."


def best_group(groups: list[Group], method: str, context, value: Callable[[Run], float | None]
               ) -> tuple[Group, int] | None:
    """The group of `method` in `context` with the lowest mean `value`, and of how many groups it was picked."""
    candidates = [(s.mean, [sort_key(v) for _, v in group.variant], index, group)
                  for index, group in enumerate(groups)
                  if group.method == method and group.context == context and (s := group.spread(value))]
    return (min(candidates)[3], len(candidates)) if candidates else None


def context_label(context: tuple[tuple[str, str], ...]) -> str:
    """The swept values other than the method, as key=value; "all runs" when only the method varies."""
    return " ".join(f"{k}={v}" for k, v in context) or "all runs"


# The first columns of every task's results table, filled by group_counts.
COUNT_HEADER = ["group", "runs", "complete", "diverged"]


def group_counts(group: Group) -> tuple[list, dict]:
    """The group's first table cells (COUNT_HEADER) and its CSV fields: its settings and how its runs ended."""
    runs, complete, diverged = len(group.runs), group.count("complete"), group.count("diverged")
    cells = [group.label, runs, complete, f"{diverged}/{runs} ({diverged / runs:.0%})"]
    fields = {"task": group.runs[0].task, "group": group.label, "method": group.method,
              **dict(group.variant), **dict(group.context),
              "runs": runs, "complete": complete, "diverged": diverged, "diverged_share": diverged / runs}
    return cells, fields


def spread_fields(spreads: dict[str, Spread | None]) -> dict:
    """The CSV fields NAME_mean, NAME_std and NAME_n of each spread (empty when None)."""
    return {f"{name}_{field}": getattr(s, field) if s else None for name, s in spreads.items()
            for field in ("mean", "std", "n")}


@dataclass
class Section:
    """One task's part of the report: its text, tables and figures, its rows of report.csv, and what the W&B
    report run logs (one row per run)."""

    title: str
    summary: str
    results: Table
    notes: str
    claims: list  # page blocks: tables and the text that states their rules
    figures: list[Path]
    csv_rows: list[dict]
    run_rows: list[dict]
    samples: list[tuple[str, Path]] = field(default_factory=list)
