"""What every figure of a report shares: one colour per method and one line style per setting of it (the same in
every figure), mean curves over seeds with a min–max band, a log axis where values span decades, integer epochs."""
import itertools
import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

from lipbench.files import atomic_write
from lipbench.report.runs import Group, finite

COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
           "tab:cyan", "tab:gray", "black", "gold"]
LINE_STYLES = ["-", "--", ":", "-."]
HATCHES = ["", "//", "..", "xx"]
MARKERS = ["o", "s", "^", "D", "v", "P"]
PLAIN = FuncFormatter(lambda value, _: f"{value:g}")
# Between the decades, only 2 and 5 x 10^k are labelled: 6, 7, 8 and 9 would crowd the axis.
PLAIN_MINOR = FuncFormatter(lambda value, _: f"{value:g}"
                            if value > 0 and round(value / 10 ** math.floor(math.log10(value))) in (2, 5) else "")
# A value axis turns logarithmic when its values span more than this ratio.
DECADE = 10.0


class Palette:
    """The look of each group: its method's colour, and a line style and marker for its place among the groups
    of that method (its strength)."""

    def __init__(self, groups: list[Group]):
        methods = sorted({group.method for group in groups})
        self.colours = {method: COLOURS[i % len(COLOURS)] for i, method in enumerate(methods)}
        self.index = {}
        for group in groups:
            siblings = [g for g in groups if g.method == group.method]
            self.index[id(group)] = siblings.index(group)

    def colour(self, group: Group) -> str:
        """The group's method's colour."""
        return self.colours[group.method]

    def line(self, group: Group) -> dict:
        """matplotlib keywords for the group's line."""
        i = self.index[id(group)]
        return {"color": self.colour(group), "linestyle": LINE_STYLES[i % len(LINE_STYLES)],
                "marker": MARKERS[i % len(MARKERS)], "markersize": 4, "label": group.label}

    def hatch(self, group: Group) -> str:
        """The bar hatch that stands for the group's line style."""
        return HATCHES[self.index[id(group)] % len(HATCHES)]


def save_figure(fig, path: Path) -> Path:
    """Write a figure as PNG atomically and free it."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", bbox_inches="tight", dpi=110))
    plt.close(fig)
    return path


def mean_curve(group: Group, key: str | Callable[[dict], float | None],
               x_key: str = "epoch") -> tuple[np.ndarray, ...] | None:
    """x (mean over runs), mean, min and max of `key` (a record's key, or a function of the record) at each epoch
    where some run of the group has it."""
    value = key if callable(key) else (lambda record: record.get(key))
    points = defaultdict(list)
    for run in group.runs:
        for record in run.records:
            if finite(y := value(record)) and finite(record.get(x_key)):
                points[record["epoch"]].append((record[x_key], y))
    if not points:
        return None
    curve = [np.array(points[epoch]) for epoch in sorted(points)]
    return tuple(np.array([reduce(p[:, column]) for p in curve])
                 for column, reduce in ((0, np.mean), (1, np.mean), (1, np.min), (1, np.max)))


def value_scale(ax, values: list[float]) -> None:
    """A log axis for positive values spanning more than a decade; for values of both signs (or with zeros), a
    symmetric log axis (linear near 0) when the largest is over a decade above the typical one, so that one
    diverging curve does not flatten the others; else linear."""
    magnitudes = np.abs([v for v in values if finite(v) and v != 0])
    if len(magnitudes) == 0:
        return
    if min(values) > 0:
        if magnitudes.max() / magnitudes.min() > DECADE:
            ax.set_yscale("log")
    elif magnitudes.max() / np.median(magnitudes) > DECADE:
        ax.set_yscale("symlog", linthresh=10 ** math.floor(math.log10(np.median(magnitudes))))
    if ax.get_yscale() != "linear":  # 0.3 and 2 rather than 3×10⁻¹ and 2×10⁰
        ax.yaxis.set_major_formatter(PLAIN)
        ax.yaxis.set_minor_formatter(PLAIN_MINOR)


def epoch_axis(ax) -> None:
    """Whole epochs only on the x axis."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")


def plot_curves(ax, groups: list[Group], palette: Palette, key: str, x_key: str = "epoch") -> bool:
    """Each group's mean `key` against `x_key` with its runs' min–max band; False when no group logged it.

    Min–max rather than ± std: with 5 seeds and one outlier a std band crosses 0 and leaves the data; this one is
    where the runs were."""
    drawn = []
    for group in groups:
        curve = mean_curve(group, key, x_key)
        if curve is None:
            continue
        x, mean, low, high = curve
        ax.plot(x, mean, **palette.line(group))
        ax.fill_between(x, low, high, color=palette.colour(group), alpha=0.15, linewidth=0)
        drawn.extend(mean)
    if drawn and not any(drawn):
        ax.text(0.5, 0.6, "0 in every run", transform=ax.transAxes, ha="center", color="0.4")
    value_scale(ax, drawn)
    ax.grid(alpha=0.3, which="both" if ax.get_yscale() == "log" else "major")
    return bool(drawn)


def legend_below(fig, ax) -> None:
    """One legend for the whole figure, under it: a column per method, its settings one under the other."""
    columns = defaultdict(list)
    for handle, label in zip(*ax.get_legend_handles_labels()):
        columns[label.split(" ", 1)[0]].append((handle, label))
    if all(len(entries) == 1 for entries in columns.values()):  # one setting each: fill rows of four
        entries = [entry for column in columns.values() for entry in column]
        ncol = min(len(entries), 4)
    else:  # matplotlib fills legends column by column: pad each method's column to the same height
        height = max(map(len, columns.values()))
        blank = (Line2D([], [], alpha=0), "")
        entries = [entry for column in columns.values() for entry in column + [blank] * (height - len(column))]
        ncol = len(columns)
    fig.legend([h for h, _ in entries], [label for _, label in entries], loc="upper center",
               bbox_to_anchor=(0.5, 0.0), ncol=max(ncol, 1), fontsize=8, frameon=False)


def plot_metric(groups: list[Group], palette: Palette, x_key: str, xlabel: str, title: str, path: Path,
                floors: dict[str, float] | None = None) -> Path:
    """The quality metric against `x_key` (epoch, or training seconds averaged over runs), mean and min–max over
    runs, and each of `floors` (label -> the metric's noise floor) as a dashed line."""
    metrics = sorted({run.metric_key for group in groups for run in group.runs})
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for key in metrics:
        plot_curves(ax, [g for g in groups if g.runs[0].metric_key == key], palette, key, x_key)
    for (label, floor), style in zip((floors or {}).items(), itertools.cycle(LINE_STYLES[1:])):
        ax.axhline(floor, color="0.35", linestyle=style, linewidth=1.2, label=f"noise floor: {label}")
    if x_key == "epoch":
        epoch_axis(ax)
    else:
        ax.set_xlabel(xlabel)
    names = " / ".join(key.removeprefix("eval/") for key in metrics)
    ax.set_ylabel(f"{names} (lower is better)")
    ax.set_title(f"{title}: mean over seeds, band min–max" + (", dashed: noise floor" if floors else ""))
    legend_below(fig, ax)
    return save_figure(fig, path)


def grid_shape(count: int) -> tuple[int, int]:
    """Rows and columns for `count` panels, two per row."""
    return math.ceil(count / 2), min(count, 2)
