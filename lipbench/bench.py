"""`make bench`: time per critic step of every method, eager and in the fast mode, as a ratio to `none`, all measured
in one run; on CUDA also each one's peak GPU memory, and FID feature extraction in images/s.

Rounds are interleaved across methods and modes (round-robin) so that background load slows all alike, and the median
round is reported.
"""
import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from lipbench.fast import GRAPH_WARMUP_STEPS
from lipbench.gan import GANTraining
from lipbench.naming import CONFIG_DIR
from lipbench.training import build_method, resolve_device, synchronize

# Every method in conf/method/, in a fixed order: the baseline first, then the constraints, then the penalties.
METHODS = sorted((p.stem for p in Path(CONFIG_DIR, "method").glob("*.yaml")), key=lambda m: (m != "none", m))
# The modes every method is timed in: every fast-mode option off; fused optimizers and CUDA graphs without
# compilation (what a method that cannot be compiled still gets); and the whole fast mode (lipbench/fast.py). A speed
# claim about methods must hold in each.
MODES = {"eager": ["train.optimizer_impl=for_loop", "train.compile=false", "train.cuda_graph=false"],
         "graphed": ["train.optimizer_impl=auto", "train.compile=false", "train.cuda_graph=auto"],
         "fast": ["train.optimizer_impl=auto", "train.compile=auto", "train.cuda_graph=auto"]}
# A CIFAR-10 epoch: one critic pass over the 50k training images at the paper's batch of 64.
CIFAR_EPOCH_STEPS = 50_000 // 64


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


def warmed_up(overrides: list[str], device: torch.device, steps: int):
    """A stepper after `steps` untimed steps (allocator, cuDNN autotuning, compilation, graph capture, SN's u), and
    the GPU memory its training took at its peak (MiB; None on a CPU)."""
    if device.type != "cuda":
        run = stepper(overrides, device)
        run(steps)
        return run, None
    synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    run = stepper(overrides, device)
    run(steps)
    return run, (torch.cuda.max_memory_allocated(device) - before) / 2**20


def bench_case(name: str, overrides: list[str], methods: list[str], device: torch.device, steps: int,
               rounds: int) -> None:
    """Print ms per critic step and the ratio to `none` of every method on one model/dataset, in every mode."""
    # On a CPU there are no graphs, so `graphed` would time `fast` twice.
    modes = MODES if device.type == "cuda" else {m: MODES[m] for m in ("eager", "fast")}
    warmup = max(steps // 5, GRAPH_WARMUP_STEPS + 2)  # past the graphs' eager steps and their capture
    runners, peak = {}, {}
    for method, mode in itertools.product(methods, modes):
        runners[method, mode], peak[method, mode] = warmed_up([*overrides, f"method={method}", *modes[mode]], device,
                                                              warmup)
    times = {key: [] for key in runners}
    for _ in range(rounds):  # interleaved, so that background load slows every method and mode alike
        for key, run in runners.items():
            times[key].append(run(steps))
    ms = {key: 1000 * statistics.median(t) for key, t in times.items()}
    base = methods[0]
    print(f"\n{name} on {device} ({steps} critic steps x {rounds} interleaved rounds, median; a critic step includes "
          f"its share of generator steps; ratio to {base} in the same mode)")
    header = "".join(f"{mode + ' ms/step':>16}{'ratio':>7}" for mode in modes) + f"{'fast/eager':>12}"
    if device.type == "cuda":
        header += "".join(f"{mode + ' peak MiB':>16}" for mode in modes)
    print(f"{'method':<15}{header}")
    for method in methods:
        row = "".join(f"{ms[method, mode]:>16.3f}{ms[method, mode] / ms[base, mode]:>7.2f}" for mode in modes)
        row += f"{ms[method, 'fast'] / ms[method, 'eager']:>12.2f}"
        if device.type == "cuda":
            row += "".join(f"{peak[method, mode]:>16.1f}" for mode in modes)
        print(f"{method:<15}{row}")
    if "cifar" in name:
        print(f"a CIFAR-10 epoch ({CIFAR_EPOCH_STEPS} critic steps at batch 64), from the step times above: "
              + ", ".join(f"{m} {CIFAR_EPOCH_STEPS * ms[m, 'fast'] / 1000:.1f} s fast / "
                          f"{CIFAR_EPOCH_STEPS * ms[m, 'eager'] / 1000:.1f} s eager" for m in methods))


# Case -> (overrides, critic steps per round on CPU (None: a GPU case, run on a CPU only when named), on GPU).
# Images come from scikit-learn's digits (no files), upscaled: 1 channel where CIFAR-10 and CelebA have 3.
CASES = {
    "toy2d-mlp": (["dataset=toy2d", "model=mlp"], 100, 200),
    # The digits scale's narrow DCGAN at 16x16: convolutions (where sn_conv differs from sn) at a CPU-sized cost.
    "dcgan16": (["scale=digits"], 20, 100),
    # The SNGAN paper's standard CNN and ResNet at CIFAR-10's size and batch (width 64, latent 128).
    "dcgan32-cifar": (["dataset=digits", "dataset.image_size=32", "model=dcgan", "train.batch_size=64"], None, 100),
    "resnet32": (["dataset=digits", "dataset.image_size=32", "model=resnet", "train.batch_size=64"], None, 50),
    "dcgan64": (["dataset=digits", "dataset.image_size=64", "model=dcgan", "train.batch_size=64"], None, 50),
}


@torch.no_grad()
def bench_fid_features(weights: str | None, device: torch.device, batch_size: int, rounds: int) -> None:
    """Print images/s of FID feature extraction (pytorch-fid InceptionV3 pool3) on 32x32 RGB uint8 images."""
    from lipbench import LipbenchError
    from lipbench.metrics.fid import InceptionFeatures, write_random_inception

    if weights == "random":
        weights = write_random_inception(Path(tempfile.mkdtemp()) / "random_inception.pth")
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
    parser.add_argument("--cases", nargs="*", default=None, choices=list(CASES),
                        help="default: every case on a GPU, the CPU-sized ones on a CPU")
    parser.add_argument("--methods", nargs="*", default=METHODS, choices=METHODS,
                        help="default: all; the first is the baseline of the ratios")
    parser.add_argument("--fid-weights", default=None,
                        help="pytorch-fid Inception weights (default: torch hub cache; 'random': random weights, "
                             "the same speed, where the trained ones are absent)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    for case in args.cases or [c for c, (_, cpu_steps, _) in CASES.items() if cuda or cpu_steps]:
        overrides, cpu_steps, gpu_steps = CASES[case]
        steps = args.steps or (gpu_steps if cuda else cpu_steps or 3)
        bench_case(case, overrides, args.methods, device, steps, args.rounds)
    bench_fid_features(args.fid_weights, device, 200 if device.type == "cuda" else 20, args.rounds)


if __name__ == "__main__":
    main()
