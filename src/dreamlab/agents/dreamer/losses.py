"""DreamerV3 losses assembled from dreamlab.functional: world model, actor, critic, replay value.

Every per-step loss is [T, B] or [H, N] before its mean, and each is named as it is logged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dreamlab import functional as fn
from dreamlab.agents.dreamer.world_model import WorldModel, categorical_kl

DECODER = "decoder/"  # prefix of the per-observation-key reconstruction losses


def world_model_losses(wm: WorldModel, deter: torch.Tensor, stoch: torch.Tensor, post_logits: torch.Tensor,
                       prior_logits: torch.Tensor, obs: dict[str, torch.Tensor], reward: torch.Tensor,
                       is_terminal: torch.Tensor, cfg) -> dict:  # noqa: ANN001 (DreamerConfig)
    """Per-step losses [T, B]: dyn, rep (after free bits), kl_raw, reward, continue, and one per
    observation key (`decoder/<key>`): vectors symlog-MSE summed over dims; images MSE of the sigmoid output against
    image/255, summed over H*W*C (not averaged, as the official).
    """
    kl_dyn = categorical_kl(post_logits.detach(), prior_logits)
    kl_rep = categorical_kl(post_logits, prior_logits.detach())
    continue_target = (1.0 - is_terminal.float()) * cfg.gamma  # the discount lives in the continue head
    losses = {
        "dyn": fn.free_bits(kl_dyn, cfg.free_nats, cfg.free_bits_mode),
        "rep": fn.free_bits(kl_rep, cfg.free_nats, cfg.free_bits_mode),
        "kl_raw": kl_dyn.detach(),
        "reward": wm.reward_head.loss(wm.reward_head(deter, stoch).float(), reward),
        "continue": F.binary_cross_entropy_with_logits(wm.continue_head(deter, stoch).squeeze(-1).float(),
                                                       continue_target, reduction="none"),
    }
    for key, pred in wm.decode_vectors(deter, stoch).items():
        losses[DECODER + key] = ((pred - fn.symlog(obs[key].float())) ** 2).sum(-1)
    for key, pred in wm.decode_images(deter, stoch).items():
        losses[DECODER + key] = ((pred - obs[key].float() / 255.0) ** 2).sum((-3, -2, -1))
    return losses


def replay_returns(reward: torch.Tensor, is_terminal: torch.Tensor, is_last: torch.Tensor,
                   bootstrap: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """Lambda returns along a replayed sequence [T, B] (the official repval target).

    R_t = r_{t+1} + gamma (1 - term_{t+1}) ((1 - lam'_{t+1}) boot_{t+1} + lam'_{t+1} R_{t+1}),
    lam'_{t+1} = lam (1 - is_last_{t+1}), R_{T-1} = boot_{T-1}. Returns [T-1, B] for t < T-1.
    """
    discount = gamma * (1.0 - is_terminal.float())
    lam_next = lam * (1.0 - is_last.float())
    ret = bootstrap[-1]
    out = []
    for t in reversed(range(reward.shape[0] - 1)):
        ret = reward[t + 1] + discount[t + 1] * ((1 - lam_next[t + 1]) * bootstrap[t + 1] + lam_next[t + 1] * ret)
        out.append(ret)
    return torch.stack(out[::-1])
