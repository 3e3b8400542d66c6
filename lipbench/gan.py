"""The GAN training loop: the same critic/generator schedule for every Lipschitz method, loss and dataset."""
import math
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from tqdm import tqdm

from lipbench import LipbenchError
from lipbench.checkpoint import restore
from lipbench.training import (build_method, end_epoch, failures_recorded, finish, open_recorder, start,
                               synchronize)


def autocast(device: torch.device, amp: str):
    """bf16 autocast when train.amp=bf16 (no GradScaler needed: bf16 has fp32's exponent range)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16")


def critic_step(critic, generator, method, loss, opt_d, real, batch_size, amp="none"):
    """One critic update; returns detached (critic loss, Wasserstein estimate, penalty)."""
    with autocast(real.device, amp):
        with torch.no_grad():
            fake = generator(torch.randn(batch_size, generator.latent_dim, device=real.device))
        # Real and fake in one forward: half the kernel launches, and SN's u advances once per step, not twice.
        d_real, d_fake = critic(torch.cat([real, fake])).float().chunk(2)
        penalty = method.penalty(critic, real, fake)
        loss_d = loss.critic(d_real, d_fake) + penalty
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    method.after_step(critic)
    return loss_d.detach(), (d_real.mean() - d_fake.mean()).detach(), penalty.detach()


def generator_step(critic, generator, loss, opt_g, batch_size, device, amp="none"):
    """One generator update through a frozen critic; returns the detached generator loss."""
    critic.requires_grad_(False)  # no critic weight gradients are needed here: skip computing them
    with autocast(device, amp):
        loss_g = loss.generator(critic(generator(torch.randn(batch_size, generator.latent_dim, device=device))).float())
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    critic.requires_grad_(True)
    return loss_g.detach()


def train(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> dict:
    """Train a GAN as `cfg` says, logging every epoch; returns the final summary fields."""
    device = start(cfg)

    # Build everything from config; the method validates its values before any training happens.
    if cfg.train.amp not in ("none", "bf16"):
        raise LipbenchError(f"train.amp={cfg.train.amp} is unknown: use none or bf16")
    method = build_method(cfg)
    loss = instantiate(cfg.loss)
    dataset = instantiate(cfg.dataset, device=device, batch_size=cfg.train.batch_size)
    generator = instantiate(cfg.model.generator).to(device)
    critic = method.wrap(instantiate(cfg.model.critic)).to(device)
    if cfg.train.channels_last:  # NHWC convolutions are faster on tensor-core GPUs
        generator, critic = generator.to(memory_format=torch.channels_last), critic.to(memory_format=torch.channels_last)
    opt_g = instantiate(cfg.optim)(generator.parameters())
    opt_d = instantiate(cfg.optim)(critic.parameters())
    metric = instantiate(cfg.metric, dataset=dataset, device=device, seed=cfg.seed)
    diagnostics = instantiate(cfg.diagnostics, seed=cfg.seed)

    # Resume: a checkpoint in the run dir means this run was started before and is continued, exactly.
    checkpoint_path = run_dir / "checkpoint.pt"
    stateful = {"generator": generator, "critic": critic, "opt_g": opt_g, "opt_d": opt_d}
    state = restore(checkpoint_path, stateful)
    start_epoch = state["epoch"] if state else 0
    train_time = state["train_time_s"] if state else 0.0
    recorder = open_recorder(cfg, run_dir, overrides, metric.primary, metric.protocol, state)

    tc = cfg.train
    steps = dataset.steps_per_epoch
    generator_steps = max(steps // tc.n_critic, 1)
    status = "complete"
    with failures_recorded(recorder), tqdm(total=tc.epochs * steps, initial=start_epoch * steps, disable=None,
                                           desc=method.name) as progress:
        for epoch in range(start_epoch + 1, tc.epochs + 1):
            sums = torch.zeros(4, device=device)  # critic loss, W estimate, penalty, generator loss
            synchronize(device)
            t0 = time.perf_counter()
            for step in range(1, steps + 1):
                real = dataset.sample(tc.batch_size)
                sums[:3] += torch.stack(critic_step(critic, generator, method, loss, opt_d, real, tc.batch_size, tc.amp))
                if step % tc.n_critic == 0:
                    sums[3] += generator_step(critic, generator, loss, opt_g, tc.batch_size, device, tc.amp)
                progress.update()
            synchronize(device)
            epoch_time = time.perf_counter() - t0
            train_time += epoch_time

            # One host sync per epoch: the sums stay on the device during the epoch.
            loss_d, w_est, pen, loss_g = (sums / sums.new_tensor([steps, steps, steps, generator_steps])).tolist()
            scalars = {
                "loss/critic": loss_d, "loss/generator": loss_g, "wasserstein_estimate": w_est, "penalty": pen,
                "time/epoch_s": epoch_time, "time/steps_per_s": steps / epoch_time, "time/train_s": train_time,
            }
            images = {}
            if not all(math.isfinite(v) for v in (loss_d, loss_g, w_est, pen)):
                status = "diverged"
            elif epoch % tc.eval_every == 0 or epoch == tc.epochs:
                generator.eval(), critic.eval()  # eval mode: SN's u stays put, so evaluating never alters training
                values, images = metric(generator, critic, epoch, run_dir)
                scalars.update(diagnostics(critic, generator, dataset, epoch))
                generator.train(), critic.train()
                scalars.update({f"eval/{k}": v for k, v in values.items()})
            if end_epoch(recorder, progress, epoch, scalars, images, status, checkpoint_path, stateful, train_time):
                break
    return finish(recorder, status, train_time)
