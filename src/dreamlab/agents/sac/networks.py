"""SAC's networks: an observation encoder, a squashed-Gaussian actor and twin Q critics.

The encoder turns an observation dict into a feature vector; actor and critics read only
features, so an image encoder (a CNN over `image`) replaces `StateEncoder` without touching the
losses. Actions live in [-1, 1]; envs/make.py rescales Box actions to the env's bounds.
"""

from __future__ import annotations

import torch
from torch import nn

from dreamlab.nets.ensemble import EnsembleMLP
from dreamlab.nets.mlp import mlp


class StateEncoder(nn.Module):
    """The `state` vector as it is (the features of a state-based agent)."""

    def __init__(self, obs_dim: int):
        super().__init__()
        self.out_dim = obs_dim

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return obs["state"]


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
