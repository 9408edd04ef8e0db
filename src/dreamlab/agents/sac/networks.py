"""SAC's networks: a squashed-Gaussian actor and twin Q critics.

Both read features from the observation encoder (nets/encoders.py), so state and image
observations share the loss code. Actions live in [-1, 1]; envs/make.py rescales Box actions to
the env's bounds.
"""

from __future__ import annotations

import torch
from torch import nn

from dreamlab.nets.ensemble import EnsembleMLP
from dreamlab.nets.mlp import mlp


class SquashedGaussianActor(nn.Module):
    """features -> (mean, log_std) of a Gaussian over pre-tanh actions; a = tanh(u)."""

    def __init__(self, feature_dim: int, action_dim: int, hidden: list[int], log_std_min: float, log_std_max: float):
        super().__init__()
        self.net = mlp(feature_dim, hidden, 2 * action_dim)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(features).chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)


class TwinCritic(nn.Module):
    """Q_i(features, action) for i in 1..members, evaluated together: [members, B]."""

    def __init__(self, feature_dim: int, action_dim: int, hidden: list[int], members: int = 2):
        super().__init__()
        self.net = EnsembleMLP(members, feature_dim + action_dim, hidden, 1)

    def forward(self, features: torch.Tensor, action: torch.Tensor, detach: bool = False) -> torch.Tensor:
        return self.net(torch.cat([features, action], dim=-1), detach=detach).squeeze(-1)
