"""Class-conditional GANs: labels from every labelled dataset, conditional BatchNorm, the projection critic, GP within
same-label pairs, and a conditional run end to end."""
import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.nn.utils import parametrize

from lipbench import LipbenchError
from lipbench.config import build
from lipbench.data.toy2d import Toy2D
from lipbench.gan import critic_penalty, critic_step
from lipbench.losses import Wasserstein
from lipbench.methods import GradientPenalty, SpectralNormalization
from lipbench.metrics.toy import Toy2DEvaluator
from lipbench.models import ConditionalBatchNorm2d
from lipbench.models.dcgan import DCGANCritic, DCGANGenerator
from lipbench.models.mlp import MLPCritic, MLPGenerator
from lipbench.models.resnet import ResNetCritic, ResNetGenerator
from tests.conftest import composed, lipbench, read_metrics, read_summary, run_dirs
from tests.image_files import link_mnist, write_cifar10

# (critic, generator, input shape, settings): every architecture, at every image size it supports.
ARCHITECTURES = [(MLPCritic, MLPGenerator, (2,), {"hidden": 16, "depth": 2}, {"hidden": 16, "depth": 2}),
                 *[(DCGANCritic, DCGANGenerator, (1, size, size), {"image_size": size, "width": 4, "channels": 1},
                    {"image_size": size, "width": 4, "channels": 1, "latent_dim": 8}) for size in (16, 32, 64)],
                 *[(ResNetCritic, ResNetGenerator, (3, size, size), {"image_size": size, "width": 2, "channels": 3},
                    {"image_size": size, "width": 2, "channels": 3, "latent_dim": 8}) for size in (32, 64)]]
ARCHITECTURE_IDS = ["mlp", "dcgan16", "dcgan32", "dcgan64", "resnet32", "resnet64"]


@pytest.mark.parametrize("critic_class, generator_class, shape, critic_kw, generator_kw", ARCHITECTURES,
                         ids=ARCHITECTURE_IDS)
def test_projection_critic_score_is_head_plus_class_embedding_times_features(critic_class, generator_class, shape,
                                                                             critic_kw, generator_kw):
    torch.manual_seed(0)
    critic = critic_class(num_classes=5, **critic_kw)
    x, y = torch.randn(6, *shape), torch.tensor([0, 1, 2, 3, 4, 2])
    phi = critic.features(x)
    psi = critic.head(phi).squeeze(1)
    projection = (critic.embed.weight.t()[y] * phi).sum(dim=1)
    # Tolerances relative to the terms: DCGAN's N(0, 0.02) start makes every number small.
    scale = {"rtol": 1e-4, "atol": 1e-5 * (psi.abs().max() + projection.abs().max()).item()}
    torch.testing.assert_close(critic(x, y), psi + projection, **scale)
    # Only the projection term depends on the label: the score moves by <embed_a - embed_b, phi(x)>.
    other = torch.full_like(y, 1)
    shift = ((critic.embed.weight.t()[y] - critic.embed.weight.t()[other]) * phi).sum(dim=1)
    torch.testing.assert_close(critic(x, y) - critic(x, other), shift, **scale)
    assert shift.abs().max() > 0.1 * projection.abs().max() > 0  # the label matters, on the same scale

    generator = generator_class(num_classes=5, **generator_kw)
    assert generator(torch.randn(6, generator.latent_dim), y).shape == (6, *shape)
    with pytest.raises(ValueError, match="without labels"):
        critic(x)
    with pytest.raises(ValueError, match="without labels"):
        generator(torch.randn(6, generator.latent_dim))


def test_sn_normalizes_the_class_embedding_as_a_layer_like_any_other():
    """The reference code's SNEmbedID divides the embedding matrix by its sigma: SN's wrap does the same here, with no
    line of the method knowing about conditioning."""
    critic = SpectralNormalization(power_iterations=5).wrap(MLPCritic(hidden=16, depth=2, num_classes=8))
    assert parametrize.is_parametrized(critic.embed) and parametrize.is_parametrized(critic.head)
    for _ in range(20):  # power iterations advance in training-mode forwards
        critic(torch.randn(4, 2), torch.arange(4))
    sigma = torch.linalg.matrix_norm(critic.embed.weight.detach(), 2).item()
    assert sigma == pytest.approx(1.0, abs=1e-3)


def test_conditional_batch_norm_scales_and_shifts_each_sample_by_its_own_class():
    norm = ConditionalBatchNorm2d(3, num_classes=4)
    with torch.no_grad():
        norm.affine.gain.weight.copy_(torch.arange(12.0).view(4, 3) + 1)
        norm.affine.bias.weight.copy_(-torch.arange(12.0).view(4, 3))
    x, y = torch.randn(5, 3, 2, 2), torch.tensor([3, 0, 2, 3, 1])
    normalized = F.batch_norm(x, None, None, training=True, eps=norm.norm.eps)
    gain, bias = norm.affine.gain.weight[y], norm.affine.bias.weight[y]
    torch.testing.assert_close(norm(x, y), normalized * gain[:, :, None, None] + bias[:, :, None, None])


