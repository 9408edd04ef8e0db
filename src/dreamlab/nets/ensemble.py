"""An ensemble of equally shaped MLPs evaluated with batched matmuls (SAC's twin critics).

Stacking the members' weights as [M, in, out] runs every layer of all members in one `baddbmm`,
so two critics cost one kernel per layer instead of two. `detach=True` evaluates the same
function with the weights cut from autograd: the actor's loss then trains only the actor while
gradients still flow into the inputs (the action).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class EnsembleMLP(nn.Module):
    def __init__(self, members: int, in_dim: int, hidden: list[int], out_dim: int):
        super().__init__()
        self.members = members
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip([in_dim, *hidden], [*hidden, out_dim], strict=True):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation, per member
            self.weights.append(nn.Parameter(torch.empty(members, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(members, 1, fan_out).uniform_(-bound, bound)))

    def forward(self, x: torch.Tensor, detach: bool = False) -> torch.Tensor:
        """x [B, in] (shared by the members) or [M, B, in] -> [M, B, out]."""
        if x.dim() == 2:
            x = x.expand(self.members, *x.shape)
        last = len(self.weights) - 1
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            if detach:
                weight, bias = weight.detach(), bias.detach()
            x = torch.baddbmm(bias, x, weight)
            if index < last:
                x = torch.relu(x)
        return x
