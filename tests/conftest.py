"""Shared test helpers: run the real `lipbench` command (real Hydra, real W&B offline) in a temp dir."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from threadpoolctl import threadpool_limits

import lipbench.cli  # noqa: F401  (registers the config's resolvers)
from lipbench.naming import CONFIG_DIR

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Small enough for CI on 2 cores, large enough to exercise every hook many times.
FAST = ["train.epochs=2", "dataset.steps_per_epoch=20", "train.batch_size=64", "metric.w1.num_samples=200"]


def lipbench(cwd: Path, *overrides: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python -m lipbench OVERRIDES...` in `cwd` (outputs go to cwd/runs) and return the finished process."""
    Path(cwd).mkdir(parents=True, exist_ok=True)
    # The repo first, then what the caller's PYTHONPATH holds (the GPU machine's wheels live there).
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.run([sys.executable, "-m", "lipbench", *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"lipbench {' '.join(overrides)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def composed(*overrides: str, hydra: bool = False):
    """The config `lipbench OVERRIDES...` would run with (and Hydra's own node when `hydra`)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def run_dirs(root: Path) -> list[Path]:
    """Every run dir (one holding summary.json) under `root`, sorted."""
    return sorted(p.parent for p in Path(root).rglob("summary.json"))


def read_metrics(run_dir: Path) -> list[dict]:
    """The run's metrics.jsonl records."""
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def read_summary(run_dir: Path) -> dict:
    """The run's summary.json."""
    return json.loads((run_dir / "summary.json").read_text())


def curve(run_dir: Path) -> list[dict]:
    """The run's logged numbers minus wall-clock timings, which legitimately differ between runs, and histograms."""
    return [{k: v for k, v in r.items() if not k.startswith("time/") and not isinstance(v, dict)}
            for r in read_metrics(run_dir)]


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked `cuda` where no CUDA device is visible (CI, the CPU development machine)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (marked cuda)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def shared() -> Path:
    """The ../shared data folder beside the checkout (MNIST raw files, pytorch-fid weights); skip if absent."""
    if not SHARED.exists():
        pytest.skip(f"{SHARED} not found")
    return SHARED


@pytest.fixture
def one_thread():
    """Torch and BLAS on one thread: on busy shared cores, spinning worker threads make small nets ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)
