"""The GAN task: the same critic/generator step for every Lipschitz method, loss and dataset, and its evaluation."""
import functools
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from lipbench import LipbenchError
from lipbench.config import build, require_model_fits
from lipbench.fast import FastMode
from lipbench.methods import LipschitzMethod
from lipbench.metrics import build_metric
from lipbench.models import given, with_labels
from lipbench.progress import warn
from lipbench.training import lr_schedule


def autocast(device: torch.device, amp: str):
    """bf16 autocast when train.amp=bf16 (no GradScaler needed: bf16 has fp32's exponent range).

    Its cache of bf16 weight copies is off: it is unsafe under CUDA-graph capture (train.cuda_graph), and a step
    casts each weight at most twice (GP's second forward).
    """
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16", cache_enabled=False)


def critic_penalty(method, critic, real, fake, labels=None):
    """The method's penalty on the critic as a function of its input (for the real batch's labels when conditional)."""
    return method.penalty(with_labels(critic, labels), real, fake)


def critic_step(critic, generator, method_penalty, method, loss, opt_d, latent_shape, amp, real, labels=None):
    """One critic update; returns detached (critic loss, Wasserstein estimate, penalty). `critic`, `generator` and
    `method_penalty` (critic_penalty bound to the method and the critic) may be compiled (train.compile): a compiled
    critic holds the same layers for the hooks.

    Class-conditional (`labels` of the real batch): the fakes are generated with the real batch's labels, so that a
    penalty pairing real[i] with fake[i] (GP's interpolates) pairs samples of the same class, and the method sees
    the critic as a function of its input for those labels.
    """
    with autocast(real.device, amp):
        with torch.no_grad():
            fake = generator(torch.randn(latent_shape, device=real.device), *given(labels))
        # Real and fake in one forward: half the kernel launches, and SN's u advances once per step, not twice.
        both = given(None if labels is None else labels.repeat(2))
        d_real, d_fake = critic(torch.cat([real, fake]), *both).float().chunk(2)
        penalty = method_penalty(real, fake, *given(labels))
        loss_d = loss.critic(d_real, d_fake) + penalty
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    method.after_step(critic)
    return loss_d.detach(), (d_real.mean() - d_fake.mean()).detach(), penalty.detach()


def generator_step(critic, generator, loss, opt_g, latent_shape, device, amp, labels=None):
    """One generator update through a frozen critic (for the requested `labels` when conditional); returns (the
    detached generator loss,)."""
    critic.requires_grad_(False)  # no critic weight gradients are needed here: skip computing them
    with autocast(device, amp):
        z = torch.randn(latent_shape, device=device)
        loss_g = loss.generator(critic(generator(z, *given(labels)), *given(labels)).float())
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    critic.requires_grad_(True)
    return (loss_g.detach(),)


def warn_about_setup(critic: nn.Module, steps_per_epoch: int, n_critic: int) -> None:
    """Warn about GAN setups that run but cannot mean what the user thinks."""
    if steps_per_epoch < n_critic:
        warn(f"an epoch has {steps_per_epoch} critic steps but train.n_critic={n_critic}: the generator never takes "
             f"a step (the count restarts each epoch); lower train.n_critic, or give an epoch more steps "
             f"(dataset.steps_per_epoch, or a smaller train.batch_size)")
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules()):
        warn("the critic has BatchNorm layers: they couple the samples of a batch, so a per-sample penalty (gp) and "
             "per-sample slopes mean something else; use model.critic.critic_norm=layer or none")


