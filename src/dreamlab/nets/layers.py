"""DreamerV3 building blocks: RMSNorm, truncated-normal init, norm+SiLU MLPs, block-diagonal linear.

Conventions of the official implementation (docs/dreamerv3.md: Encoder and decoder): every hidden layer is
Linear -> RMSNorm (eps 1e-4, learned scale, no shift) -> SiLU; weights are truncated normal in
[-2, 2] sigma with sigma = 1.1368 sqrt(1 / fan_in); biases are zero; output layers are scaled by
`outscale` (0 gives a zero-initialised head).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dreamlab.nets.row_sum import row_sum

TRUNC_CORRECTION = 1.1368  # undoes the variance lost by truncating a unit normal at +-2


def init_linear(layer: nn.Linear, fan_in: int | None = None, outscale: float = 1.0) -> nn.Linear:
    fan_in = fan_in or layer.in_features
    std = TRUNC_CORRECTION * math.sqrt(1.0 / fan_in) * outscale
    with torch.no_grad():
        if std == 0:
            layer.weight.zero_()
        else:
            nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float = 1e-4):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # computed in float32 even under bf16 autocast, as the official implementation does
        return F.rms_norm(x.float(), self.scale.shape, self.scale, self.eps).to(x.dtype)


def dense(in_dim: int, out_dim: int) -> nn.Sequential:
    """Linear -> RMSNorm -> SiLU, the hidden layer everywhere in DreamerV3."""
    return nn.Sequential(init_linear(nn.Linear(in_dim, out_dim, bias=False)), RMSNorm(out_dim), nn.SiLU())


def norm_mlp(in_dim: int, units: int, layers: int) -> nn.Sequential:
    """`layers` x (Linear -> RMSNorm -> SiLU) of width `units`."""
    blocks = []
    for _ in range(layers):
        blocks.append(dense(in_dim, units))
        in_dim = units
    return nn.Sequential(*blocks)


def head(in_dim: int, out_dim: int, outscale: float) -> nn.Linear:
    return init_linear(nn.Linear(in_dim, out_dim), outscale=outscale)


class BlockLinear(nn.Module):
    """A dense layer per block: [..., G * in/G] -> [..., G * out/G], no weights across blocks."""

    def __init__(self, in_dim: int, out_dim: int, blocks: int, bias: bool = True):
        super().__init__()
        assert in_dim % blocks == 0 and out_dim % blocks == 0, (in_dim, out_dim, blocks)
        self.blocks = blocks
        std = TRUNC_CORRECTION * math.sqrt(1.0 / in_dim)  # fan-in of the full input (official)
        weight = torch.empty(blocks, in_dim // blocks, out_dim // blocks)
        nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(out_dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.blocks == 1:  # a plain matmul (bmm and its transposes cost more)
            y = x @ self.weight[0]
            return y if self.bias is None else y + self.bias
        lead = x.shape[:-1]
        x = x.reshape(-1, self.blocks, x.shape[-1] // self.blocks).transpose(0, 1)  # [G, N, in/G]
        y = torch.bmm(x, self.weight).transpose(0, 1).reshape(*lead, -1)
        return y if self.bias is None else y + self.bias


class FeatureLayer(nn.Module):
    """The first layer of every head that reads the model state [deter, one-hot stoch].

    Linear -> RMSNorm -> SiLU, where the stoch part is either a float one-hot (or straight-through)
    tensor [..., G*K] multiplied densely, or long class indices [..., G]: then the product is a sum of
    G weight rows (embedding-bag), about K times fewer FLOPs than multiplying by the one-hot
    (docs/dreamerv3.md: What an update costs on a CPU). Both paths compute the same function.
    """

    offsets: torch.Tensor  # a buffer

    def __init__(self, deter: int, groups: int, classes: int, out: int):
        super().__init__()
        self.deter, self.groups, self.classes = deter, groups, classes
        fan_in = deter + groups * classes
        self.deter_weight = init_linear(nn.Linear(deter, out, bias=False), fan_in=fan_in) if deter else None
        std = TRUNC_CORRECTION * math.sqrt(1.0 / fan_in)
        self.stoch_weight = nn.Parameter(nn.init.trunc_normal_(torch.empty(groups * classes, out), std=std,
                                                               a=-2 * std, b=2 * std))
        self.norm = RMSNorm(out)
        self.register_buffer("offsets", torch.arange(groups) * classes, persistent=False)

    def forward(self, deter: torch.Tensor | None, stoch: torch.Tensor) -> torch.Tensor:
        if stoch.dtype == torch.long:
            flat = (stoch + self.offsets).reshape(-1, self.groups)
            x = row_sum(flat, self.stoch_weight).view(*stoch.shape[:-1], -1)
        else:
            x = torch.matmul(stoch, self.stoch_weight)
        if self.deter_weight is not None:
            x = x + self.deter_weight(deter)
        return F.silu(self.norm(x))


class FeatureMLP(nn.Module):
    """FeatureLayer followed by `layers - 1` dense layers."""

    def __init__(self, deter: int, groups: int, classes: int, units: int, layers: int):
        super().__init__()
        self.first = FeatureLayer(deter, groups, classes, units)
        self.rest = norm_mlp(units, units, layers - 1)

    def forward(self, deter: torch.Tensor, stoch: torch.Tensor) -> torch.Tensor:
        return self.rest(self.first(deter, stoch))


class FeatureHead(nn.Module):
    """FeatureMLP -> output Linear (scaled by outscale)."""

    def __init__(self, deter: int, groups: int, classes: int, units: int, layers: int, out: int, outscale: float):
        super().__init__()
        self.body = FeatureMLP(deter, groups, classes, units, layers)
        self.out = head(units, out, outscale)

    def forward(self, deter: torch.Tensor, stoch: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(deter, stoch))
