"""Linear algebra on a network's layers, shared by the Lipschitz methods, the diagnostics and the tasks."""
import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

# Transposed convolutions keep their output channels in weight dim 1, not 0.
TRANSPOSED_CONVS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
# Layers whose weight is a linear map; norm layers (LayerNorm) and biases are not constrained.
LINEAR_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, *TRANSPOSED_CONVS)
# The functional form of each convolution type, by its number of spatial dims.
CONVOLUTIONS = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d, nn.ConvTranspose1d: F.conv_transpose1d,
                nn.ConvTranspose2d: F.conv_transpose2d, nn.ConvTranspose3d: F.conv_transpose3d}
# Inside the square root so that the gradient of the norm stays finite when the input gradient is exactly 0.
NORM_EPS = 1e-12


def constrained_layers(module: nn.Module) -> list[nn.Module]:
    """The linear and convolution layers of `module`, in definition order."""
    return [m for m in module.modules() if isinstance(m, LINEAR_LAYERS)]


def output_dim(layer: nn.Module) -> int:
    """The weight dim that indexes output channels: 1 for a transposed convolution, else 0."""
    return 1 if isinstance(layer, TRANSPOSED_CONVS) else 0


def weight_matrix(layer: nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """The weight as an (out, -1) matrix, the matrix whose sigma SN divides by."""
    return weight.transpose(0, output_dim(layer)).flatten(1)


def power_iteration(matrix: torch.Tensor, u: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`steps` power iterations from `u`: unit (u, v) with u @ matrix @ v approaching the largest singular value."""
    for _ in range(steps):
        v = F.normalize(matrix.t() @ u, dim=0)
        u = F.normalize(matrix @ v, dim=0)
    return u, v


def spectral_norm(layer: nn.Module, weight: torch.Tensor | None = None) -> float:
    """Exact largest singular value of the layer's weight (or of `weight`) as an (out, -1) matrix: what SN and
    sn_projection bound."""
    weight = layer.weight if weight is None else weight
    return torch.linalg.matrix_norm(weight_matrix(layer, weight.detach()).double(), 2).item()


def padded_convolution(x: torch.Tensor, weight: torch.Tensor, convolution, pad, mode: str, **options) -> torch.Tensor:
    """A convolution with a padding mode other than zeros (circular, reflect, replicate): pad, then convolve."""
    return convolution(F.pad(x, pad, mode=mode), weight, **options)


def linear_map(layer: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """(x, weight) -> the layer's output on the batch x computed with `weight` and no bias: the linear operator whose
    norm is the layer's Lipschitz constant. For a convolution it has the layer's stride, padding (mode included),
    dilation, groups and output padding; it is a partial of torch functions, so a module may keep it as an attribute.
    """
    if isinstance(layer, nn.Linear):
        return F.linear
    convolution = next(f for kind, f in CONVOLUTIONS.items() if isinstance(layer, kind))
    options = {"stride": layer.stride, "dilation": layer.dilation, "groups": layer.groups}
    if isinstance(layer, TRANSPOSED_CONVS):
        return functools.partial(convolution, padding=layer.padding, output_padding=layer.output_padding, **options)
    if layer.padding_mode == "zeros":
        return functools.partial(convolution, padding=layer.padding, **options)
    # The pad of each side, last dim first, as nn.Conv*d computes it for its own forward.
    return functools.partial(padded_convolution, convolution=convolution, pad=layer._reversed_padding_repeated_twice,
                             mode=layer.padding_mode, padding=0, **options)


def subspace_iteration(linear: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                       steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`steps` iterations of the block power method on A^T A for the linear map A = `linear`, from the k
    input-shaped rows of the batch `x`: k orthonormal rows spanning the new subspace, rotated to its Ritz vectors
    (largest first), and their Ritz values, the singular values of A on that subspace.

    The first row estimates A's top right singular vector and its value is a lower bound on ||A|| that rises to it;
    k = 1 is plain power iteration. A convolution's top singular values lie close together (neighbouring
    frequencies), where one vector converges slowly and a block of a few does not. A^T y is autograd's gradient of
    <A x, y> w.r.t. x, exactly the transposed map whatever the stride, padding (mode included) or output padding.
    `linear` must not need gradients w.r.t. anything but its input (pass it a detached weight).
    """
    with torch.enable_grad():
        for _ in range(steps):
            x = x.detach().requires_grad_(True)
            y = linear(x)
            (x,) = torch.autograd.grad(y, x, grad_outputs=y)
            x = torch.linalg.qr(x.flatten(1).T).Q.T.reshape_as(x)
    with torch.no_grad():
        y = linear(x).flatten(1)
        values, vectors = torch.linalg.eigh(y @ y.T)  # ascending
        x = (vectors.flip(1).T @ x.flatten(1)).view_as(x)
    return x, values.flip(0).clamp(min=0).sqrt()


def layer_key(index: int, layer: nn.Module) -> str:
    """`<index>_<layer type>`; torch.nn.utils.parametrize renames the class (Linear -> ParametrizedLinear), so
    the keys of an SN run match the others'."""
    return f"{index}_{type(layer).__name__.removeprefix('Parametrized').lower()}"


def input_gradient_norm(critic: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample ||grad_x D(x)||_2 over all non-batch dims, differentiable w.r.t. the critic's parameters."""
    # The penalty is itself differentiated, which is why GP needs a double backward (create_graph).
    if torch.compiler.is_compiling():
        # Dynamo cannot trace autograd.grad but traces torch.func.grad, the same gradient: a compiled penalty
        # (train.compile_penalty) holds its double backward. Eagerly, func.grad's per-op wrapping would cost 15% of a
        # toy gp step on a CPU, so eager runs take autograd.grad.
        grad = torch.func.grad(lambda y: critic(y).sum())(x.detach())
    else:
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    # Norms in fp32: under bf16 autocast the sum of squares loses too much precision.
    return torch.sqrt(grad.float().flatten(1).pow(2).sum(dim=1) + NORM_EPS)
