"""Every bad value is refused before work starts: exit code 2, one line naming the key or path and the fix, no
traceback, and no run dir left behind (least of all one claiming `complete`)."""
import pytest

from tests.conftest import lipbench, run_dirs

DIGITS = ["dataset=digits", "dataset.image_size=16"]
# (case id, overrides, what the one line must name)
CASES = [
    ("epochs-zero", ["train.epochs=0"], "train.epochs"),
    ("epochs-negative", ["train.epochs=-1"], "train.epochs"),
    ("epochs-fraction", ["train.epochs=1.5"], "train.epochs"),
    ("epochs-word", ["train.epochs=abc"], "train.epochs"),
    ("batch-zero", ["train.batch_size=0"], "train.batch_size"),
    ("batch-negative", ["train.batch_size=-3"], "train.batch_size"),
    ("n-critic-zero", ["train.n_critic=0"], "train.n_critic"),
    ("n-critic-fraction", ["train.n_critic=2.5"], "train.n_critic"),
    ("eval-every-zero", ["train.eval_every=0"], "train.eval_every"),
    ("eval-every-negative", ["train.eval_every=-1"], "train.eval_every"),
    ("amp-fp16", ["train.amp=fp16"], "train.amp"),
    ("channels-last-word", ["train.channels_last=maybe"], "train.channels_last"),
    ("deterministic-word", ["train.deterministic=sometimes"], "train.deterministic"),
    ("compile-penalty-word", ["train.compile_penalty=auto"], "train.compile_penalty"),
    ("optimizer-impl-unknown", ["train.optimizer_impl=apex"], "train.optimizer_impl"),
    ("compile-word", ["train.compile=maybe"], "train.compile"),
    ("cuda-graph-word", ["train.cuda_graph=1"], "train.cuda_graph"),
    ("cuda-graph-on-cpu", ["train.cuda_graph=true", "device=cpu"], "train.cuda_graph"),
    ("resume-word", ["train.resume=maybe"], "train.resume"),
    ("seed-negative", ["seed=-1"], "seed"),
    ("seed-fraction", ["seed=1.5"], "seed"),
    ("device-unknown", ["device=tpu"], "device"),
    ("device-cuda-absent", ["device=cuda"], "device"),
    ("lr-zero", ["optim.lr=0"], "optim.lr"),
    ("lr-negative", ["optim.lr=-1"], "optim.lr"),
    ("lr-inf", ["optim.lr=inf"], "optim.lr"),
    ("lr-nan", ["optim.lr=nan"], "optim.lr"),
    ("lr-word", ["optim.lr=fast"], "optim.lr"),
    ("betas-one", ["optim.betas=[0.5]"], "optim.betas"),
    ("betas-one-or-more", ["optim.betas=[1.0,0.9]"], "optim.betas"),
    ("betas-negative", ["optim.betas=[0.5,-0.1]"], "optim.betas"),
    ("gp-weight-negative", ["method.weight=-1"], "method.weight"),
    ("gp-weight-inf", ["method.weight=inf"], "method.weight"),
    ("gp-weight-nan", ["method.weight=nan"], "method.weight"),
    ("gp-target-negative", ["method.target=-1"], "method.target"),
    ("clip-c-zero", ["method=clip", "method.c=0"], "method.c"),
    ("clip-c-negative", ["method=clip", "method.c=-0.1"], "method.c"),
    ("clip-c-inf", ["method=clip", "method.c=inf"], "method.c"),
    ("sn-iterations-zero", ["method=sn", "method.power_iterations=0"], "method.power_iterations"),
    ("sn-iterations-fraction", ["method=sn", "method.power_iterations=1.5"], "method.power_iterations"),
    ("projection-iterations-zero", ["method=sn_projection", "method.power_iterations=0"], "method.power_iterations"),
    ("l2-weight-negative", ["method=l2", "method.weight=-1"], "method.weight"),
    ("spectral-reg-iterations-zero", ["method=spectral_reg", "method.power_iterations=0"], "method.power_iterations"),
    ("spectral-reg-weight-inf", ["method=spectral_reg", "method.weight=inf"], "method.weight"),
    ("gp-relu-classifier", ["task=classify", "method=gp_relu"], "method=gp_relu"),
    ("wandb-mode", ["logger.wandb.mode=foo"], "logger.wandb.mode"),
    ("wandb-project-empty", ["logger.wandb.project=''"], "logger.wandb.project"),
    ("fid-on-toy", ["metric=fid"], "metric=fid"),
    ("fd-on-toy", ["metric=fd_classifier"], "metric=fd_classifier"),
    ("w1-on-images", [*DIGITS, "metric=w1"], "metric=w1"),
    ("w1-no-samples", ["metric.w1.num_samples=0"], "metric.w1.num_samples"),
    ("fid-one-sample", [*DIGITS, "metric=fid", "metric.fid.num_samples=1"], "metric.fid.num_samples"),
    ("fd-no-steps", [*DIGITS, "metric=fd_classifier", "metric.fd_classifier.train_steps=0"],
     "metric.fd_classifier.train_steps"),
    ("fd-batch-zero", [*DIGITS, "metric=fd_classifier", "metric.fd_classifier.batch_size=0"],
     "metric.fd_classifier.batch_size"),
    ("fd-split-unknown", [*DIGITS, "metric=fd_classifier", "metric.fd_classifier.split=val"],
     "metric.fd_classifier.split"),
    ("mlp-on-images", ["dataset=celeba", "model=mlp"], "model=mlp"),
    ("dcgan-on-points", ["model=dcgan"], "model=dcgan"),
    ("resnet-at-16", [*DIGITS, "model=resnet"], "model=resnet"),
    ("classifier-in-a-gan", ["model=classifier_cnn"], "model=classifier_cnn"),
    ("critic-norm-batch", [*DIGITS, "model.critic.critic_norm=batch"], "model.critic.critic_norm"),
    ("distribution-unknown", ["dataset.distribution=moons"], "dataset.distribution"),
    ("steps-per-epoch-zero", ["dataset.steps_per_epoch=0"], "dataset.steps_per_epoch"),
    ("lr-decay-unknown", ["train.lr_decay=cosine"], "train.lr_decay"),
    ("modes-on-a-fixed-mixture", ["dataset.modes=25"], "dataset.modes"),
    ("modes-missing", ["dataset.distribution=ring_mixture"], "dataset.modes"),
    ("grid-modes-not-square", ["dataset.distribution=grid_mixture", "dataset.modes=8"], "dataset.modes"),
    ("ring-modes-overlapping", ["dataset.distribution=ring_mixture", "dataset.modes=200"], "dataset.modes"),
    ("toy-dim-three", ["dataset.dim=3"], "dataset.dim"),
    ("dataset-key-typo", ["+dataset.steps_per_epok=5"], "dataset.steps_per_epok"),
    ("image-key-typo", [*DIGITS, "+dataset.image_sise=16"], "dataset.image_sise"),
    ("mnist-missing", ["dataset=mnist", "dataset.root=/nonexistent"], "/nonexistent/MNIST/raw"),
    ("folder-no-path", ["dataset=folder"], "dataset.path"),
    ("folder-missing", ["dataset=folder", "dataset.path=/nonexistent"], "dataset.path=/nonexistent"),
    ("mnist-size", ["dataset=mnist", "dataset.image_size=30"], "dataset.image_size"),
    ("cifar-size", ["dataset=cifar10", "dataset.image_size=64"], "dataset.image_size"),
    ("on-device-word", [*DIGITS, "dataset.on_device=maybe"], "dataset.on_device"),
    ("diagnostics-samples-zero", ["diagnostics.num_samples=0"], "diagnostics.num_samples"),
    ("diagnostics-bins-zero", ["diagnostics.histogram_bins=0"], "diagnostics.histogram_bins"),
    ("misspelt-method-key", ["method.weigth=5"], "method.weigth"),
    ("misspelt-train-key", ["train.epoch=3"], "train.epoch"),
    ("misspelt-top-key", ["sed=1"], "sed"),
    ("classify-on-points", ["task=classify", "dataset=toy2d"], "dataset=toy2d"),
    ("classify-with-gan-model", ["task=classify", "model=mlp"], "model=mlp"),
    ("classify-subset-zero", ["task=classify", "train.subset=0"], "train.subset"),
    ("classify-pgd-zero", ["task=classify", "eval.pgd_steps=0"], "eval.pgd_steps"),
    ("classify-eps-negative", ["task=classify", "eval.eps=[-1.0]"], "eval.eps"),
]


def test_the_table_has_at_least_sixty_distinct_cases():
    assert len(CASES) >= 60 and len({case for case, _, _ in CASES}) == len(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("overrides, names", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_value_is_one_line_exit_2_and_leaves_no_run(tmp_path, overrides, names):
    quiet = [] if any(o.startswith("logger.wandb.mode") for o in overrides) else ["logger.wandb.mode=disabled"]
    proc = lipbench(tmp_path, *overrides, *quiet, check=False, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lipbench: error: ") and names in lines[0], lines
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not run_dirs(tmp_path) and not list(tmp_path.rglob("experiment.json"))
