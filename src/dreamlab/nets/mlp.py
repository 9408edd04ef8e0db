"""Shared network blocks."""

from __future__ import annotations

import torch
from torch import nn


def mlp(in_dim: int, hidden: list[int], out_dim: int | None = None, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear -> act for each hidden size, then an optional output Linear."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), act()]
        in_dim = width
    if out_dim is not None:
        layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def polyak_update(target: list[torch.Tensor], online: list[torch.Tensor], tau: float) -> None:
    """target <- (1 - tau) target + tau online for parameter lists, in place (tau = 1 copies)."""
    with torch.no_grad():
        torch._foreach_lerp_(target, online, tau)
