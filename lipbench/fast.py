"""The fast mode: `train.optimizer_impl`, `train.compile` and `train.cuda_graph`, resolved once when a task is built.

Each computes the same step with fewer kernel launches and less Python between them; none changes a result beyond
floating-point noise (tests/test_fast.py compares a few steps with and without). They apply to every method alike,
except where a method cannot take one, which is then said in the run's log:
- compile: the models are compiled, and with compile_penalty the method's penalty too, as its own graph.
  torch.compile's aot_autograd cannot differentiate a graph twice, so the gradient penalty takes its input gradient
  with torch.func.grad, which Dynamo traces: the penalty's graph holds the first backward as ordinary ops, and the
  step's backward is a single one through it. Off by default: on an H100 it made gp's step 15% slower on dcgan64 and
  7% faster on resnet32.
- cuda_graph: a CUDA graph replays recorded kernels, so a method whose hooks read a value on the host (a Python branch
  on a tensor) or call an op that syncs cannot be captured (`LipschitzMethod.capturable`).
"""
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch import nn

from lipbench import LipbenchError
from lipbench.methods import LipschitzMethod
from lipbench.progress import log

OPTIMIZER_IMPLS = ("auto", "fused", "foreach", "for_loop")
# Eager steps before a CUDA graph is captured: cuDNN autotuning, the optimizer's lazily created state and
# torch.compile's compilation happen there, never during capture (PyTorch's CUDA graphs notes warm up with 3).
GRAPH_WARMUP_STEPS = 3
# Compiled versions of one code object kept before Dynamo falls back to eager (its default is 8): see `compiled`.
RECOMPILE_LIMIT = 256


@dataclass(frozen=True)
class FastMode:
    """Which fast-mode options a run uses, with what each became on this device and method."""

    device: torch.device
    optimizer_impl: str   # fused | foreach | for_loop (an optimizer without a fused kernel, RMSprop, takes foreach)
    compile: bool
    cuda_graph: bool
    compile_penalty: bool  # the method's penalty too (train.compile_penalty; only where models are compiled)

    @classmethod
    def resolve(cls, train: DictConfig, device: torch.device, method: LipschitzMethod) -> "FastMode":
        """`auto` becomes what is fast and fair here; `true` where it cannot work is a one-line error."""
        cuda = device.type == "cuda"
        if train.cuda_graph is True and not cuda:
            raise LipbenchError("train.cuda_graph=true needs a CUDA device (CUDA graphs record GPU kernels): "
                                "use train.cuda_graph=auto or false, or device=cuda")
        if train.cuda_graph is True and not method.capturable:
            raise LipbenchError(f"train.cuda_graph=true cannot capture method={method.name}: its hooks read values on "
                                f"the host each step; use train.cuda_graph=auto (eager steps for it) or false")
        if train.cuda_graph == "auto" and cuda and not method.capturable:
            log.info(f"train.cuda_graph=auto: method={method.name} reads values on the host in its hooks, so its "
                     f"steps run without CUDA graphs")
        impl = train.optimizer_impl
        # auto: on CUDA only; on a CPU compilation takes longer than a short run saves.
        compiling = cuda if train.compile == "auto" else bool(train.compile)
        mode = cls(device, ("fused" if cuda else "foreach") if impl == "auto" else impl, compiling,
                   cuda_graph=cuda and method.capturable if train.cuda_graph == "auto" else bool(train.cuda_graph),
                   compile_penalty=compiling and train.compile_penalty)
        log.info(mode.describe())
        return mode

    def optimizer(self, partial_optimizer: functools.partial, params) -> torch.optim.Optimizer:
        """The configured optimizer (a Hydra partial) with this implementation; capturable when steps are graphed."""
        impl = self.optimizer_impl
        if impl == "fused" and "fused" not in inspect.signature(partial_optimizer.func).parameters:
            impl = "foreach"
        # Only the one flag: torch refuses fused and foreach together, and RMSprop takes no `fused` at all.
        options = {"fused": True} if impl == "fused" else {"foreach": impl == "foreach"}
        if self.cuda_graph:
            options["capturable"] = True  # its step counter stays on the GPU, so the update records into a graph
            # A graph bakes in a Python float: the learning rate lives in a device tensor that train.lr_decay's
            # scheduler fills in place, so each replay reads the current rate.
            options["lr"] = torch.tensor(float(partial_optimizer.keywords["lr"]), device=self.device)
        return partial_optimizer(params, **options)

    def compiled(self, module: nn.Module) -> nn.Module:
        """The module to call in training steps: compiled, or the module itself. Checkpoints, evaluation and the
        methods' hooks keep the module itself (its state_dict keys, eval-mode graphs stay untouched)."""
        return compile_static(module) if self.compile else module

    def penalty(self, penalty: Callable) -> Callable:
        """The step's penalty term `penalty(*tensors)`: compiled with compile_penalty (the model it closes over is
        traced uncompiled, its double backward included), or the function itself."""
        return compile_static(penalty) if self.compile_penalty else penalty

    def step(self, step: Callable) -> Callable:
        """`step(*tensors) -> tuple of tensors`, replayed as one CUDA graph when graphs are on."""
        return GraphedStep(step) if self.cuda_graph else step

    def describe(self) -> str:
        """One line for the run's log: what this run's steps are made of."""
        models = "compiled models and penalty" if self.compile_penalty else "compiled models"
        parts = [f"{self.optimizer_impl} optimizer", models if self.compile else "eager models"]
        parts.append("CUDA-graphed steps" if self.cuda_graph else "steps launched one kernel at a time")
        return "fast mode: " + ", ".join(parts)


def compile_static(function: Callable) -> Callable:
    """torch.compile for fixed shapes, drawing random numbers as eager PyTorch does."""
    # Dynamo keeps 8 compiled versions of a code object by default, then runs it eagerly without a word. Every
    # model's forward is one base-class method, so a multirun or `make bench` (many models, methods and wrappers in
    # one process) would silently stop compiling after the eighth: keep room for all of them.
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    # Inductor's own generator would draw GP's interpolation weights differently from an eager run: with PyTorch's,
    # the fast mode trains on the same random numbers (tests/test_fast.py compares the two).
    torch._inductor.config.fallback_random = True
    # Static shapes: every training batch has the same size, and a shape change recompiles rather than generalizes.
    return torch.compile(function, dynamic=False)


class GraphedStep:
    """A training step replayed as one CUDA graph: every kernel of forward, backward, optimizer update and the
    method's hooks in one launch, no Python between them.

    The first GRAPH_WARMUP_STEPS calls run eagerly on a side stream (they are real training steps); the next call
    records the step into the graph with its inputs in static buffers, and it and every later call copy their inputs
    there and replay. Random draws inside the step (noise, GP's interpolation weights) use PyTorch's graph-safe
    generator, which advances the global CUDA RNG at each replay as the eager step would.
    """

    def __init__(self, step: Callable):
        self.step, self.eager_calls = step, 0
        self.graph = self.inputs = self.outputs = None

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One step on `inputs`; returns copies of its outputs (the graph's own are overwritten by the next)."""
        if self.graph is None and self.eager_calls < GRAPH_WARMUP_STEPS:
            self.eager_calls += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                outputs = self.step(*inputs)
            torch.cuda.current_stream().wait_stream(side)
            return outputs
        if self.graph is None:
            self.inputs = [x.clone() for x in inputs]
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.outputs = self.step(*self.inputs)
        for static, x in zip(self.inputs, inputs):
            static.copy_(x)
        self.graph.replay()
        return tuple(out.clone() for out in self.outputs)
