"""The GAN task: the same critic/generator step for every Lipschitz method, loss and dataset, and its evaluation."""
import functools
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from lipbench import LipbenchError
from lipbench.config import build, require_model_fits
from lipbench.fast import FastMode, eager_penalties
from lipbench.methods import LipschitzMethod
from lipbench.metrics import build_metric
from lipbench.progress import warn


def autocast(device: torch.device, amp: str):
    """bf16 autocast when train.amp=bf16 (no GradScaler needed: bf16 has fp32's exponent range).

    Its cache of bf16 weight copies is off: it is unsafe under CUDA-graph capture (train.cuda_graph), and a step
    casts each weight at most twice (GP's second forward).
    """
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16", cache_enabled=False)


def critic_step(critic, generator, method, loss, opt_d, latent_shape, amp, real):
    """One critic update; returns detached (critic loss, Wasserstein estimate, penalty). `critic` and `generator`
    may be compiled (train.compile): a compiled critic holds the same layers for the hooks, and the penalty runs it
    eagerly."""
    with autocast(real.device, amp):
        with torch.no_grad():
            fake = generator(torch.randn(latent_shape, device=real.device))
        # Real and fake in one forward: half the kernel launches, and SN's u advances once per step, not twice.
        d_real, d_fake = critic(torch.cat([real, fake])).float().chunk(2)
        with eager_penalties():
            penalty = method.penalty(critic, real, fake)
        loss_d = loss.critic(d_real, d_fake) + penalty
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    method.after_step(critic)
    return loss_d.detach(), (d_real.mean() - d_fake.mean()).detach(), penalty.detach()


def generator_step(critic, generator, loss, opt_g, latent_shape, device, amp):
    """One generator update through a frozen critic; returns (the detached generator loss,)."""
    critic.requires_grad_(False)  # no critic weight gradients are needed here: skip computing them
    with autocast(device, amp):
        loss_g = loss.generator(critic(generator(torch.randn(latent_shape, device=device))).float())
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
        self.generator = build(cfg, "model.generator").to(device)
        self.critic = method.wrap(build(cfg, "model.critic")).to(device)
        if cfg.train.channels_last:  # NHWC convolutions are faster on tensor-core GPUs
            self.generator = self.generator.to(memory_format=torch.channels_last)
            self.critic = self.critic.to(memory_format=torch.channels_last)
        self.fast = FastMode.resolve(cfg.train, device, method)
        self.opt_g = self.fast.optimizer(build(cfg, "optim"), self.generator.parameters())
        self.opt_d = self.fast.optimizer(build(cfg, "optim"), self.critic.parameters())
        self.stateful = {"generator": self.generator, "critic": self.critic, "opt_g": self.opt_g, "opt_d": self.opt_d}
        self.networks = [self.generator, self.critic]
        self.steps_per_epoch = self.dataset.steps_per_epoch(cfg.train.batch_size)
        warn_about_setup(self.critic, self.steps_per_epoch, cfg.train.n_critic)
        # The two steps with everything but their inputs bound, compiled and graphed as train.* asks.
        latent_shape, amp = (cfg.train.batch_size, self.generator.latent_dim), cfg.train.amp
        critic, generator = self.fast.compiled(self.critic), self.fast.compiled(self.generator)
        self.critic_step = self.fast.step(functools.partial(
            critic_step, critic, generator, method, self.loss, self.opt_d, latent_shape, amp))
        self.generator_step = self.fast.step(functools.partial(
            generator_step, critic, generator, self.loss, self.opt_g, latent_shape, device, amp))

    def epoch(self):
        """`steps_per_epoch` critic steps, with a generator step after every `train.n_critic` of them."""
        tc = self.train_cfg
        for step in range(1, self.steps_per_epoch + 1):
            loss_d, w_estimate, penalty = self.critic_step(self.dataset.sample(tc.batch_size))
            scalars = {"loss/critic": loss_d, "wasserstein_estimate": w_estimate, "penalty": penalty}
            if step % tc.n_critic == 0:
                (scalars["loss/generator"],) = self.generator_step()
            yield scalars


class GANTask(GANTraining):
    """GAN training plus its evaluation: the quality metric (W1, FID or classifier FD) and critic diagnostics."""

    def __init__(self, cfg: DictConfig, method: LipschitzMethod, device: torch.device):
        super().__init__(cfg, method, device)
        self.metric = build_metric(cfg.metric, self.dataset, device, cfg.seed)
        self.diagnostics = build(cfg, "diagnostics", seed=cfg.seed)
        self.primary, self.protocol = self.metric.primary, self.metric.protocol
        # What every figure's title says about the run: the method with its strength, the loss, the data.
        self.label = f"{method.label} · {self.loss.name} loss · {self.dataset.name}"

    def evaluate(self, epoch: int, run_dir: Path) -> tuple[dict, dict]:
        """The quality metric as eval/<key>, its figures, and the critic's diag/ values."""
        values, images = self.metric(self.generator, self.critic, epoch, run_dir, self.label)
        scalars = self.diagnostics.for_critic(self.critic, self.generator, self.dataset, epoch, self.method)
        scalars.update({f"eval/{k}": v for k, v in values.items()})
        return scalars, images
