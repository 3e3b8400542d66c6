"""Linear algebra on a network's layers, shared by the Lipschitz methods, the diagnostics and the tasks."""
import torch
import torch.nn.functional as F
from torch import nn

# Transposed convolutions keep their output channels in weight dim 1, not 0.
TRANSPOSED_CONVS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
# Layers whose weight is a linear map; norm layers (LayerNorm) and biases are not constrained.
LINEAR_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, *TRANSPOSED_CONVS)
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


def spectral_norm(layer: nn.Module) -> float:
    """Exact largest singular value of the layer's weight as an (out, -1) matrix: what SN and sn_projection bound."""
    return torch.linalg.matrix_norm(weight_matrix(layer, layer.weight.detach()).double(), 2).item()


def layer_key(index: int, layer: nn.Module) -> str:
    """`<index>_<layer type>`; torch.nn.utils.parametrize renames the class (Linear -> ParametrizedLinear), so
    the keys of an SN run match the others'."""
    return f"{index}_{type(layer).__name__.removeprefix('Parametrized').lower()}"


def input_gradient_norm(critic: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample ||grad_x D(x)||_2 over all non-batch dims, differentiable w.r.t. the critic's parameters."""
    x = x.detach().requires_grad_(True)
    scores = critic(x)
    # create_graph: the penalty is itself differentiated, which is why GP needs a double backward.
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    # Norms in fp32: under bf16 autocast the sum of squares loses too much precision.
    return torch.sqrt(grad.float().flatten(1).pow(2).sum(dim=1) + NORM_EPS)
