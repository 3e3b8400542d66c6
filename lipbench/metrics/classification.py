"""A classifier's quality: train and test loss and accuracy, their gaps, and accuracy under L2 attacks."""
import torch
import torch.nn.functional as F
from torch import nn

from lipbench.attacks import fgsm_l2, pgd_l2
from lipbench.data.images import to_inputs

# The headline metric, logged as eval/test_error: lower is better, as for every quality metric in lipbench.
PRIMARY = "test_error"
# Images per forward pass when evaluating: bounds the memory of whole test sets and of attacks.
EVAL_BATCH = 500


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


class ClassifierEvaluator:
    """Train and test loss and accuracy, their gaps and robust accuracy: a classifier's quality at an epoch.

    Attacks use `num_samples` test points drawn once with a fixed seed (`points`): the same points for every epoch,
    seed and method. The model must be in eval mode.
    """

    primary = PRIMARY

    def __init__(self, train_set, test_set, device, eps, pgd_steps: int = 10, num_samples: int = 500):
        eps = [eps] if isinstance(eps, (int, float)) else list(eps)  # values checked by lipbench.config.validate
        self.train_set, self.test_set, self.device = train_set, test_set, device
        self.eps, self.pgd_steps = [float(e) for e in eps], int(pgd_steps)
        self.protocol = {"eps": self.eps, "pgd_steps": self.pgd_steps, "num_samples": int(num_samples)}
        test_images, test_labels = test_set
        pick = torch.randperm(len(test_images), generator=torch.Generator().manual_seed(0))[:num_samples]
        pick = pick.to(test_images.device)
        self.points = to_inputs(test_images[pick].to(device)), test_labels[pick].to(device)

    def __call__(self, model: nn.Module) -> dict:
        """All the epoch's quality metrics, by key."""
        train_loss, train_accuracy = loss_and_accuracy(model, *self.train_set, self.device)
        test_loss, test_accuracy = loss_and_accuracy(model, *self.test_set, self.device)
        values = {
            "train/loss": train_loss, "train/accuracy": train_accuracy,
            "test/loss": test_loss, "test/accuracy": test_accuracy, f"eval/{PRIMARY}": 1 - test_accuracy,
            # Both gaps are positive when the model fits its training set better than the test set.
            "gap/accuracy": train_accuracy - test_accuracy, "gap/loss": test_loss - train_loss,
        }
        values.update(robust_accuracies(model, *self.points, self.eps, self.pgd_steps))
        return values
