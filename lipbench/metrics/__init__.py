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


def requested_labels(shares: torch.Tensor, n: int) -> torch.Tensor:
    """`n` labels, in class order, split across the classes in proportion to `shares` (largest remainders): the
    labels a conditional generator is evaluated at, the data's class proportions with no sampling noise."""
    exact = shares.double() / shares.sum() * n
    counts = exact.floor().long()
    counts[torch.argsort(exact - counts, descending=True)[:n - int(counts.sum())]] += 1
    return torch.repeat_interleave(torch.arange(len(shares)), counts)


def build_metric(cfg, dataset, device, seed: int, conditional: bool = False):
    """The evaluator cfg["name"] with its settings cfg[<name>] (the `metric` config node, or a dict of the same
    shape); `auto` lets the dataset choose (e.g. FID on GPU, classifier FD on CPU). `conditional`: the generator
    takes labels, and the evaluator adds per-class quality and class consistency."""
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
        return get_class(EVALUATORS[name])(dataset=dataset, device=device, seed=seed, conditional=conditional,
                                           **(cfg.get(name) or {}))
