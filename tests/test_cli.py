"""The command talks: one line per epoch on stdout and in the run's log, a closing summary, a sweep's table, a help
page that lists what a user chooses from, and a misspelt key named in one line."""
from pathlib import Path

import pytest

from tests.conftest import CONFIG_DIR, FAST, lipbench, read_summary, run_dirs


def test_a_run_with_stdout_in_a_file_shows_every_epoch_and_ends_with_where_and_how_to_compare(tmp_path):
    proc = lipbench(tmp_path, *FAST, "train.epochs=3")  # stdout is a pipe here, not a terminal
    (run_dir,) = run_dirs(tmp_path)
    (log_file,) = run_dir.glob("*.log")
    summary = read_summary(run_dir)
    for text in (proc.stdout, log_file.read_text()):
        lines = text.splitlines()
        epochs = [line for line in lines if "] epoch " in line]
        assert [line.split("] epoch ")[1].split(" ")[0] for line in epochs] == ["1/3", "2/3", "3/3"]
        for key in ("loss/critic", "loss/generator", "wasserstein_estimate", "penalty", " s |", "w1 "):
            assert all(key in line for line in epochs), key
        assert f"final w1 {summary['final_metric']:.4g}" in lines[-2]
        assert lines[-1].endswith(f"compare runs with: lipbench-report {run_dir}")
    assert not any(line.startswith("wandb:") for line in proc.stdout.splitlines() + proc.stderr.splitlines())
    assert (run_dir / "best.pt").stat().st_size > 0 and summary["best_epoch"] >= 1


@pytest.mark.slow
def test_a_sweep_ends_with_a_table_of_its_jobs_and_the_report_command(tmp_path):
    proc = lipbench(tmp_path, "-m", "method=gp,sn", *FAST, "train.epochs=1")
    tail = proc.stdout.strip().splitlines()[-5:]
    sweep_dir = tail[0].removeprefix("sweep done: ")
    assert tail[1].split() == ["job", "status", "final", "metric", "overrides"]
    for job, method, line in zip(("0", "1"), ("gp", "sn"), tail[2:4]):
        assert line.split()[:3] == [job, "complete", "w1"] and f"method={method}" in line
    assert tail[4] == f"compare them: lipbench-report {sweep_dir}"
    assert len(run_dirs(tmp_path / sweep_dir)) == 2


def test_help_says_what_lipbench_is_and_lists_every_method_and_preset(tmp_path):
    text = lipbench(tmp_path, "--help").stdout
    assert text.startswith("lipbench: compare Lipschitz-constraint methods")
    for method in (p.stem for p in Path(CONFIG_DIR, "method").glob("*.yaml")):
        assert f"\n  {method} " in text, method
    for preset in (p.stem for p in Path(CONFIG_DIR, "experiment").glob("claim_*.yaml")):
        assert f"+experiment={preset}" in text, preset
    assert "experiment/base" not in text and "--cfg job --resolve" in text and "-sc install=bash" in text


@pytest.mark.parametrize("overrides, expected", [
    (["method.weigth=5"], "method.weigth is not a key: the keys under method are name, weight, one_sided, target"),
    (["-m", "method=clip,sn", "method.weight=5"], "method.weight is not a key of method=clip: the keys under method "
                                                   "are name, c"),
    (["train.epoch=3"], "train.epoch is not a key: the keys under train are epochs, batch_size"),
    (["-m", "+experiment=claim_convergence", "experiment.scale=paper"], "experiment.scale is not a key of "
     "+experiment=claim_convergence: scale is a config group of its own, chosen as scale=paper"),
])
def test_a_misspelt_key_is_one_line_naming_the_keys_that_exist(tmp_path, overrides, expected):
    proc = lipbench(tmp_path, *overrides, check=False)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"lipbench: error: {expected}") and "+method" not in line
    assert not run_dirs(tmp_path)


def test_a_sweeps_config_shows_one_job_where_hydra_alone_refuses(tmp_path):
    proc = lipbench(tmp_path, "-m", "+experiment=claim_convergence", "scale=paper", "--cfg", "job", "--resolve")
    assert "epochs: 642" in proc.stdout and "name: cifar10" in proc.stdout and "n_critic: 5" in proc.stdout
    assert "one job's config" in proc.stderr and "Traceback" not in proc.stderr
    assert not run_dirs(tmp_path)
