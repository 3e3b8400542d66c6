"""`lipbench-report PATH...`: compare methods over finished runs: a table, plots, and a verdict on each claim.

Reads the run dirs `lipbench` writes (summary.json + metrics.jsonl, found recursively; local files only), splits the
runs by task (GAN, classifier: each gets its own section), groups each task's runs by method and by every other key
that varies across them except the seed, and writes report.md, report.csv and PNG plots. A value is the mean ± std
over the runs of a group, n = the runs that have it.
"""
import argparse
import csv
import io
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed, and none wanted on a cluster node

from lipbench import LipbenchError  # noqa: E402
from lipbench.files import atomic_write  # noqa: E402
from lipbench.report import classify, gan  # noqa: E402
from lipbench.report.runs import find_runs, markdown_table  # noqa: E402


def write_report(paths: list[Path], out: Path, threshold: float | None = None) -> str:
    """Write report.md, report.csv and the plots into `out`; returns the tables as printed."""
    runs, unreadable = find_runs(paths)
    by_task = defaultdict(list)
    for run in runs:
        by_task[run.task].append(run)
    # Each task's section, GAN first; --threshold is a GAN quality level.
    reporters = {"gan": lambda task_runs: gan.section(task_runs, out, threshold),
                 "classify": lambda task_runs: classify.section(task_runs, out)}
    unknown = sorted(set(by_task) - set(reporters))
    if unknown:
        raise LipbenchError(f"runs of task.name={unknown[0]} under the given paths: lipbench-report compares "
                            f"{' and '.join(reporters)} runs; pass only those")
    out.mkdir(parents=True, exist_ok=True)
    sections = [reporters[task](by_task[task]) for task in reporters if task in by_task]

    incomplete = [[str(run.path), run.status, run.summary.get("epochs_completed", len(run.records))]
                  for run in runs if run.status != "complete"]
    blocks = ["# lipbench report"]
    for section in sections:
        blocks += [f"## {section.title}", section.summary, "### Results", section.results, section.notes,
                   "### Claims", section.claims, "### Plots", *(f"![{name}]({name})" for name in section.plots)]
    blocks += ["## Incomplete runs",
               markdown_table(["run", "status", "epochs"], incomplete) if incomplete else "None: every run completed."]
    if unreadable:
        blocks += ["## Unreadable runs", markdown_table(["run", "why"], [[u.path, u.why] for u in unreadable])]
    atomic_write(out / "report.md", lambda tmp: tmp.write_text("\n\n".join(blocks) + "\n"))

    csv_rows = [row for section in sections for row in section.csv_rows]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(k for row in csv_rows for k in row)))
    writer.writeheader()
    writer.writerows(csv_rows)
    atomic_write(out / "report.csv", lambda tmp: tmp.write_text(buffer.getvalue()))
    plots = sum(len(section.plots) for section in sections)
    printed = [f"{s.title}: {s.summary}\n\n{s.results}\n\n{s.claims}" for s in sections]
    skipped = f" {len(unreadable)} unreadable run dirs are listed there, not compared." if unreadable else ""
    return "\n\n".join([*printed, f"Wrote {out / 'report.md'}, report.csv and {plots} plots.{skipped}"])


def main(argv: list[str] | None = None) -> None:
    """The `lipbench-report` command; bad input exits 2 with one line naming what to fix."""
    parser = argparse.ArgumentParser(prog="lipbench-report", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="run dirs or multirun dirs, searched recursively for summary.json")
    parser.add_argument("--out", type=Path,
                        help="where report.md, report.csv and the plots go (default: the first PATH)")
    parser.add_argument("--threshold", type=float,
                        help="GAN runs: quality level for epochs/seconds-to-threshold "
                             "(default: the worst group's final mean)")
    args = parser.parse_args(argv)
    try:
        print(write_report(args.paths, args.out or args.paths[0], args.threshold))
    except LipbenchError as error:
        print(f"lipbench-report: error: {error}", file=sys.stderr)
        sys.exit(2)
