"""The image GAN architectures: shapes per image size, per-sample critics, double backward, and a few real steps."""
import copy
import itertools

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from lipbench import LipbenchError
from lipbench.gan import GANTraining
from lipbench.models.dcgan import DCGANCritic, DCGANGenerator
from lipbench.models.resnet import ResNetCritic, ResNetGenerator
from lipbench.training import build_method
from tests.conftest import composed

ARCHITECTURES = {"dcgan": (DCGANGenerator, DCGANCritic), "resnet": (ResNetGenerator, ResNetCritic)}
# (architecture, image size, channels): every supported size, gray and colour.
CASES = [("dcgan", 16, 1), ("dcgan", 32, 3), ("dcgan", 64, 3), ("resnet", 32, 1), ("resnet", 64, 3)]


def differs(before: dict, after: dict) -> bool:
    """Whether any tensor of a state dict changed."""
    return any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("arch, size, channels", CASES)
def test_shapes_and_per_sample_double_differentiable_critic(arch, size, channels):
    """z [B, latent_dim] -> images [B, C, S, S] in [-1, 1] -> scores [B]; the critic has no BatchNorm, a score
    ignores the rest of its batch (layer norm included), and the grad of the input-gradient norm reaches every weight.
    """
    generator_class, critic_class = ARCHITECTURES[arch]
    generator = generator_class(latent_dim=128, channels=channels, image_size=size)
    images = generator(torch.randn(2, generator.latent_dim)).detach().requires_grad_(True)
    assert images.shape == (2, channels, size, size) and images.abs().max() <= 1.0
    assert critic_class(channels=channels, image_size=size, critic_norm="none")(images).shape == (2,)

    critic = critic_class(channels=channels, image_size=size, critic_norm="layer")
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in critic.modules())
    scores = critic(images)
    assert scores.shape == (2,)
    torch.testing.assert_close(critic(images[:1]), scores[:1], rtol=1e-4, atol=1e-5)

    (grad,) = torch.autograd.grad(scores.sum(), images, create_graph=True)
    (grad.flatten(1).norm(dim=1) - 1).pow(2).mean().backward()
    layers = [m for m in critic.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert all(m.weight.grad is not None and m.weight.grad.abs().sum() > 0 for m in layers)


@pytest.mark.parametrize("arch, size", [("dcgan", 28), ("dcgan", 128), ("resnet", 16)])
def test_unsupported_image_size_names_the_keys(arch, size):
    """One line naming the model and dataset.image_size, for the generator and the critic alike."""
    generator_class, critic_class = ARCHITECTURES[arch]
    for build in (lambda: generator_class(image_size=size), lambda: critic_class(image_size=size)):
        with pytest.raises(LipbenchError) as error:
            build()
        assert str(error.value).startswith(f"model={arch} has no variant for dataset.image_size={size}: ")


def test_unknown_critic_norm_names_the_key():
    """A batch norm request is refused with the config key to fix."""
    with pytest.raises(LipbenchError, match=r"model.critic.critic_norm='batch' is unknown"):
        DCGANCritic(critic_norm="batch")


def test_model_configs_follow_the_dataset():
    """dcgan/resnet take channels and size from the image dataset; the MLP still composes with toy2d."""
    cfg = composed("dataset=mnist", "model=resnet")
    assert cfg.model.generator.channels == 1 and cfg.model.critic.image_size == 32
    cfg = composed("dataset=celeba", "model=dcgan")
    assert instantiate(cfg.model.generator)(torch.randn(1, 128)).shape == (1, 3, 64, 64)
    cfg = composed()
    generator, critic = instantiate(cfg.model.generator), instantiate(cfg.model.critic)
    assert critic(generator(torch.randn(5, generator.latent_dim))).shape == (5,)


@pytest.mark.parametrize("method", ["sn", "gp"])
def test_training_steps_on_digits(method, tmp_path):
    """`dataset=digits model=dcgan`: real critic and generator steps of the training loop change both networks."""
    cfg = composed("dataset=digits", "model=dcgan", f"method={method}", f"dataset.root={tmp_path}",
                   "train.batch_size=4", "train.n_critic=2")
    torch.manual_seed(0)
    training = GANTraining(cfg, build_method(cfg), torch.device("cpu"))
    critic_before = copy.deepcopy(training.critic.state_dict())
    generator_before = copy.deepcopy(training.generator.state_dict())

    steps = list(itertools.islice(training.epoch(), 2))
    assert "loss/generator" not in steps[0] and torch.isfinite(steps[1]["loss/generator"])
    for scalars in steps:
        assert all(torch.isfinite(v) for v in scalars.values())
        assert (scalars["penalty"] > 0) == (method == "gp")
    assert differs(critic_before, training.critic.state_dict())
    assert differs(generator_before, training.generator.state_dict())
