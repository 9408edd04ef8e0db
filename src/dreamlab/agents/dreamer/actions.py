"""DreamerV3's policy distributions, one per kind of action space (the official 2024 heads).

- Discrete(n): a categorical over n logits (no unimix, as the official).
- MultiDiscrete(nvec): one categorical per dimension; log-probabilities and entropies summed.
- Box (agents act in [-1, 1]; the env layer clips and rescales): a bounded normal, mean = tanh(x),
  std = (max - min) * sigmoid(y + 2) + min with min 0.1 and max 1.0 (about 0.893 at init). Its
  log-probability and entropy are those of the plain normal on the unclipped sample, summed over
  the action dimensions.

`ActionSpace` turns a gymnasium space into the actor's output width, the RSSM's action input
(one-hots concatenated, or the vector itself) and the distribution of a raw head output.
"""

from __future__ import annotations

import operator
from functools import reduce

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from dreamlab import functional as fn
from dreamlab.config.load import ConfigError

STD_MIN, STD_MAX = 0.1, 1.0


class MultiCategorical:
    """Independent categoricals over consecutive slices of the logits [..., sum(sizes)]."""

    def __init__(self, logits: torch.Tensor, sizes: list[int]):
        self.sizes = sizes
        self.logits = [torch.log_softmax(part, -1) for part in logits.split(sizes, -1)]

    def sample(self) -> torch.Tensor:
        """Class indices [..., len(sizes)]."""
        return torch.stack([fn.sample_categorical(lg.detach()) for lg in self.logits], -1)

    def mode(self) -> torch.Tensor:
        return torch.stack([lg.argmax(-1) for lg in self.logits], -1)

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        return reduce(operator.add, [lg.gather(-1, action[..., i:i + 1]).squeeze(-1)
                                     for i, lg in enumerate(self.logits)])

    def entropy(self) -> torch.Tensor:
        return reduce(operator.add, [-(lg.exp() * lg).sum(-1) for lg in self.logits])


class BoundedNormal:
    """Normal(tanh(mean), (max-min) sigmoid(std + 2) + min) per dimension, on raw [..., 2 * dims]."""

    def __init__(self, raw: torch.Tensor):
        mean, std = raw.chunk(2, -1)
        std = (STD_MAX - STD_MIN) * torch.sigmoid(std + 2.0) + STD_MIN
        self.dist = torch.distributions.Normal(torch.tanh(mean), std)

    def sample(self) -> torch.Tensor:
        return self.dist.sample()

    def rsample(self) -> torch.Tensor:
        """A reparameterised sample: the dynamics gradient flows through it into the mean and std."""
        return self.dist.rsample()

    def mode(self) -> torch.Tensor:
        return self.dist.mean

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        return self.dist.log_prob(action).sum(-1)

    def entropy(self) -> torch.Tensor:
        return self.dist.entropy().sum(-1)


class ActionSpace:
    """How DreamerV3 reads one gymnasium action space (0-based discrete, or a Box in [-1, 1])."""

    def __init__(self, space: gym.Space):
        if isinstance(space, gym.spaces.Discrete):
            self.kind, self.sizes = "discrete", [int(space.n)]
        elif isinstance(space, gym.spaces.MultiDiscrete):
            if space.nvec.ndim != 1:
                raise ConfigError(f"dreamer reads 1-D MultiDiscrete action spaces, got nvec shape {space.nvec.shape}")
            self.kind, self.sizes = "multidiscrete", [int(n) for n in space.nvec]
        elif isinstance(space, gym.spaces.Box):
            self.kind, self.sizes = "box", [int(np.prod(space.shape))]
            self.shape = tuple(space.shape)
        else:
            raise ConfigError(f"dreamer needs a Discrete, MultiDiscrete or Box action space, got {space}")

    @property
    def continuous(self) -> bool:
        return self.kind == "box"

    @property
    def input_dim(self) -> int:
        """Width of the action vector the RSSM reads."""
        return sum(self.sizes)

    @property
    def head_dim(self) -> int:
        """Width of the actor's raw output."""
        return 2 * self.sizes[0] if self.continuous else sum(self.sizes)

    def dist(self, raw: torch.Tensor) -> MultiCategorical | BoundedNormal:
        raw = raw.float()
        return BoundedNormal(raw) if self.continuous else MultiCategorical(raw, self.sizes)

    def bounded(self, raw: torch.Tensor) -> BoundedNormal:
        """The Box action distribution (reparameterisable: agent.actor_grad=dynamics)."""
        if not self.continuous:
            raise ValueError(f"a {self.kind} action space has no reparameterised distribution")
        return BoundedNormal(raw.float())

    def encode(self, sample: torch.Tensor) -> torch.Tensor:
        """Actions in the distribution's shape -> float RSSM inputs [..., input_dim] (one-hots for discrete)."""
        if self.continuous:
            return sample.float()
        return torch.cat([F.one_hot(sample[..., i].long(), n).float() for i, n in enumerate(self.sizes)], -1)

    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        """Policy samples [..., len(sizes)] or [..., dims] -> actions in the space's own shape."""
        if self.kind == "discrete":
            return action.squeeze(-1)
        return action.reshape(*action.shape[:-1], *self.shape) if self.continuous else action

    def from_env(self, action: torch.Tensor) -> torch.Tensor:
        """Stored actions in the space's shape -> the distribution's shape (for log-probabilities)."""
        if self.kind == "discrete":
            return action.unsqueeze(-1)
        return action.reshape(*action.shape[:action.dim() - len(self.shape)], -1) if self.continuous else action
