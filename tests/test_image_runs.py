"""End-to-end image GAN runs through the real CLI: digits, DCGAN, the classifier FD and sample grids."""
import pytest

from tests.conftest import lipbench, read_metrics, read_summary, run_dirs

# A narrow DCGAN on 16x16 digits: the same code path as the full model, seconds per epoch on a CPU.
SMALL_IMAGE_RUN = ["dataset=digits", "dataset.image_size=16", "model=dcgan", "model.generator.width=8",
                   "model.critic.width=8", "train.epochs=1", "train.batch_size=64", "metric=fd_classifier",
                   "metric.fd_classifier.num_samples=200", "metric.fd_classifier.train_steps=200"]


@pytest.mark.slow
def test_one_epoch_of_sn_and_gp_on_digits_logs_fd_and_sample_grids(tmp_path):
    lipbench(tmp_path, "-m", "method=sn,gp", *SMALL_IMAGE_RUN)
    dirs = run_dirs(tmp_path / "runs")
    assert len(dirs) == 2
    for run_dir in dirs:
        summary = read_summary(run_dir)
        assert summary["status"] == "complete" and summary["metric"] == "fd_classifier"
        assert summary["protocol"]["fd_classifier/num_generated"] == 200
        record = read_metrics(run_dir)[-1]
        assert record["eval/fd_classifier"] > 0 and record["eval/fd_classifier"] == summary["final_metric"]
        assert (run_dir / "figures" / "samples_epoch_0001.png").stat().st_size > 0
        assert "diag/lipschitz_bound" in record and any(k.startswith("diag/opnorm/") for k in record)
    # The classifier behind the metric is trained once and shared by every run (cached next to the data).
    assert len(list((tmp_path / "data" / "digits").glob("*classifier*.pt"))) == 1


@pytest.mark.slow
def test_bf16_autocast_with_channels_last_trains_and_evaluates(tmp_path):
    lipbench(tmp_path, "method=gp", "train.amp=bf16", "train.channels_last=true", *SMALL_IMAGE_RUN)
    (run_dir,) = run_dirs(tmp_path / "runs")
    record = read_metrics(run_dir)[-1]
    assert read_summary(run_dir)["status"] == "complete"
    assert record["penalty"] > 0 and record["eval/fd_classifier"] > 0