@pytest.mark.parametrize("generator_class, settings", [
    (DCGANGenerator, {"image_size": 16, "width": 4, "channels": 1, "latent_dim": 8}),
    (ResNetGenerator, {"image_size": 32, "width": 2, "channels": 1, "latent_dim": 8}),
    (MLPGenerator, {"hidden": 16, "depth": 2})], ids=["dcgan", "resnet", "mlp"])
def test_a_class_parameters_change_only_the_samples_of_that_class(generator_class, settings):
    """In eval mode (BatchNorm on running statistics, so samples do not interact), the first conditional layer's
    gain of class 2 moves the samples requested for class 2 and no other."""
    torch.manual_seed(0)
    generator = generator_class(num_classes=3, **settings).eval()
    z, y = torch.randn(6, generator.latent_dim), torch.tensor([0, 1, 2, 2, 1, 0])
    before = generator(z, y)
    first = next(m for m in generator.modules() if hasattr(m, "gain"))
    with torch.no_grad():
        first.gain.weight[2] *= 3
    moved = (generator(z, y) - before).flatten(1).abs().amax(dim=1) > 1e-6
    assert moved.tolist() == (y == 2).tolist()


class ClassCentres(nn.Module):
    """A conditional generator that puts every sample at its requested class's centre (a stand-in model)."""

    latent_dim = 2

    def __init__(self, centres: torch.Tensor):
        super().__init__()
        self.centres, self.num_classes = centres, len(centres)

    def forward(self, z, y):
        return self.centres[y] + 0 * z


class RecordingCritic(nn.Module):
    """A linear conditional critic, D(x, y) = <w_y, x>, that keeps the inputs and labels of every call."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.w = nn.Parameter(torch.randn(num_classes, 2))
        self.num_classes, self.calls = num_classes, []

    def forward(self, x, y):
        self.calls.append((x.detach().clone(), y.clone()))
        return (self.w[y] * x).sum(dim=1)


def test_gp_under_conditioning_interpolates_only_between_a_real_and_a_fake_of_the_same_label():
    torch.manual_seed(0)
    centres = torch.tensor([[-5.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    labels = torch.tensor([0, 1, 2, 2, 1, 0, 0, 1])
    real = centres[labels] + 0.1 * torch.randn(8, 2)
    critic = RecordingCritic(3)
    opt = torch.optim.SGD(critic.parameters(), lr=0.0)
    gp = GradientPenalty(weight=10.0)
    critic_step(critic, ClassCentres(centres), functools.partial(critic_penalty, gp, critic), gp,
                Wasserstein("wasserstein"), opt, (8, 2), "none", real, labels)
    (scored, scored_labels), (interpolates, interpolate_labels) = critic.calls
    fake = scored[8:]
    assert torch.equal(fake, centres[labels]) and torch.equal(scored_labels, labels.repeat(2))
    assert torch.equal(interpolate_labels, labels)  # each interpolate is scored for its pair's label
    # x_hat = alpha * real + (1 - alpha) * fake with one alpha in [0, 1] per pair: on the segment of its own pair.
    alpha = ((interpolates - fake) * (real - fake)).sum(1) / (real - fake).pow(2).sum(1)
    torch.testing.assert_close(interpolates, alpha[:, None] * real + (1 - alpha[:, None]) * fake)
    assert ((alpha >= 0) & (alpha <= 1)).all()
    # So every interpolate lies next to its own class's centre, never between two classes.
    assert (torch.cdist(interpolates, centres).argmin(dim=1) == labels).all()


@pytest.mark.parametrize("distribution, modes", [("8gaussians", None), ("25gaussians", None), ("ring_mixture", 16),
                                                 ("grid_mixture", 16)])
def test_toy_mixtures_are_labelled_by_the_mode_each_point_was_drawn_from(distribution, modes):
    data = Toy2D(distribution=distribution, modes=modes)
    points, labels = data.sample_labelled(2000, generator=torch.Generator().manual_seed(0))
    assert data.num_classes == len(data.centers) and labels.dtype == torch.int64
    assert sorted(labels.unique().tolist()) == list(range(data.num_classes))
    assert torch.equal(torch.cdist(points, data.centers).argmin(dim=1), labels)
    # The same draws as the unlabelled sample: a conditional run sees the data an unconditional one does.
    assert torch.equal(data.sample(2000, generator=torch.Generator().manual_seed(0)), points)


def labelled(*overrides: str):
    """The dataset `lipbench OVERRIDES task.conditional=true` builds, and its class count as the task asks for it."""
    data = build(composed(*overrides), "dataset", device="cpu")
    return data, data.require_labels("task.conditional=true")


def check_pairs(data, num_classes: int) -> None:
    """sample_labelled's images are training images and its labels are theirs."""
    x, y = data.sample_labelled(64, generator=torch.Generator().manual_seed(1))
    assert y.dtype == torch.int64 and 0 <= y.min() and y.max() < num_classes
    images = ((x + 1) * 127.5).round().to(torch.uint8)
    index = data.sample_index(64, torch.Generator().manual_seed(1))
    assert torch.equal(images, data.images[index]) and torch.equal(y, data.labels[index])