class GANTraining:
    """Data, generator, method-wrapped critic, loss and optimizers, built from config; `epoch()` trains them.

    `make bench` times exactly this, so its steps are the ones a run takes.
    """

    def __init__(self, cfg: DictConfig, method: LipschitzMethod, device: torch.device):
        require_model_fits(cfg)
        if cfg.train.amp not in ("none", "bf16"):
            raise LipbenchError(f"train.amp={cfg.train.amp} is unknown: use none or bf16")
        self.method, self.device, self.train_cfg = method, device, cfg.train
        self.loss = build(cfg, "loss")
        self.dataset = build(cfg, "dataset", device=device)
        self.conditional = bool(cfg.task.conditional)
        num_classes = self.dataset.require_labels("task.conditional=true") if self.conditional else None
        self.generator = build(cfg, "model.generator", num_classes=num_classes).to(device)
        self.critic = method.wrap(build(cfg, "model.critic", num_classes=num_classes)).to(device)
        if cfg.train.channels_last:  # NHWC convolutions are faster on tensor-core GPUs
            self.generator = self.generator.to(memory_format=torch.channels_last)
            self.critic = self.critic.to(memory_format=torch.channels_last)
        self.fast = FastMode.resolve(cfg.train, device, method)
        self.opt_g = self.fast.optimizer(build(cfg, "optim"), self.generator.parameters())
        self.opt_d = self.fast.optimizer(build(cfg, "optim"), self.critic.parameters())
        self.steps_per_epoch = self.dataset.steps_per_epoch(cfg.train.batch_size)
        epochs, decay = cfg.train.epochs, cfg.train.lr_decay
        self.lr_d = lr_schedule(self.opt_d, decay, epochs * self.steps_per_epoch)
        self.lr_g = lr_schedule(self.opt_g, decay, epochs * (self.steps_per_epoch // cfg.train.n_critic))
        self.stateful = {"generator": self.generator, "critic": self.critic, "opt_g": self.opt_g, "opt_d": self.opt_d,
                         "lr_g": self.lr_g, "lr_d": self.lr_d}
        self.networks = [self.generator, self.critic]
        warn_about_setup(self.critic, self.steps_per_epoch, cfg.train.n_critic)
        # The two steps with everything but their inputs bound, compiled and graphed as train.* asks.
        latent_shape, amp = (cfg.train.batch_size, self.generator.latent_dim), cfg.train.amp
        critic, generator = self.fast.compiled(self.critic), self.fast.compiled(self.generator)
        self.critic_step = self.fast.step(functools.partial(
            critic_step, critic, generator, self.fast.penalty(functools.partial(critic_penalty, method, self.critic)),
            method, self.loss, self.opt_d, latent_shape, amp))
        self.generator_step = self.fast.step(functools.partial(
            generator_step, critic, generator, self.loss, self.opt_g, latent_shape, device, amp))

    def epoch(self):
        """`steps_per_epoch` critic steps, with a generator step after every `train.n_critic` of them."""
        tc = self.train_cfg
        for step in range(1, self.steps_per_epoch + 1):
            # Conditional: the real batch's labels, and for the generator's step labels drawn as the data's classes.
            batch = (self.dataset.sample_labelled(tc.batch_size) if self.conditional
                     else (self.dataset.sample(tc.batch_size),))
            loss_d, w_estimate, penalty = self.critic_step(*batch)
            self.lr_d.step()
            scalars = {"loss/critic": loss_d, "wasserstein_estimate": w_estimate, "penalty": penalty}
            if step % tc.n_critic == 0:
                requested = (self.dataset.sample_labels(tc.batch_size),) if self.conditional else ()
                (scalars["loss/generator"],) = self.generator_step(*requested)
                self.lr_g.step()
            yield scalars


class GANTask(GANTraining):
    """GAN training plus its evaluation: the quality metric (W1, FID or classifier FD) and critic diagnostics."""

    def __init__(self, cfg: DictConfig, method: LipschitzMethod, device: torch.device):
        super().__init__(cfg, method, device)
        self.metric = build_metric(cfg.metric, self.dataset, device, cfg.seed, self.conditional)
        self.diagnostics = build(cfg, "diagnostics", seed=cfg.seed)
        self.primary, self.protocol = self.metric.primary, self.metric.protocol
        # What every figure's title says about the run: the method with its strength, the loss, the data.
        conditional = " · class-conditional" if self.conditional else ""
        self.label = f"{method.label} · {self.loss.name} loss · {self.dataset.name}{conditional}"

    def evaluate(self, epoch: int, run_dir: Path) -> tuple[dict, dict]:
        """The quality metric as eval/<key>, its figures, and the critic's diag/ values."""
        values, images = self.metric(self.generator, self.critic, epoch, run_dir, self.label)
        scalars = self.diagnostics.for_critic(self.critic, self.generator, self.dataset, epoch, self.method)
        scalars.update({f"eval/{k}": v for k, v in values.items()})
        return scalars, images
