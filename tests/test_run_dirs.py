"""A run dir holds one experiment, whole: no silent mixes, exclusive and locked dirs, truthful statuses, and every
epoch in metrics.jsonl and in the offline W&B run after kills."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from lipbench import LipbenchError
from lipbench.diagnostics import histogram
from lipbench.files import write_json
from lipbench.rundir import EXPERIMENT_FILE, RunDir, overrides_key, run_dir
from lipbench.wandb_files import history
from tests.conftest import (
    FAST,
    REPO,
    curve,
    lipbench,
    read_metrics,
    read_summary,
    run_dirs,
)


def start(cwd, *overrides) -> subprocess.Popen:
    """`lipbench OVERRIDES` in the background, as the tests' `lipbench` helper runs it."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "lipbench", *overrides], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Poll until `condition()` holds; fail if the process ends first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        assert proc.poll() is None, f"the run ended first:\n{proc.stderr.read()[-2000:]}"
        time.sleep(0.02)
    raise AssertionError("timed out")


def assert_same_curve(resumed: list[dict], reference: list[dict]) -> None:
    """The same epochs with the same values (to float noise) in both curves."""
    assert [r["epoch"] for r in resumed] == [r["epoch"] for r in reference]
    for got, want in zip(resumed, reference):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_rerunning_a_dir_with_another_config_is_refused_naming_the_keys(tmp_path):
    first = tmp_path / "runs" / "A"
    lipbench(tmp_path, *FAST, "train.epochs=1", f"hydra.run.dir={first}")
    copy = tmp_path / "runs" / "X"
    shutil.copytree(first, copy)  # the adversarial case of the issue: a copied dir, rerun with another method
    before = (copy / "metrics.jsonl").read_text()
    proc = lipbench(tmp_path, *FAST, "train.epochs=2", "method=gp_relu", "seed=7", f"hydra.run.dir={copy}",
                    check=False)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"lipbench: error: run dir {copy} holds another experiment: ")
    assert "method.name=gp there, gp_relu here" in line and "seed=0 there, 7 here" in line
    assert "use a new run dir" in line and f"delete {copy}" in line
    assert (copy / "metrics.jsonl").read_text() == before and read_summary(copy)["status"] == "complete"
    # More epochs of the same experiment are the same experiment: it continues.
    lipbench(tmp_path, *FAST, "train.epochs=2", f"hydra.run.dir={copy}")
    assert [r["epoch"] for r in read_metrics(copy)] == [1, 2]


def test_new_runs_started_in_the_same_second_get_dirs_of_their_own(tmp_path):
    dirs = {run_dir(False, "method=sn", str(tmp_path)) for _ in range(3)}
    assert len(dirs) == 3 and all(os.path.isdir(d) for d in dirs)
    assert sorted(d.rsplit("_", 1)[-1] for d in dirs)[:2] == ["1", "2"]


