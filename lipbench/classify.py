"""The classifier loop: cross-entropy plus the Lipschitz method, then per epoch the generalization gap, robust
accuracy under L2 attacks and Lipschitz diagnostics.

Methods see the classifier through the same hooks as a GAN critic: `wrap` and `after_step` get the model, and
`penalty` gets the per-sample training loss as a function of the input (a module holding the model, so weight
penalties find its layers) with real = fake = the batch: the gradient penalty becomes an input-gradient penalty.
"""
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from tqdm import tqdm

from lipbench import LipbenchError
from lipbench.attacks import fgsm_l2, pgd_l2
from lipbench.checkpoint import restore
from lipbench.data.images import to_inputs
from lipbench.diagnostics import layer_key, spectral_norm
from lipbench.methods import constrained_layers
from lipbench.methods.base import require
from lipbench.methods.gradient_penalty import input_gradient_norm
from lipbench.training import (build_method, end_epoch, failures_recorded, finish, open_recorder, start,
                               synchronize)

# The headline metric, logged as eval/test_error: lower is better, as for every quality metric in lipbench.
PRIMARY = "test_error"
# Images per forward pass when evaluating: bounds the memory of whole test sets and of attacks.
EVAL_BATCH = 500


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each sample."""
    return F.cross_entropy(logits, labels, reduction="none")


def logit_margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The true class's logit minus the largest other one: positive iff the sample is classified correctly."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], float("-inf")).amax(dim=1)
    return true - others


class LabelledObjective(nn.Module):
    """x -> objective(model(x), labels) per sample: the classifier seen as a scalar function of its input, a critic."""

    def __init__(self, model: nn.Module, labels: torch.Tensor, objective):
        super().__init__()
        self.model, self.labels, self.objective = model, labels, objective

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, ...] -> [B]."""
        return self.objective(self.model(x), self.labels)


def train_step(model, method, optimizer, x, y):
    """One optimizer step on cross-entropy plus the method's penalty; returns detached (loss, penalty)."""
    loss = F.cross_entropy(model(x), y)
    penalty = method.penalty(LabelledObjective(model, y, per_sample_loss), x, x)
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


def batches(x: torch.Tensor, y: torch.Tensor):
    """(x, y) in slices of EVAL_BATCH."""
    return zip(x.split(EVAL_BATCH), y.split(EVAL_BATCH))


