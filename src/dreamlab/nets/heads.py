"""Distribution heads shared by agents: twohot regression over symexp-spaced bins (DreamerV3)."""

from __future__ import annotations

import torch
from torch import nn

from dreamlab import functional as fn
from dreamlab.nets.layers import head


def symexp_bins(count: int = 255, limit: float = 20.0) -> torch.Tensor:
    """symexp(linspace(-limit, limit)) with an exact 0 in the centre (the official value bins)."""
    half = fn.symexp(torch.linspace(0.0, limit, (count + 1) // 2))
    return torch.cat([-half[1:].flip(0), half]) if count % 2 else torch.cat([-half.flip(0), half])


class TwohotHead(nn.Module):
    """Logits over symexp-spaced bins; the prediction is the probability-weighted bin value."""

    bins: torch.Tensor  # a buffer

    def __init__(self, body: nn.Module, width: int, bins: int, outscale: float = 0.0):
        super().__init__()
        self.body = body
        self.out = head(width, bins, outscale)
        self.register_buffer("bins", symexp_bins(bins))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(*inputs))

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits, -1)
        # Sum positive and negative halves separately, so uniform probabilities give exactly 0.
        half = self.bins.shape[0] // 2  # the centre bin is exactly 0
        negative = (probs[..., :half].flip(-1) * self.bins[:half].flip(0)).sum(-1)
        positive = (probs[..., half + 1:] * self.bins[half + 1:]).sum(-1)
        return negative + positive

    def loss(self, logits: torch.Tensor, target: torch.Tensor, *more: tuple[float, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy against twohot(target) -> [...], plus scale x the cross-entropy against each
        further (scale, target) pair (the critic's regulariser toward its slow copy), from one
        log-softmax of the logits."""
        log_probs = torch.log_softmax(logits, -1)
        total = -fn.twohot_log_likelihood(log_probs, target.detach(), self.bins)
        for scale, other in more:
            total = total - scale * fn.twohot_log_likelihood(log_probs, other.detach(), self.bins)
        return total
