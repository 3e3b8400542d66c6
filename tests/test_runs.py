"""End-to-end runs of the real `lipbench` command: outputs, multirun, resume, divergence and bad input."""
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import (
    FAST,
    REPO,
    curve,
    lipbench,
    read_metrics,
    read_summary,
    run_dirs,
)

METHODS = ["none", "clip", "gp", "gp_relu", "sn", "sn_projection", "l2", "spectral_reg"]


def histograms(run_dir):
    """The run's logged histograms (gradient norms), per epoch."""
    return [{k: v for k, v in r.items() if isinstance(v, dict)} for r in read_metrics(run_dir)]


@pytest.mark.slow
def test_every_method_in_one_multirun_writes_all_outputs(tmp_path):
    lipbench(tmp_path, "-m", f"method={','.join(METHODS)}", *FAST)
    dirs = run_dirs(tmp_path / "runs" / "multirun")
    assert len(dirs) == len(METHODS)  # one dir per job
    for run_dir, method in zip(sorted(dirs, key=lambda d: int(d.name.split("_")[0])), METHODS):
        summary = read_summary(run_dir)
        assert summary["status"] == "complete" and summary["config"]["method"]["name"] == method
        records = read_metrics(run_dir)
        assert [r["epoch"] for r in records] == [1, 2]
        for key in ("loss/critic", "loss/generator", "wasserstein_estimate", "penalty", "time/epoch_s", "eval/w1"):
            assert key in records[-1]
        assert summary["final_metric"] == records[-1]["eval/w1"] > 0
        assert list(run_dir.glob("wandb/offline-run-*/run-*.wandb")), "no offline W&B run written"
        assert list(run_dir.glob("figures/epoch_0002.png"))
    penalties = {m: read_metrics(d)[-1]["penalty"] for d, m in zip(sorted(dirs), METHODS)}
    assert penalties["none"] == penalties["sn"] == 0 and penalties["gp"] > 0
    assert penalties["l2"] > 0 and penalties["spectral_reg"] > 0  # weight penalties work on a critic too


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_curve(tmp_path):
    settings = ["train.epochs=6", "dataset.steps_per_epoch=100", "train.batch_size=64", "metric.w1.num_samples=200",
                "method=sn"]
    lipbench(tmp_path / "straight", *settings)
    (tmp_path / "killed").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lipbench", *settings], cwd=tmp_path / "killed", env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        dirs = run_dirs(tmp_path / "killed")
        if dirs and (dirs[0] / "checkpoint.pt").exists() and len(read_metrics(dirs[0])) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    killed_dir = run_dirs(tmp_path / "killed")[0]
    assert read_summary(killed_dir)["status"] == "running"
    wandb_id = read_summary(killed_dir)["wandb_id"]

    lipbench(tmp_path / "killed", *settings, "train.resume=true")  # finds the unfinished run by its overrides
    assert run_dirs(tmp_path / "killed") == [killed_dir]
    summary = read_summary(killed_dir)
    assert summary["status"] == "complete" and summary["wandb_id"] == wandb_id
    straight = curve(run_dirs(tmp_path / "straight")[0])
    assert [r["epoch"] for r in curve(killed_dir)] == list(range(1, 7))
    for resumed, reference in zip(curve(killed_dir), straight):
        assert resumed == pytest.approx(reference, rel=1e-6, abs=1e-9)
    assert histograms(killed_dir) == histograms(run_dirs(tmp_path / "straight")[0])


def test_corrupt_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    run_dir = tmp_path / "runs" / "corrupt"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint.pt").write_bytes(b"not a checkpoint")
    proc = lipbench(tmp_path, *FAST, f"hydra.run.dir={run_dir}", check=False)
    assert proc.returncode == 2
    message = proc.stderr.strip().splitlines()[-1]
    assert "checkpoint" in message and str(run_dir / "checkpoint.pt") in message and "delete it" in message
    assert not (run_dir / "metrics.jsonl").exists()


@pytest.mark.slow
def test_diverged_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    lipbench(tmp_path, "-m", "method=none", "optim.lr=1e10,1e-3", *FAST)
    statuses = [read_summary(d)["status"] for d in sorted(run_dirs(tmp_path), key=lambda d: d.name)]
    assert statuses == ["diverged", "complete"]


@pytest.mark.parametrize("override, key", [
    ("method.weight=-1", "method.weight"),
    ("method=clip method.c=0", "method.c"),
    ("method=sn method.power_iterations=0", "method.power_iterations"),
    ("dataset.distribution=moons", "dataset.distribution"),
    ("train.amp=fp16", "train.amp"),
])
def test_bad_values_fail_before_training_with_one_line(tmp_path, override, key):
    proc = lipbench(tmp_path, *override.split(), check=False)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("lipbench: error:")]
    assert len(lines) == 1 and key in lines[0]
    assert not run_dirs(tmp_path)


def test_unknown_method_lists_the_choices(tmp_path):
    proc = lipbench(tmp_path, "method=spectral", check=False)
    assert proc.returncode != 0
    assert "method/spectral" in proc.stderr and "sn_projection" in proc.stderr
