"""`make bench`: time per critic step of every method as a ratio to `none`, all measured in one run.

Rounds are interleaved across methods (round-robin) so that background load slows every method alike, and the median
round is reported.
"""
import argparse
import itertools
import statistics
import time

import torch
from hydra import compose, initialize_config_dir

from lipbench.config import CONFIG_DIR
from lipbench.gan import GANTraining
from lipbench.training import build_method, resolve_device, synchronize

METHODS = ["none", "clip", "fro_clip", "gp", "gp_relu", "fro_penalty", "sn", "sn_projection", "sn_conv"]


def stepper(overrides: list[str], device: torch.device):
    """A function running `steps` training critic steps (with the generator steps n_critic implies), built exactly
    as `lipbench OVERRIDES` builds its GAN."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    torch.manual_seed(0)
    critic_steps = forever(GANTraining(cfg, build_method(cfg), device))

    def run(steps: int) -> float:
        synchronize(device)
        start = time.perf_counter()
        for _ in itertools.islice(critic_steps, steps):
            pass
        synchronize(device)
        return (time.perf_counter() - start) / steps

    return run


def forever(training: GANTraining):
    """Critic steps (with their generator steps) without end, epoch after epoch."""
    while True:
        yield from training.epoch()


def bench_case(name: str, overrides: list[str], device: torch.device, steps: int, rounds: int) -> None:
    """Print seconds per critic step and the ratio to `none` for every method on one model/dataset."""
    runners = {m: stepper([*overrides, f"method={m}"], device) for m in METHODS}
    for run in runners.values():
        run(max(steps // 5, 2))  # warm-up: allocator, cuDNN autotuning, SN's u
    times = {m: [] for m in METHODS}
    for _ in range(rounds):
        for method, run in runners.items():
            times[method].append(run(steps))
    median = {m: statistics.median(t) for m, t in times.items()}
    print(f"\n{name} on {device} ({steps} critic steps x {rounds} interleaved rounds, median)")
    print(f"{'method':<15}{'ms/step':>10}{'ratio to none':>16}")
    for method in METHODS:
        print(f"{method:<15}{1000 * median[method]:>10.2f}{median[method] / median['none']:>16.2f}")


# Case -> (overrides, critic steps per round on CPU, on GPU). A full-width DCGAN step takes seconds on a CPU.
CASES = {
    "toy2d-mlp": (["dataset=toy2d", "model=mlp"], 100, 200),
    # The digits scale's narrow DCGAN at 16x16: convolutions (where sn_conv differs from sn) at a CPU-sized cost.
    "dcgan16": (["scale=digits"], 20, 100),
    "dcgan32": (["dataset=digits", "dataset.image_size=32", "model=dcgan", "train.batch_size=64"], 3, 50),
}


@torch.no_grad()
def bench_fid_features(weights: str | None, device: torch.device, batch_size: int, rounds: int) -> None:
    """Print images/s of FID feature extraction (pytorch-fid InceptionV3 pool3) on 32x32 RGB uint8 images."""
    from lipbench import LipbenchError
    from lipbench.metrics.fid import InceptionFeatures

    try:
        features = InceptionFeatures(weights, device)
    except LipbenchError as error:
        print(f"\nFID features: skipped ({error})")
        return
    images = torch.randint(0, 256, (batch_size, 3, 32, 32), dtype=torch.uint8, device=device)
    features(images)  # warm-up
    times = []
    for _ in range(rounds):
        synchronize(device)
        start = time.perf_counter()
        features(images)
        synchronize(device)
        times.append(time.perf_counter() - start)
    print(f"\nFID feature extraction on {device}: {batch_size / statistics.median(times):.1f} images/s "
          f"(batch {batch_size}, median of {rounds})")


def main() -> None:
    """Run every benchmark case (or those named) and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=None, help="critic steps per round (default: per case)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--fid-weights", default=None, help="pytorch-fid Inception weights (default: torch hub cache)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    for case in args.cases:
        overrides, cpu_steps, gpu_steps = CASES[case]
        steps = args.steps or (gpu_steps if device.type == "cuda" else cpu_steps)
        bench_case(case, overrides, device, steps, args.rounds)
    bench_fid_features(args.fid_weights, device, 200 if device.type == "cuda" else 20, args.rounds)


if __name__ == "__main__":
    main()
