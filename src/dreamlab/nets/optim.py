"""One guarded optimizer step: skip non-finite losses, clip, and report the norm before clipping."""

from __future__ import annotations

import torch


def guarded_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, params: list[torch.Tensor],
                 max_norm: float) -> tuple[float, bool]:
    """Backward, clip the global norm to `max_norm` and step, unless loss or gradients are not finite.

    Returns (gradient norm before clipping, whether the step was taken).
    """
    optimizer.zero_grad(set_to_none=True)
    if not torch.isfinite(loss):
        return float("nan"), False
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
    if not torch.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        return float(norm), False
    optimizer.step()
    return float(norm), True


def grad_norm(params: list[torch.Tensor] | object) -> torch.Tensor | None:
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
