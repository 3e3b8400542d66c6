"""fro_clip, fro_penalty and sn_conv through the real `lipbench` command, in the GAN and the classifier task."""
import pytest

from tests.conftest import FAST, lipbench, read_metrics, read_summary, run_dirs
from tests.test_classify_runs import TINY

METHODS = ["fro_clip", "fro_penalty", "sn_conv"]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["gan", "classify"])
def test_the_new_methods_run_in_both_tasks_and_log_their_estimates(tmp_path, task):
    settings = [*FAST, "train.eval_every=2"] if task == "gan" else ["train.epochs=1", *TINY]
    lipbench(tmp_path, "-m", f"method={','.join(METHODS)}", *settings)
    runs = {read_summary(d)["config"]["method"]["name"]: d for d in run_dirs(tmp_path / "runs")}
    assert sorted(runs) == sorted(METHODS)
    for method, run_dir in runs.items():
        summary, record = read_summary(run_dir), read_metrics(run_dir)[-1]
        assert summary["status"] == "complete" and summary["config"]["task"]["name"] == task
        estimates = [k for k in record if k.startswith("diag/sigma_hat_error/")]
        assert bool(estimates) == (method == "sn_conv")  # only sn_conv estimates a norm
        assert all(-0.5 < record[k] <= 1e-6 for k in estimates)  # an underestimate
    assert read_metrics(runs["fro_penalty"])[-1]["penalty"] >= 0
    if task == "classify":  # a conv classifier: sn_conv leaves each conv with operator norm 1
        record = read_metrics(runs["sn_conv"])[-1]
        opnorms = [v for k, v in record.items() if k.startswith("diag/opnorm/")]
        assert len(opnorms) == 2 and all(0.98 <= v <= 1.02 for v in opnorms)
