"""End-to-end classifier runs of the real `lipbench` command: every method's metrics, exact resume, bad input."""
import math

import pytest

from lipbench import LipbenchError
from lipbench.training import train
from tests.conftest import (
    composed,
    curve,
    lipbench,
    read_metrics,
    read_summary,
    run_dirs,
)

METHODS = ["none", "l2", "spectral_reg", "sn", "sn_projection", "clip", "gp"]
# Small enough for CI on 2 cores: 16x16 digits, 4 steps an epoch, 32 attacked points, 2 PGD steps.
TINY = ["task=classify", "dataset.image_size=16", "train.subset=256", "train.batch_size=64", "eval.num_samples=32",
        "eval.eps=[0.5,1.0]", "eval.pgd_steps=2"]


@pytest.mark.slow
def test_one_epoch_of_every_method_writes_all_metrics(tmp_path):
    lipbench(tmp_path, "-m", f"method={','.join(METHODS)}", "train.epochs=1", *TINY)
    dirs = sorted(run_dirs(tmp_path / "runs" / "multirun"), key=lambda d: int(d.name.split("_")[0]))
    assert len(dirs) == len(METHODS)
    penalties = {}
    for run_dir, method in zip(dirs, METHODS):
        summary, [record] = read_summary(run_dir), read_metrics(run_dir)
        assert summary["status"] == "complete" and summary["config"]["method"]["name"] == method
        assert summary["metric"] == "test_error" and summary["final_metric"] == record["eval/test_error"]
        assert record["eval/test_error"] == pytest.approx(1 - record["test/accuracy"])
        assert record["gap/accuracy"] == pytest.approx(record["train/accuracy"] - record["test/accuracy"])
        assert record["gap/loss"] == pytest.approx(record["test/loss"] - record["train/loss"])
        for key in ("loss/cross_entropy", "train/loss", "time/epoch_s", "time/eval_s", "diag/margin_grad_mean"):
            assert math.isfinite(record[key])
        for eps in ("0.5", "1"):
            assert 0 <= record[f"robust/pgd_eps{eps}"] <= record[f"robust/fgsm_eps{eps}"] + 0.1
            assert record[f"robust/fgsm_eps{eps}"] <= record["robust/clean"]
        sigmas = {k.removeprefix("diag/sigma/"): v for k, v in record.items() if k.startswith("diag/sigma/")}
        assert list(sigmas) == ["0_conv2d", "1_conv2d", "2_linear", "3_linear"]  # SN's parametrized layers too
        # The bound means what it means for a critic: convolutions enter with their true operator norm.
        opnorms = [record["diag/opnorm/0_conv2d"], record["diag/opnorm/1_conv2d"]]
        assert all(norm >= sigmas[f"{i}_conv2d"] * 0.999 for i, norm in enumerate(opnorms))
        expected = math.prod(opnorms) * sigmas["2_linear"] * sigmas["3_linear"]
        assert record["diag/lipschitz_bound"] == pytest.approx(expected, rel=1e-6)
        assert list(run_dir.glob("wandb/offline-run-*/run-*.wandb")), "no offline W&B run written"
        penalties[method] = record["penalty"]
    assert all(penalties[m] > 0 for m in ("l2", "spectral_reg", "gp"))
    assert all(penalties[m] == 0 for m in ("none", "sn", "sn_projection", "clip"))


@pytest.mark.slow
def test_resumed_run_continues_the_same_curve(tmp_path):
    # spectral_reg: its power-iteration vectors must travel in the checkpoint too. A constant learning rate: a run
    # extended from 1 to 2 epochs re-stretches a decay over the new length (tests/test_lr_decay.py resumes one).
    settings = [*TINY, "method=spectral_reg", "train.lr_decay=none"]
    lipbench(tmp_path / "straight", *settings, "train.epochs=2")
    resumed_dir = tmp_path / "resumed" / "run"
    lipbench(tmp_path / "resumed", *settings, "train.epochs=1", f"hydra.run.dir={resumed_dir}")
    lipbench(tmp_path / "resumed", *settings, "train.epochs=2", f"hydra.run.dir={resumed_dir}")
    straight = curve(run_dirs(tmp_path / "straight")[0])
    assert [r["epoch"] for r in curve(resumed_dir)] == [1, 2]
    for resumed, reference in zip(curve(resumed_dir), straight):
        assert resumed == pytest.approx(reference, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("override, key", [
    ("dataset=toy2d", "dataset=toy2d"),
    ("model=mlp", "model=mlp has no classifier"),
    ("train.subset=0", "train.subset"),
    ("eval.pgd_steps=0", "eval.pgd_steps"),
    ("eval.eps=[-1.0]", "eval.eps"),
])
def test_bad_input_fails_before_training_with_one_line(tmp_path, monkeypatch, override, key):
    monkeypatch.chdir(tmp_path)  # the digits cache goes to ./data
    cfg = composed("task=classify", override)
    with pytest.raises(LipbenchError, match=key.replace(".", r"\.")) as error:
        train(cfg, tmp_path / "run", [])
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()
