"""PPO's networks: separate actor and critic MLPs (tanh) over the observation encoder's features.

Initialised as Stable-Baselines3 does: orthogonal weights with gain sqrt(2) in the hidden layers,
0.01 in the policy output and 1 in the value output, zero biases. Discrete actions get a
categorical over logits; Box actions a Gaussian with a state-independent log std per dimension
(samples are unbounded; the env layer clips them to [-1, 1] and rescales to the env's bounds).
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from torch import nn

from dreamlab.nets.mlp import mlp


def orthogonal_init(net: nn.Sequential, output_gain: float) -> None:
    linears = [m for m in net if isinstance(m, nn.Linear)]
    for i, layer in enumerate(linears):
        nn.init.orthogonal_(layer.weight, gain=output_gain if i == len(linears) - 1 else math.sqrt(2))
        nn.init.zeros_(layer.bias)


class ActorCritic(nn.Module):
    """features -> a policy distribution (`dist`) and a state value (`value`)."""

    def __init__(self, feature_dim: int, action_space: gym.Space, hidden: list[int], log_std_init: float):
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if isinstance(action_space, gym.spaces.Discrete):
            outputs = int(action_space.n)
        elif isinstance(action_space, gym.spaces.Box):
            outputs = int(math.prod(action_space.shape))
        else:
            raise ValueError(f"PPO needs a Discrete or Box action space, got {action_space}")
        self.policy = mlp(feature_dim, hidden, outputs, act=nn.Tanh)
        self.critic = mlp(feature_dim, hidden, 1, act=nn.Tanh)
        orthogonal_init(self.policy, 0.01)
        orthogonal_init(self.critic, 1.0)
        self.log_std = None if self.discrete else nn.Parameter(torch.full((outputs,), float(log_std_init)))

    def dist(self, features: torch.Tensor) -> torch.distributions.Categorical | torch.distributions.Independent:
        out = self.policy(features)
        if self.log_std is None:  # discrete
            return torch.distributions.Categorical(logits=out)
        return torch.distributions.Independent(torch.distributions.Normal(out, self.log_std.exp()), 1)

    def mode(self, features: torch.Tensor) -> torch.Tensor:
        out = self.policy(features)
        return out.argmax(-1) if self.discrete else out

    def value(self, features: torch.Tensor) -> torch.Tensor:
        return self.critic(features).squeeze(-1)
