"""lipbench-report on run dirs written by real short runs: groups, counts, means, a diverged run, verdicts."""
import csv
import statistics

import pytest

from lipbench.report import main
from tests.conftest import (
    FAST,
    PNG_SIGNATURE,
    lipbench,
    read_metrics,
    read_summary,
    run_dirs,
)

SMALL = ["model.critic.hidden=64", "model.generator.hidden=64", "logger.wandb.mode=disabled", "train.eval_every=1"]

# Every test here reads a module fixture of real runs, which takes ~30 s to make.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two methods x three seeds, plus one run that really diverges (a learning rate of 1e10)."""
    root = tmp_path_factory.mktemp("report")
    lipbench(root, "-m", "method=gp,sn", "seed=0,1,2", *FAST, *SMALL)
    lipbench(root, "method=none", "optim.lr=1e10", *FAST, *SMALL)
    return root / "runs"


def report(runs, out, *args) -> dict[str, dict]:
    """Run the command and return report.csv's rows by group."""
    main([str(runs), "--out", str(out), *args])
    with open(out / "report.csv") as f:
        return {row["group"]: row for row in csv.DictReader(f)}


def test_table_has_a_group_per_method_and_setting_with_counts_and_means(runs, tmp_path, capsys):
    rows = report(runs, tmp_path)
    assert "sn optim.lr=0.001" in capsys.readouterr().out
    # optim.lr differs across runs, so it is a swept key; the seed is not.
    assert set(rows) == {"gp optim.lr=0.001", "sn optim.lr=0.001", "none optim.lr=10000000000.0"}
    summaries = [read_summary(d) for d in run_dirs(runs)]
    for method in ("gp", "sn"):
        row = rows[f"{method} optim.lr=0.001"]
        finals = [s["final_metric"] for s in summaries if s["config"]["method"]["name"] == method]
        assert (row["runs"], row["complete"], row["diverged"], row["final_n"]) == ("3", "3", "0", "3")
        assert float(row["final_mean"]) == pytest.approx(statistics.fmean(finals), rel=1e-9)
        assert float(row["final_std"]) == pytest.approx(statistics.stdev(finals), rel=1e-9)
        assert 0 < float(row["epoch_time_mean"]) and 0 < float(row["grad_norm_interp_mean_mean"])
    # Default threshold: the best group's mean metric half-way through its run (epoch 1 of 2).
    best = min(("gp", "sn"), key=lambda m: float(rows[f"{m} optim.lr=0.001"]["final_mean"]))
    half_way = [read_metrics(d)[0]["eval/w1"] for d in run_dirs(runs)
                if read_summary(d)["config"]["method"]["name"] == best]
    assert float(rows["sn optim.lr=0.001"]["threshold"]) == pytest.approx(statistics.fmean(half_way), rel=1e-12)
    text = (tmp_path / "report.md").read_text()
    assert f"the mean of the best group ({best} optim.lr=0.001) at epoch 1 of 2" in text
    assert "## Claims" in text and "SN ends with a better final metric than GP" in text
    for name in ("training_curves", "metric_vs_epoch", "metric_vs_time", "epoch_time", "grad_norm_hist"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)
        assert f"]({name}.png)" in text


def test_a_diverged_run_is_counted_and_listed_not_averaged(runs, tmp_path):
    diverged = [d for d in run_dirs(runs) if read_summary(d)["status"] == "diverged"]
    assert len(diverged) == 1  # lr=1e10 really gives a non-finite loss
    row = report(runs, tmp_path)["none optim.lr=10000000000.0"]
    assert (row["runs"], row["complete"], row["diverged"], row["diverged_share"]) == ("1", "0", "1", "1.0")
    assert row["final_mean"] == "" and row["final_n"] == ""
    incomplete = (tmp_path / "report.md").read_text().split("## Incomplete runs")[1]
    assert str(diverged[0]) in incomplete and "| diverged |" in incomplete


def test_claim_with_overlapping_spreads_is_inconclusive(runs, tmp_path):
    # Every run is below a huge threshold at its first evaluation: both sides are 1 ± 0 epochs, n = 3.
    rows = report(runs, tmp_path, "--threshold", "1e9")
    assert rows["sn optim.lr=0.001"]["epochs_to_threshold_mean"] == "1.0"
    line = next(line for line in (tmp_path / "report.md").read_text().splitlines()
                if line.startswith("| SN reaches the threshold in fewer epochs than GP"))
    # Δ = 0 with no spread: a point interval at 0, p = 1, no effect size.
    assert line.endswith("| sn: 1 ± 0 (n=3) | gp: 1 ± 0 (n=3) | 0 | [0, 0] | 1 | - | inconclusive |")


def test_a_path_without_runs_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(tmp_path) in error
