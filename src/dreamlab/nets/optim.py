"""The one guarded optimizer step of every agent: skip non-finite losses and gradients, report each
parameter group's gradient norm before clipping, clip per group, step."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import torch


class Step(NamedTuple):
    """What `guarded_step` did: whether the optimizers stepped, and the gradient norm before clipping
    of each group that had a gradient (a group no gradient reached is left out)."""

    stepped: bool
    norms: dict[str, float]


def guarded_step(loss: torch.Tensor, optimizers: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
                 groups: Mapping[str, Sequence[torch.Tensor]],
                 max_norm: float | Mapping[str, float] | None = None) -> Step:
    """Backward `loss`, measure and clip the gradients of each group, and step every optimizer, unless
    the loss or a gradient is not finite (then nothing steps and the gradients are cleared).

    groups: {name: parameters}, e.g. {"q": params} or {"actor": ..., "critic": ...}; each group's global
    L2 norm is measured (and clipped) on its own. max_norm: one limit for every group, {name: limit} for
    some of them, or None (no clipping). Clipping scales a group's gradients by
    min(1, max_norm / (norm + 1e-6)), as torch.nn.utils.clip_grad_norm_ does, from the norm already
    measured. An optimizer skips parameters without a gradient.
    """
    optimizers = [optimizers] if isinstance(optimizers, torch.optim.Optimizer) else list(optimizers)
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    if not torch.isfinite(loss):
        return Step(False, {})
    loss.backward()
    measured = {name: norm for name, params in groups.items() if (norm := grad_norm(params)) is not None}
    norms = {name: float(norm) for name, norm in measured.items()}
    if not all(map(torch.isfinite, measured.values())):
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        return Step(False, norms)
    for name, norm in measured.items():
        limit = max_norm.get(name) if isinstance(max_norm, Mapping) else max_norm
        if limit is not None:
            grads = [p.grad for p in groups[name] if p.grad is not None]
            torch._foreach_mul_(grads, torch.clamp(limit / (norm + 1e-6), max=1.0))
    for optimizer in optimizers:
        optimizer.step()
    return Step(True, norms)


def grad_norm(params: Iterable[torch.Tensor]) -> torch.Tensor | None:
    """Global L2 norm of the gradients of `params` (None when none has a gradient)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return None
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def anneal_lr(optimizer: torch.optim.Optimizer, start: float, end: float | None, fraction: float) -> float:
    """Set every group's learning rate to start + fraction * (end - start) (end None: constant)."""
    lr = start if end is None else start + min(1.0, fraction) * (end - start)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
