"""IQN's quantile network (Dabney et al. 2018): Z(x, tau) = head(torso(x) * phi(tau)).

The torso runs once per observation; only the merge and the head run per quantile fraction, so a
thin head keeps the B x N part cheap on a CPU.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dreamlab.nets.encoders import ObservationEncoder
from dreamlab.nets.mlp import mlp


class QuantileNetwork(nn.Module):
    frequencies: torch.Tensor  # a buffer

    def __init__(self, encoder: ObservationEncoder, num_actions: int, hidden: list[int], head_hidden: list[int],
                 cosines: int = 64):
        super().__init__()
        if not hidden:
            raise ValueError("agent.hidden needs at least one layer")
        self.encoder = encoder  # observation dict -> features (a CNN for images)
        self.torso = mlp(encoder.out_dim, hidden)
        # phi(tau) = ReLU(sum_i cos(pi i tau) w_i + b), i = 0..cosines-1 (paper eq. 4)
        self.tau_embedding = nn.Sequential(nn.Linear(cosines, hidden[-1]), nn.ReLU())
        self.head = mlp(hidden[-1], head_hidden, num_actions)
        self.register_buffer("frequencies", math.pi * torch.arange(cosines, dtype=torch.float32))

    def forward(self, obs: dict[str, torch.Tensor], taus: torch.Tensor) -> torch.Tensor:
        """obs {key: [B, ...]}; taus [B, N], or [1, N] shared by the batch -> quantile values [B, N, A]."""
        features = self.torso(self.encoder(obs))  # [B, H]
        phi = self.tau_embedding(torch.cos(taus.unsqueeze(-1) * self.frequencies))  # [B or 1, N, H]
        output = self.head[0]
        if len(self.head) > 1 or not isinstance(output, nn.Linear):
            return self.head(features.unsqueeze(1) * phi)
        # A linear head needs no [B, N, H] product: out[b,n,a] = sum_h phi[n,h] (f[b,h] W[a,h]) + bias[a]
        per_action = features.unsqueeze(1) * output.weight  # [B, A, H]
        if phi.shape[0] == 1:  # shared taus: one [B*A, H] x [H, N] matrix product
            batch, actions, width = per_action.shape
            values = (per_action.reshape(-1, width) @ phi[0].T).view(batch, actions, -1)
            return values.transpose(1, 2) + output.bias
        return torch.matmul(phi, per_action.transpose(1, 2)) + output.bias  # [B, N, A]
