"""DreamerV3's optimizer chain (docs/dreamerv3.md: Optimiser): adaptive gradient clipping, then LaProp.

Per parameter tensor: g <- g * min(1, clip * max(1e-3, |theta|) / |g|)  (AGC),
nu <- b2 nu + (1 - b2) g^2 ; u = g / (sqrt(nu_hat) + eps) (RMS first), m <- b1 m + (1 - b1) u
(then momentum, bias-corrected), theta <- theta - lr * m_hat. The learning rate warms up linearly
from 0 over `warmup` steps, so the very first step is exactly zero.

Two counters: the bias corrections of nu and m use each tensor's own number of updates
(`state[p]["step"]`: a tensor whose .grad is None on a step is skipped and its count stays), so a
tensor that starts late or updates only every k-th step (world-model-only warmup updates,
`wm_ac_ratio > 1`, a paused actor-critic) still moves lr * sign(g) for a constant gradient. The
learning-rate warmup follows the group's count of steps that updated any of its tensors
(`group["step"]`). Both are in `state_dict()`.
"""

from __future__ import annotations

import torch


def warmup_lr(step: int, lr: float, warmup: int) -> float:
    """Learning rate at optimizer step `step` (0-based)."""
    return lr if warmup <= 0 else lr * min(1.0, step / warmup)


class LaProp(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 4e-5, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-20,
                 agc: float = 0.3, agc_floor: float = 1e-3, warmup: int = 1000):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, agc=agc, agc_floor=agc_floor, warmup=warmup,
                                      step=0))

    def _group_step(self, group: dict) -> int:
        """The group's step count; a state saved before it was kept there held one shared count per tensor."""
        if "step" not in group:
            group["step"] = max((self.state[p]["step"] for p in group["params"] if self.state.get(p)), default=0)
        return group["step"]

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["agc"] > 0:
                param_norms = torch._foreach_norm(params)
                grad_norms = torch._foreach_norm(grads)
                limits = torch._foreach_mul(torch._foreach_clamp_min(param_norms, group["agc_floor"]), group["agc"])
                scales = [torch.clamp(limit / torch.clamp(norm, min=1e-12), max=1.0)
                          for limit, norm in zip(limits, grad_norms, strict=True)]
                torch._foreach_mul_(grads, scales)
            group_step = self._group_step(group)  # before the per-tensor counts move (old states derive it)
            states = [self.state[p] for p in params]
            for state, p in zip(states, params, strict=True):
                if not state:
                    state["step"] = 0
                    state["nu"] = torch.zeros_like(p)
                    state["momentum"] = torch.zeros_like(p)
                state["step"] += 1  # this tensor's own update count, for its bias corrections
            beta1, beta2 = group["betas"]
            lr = warmup_lr(group_step, group["lr"], group["warmup"])
            counts = [state["step"] for state in states]
            nus = [s["nu"] for s in states]
            moms = [s["momentum"] for s in states]
            torch._foreach_mul_(nus, beta2)
            torch._foreach_addcmul_(nus, grads, grads, value=1 - beta2)
            nu_hat = torch._foreach_div(nus, [1 - beta2 ** n for n in counts])
            denom = torch._foreach_add(torch._foreach_sqrt(nu_hat), group["eps"])
            normalized = torch._foreach_div(grads, denom)
            torch._foreach_mul_(moms, beta1)
            torch._foreach_add_(moms, normalized, alpha=1 - beta1)
            if lr > 0:
                torch._foreach_add_(params, torch._foreach_mul(moms, [-lr / (1 - beta1 ** n) for n in counts]))
            group["step"] += 1
        return None