def test_a_run_dir_in_use_is_refused_in_one_line(tmp_path):
    held = RunDir(tmp_path / "run", {"seed": 0}, "")
    with pytest.raises(LipbenchError, match="is in use by another lipbench process"):
        RunDir(tmp_path / "run", {"seed": 0}, "")
    proc = lipbench(tmp_path, *FAST, f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "in use" in proc.stderr
    held.lock.close()


def test_resume_true_matches_the_full_overrides_not_a_cut_name(tmp_path):
    common = "dataset.path=" + "x" * 250  # the dir name is cut at 200 characters: both names are the same
    runs = {}
    for tail in ("a", "b"):
        overrides = f"{common},seed={tail}"
        path = tmp_path / "2026-01-01" / f"00-00-0{len(runs)}_cut"
        path.mkdir(parents=True)
        (path / "checkpoint.pt").write_bytes(b"x")
        write_json(path / "summary.json", {"status": "interrupted"})
        write_json(path / EXPERIMENT_FILE, {"overrides_key": overrides_key(overrides)})
        runs[tail] = (overrides, str(path))
    for overrides, path in runs.values():
        assert run_dir(True, overrides, str(tmp_path)) == path


def test_histograms_of_a_critic_that_blew_up_do_not_crash():
    values = torch.tensor([1.0, float("inf"), float("nan"), 2.0])
    hist = histogram(values, bins=4)
    assert sum(hist["counts"]) == 2 and len(hist["edges"]) == 5
    assert sum(histogram(torch.full((3,), float("inf")), bins=4)["counts"]) == 0


def test_a_critic_with_infinite_slopes_is_a_diverged_run_not_a_crash(tmp_path):
    # A linear critic scaled to 1e38: its scores stay finite in the loss of the first steps' averages only until the
    # diagnostics take input gradients, which overflow.
    proc = lipbench(tmp_path, *FAST, "method=none", "optim.lr=1e30", "optim=rmsprop", check=False)
    (run,) = run_dirs(tmp_path)
    assert proc.returncode == 0 and read_summary(run)["status"] == "diverged"


@pytest.mark.slow
def test_sigterm_records_interrupted_and_the_rerun_resumes_to_the_same_curve(tmp_path):
    settings = [*FAST[2:], "train.epochs=4", "dataset.steps_per_epoch=60", "method=sn"]
    lipbench(tmp_path / "straight", *settings)
    proc = start(tmp_path / "killed", *settings)
    wait_for(lambda: run_dirs(tmp_path / "killed") and len(lines(run_dirs(tmp_path / "killed")[0])) >= 1
             and (run_dirs(tmp_path / "killed")[0] / "checkpoint.pt").exists(), proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert stderr.strip().splitlines()[-1].startswith("lipbench: interrupted by SIGTERM; resume it with")
    (killed,) = run_dirs(tmp_path / "killed")
    assert read_summary(killed)["status"] == "interrupted"
    lipbench(tmp_path / "killed", *settings, "train.resume=true")
    assert run_dirs(tmp_path / "killed") == [killed] and read_summary(killed)["status"] == "complete"
    assert_same_curve(curve(killed), curve(run_dirs(tmp_path / "straight")[0]))


@pytest.mark.slow
def test_an_invalid_job_is_recorded_and_the_sweep_goes_on(tmp_path):
    proc = lipbench(tmp_path, "-m", "train.n_critic=0,5", *FAST, "train.epochs=1")
    statuses = {read_summary(d)["overrides"][0]: read_summary(d) for d in run_dirs(tmp_path)}
    assert statuses["train.n_critic=0"]["status"] == "invalid"
    assert "train.n_critic=0 is invalid" in statuses["train.n_critic=0"]["error"]
    assert statuses["train.n_critic=5"]["status"] == "complete"
    assert "invalid" in proc.stdout.splitlines()[-3]  # the sweep's table shows it


# Points at which a run is SIGKILLed, each a condition on its run dir (the run resumes after each kill).
KILL_POINTS = {
    "start-up": lambda d: d is not None and (d / EXPERIMENT_FILE).exists(),
    "after W&B init": lambda d: d is not None and any(d.glob("wandb/offline-run-*")),
    "mid first epoch": lambda d: d is not None and (d / "summary.json").exists(),
    "after a metrics line": lambda d: d is not None and len(lines(d)) >= 1,
    "while a checkpoint is written": lambda d: d is not None and any(d.glob(".checkpoint.pt.*.tmp")),
    "after two metrics lines": lambda d: d is not None and len(lines(d)) >= 2,
    "during an evaluation": lambda d: d is not None and any(d.glob("figures/epoch_0003.png")),
    "after the last metrics line": lambda d: d is not None and len(lines(d)) >= 4,
}


def first_run_dir(root: "os.PathLike") -> "os.PathLike | None":
    """The first run dir under root/runs, once there is one."""
    return next(iter(sorted((root / "runs").glob("*/*"))), None) if (root / "runs").exists() else None


def lines(run: "os.PathLike") -> list[str]:
    """The metrics.jsonl lines written so far."""
    path = run / "metrics.jsonl"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.slow
def test_kills_at_eight_points_leave_the_same_curve_in_metrics_and_in_wandb(tmp_path):
    settings = [*FAST[2:], "train.epochs=4", "dataset.steps_per_epoch=40", "method=gp", "train.resume=true"]
    lipbench(tmp_path / "straight", *settings)
    (straight,) = run_dirs(tmp_path / "straight")
    roots, kills = [tmp_path / "killed_0"], []
    for point, reached in KILL_POINTS.items():
        root = roots[-1]
        proc = start(root, *settings)
        try:
            wait_for(lambda: reached(first_run_dir(root)), proc, timeout=120)
        except AssertionError:
            if proc.poll() is None:
                raise
            # The run completed before this point could be hit (a checkpoint's temporary can come and go unseen):
            # the points after it are tried on a new run, since resuming a complete run starts another.
            roots.append(tmp_path / f"killed_{len(roots)}")
            continue
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills.append(point)
    assert len(kills) >= 6, kills  # most points are hit; a fast run can finish before a late one
    for root in roots:
        if not run_dirs(root) or read_summary(run_dirs(root)[0])["status"] != "complete":
            lipbench(root, *settings)  # the last kill of this root resumed to the end
        (killed,) = run_dirs(root)
        assert read_summary(killed)["status"] == "complete"
        assert_same_curve(curve(killed), curve(straight))
        ids = {p.name.rsplit("-", 1)[-1] for p in killed.glob("wandb/offline-run-*")}
        assert len(ids) == 1  # one W&B run, resumed each time
        rows = history(killed)
        assert sorted(row["_step"] for row in rows) == [1, 2, 3, 4]  # every epoch once
        expected = {r["epoch"]: r for r in curve(killed)}
        for row in rows:
            assert row["loss/critic"] == pytest.approx(expected[row["_step"]]["loss/critic"], rel=1e-9)
