"""DreamerV3 behaviour: actor, twohot critic with a slow EMA copy, percentile return normaliser
(docs/dreamerv3.md: Return normalisation, Actor, Critic)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from dreamlab.agents.dreamer.actions import ActionSpace, BoundedNormal, MultiCategorical
from dreamlab.nets.heads import TwohotHead
from dreamlab.nets.layers import FeatureHead, FeatureMLP
from dreamlab.nets.mlp import polyak_update


class Actor(nn.Module):
    """The policy head: raw outputs (logits, or bounded-normal parameters) with outscale 0.01;
    `actions.dist(raw)` turns them into the distribution of the env's action space."""

    def __init__(self, latent: tuple[int, int, int], units: int, layers: int, actions: ActionSpace):
        super().__init__()
        self.actions = actions
        self.net = FeatureHead(*latent, units, layers, actions.head_dim, 0.01)

    def forward(self, deter: torch.Tensor, stoch: torch.Tensor) -> MultiCategorical | BoundedNormal:
        return self.actions.dist(self.net(deter, stoch))


class Critic(nn.Module):
    """Fast critic trained on lambda returns, and its slow EMA copy used as a regulariser target."""

    def __init__(self, latent: tuple[int, int, int], units: int, layers: int, bins: int, slow_rate: float):
        super().__init__()
        self.net = TwohotHead(FeatureMLP(*latent, units, layers), units, bins, outscale=0.0)
        self.slow = copy.deepcopy(self.net).requires_grad_(False)
        self.slow_rate = slow_rate

    @torch.no_grad()
    def update_slow(self) -> None:
        polyak_update(list(self.slow.parameters()), list(self.net.parameters()), self.slow_rate)


class ReturnNormalizer(nn.Module):
    """EMA of the 5th and 95th return percentiles (decay 0.99, no debiasing); scale = max(1, hi - lo)."""

    low: torch.Tensor  # buffers
    high: torch.Tensor

    def __init__(self, decay: float = 0.99, low: float = 0.05, high: float = 0.95, limit: float = 1.0):
        super().__init__()
        self.decay, self.quantiles, self.limit = decay, (low, high), limit
        self.register_buffer("low", torch.zeros(()))
        self.register_buffer("high", torch.zeros(()))

    @torch.no_grad()
    def update(self, returns: torch.Tensor) -> torch.Tensor:
        flat = returns.detach().float().flatten()
        q = torch.quantile(flat, torch.tensor(self.quantiles, device=flat.device))
        # a non-finite batch (the optimizer's guard skips its step) must not poison the EMA: keep the old one
        finite = torch.isfinite(flat).all()
        self.low.copy_(torch.where(finite, self.decay * self.low + (1 - self.decay) * q[0], self.low))
        self.high.copy_(torch.where(finite, self.decay * self.high + (1 - self.decay) * q[1], self.high))
        return torch.clamp(self.high - self.low, min=self.limit)
