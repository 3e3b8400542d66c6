"""Quality metrics: an evaluator maps (generator, critic) to scalars, lower-is-better `primary` first, plus figures."""
import torch
from hydra.utils import get_class

from lipbench import LipbenchError

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
    if name not in EVALUATORS:
        raise LipbenchError(f"metric={name!r} is unknown: use one of {['auto', *sorted(EVALUATORS)]}")
    # Building an evaluator may initialise networks: a forked RNG keeps the choice of metric from shifting training.
    with torch.random.fork_rng():
        return get_class(EVALUATORS[name])(dataset=dataset, device=device, seed=seed, **(cfg.get(name) or {}))
