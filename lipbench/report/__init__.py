"""`lipbench-report PATH...`: compare methods over finished runs: tables, figures, and a verdict on each claim.

Reads the run dirs `lipbench` writes (summary.json + metrics.jsonl, found recursively; local files only), splits the
runs by task (GAN, classifier: each gets its own section), groups each task's runs by method and by every other key
that varies across them except the seed, and writes report.md, report.html (one self-contained page), report.csv and
PNG figures; with --wandb it also logs the tables and figures as one W&B run of job type `report`. A value is the
mean ± std over the runs of a group, n = the runs that have it.
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
from lipbench.report import classify, gan, page  # noqa: E402
from lipbench.report.page import Figure, Gallery, Heading, Table, Text  # noqa: E402
from lipbench.report.runs import Run, Section, find_runs  # noqa: E402


def sections_of(runs: list[Run], out: Path, threshold: float | None) -> list[Section]:
    """Each task's section, GAN first, its figures written into `out`; --threshold is a GAN quality level."""
    by_task = defaultdict(list)
    for run in runs:
        by_task[run.task].append(run)
    reporters = {"gan": lambda task_runs: gan.section(task_runs, out, threshold),
                 "classify": lambda task_runs: classify.section(task_runs, out)}
    unknown = sorted(set(by_task) - set(reporters))
    if unknown:
        raise LipbenchError(f"runs of task.name={unknown[0]} under the given paths: lipbench-report compares "
                            f"{' and '.join(reporters)} runs; pass only those")
    out.mkdir(parents=True, exist_ok=True)
    return [reporters[task](by_task[task]) for task in reporters if task in by_task]


def blocks_of(sections: list[Section], runs: list[Run], unreadable: list) -> list:
    """The whole report as page blocks."""
    blocks = [Heading(1, "lipbench report")]
    for section in sections:
        blocks += [Heading(2, section.title), Text(section.summary), Heading(3, "Results"), section.results,
                   Text(section.notes), Heading(3, "Claims"), *section.claims, Heading(3, "Figures"),
                   *map(Figure, section.figures)]
        if section.samples:
            blocks += [Heading(3, "Samples of each group's best run"), Gallery(section.samples)]
    incomplete = [[str(run.path), run.status, run.summary.get("epochs_completed", len(run.records))]
                  for run in runs if run.status != "complete"]
    blocks += [Heading(2, "Incomplete runs"),
               Table(["run", "status", "epochs"], incomplete) if incomplete else Text("None: every run completed.")]
    if unreadable:
        blocks += [Heading(2, "Unreadable runs"), Table(["run", "why"], [[str(u.path), u.why] for u in unreadable])]
    return blocks


def write_report(paths: list[Path], out: Path, threshold: float | None = None, to_wandb: bool = False) -> str:
    """Write report.md, report.html, report.csv and the figures into `out` (and the W&B report run when
    `to_wandb`); returns the tables as printed."""
    runs, unreadable = find_runs(paths)
    sections = sections_of(runs, out, threshold)
    blocks = blocks_of(sections, runs, unreadable)
    atomic_write(out / "report.md", lambda tmp: tmp.write_text(page.markdown(blocks, out)))
    atomic_write(out / "report.html", lambda tmp: tmp.write_text(page.page(blocks, f"lipbench report: {out}")))

    csv_rows = [row for section in sections for row in section.csv_rows]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(k for row in csv_rows for k in row)))
    writer.writeheader()
    writer.writerows(csv_rows)
    atomic_write(out / "report.csv", lambda tmp: tmp.write_text(buffer.getvalue()))

    figures = sum(len(section.figures) for section in sections)
    printed = [page.markdown([Text(f"{s.title}: {s.summary}"), s.results, *s.claims], out) for s in sections]
    skipped = f" {len(unreadable)} unreadable run dirs are listed there, not compared." if unreadable else ""
    done = [f"Wrote {out / 'report.md'}, report.html, report.csv and {figures} figures.{skipped}"]
    if to_wandb:
        from lipbench.report.dashboard import (
            log_report,  # W&B is imported only when asked for
        )

        done.append(log_report(runs, sections, out))
    return "\n".join([*printed, *done])


def main(argv: list[str] | None = None) -> None:
    """The `lipbench-report` command; bad input exits 2 with one line naming what to fix."""
    parser = argparse.ArgumentParser(prog="lipbench-report", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="run dirs or multirun dirs, searched recursively for summary.json")
    parser.add_argument("--out", type=Path,
                        help="where report.md, report.html, report.csv and the figures go (default: the first PATH)")
    parser.add_argument("--threshold", type=float,
                        help="GAN runs: quality level for epochs/seconds-to-threshold (default: the mean metric "
                             "the best group had half-way through its run)")
    parser.add_argument("--wandb", action="store_true",
                        help="also log the tables and figures as a W&B run of job type `report` in the runs' group "
                             "(offline unless WANDB_MODE=online, like the runs)")
    args = parser.parse_args(argv)
    try:
        print(write_report(args.paths, args.out or args.paths[0], args.threshold, args.wandb))
    except LipbenchError as error:
        print(f"lipbench-report: error: {error}", file=sys.stderr)
        sys.exit(2)
