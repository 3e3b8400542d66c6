"""The classifier task: cross-entropy plus the Lipschitz method, then per evaluation the generalization gap, robust
accuracy under L2 attacks and Lipschitz diagnostics.

Methods see the classifier through the same hooks as a GAN critic: `wrap` and `after_step` get the model, and
`penalty` gets the per-sample training loss as a function of the input (a module holding the model, so weight
penalties find its layers) with real = fake = the batch: the gradient penalty becomes an input-gradient penalty.
"""
import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from lipbench import LipbenchError, require
from lipbench.config import build
from lipbench.data.images import to_inputs
from lipbench.fast import FastMode
from lipbench.methods import LipschitzMethod
from lipbench.metrics.classification import ClassifierEvaluator
from lipbench.models.classifier import LabelledObjective, per_sample_loss
from lipbench.training import lr_schedule


def loss_penalty(method, model, x, y):
    """The method's penalty on the per-sample training loss as a function of the input."""
    return method.penalty(LabelledObjective(model, y, per_sample_loss), x, x)


def train_step(model, method_penalty, method, optimizer, x, y):
    """One optimizer step on cross-entropy plus the method's penalty; returns detached (loss, penalty). `model` and
    `method_penalty` (loss_penalty bound to the method and the model) may be compiled (train.compile): a compiled model
    holds the same layers for the hooks."""
    loss = F.cross_entropy(model(x), y)
    penalty = method_penalty(x, y)
    optimizer.zero_grad(set_to_none=True)
    (loss + penalty).backward()
    optimizer.step()
    method.after_step(model)
    return loss.detach(), penalty.detach()


def training_set(dataset, subset: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The uint8 train images and labels, or a fixed random `subset` of them (the same for every seed and method)."""
    images, labels = dataset.images, dataset.labels
    if subset is None:
        return images, labels
    require(1 <= subset <= len(images), "train.subset", subset, f"between 1 and {len(images)} (the training images)")
    keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:subset].sort().values
    keep = keep.to(images.device)
    return images[keep], labels[keep]


class ClassifyTask:
    """A classifier trained on a labelled image dataset, evaluated for quality, robustness and Lipschitz diagnostics."""

    def __init__(self, cfg: DictConfig, method: LipschitzMethod, device: torch.device):
        self.method, self.device, self.batch_size = method, device, cfg.train.batch_size
        dataset = build(cfg, "dataset", device=device)
        if getattr(dataset, "labels", None) is None:
            raise LipbenchError(f"dataset={cfg.dataset.name} has no labels: task=classify needs a labelled dataset "
                                f"(dataset=digits, mnist or cifar10)")
        self.images, self.labels = training_set(dataset, cfg.train.subset)
        self.steps_per_epoch = len(self.images) // cfg.train.batch_size
        require(self.steps_per_epoch >= 1, "train.batch_size", cfg.train.batch_size,
                f"<= {len(self.images)} (the training images)")
        test_images, test_labels = dataset.split("test")
        test_set = test_images.to(self.images.device), test_labels.to(self.images.device)
        self.evaluator = ClassifierEvaluator((self.images, self.labels), test_set, device, **cfg.eval)
        self.diagnostics = build(cfg, "diagnostics", seed=cfg.seed)
        self.model = method.wrap(build(cfg, "model.classifier", num_classes=dataset.num_classes)).to(device)
        self.fast = FastMode.resolve(cfg.train, device, method)
        self.optimizer = self.fast.optimizer(build(cfg, "optim"), self.model.parameters())
        self.lr = lr_schedule(self.optimizer, cfg.train.lr_decay, cfg.train.epochs * self.steps_per_epoch)
        penalty = self.fast.penalty(functools.partial(loss_penalty, method, self.model))
        self.train_step = self.fast.step(functools.partial(train_step, self.fast.compiled(self.model), penalty, method,
                                                           self.optimizer))
        self.stateful = {"model": self.model, "optimizer": self.optimizer, "lr": self.lr}
        self.networks = [self.model]
        self.primary, self.protocol = self.evaluator.primary, self.evaluator.protocol

    def epoch(self):
        """One pass over the training images in a fresh random order; the last partial batch is left out."""
        order = torch.randperm(len(self.images), device=self.images.device)
        for index in order[:self.steps_per_epoch * self.batch_size].view(self.steps_per_epoch, -1):
            x = to_inputs(self.images[index].to(self.device, non_blocking=True))
            y = self.labels[index].to(self.device, non_blocking=True)
            loss, penalty = self.train_step(x, y)
            self.lr.step()
            yield {"loss/cross_entropy": loss, "penalty": penalty}

    def evaluate(self, epoch: int, run_dir: Path) -> tuple[dict, dict]:
        """Loss, accuracy, gaps and robust accuracy, and the diag/ values at the attacked test points."""
        values = self.evaluator(self.model)
        values.update(self.diagnostics.for_classifier(self.model, *self.evaluator.points, epoch, self.method))
        return values, {}
