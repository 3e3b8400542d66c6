"""The W&B side of a real two-method x two-λ sweep, read back from the offline `.wandb` record streams with wandb's
own reader (`wandb leet inspect --json`): group, job type, tags, short names, flat swept keys, the epoch step axis,
the summary, and the report run that `lipbench-report --wandb` adds to the sweep's group."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lipbench.report import main
from lipbench.tracking import swept_keys
from tests.conftest import FAST, composed, lipbench, read_summary, run_dirs


def records(wandb_file: Path) -> list[dict]:
    """Every record of a run's .wandb transaction log, decoded by wandb itself."""
    proc = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(wandb_file)],
                          capture_output=True, text=True, timeout=120, check=True)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def decoded(run_dir: Path) -> dict:
    """A run as W&B will show it: its run record, the metrics it defined, its history rows and merged summary."""
    (wandb_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    stream = records(wandb_file)
    summary = {}
    for record in stream:
        if record["type"] == "summary":
            summary.update(record["summary"].get("update", {}))
    return {"run": next(r["run"] for r in stream if r["type"] == "run"),
            "metrics": [r["metric"] for r in stream if r["type"] == "metric"],
            "history": [r["history"]["item"] for r in stream if r["type"] == "history"],
            "summary": summary}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """gp and gp_relu at λ = 1 and 10, one seed, logged offline; and its report logged with --wandb."""
    root = tmp_path_factory.mktemp("wandb")
    lipbench(root, "-m", "method=gp,gp_relu", "method.weight=1,10", *FAST, "hydra.sweep.dir=runs/multirun/lambda")
    sweep_dir = root / "runs" / "multirun" / "lambda"
    main([str(sweep_dir), "--out", str(root / "report"), "--wandb"])
    return sweep_dir, root / "report"


@pytest.mark.slow  # a real sweep, ~40 s
def test_each_run_is_grouped_by_sweep_typed_by_method_and_named_by_its_swept_values(sweep):
    sweep_dir, _ = sweep
    dirs = run_dirs(sweep_dir)
    assert len(dirs) == 4
    seen = set()
    for run_dir in dirs:
        method = read_summary(run_dir)["config"]["method"]
        weight = f"{method['weight']:g}"
        run = decoded(run_dir)["run"]
        assert run["run_group"] == "lambda"  # the sweep dir's name below multirun/
        assert run["job_type"] == method["name"]
        assert run["display_name"] == f"{method['name']} λ={weight}"
        assert set(run["tags"]) == {method["name"], "toy2d", "wasserstein", f"method={method['name']}",
                                    f"method.weight={weight}"}
        config = run["config"]["update"]
        assert config["swept/method"] == method["name"] and config["swept/method.weight"] == method["weight"]
        assert "swept/seed" not in config and "swept/train.epochs" not in config  # one value each: not swept
        seen.add(run["display_name"])
    assert seen == {"gp λ=1", "gp λ=10", "gp_relu λ=1", "gp_relu λ=10"}


@pytest.mark.slow  # a real sweep, ~40 s
def test_epoch_is_every_chart_step_and_the_summary_holds_the_headline_numbers(sweep):
    sweep_dir, _ = sweep
    run_dir = run_dirs(sweep_dir)[0]
    run, summary = decoded(run_dir), read_summary(run_dir)
    metrics = {m.get("name") or m.get("glob_name"): m for m in run["metrics"]}
    assert metrics["*"]["step_metric"] == "epoch" and metrics["eval/w1"]["step_metric"] == "epoch"
    assert "step_metric" not in metrics["epoch"] and "step_metric" not in metrics["time/train_s"]
    assert [row["epoch"] for row in run["history"]] == [1, 2]
    assert all("time/train_s" in row for row in run["history"])
    logged = run["summary"]
    assert logged["status"] == "complete" and logged["epochs_completed"] == 2
    assert logged["final/w1"] == pytest.approx(summary["final_metric"], rel=1e-12)
    assert logged["best/w1"] == pytest.approx(summary["best_metric"], rel=1e-12)
    assert logged["best_epoch/w1"] == summary["best_epoch"]
    assert logged["mean_epoch_time_s"] == pytest.approx(summary["mean_epoch_time_s"], rel=1e-12)
    assert 0 < logged["mean_epoch_time_s"] < 60


@pytest.mark.slow  # a real sweep, ~40 s
def test_report_run_holds_the_tables_and_figures_in_the_sweeps_group(sweep):
    _, report_dir = sweep
    (wandb_file,) = report_dir.glob("wandb/offline-run-*/run-*.wandb")
    stream = records(wandb_file)
    run = next(r["run"] for r in stream if r["type"] == "run")
    assert (run["job_type"], run["run_group"]) == ("report", "lambda")
    (row,) = [r["history"]["item"] for r in stream if r["type"] == "history"]
    for key in ("gan_runs/results", "gan_runs/claims", "gan_runs/runs"):
        assert row[f"{key}._type"] == "table-file"
    for key in ("training_curves", "metric_vs_epoch", "metric_vs_time", "epoch_time"):
        assert row[f"gan_runs/{key}._type"] == "image-file"
    files = wandb_file.parent / "files"
    results = json.loads((files / row["gan_runs/results.path"]).read_text())
    assert sorted(r[results["columns"].index("group")] for r in results["data"]) == [
        "gp λ=1", "gp λ=10", "gp_relu λ=1", "gp_relu λ=10"]
    claims = json.loads((files / row["gan_runs/claims.path"]).read_text())
    # Matched settings: gp_relu against gp at each λ, and each at its best λ, for each of the two claims.
    assert [r[0] for r in claims["data"]].count("gp_relu (one-sided penalty) ends better than gp") == 3
    runs = json.loads((files / row["gan_runs/runs.path"]).read_text())
    assert len(runs["data"]) == 4 and "epochs_to_threshold" in runs["columns"]


@pytest.mark.slow
def test_a_single_run_is_grouped_by_dataset_and_task_and_named_by_what_was_typed(tmp_path):
    lipbench(tmp_path, "method=sn", *FAST, "metric.fid.weights=/data/weights/pt_inception.pth")
    run = decoded(run_dirs(tmp_path)[0])["run"]
    assert run["run_group"] == "toy2d-gan" and run["job_type"] == "sn"
    assert run["display_name"].startswith("sn epochs=2 ") and "/" not in run["display_name"]
    assert "weights=pt_inception.pth" in run["display_name"]
    assert not any(key.startswith("swept/") for key in run["config"]["update"])


def test_swept_keys_come_from_the_sweeps_command_line_over_its_presets_params(tmp_path):
    # What Hydra writes at sweep start: the preset's sweeper params, and the command line that overrides one.
    params = composed("+experiment=claim_one_sided", hydra=True).hydra.sweeper.params
    assert set(params) == {"method", "seed"}
    (tmp_path / "multirun.yaml").write_text(json.dumps({"hydra": {
        "sweeper": {"params": dict(params)},
        "overrides": {"task": ["+experiment=claim_one_sided", "method=gp", "method.weight=1,10", "train.epochs=3"]},
    }}))
    # method=gp on the command line beats the preset's method sweep; seed keeps the preset's several values.
    assert sorted(swept_keys(tmp_path)) == ["method.weight", "seed"]
