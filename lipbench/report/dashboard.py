"""`lipbench-report --wandb`: the report as one W&B run of job type `report` in the runs' group, so the dashboard
shows the comparison itself: the results, claims and per-run tables as wandb.Tables, and the report's figures."""
import os
from collections import Counter
from pathlib import Path

import wandb

from lipbench.report.page import Table
from lipbench.report.runs import Run, Section


def wandb_table(table: Table) -> wandb.Table:
    """A page table as a W&B table of text cells."""
    return wandb.Table(columns=table.header, data=table.cells())


def rows_table(rows: list[dict]) -> wandb.Table:
    """Dict rows (numbers stay numbers, so the dashboard can sort them) as a W&B table."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return wandb.Table(columns=columns, data=[[row.get(column) for column in columns] for row in rows])


def log_report(runs: list[Run], sections: list[Section], out: Path) -> str:
    """Log the report as a W&B run in the runs' group (their project and entity; offline unless WANDB_MODE or
    the runs say otherwise); returns a line saying where it went."""
    logger = runs[0].config.get("logger", {}).get("wandb", {})
    groups = Counter(run.wandb.get("group") or logger.get("group") for run in runs)
    group = " + ".join(sorted(str(g) for g in groups))[:128]
    mode = os.environ.get("WANDB_MODE") or logger.get("mode") or "offline"
    run = wandb.init(project=logger.get("project", "lipbench"), entity=logger.get("entity"), group=group,
                     job_type="report", name=f"report {group}", dir=str(out), mode=mode,
                     settings=wandb.Settings(console="off", quiet=True))
    logged = {}
    for section in sections:
        key = section.title.lower().replace(" ", "_")
        logged[f"{key}/results"] = rows_table(section.csv_rows)
        logged[f"{key}/runs"] = rows_table(section.run_rows)
        claims = [block for block in section.claims if isinstance(block, Table)]
        for i, table in enumerate(claims):
            logged[f"{key}/claims" + (f"_{i + 1}" if i else "")] = wandb_table(table)
        logged.update({f"{key}/{figure.stem}": wandb.Image(str(figure)) for figure in section.figures})
        run.summary[f"{key}/summary"] = section.summary
    run.log(logged)
    where = f"{run.dir}" if mode != "disabled" else "nowhere (W&B mode is disabled)"
    run.finish()
    return f"Logged the report to W&B run {run.id} (group {group!r}, mode {mode}): {where}"