@torch.no_grad()
def loss_and_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, device) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` on uint8 `images`."""
    loss, correct = torch.zeros((), device=device), torch.zeros((), device=device)
    for x, y in batches(images, labels):
        y = y.to(device)
        logits = model(to_inputs(x.to(device)))
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(dim=1) == y).sum()
    return loss.item() / len(images), correct.item() / len(images)


def robust_accuracies(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: list[float], pgd_steps: int) -> dict:
    """Accuracy on (x, y) as given (`clean`) and under L2 FGSM and PGD at every budget (pixel units)."""
    attacks = {"clean": lambda xb, yb: xb}
    for e in eps:
        attacks[f"fgsm_eps{e:g}"] = lambda xb, yb, e=e: fgsm_l2(model, xb, yb, e)
        attacks[f"pgd_eps{e:g}"] = lambda xb, yb, e=e: pgd_l2(model, xb, yb, e, pgd_steps)
    correct = dict.fromkeys(attacks, 0)
    for xb, yb in batches(x, y):
        for name, attack in attacks.items():
            x_adv = attack(xb, yb)
            with torch.no_grad():
                correct[name] += (model(x_adv).argmax(dim=1) == yb).sum().item()
    return {f"robust/{name}": count / len(x) for name, count in correct.items()}


def lipschitz_diagnostics(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Exact sigma of each layer's weight, their product, and ||grad_x logit margin|| at the points (x, y).

    sigma is that of the (out, -1) weight matrix, what SN and spectral_reg act on; for a convolution the operator
    norm can be larger, so for CNNs the product is the bound those methods control rather than a strict bound.
    """
    values, bound = {}, 1.0
    for index, layer in enumerate(constrained_layers(model)):
        sigma = values[f"diag/sigma/{layer_key(index, layer)}"] = spectral_norm(layer)
        bound *= sigma
    values["diag/lipschitz_bound"] = bound
    norms = torch.cat([input_gradient_norm(LabelledObjective(model, yb, logit_margin), xb).detach()
                       for xb, yb in batches(x, y)])
    values["diag/margin_grad_mean"] = norms.mean().item()
    values["diag/margin_grad_max"] = norms.max().item()
    return values


class Evaluation:
    """Train and test loss and accuracy, their gaps, robust accuracy and diagnostics: every metric of an epoch.

    Attacks and diagnostics use `num_samples` test points drawn once with a fixed seed: the same points for every
    epoch, seed and method. The model must be in eval mode.
    """

    def __init__(self, train_set, test_set, device, eps, pgd_steps: int = 10, num_samples: int = 500):
        eps = [eps] if isinstance(eps, (int, float)) else list(eps)
        require(len(eps) > 0 and all(e >= 0 for e in eps), "eval.eps", eps, "a list of budgets >= 0 (pixel units)")
        require(pgd_steps >= 1, "eval.pgd_steps", pgd_steps, ">= 1")
        require(num_samples >= 1, "eval.num_samples", num_samples, ">= 1")
        self.train_set, self.test_set, self.device = train_set, test_set, device
        self.eps, self.pgd_steps = [float(e) for e in eps], int(pgd_steps)
        test_images, test_labels = test_set
        pick = torch.randperm(len(test_images), generator=torch.Generator().manual_seed(0))[:num_samples]
        pick = pick.to(test_images.device)
        self.points = to_inputs(test_images[pick].to(device)), test_labels[pick].to(device)

    def __call__(self, model: nn.Module) -> dict:
        """All the epoch's metrics, by key."""
        train_loss, train_accuracy = loss_and_accuracy(model, *self.train_set, self.device)
        test_loss, test_accuracy = loss_and_accuracy(model, *self.test_set, self.device)
        values = {
            "train/loss": train_loss, "train/accuracy": train_accuracy,
            "test/loss": test_loss, "test/accuracy": test_accuracy, f"eval/{PRIMARY}": 1 - test_accuracy,
            # Both gaps are positive when the model fits its training set better than the test set.
            "gap/accuracy": train_accuracy - test_accuracy, "gap/loss": test_loss - train_loss,
        }
        values.update(robust_accuracies(model, *self.points, self.eps, self.pgd_steps))
        values.update(lipschitz_diagnostics(model, *self.points))
        return values


def train(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> dict:
    """Train a classifier as `cfg` says, evaluating every train.eval_every epochs; returns the final summary fields."""
    device = start(cfg)

    # Build everything from config; bad values are errors before any training happens.
    method = build_method(cfg)
    dataset = instantiate(cfg.dataset, device=device, batch_size=cfg.train.batch_size)
    if getattr(dataset, "labels", None) is None:
        raise LipbenchError(f"dataset={cfg.dataset.name} has no labels: task=classify needs a labelled dataset "
                            f"(dataset=digits, mnist or cifar10)")
    if "classifier" not in cfg.model:
        raise LipbenchError("model.classifier is missing: task=classify needs a classifier, "
                            "e.g. model=classifier_cnn or model=classifier_mlp")
    tc = cfg.train
    images, labels = training_set(dataset, tc.subset)
    steps = len(images) // tc.batch_size
    require(steps >= 1, "train.batch_size", tc.batch_size, f"<= {len(images)} (the training images)")
    test_images, test_labels = dataset.split("test")
    test_set = test_images.to(images.device), test_labels.to(images.device)
    evaluate = Evaluation((images, labels), test_set, device, **cfg.eval)
    model = method.wrap(instantiate(cfg.model.classifier, num_classes=dataset.num_classes)).to(device)
    optimizer = instantiate(cfg.optim)(model.parameters())

    # Resume: a checkpoint in the run dir means this run was started before and is continued, exactly.
    checkpoint_path = run_dir / "checkpoint.pt"
    stateful = {"model": model, "optimizer": optimizer}
    state = restore(checkpoint_path, stateful)
    start_epoch = state["epoch"] if state else 0
    train_time = state["train_time_s"] if state else 0.0
    recorder = open_recorder(cfg, run_dir, overrides, PRIMARY, OmegaConf.to_container(cfg.eval), state)

    status = "complete"
    with failures_recorded(recorder), tqdm(total=tc.epochs * steps, initial=start_epoch * steps, disable=None,
                                           desc=method.name) as progress:
        for epoch in range(start_epoch + 1, tc.epochs + 1):
            sums = torch.zeros(2, device=device)  # cross-entropy, penalty
            synchronize(device)
            t0 = time.perf_counter()
            # One pass over the training images in a fresh random order; the last partial batch is left out.
            order = torch.randperm(len(images), device=images.device)[:steps * tc.batch_size].view(steps, -1)
            for index in order:
                x = to_inputs(images[index].to(device, non_blocking=True))
                y = labels[index].to(device, non_blocking=True)
                sums += torch.stack(train_step(model, method, optimizer, x, y))
                progress.update()
            synchronize(device)
            epoch_time = time.perf_counter() - t0
            train_time += epoch_time

            # One host sync per epoch: the sums stay on the device during the epoch.
            loss, penalty = (sums / steps).tolist()
            scalars = {"loss/cross_entropy": loss, "penalty": penalty, "time/epoch_s": epoch_time,
                       "time/steps_per_s": steps / epoch_time, "time/train_s": train_time}
            if not (math.isfinite(loss) and math.isfinite(penalty)):
                status = "diverged"
            elif epoch % tc.eval_every == 0 or epoch == tc.epochs:
                model.eval()  # eval mode: SN's u stays put, so evaluating never alters training
                t0 = time.perf_counter()
                scalars.update(evaluate(model))
                scalars["time/eval_s"] = time.perf_counter() - t0
                model.train()
            if end_epoch(recorder, progress, epoch, scalars, {}, status, checkpoint_path, stateful, train_time):
                break
    return finish(recorder, status, train_time)