def test_digits_cifar10_and_mnist_yield_labels(tmp_path, shared):
    data, classes = labelled("dataset=digits", f"dataset.root={tmp_path}", "dataset.image_size=16")
    assert classes == 10
    check_pairs(data, classes)
    write_cifar10(tmp_path)
    data, classes = labelled("dataset=cifar10", f"dataset.root={tmp_path}")
    assert classes == 7  # the fixture's 15 training images hold labels 0..6
    check_pairs(data, classes)
    link_mnist(tmp_path / "mnist", shared)
    data, classes = labelled("dataset=mnist", f"dataset.root={tmp_path / 'mnist'}")
    assert classes == 10 and torch.bincount(data.labels).min() > 5000
    check_pairs(data, classes)


def write_classes(folder, classes: dict[str, int]) -> None:
    """`count` small PNGs in folder/<name>/ for each class, grey level by class."""
    for level, (name, count) in enumerate(classes.items()):
        (folder / name).mkdir(parents=True)
        for i in range(count):
            Image.new("L", (8, 8), color=40 * level).save(folder / name / f"{i}.png")


def test_a_folder_with_one_subfolder_per_class_is_labelled_by_subfolder(tmp_path):
    write_classes(tmp_path / "pets", {"cat": 6, "dog": 7, "emu": 5})
    data, classes = labelled("dataset=folder", f"dataset.path={tmp_path / 'pets'}", "dataset.image_size=16",
                             "dataset.channels=1")
    assert classes == 3
    # Each image's label is its subfolder's index in sorted order: grey level 40 * class.
    levels = data.images.flatten(1).float().mean(1)
    torch.testing.assert_close(levels, 40.0 * data.labels.float(), atol=1.0, rtol=0)
    test_images, test_labels = data.split("test")
    torch.testing.assert_close(test_images.flatten(1).float().mean(1), 40.0 * test_labels.float(), atol=1.0, rtol=0)
    check_pairs(data, classes)


@pytest.mark.slow
def test_a_folder_without_class_subfolders_refuses_conditional_in_one_line(tmp_path):
    folder = tmp_path / "flat"
    write_classes(folder, {"only": 4})
    Image.new("L", (8, 8)).save(folder / "top.png")  # an image at the top level: no class layout
    proc = lipbench(tmp_path, "dataset=folder", f"dataset.path={folder}", "dataset.image_size=16",
                    "dataset.channels=1", "task.conditional=true", "logger.wandb.mode=disabled", check=False)
    assert proc.returncode == 2
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith(f"lipbench: error: task.conditional=true needs class labels, and dataset.path={folder} "
                              "has no class subfolders: put each class's images in a subfolder of its own")
    with pytest.raises(LipbenchError, match="dataset.distribution=swissroll has none: use a mixture, labelled by mode"):
        Toy2D(distribution="swissroll").require_labels("task.conditional=true")


@pytest.mark.slow
def test_a_conditional_digits_run_logs_per_class_quality_and_a_grid_with_a_row_per_class(tmp_path):
    lipbench(tmp_path, "scale=digits", "task.conditional=true", "train.epochs=2", "metric.fd_classifier.train_steps=50",
             "metric.fd_classifier.num_samples=400", "logger.wandb.mode=disabled", f"dataset.root={tmp_path}")
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert read_summary(run_dir)["status"] == "complete"
    last = read_metrics(run_dir)[-1]
    assert last["eval/fd_classifier"] > 0 and last["eval/fd_classifier_intra_class"] > 0
    assert 0 <= last["eval/class_consistency"] <= 1
    protocol = read_summary(run_dir)["protocol"]
    assert sum(protocol["fd_classifier_intra_class/generated_per_class"]) == 400
    grid = run_dir / "figures" / "samples_epoch_0002.png"
    with Image.open(grid) as image:
        width, height = image.size
    assert height > width  # 10 rows of 8: taller than the unconditional 8 x 8 grid


class ToyConditionalSampler(nn.Module):
    """A perfect conditional generator of a toy mixture: the requested mode's centre plus the mixture's noise."""

    latent_dim = 2

    def __init__(self, data: Toy2D):
        super().__init__()
        self.data = data

    def forward(self, z, labels):
        return self.data.centers[labels] + self.data.std * z


def test_a_perfect_conditional_toy_generator_scores_the_noise_floor_not_below_it(one_thread):
    """Each point's mode is drawn at random, as a real point's is: a sampler of the data itself scores the floor (two
    independent real samples) on average. Exact class shares score below it (measured on 8gaussians, 12 evaluations:
    0.75 of the floor with exact shares, about 1.06 with random modes)."""
    data = Toy2D(distribution="8gaussians")
    evaluator = Toy2DEvaluator(data, "cpu", seed=0, conditional=True, plot=False)
    distances = [evaluator(ToyConditionalSampler(data), None, epoch, "unused")[0]["w1"] for epoch in range(10, 22)]
    assert 0.8 < np.mean(distances) / evaluator.protocol["w1/noise_floor"] < 1.25
