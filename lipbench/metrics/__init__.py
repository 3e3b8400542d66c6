"""Quality metrics: an evaluator maps (generator, critic) to scalars, lower-is-better `primary` first, plus figures."""
import torch
from hydra.utils import get_class

from lipbench import LipbenchError
from lipbench.progress import warn

# FID feature extraction on a 2-core CPU, measured by `make bench` (12.1 images/s): for the time estimate below.
CPU_FID_IMAGES_PER_S = 12
# Metric name -> evaluator class; each takes (dataset, device, seed, **its own settings under metric.<name>).
EVALUATORS = {
    "w1": "lipbench.metrics.toy.Toy2DEvaluator",
    "fid": "lipbench.metrics.fid.FIDEvaluator",
    "fd_classifier": "lipbench.metrics.classifier.ClassifierFDEvaluator",
}


def build_metric(cfg, dataset, device, seed: int):
    """The evaluator cfg["name"] with its settings cfg[<name>] (the `metric` config node, or a dict of the same
    shape); `auto` lets the dataset choose (e.g. FID on GPU, classifier FD on CPU)."""
    name = cfg["name"]
    if name == "auto":
        name = dataset.default_metric(device)
        if name == "fid" and torch.device(device).type == "cpu":
            fid = cfg["fid"]
            minutes = fid["num_samples"] / CPU_FID_IMAGES_PER_S / 60
            warn(f"metric=auto chose FID on a CPU (dataset={dataset.name} has no labels for the classifier FD): each "
                 f"evaluation embeds {fid['num_samples']} images, ~{minutes:.0f} min at the ~{CPU_FID_IMAGES_PER_S} "
                 f"images/s measured on 2 cores; make it cheaper with metric.fid.num_samples=... or a larger "
                 f"train.eval_every, or run on a GPU")
    if name not in EVALUATORS:
        raise LipbenchError(f"metric={name!r} is unknown: use one of {['auto', *sorted(EVALUATORS)]}")
    # Building an evaluator may initialise networks: a forked RNG keeps the choice of metric from shifting training.
    with torch.random.fork_rng():
        return get_class(EVALUATORS[name])(dataset=dataset, device=device, seed=seed, **(cfg.get(name) or {}))
