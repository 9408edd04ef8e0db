"""DreamerV3 losses assembled from dreamlab.functional: world model, actor, critic, replay value.

Every per-step loss is [T, B] (time-major: replayed steps, sequences) or [H, N] (imagined steps,
starts) before its mean, checked by `check_per_step`, and each is named as it is logged. Every
world-model loss term is scaled by the agent.beta_* its `world_model_scales` entry names; a term
without a scale, or a scale without a term, is an error (`weighted_total`), so no loss is silently
dropped from the total.
"""

from __future__ import annotations

import operator
from functools import reduce

import torch
import torch.nn.functional as F

from dreamlab import functional as fn
from dreamlab.agents.dreamer.world_model import WorldModel, categorical_kl
from dreamlab.config.schema import DreamerConfig
from dreamlab.track import names

DECODER = "decoder/"  # prefix of the per-observation-key reconstruction losses
LOSS_METRICS = {"dyn": names.WM_KL_DYN, "rep": names.WM_KL_REP, "reward": names.WM_LOSS_REWARD,
                "continue": names.WM_LOSS_CONTINUE}  # and decoder/<key> -> wm/loss_<key>


def check_per_step(name: str, loss: torch.Tensor, shape: tuple[int, ...]) -> None:
    """A per-step loss must have the shape of its steps ([T, B] or [H, N]) before it is reduced."""
    if tuple(loss.shape) != shape:
        raise ValueError(f"{name}: shape {list(loss.shape)}, expected the per-step shape {list(shape)}")


def world_model_scales(decoded: list[str]) -> dict[str, str]:
    """{world-model loss term: the agent.beta_* that scales it}, for the decoded observation keys in the
    order their losses come; the order is the summation order of `weighted_total`."""
    return {"dyn": "beta_dyn", "rep": "beta_rep", **{DECODER + key: "beta_pred" for key in decoded},
            "reward": "beta_pred", "continue": "beta_pred"}


def betas(cfg: DreamerConfig) -> dict[str, float]:
    return {"beta_dyn": cfg.beta_dyn, "beta_rep": cfg.beta_rep, "beta_pred": cfg.beta_pred}


def weighted_total(means: dict[str, torch.Tensor], scales: dict[str, str], cfg: DreamerConfig) -> torch.Tensor:
    """sum over scales of beta * (sum of its terms' means); a ValueError names a term without a scale
    or a scale without a term (or naming no agent.beta_*)."""
    values = betas(cfg)
    for term in means:
        if term not in scales:
            raise ValueError(f"world-model loss {term!r} has no scale: add it to world_model_scales "
                             "(agents/dreamer/losses.py)")
    grouped: dict[str, list[torch.Tensor]] = {}
    for term, scale in scales.items():
        if term not in means:
            raise ValueError(f"world-model loss scale for {term!r} names no loss the world model computes")
        if scale not in values:
            raise ValueError(f"world-model loss {term!r}: scale {scale!r} is not one of {sorted(values)}")
        grouped.setdefault(scale, []).append(means[term])
    return reduce(operator.add, [values[scale] * reduce(operator.add, terms) for scale, terms in grouped.items()])


def loss_metric(term: str) -> str:
    """The logged name of a world-model loss term: wm/kl_dyn, wm/kl_rep, wm/loss_reward, wm/loss_continue,
    wm/loss_<key> for decoder/<key>."""
    if term.startswith(DECODER):
        return names.wm_loss(term[len(DECODER):])
    return LOSS_METRICS[term]


def surprise_components(decoded: list[str]) -> dict[str, str]:
    """{metric: component} the surprise signals follow (focus.py): each decoded key, reward, continue and
    the raw KL, in this order."""
    return {**{names.wm_loss(key): key for key in decoded}, names.WM_LOSS_REWARD: "reward",
            names.WM_LOSS_CONTINUE: "continue", names.WM_KL_RAW: "kl"}


def world_model_losses(wm: WorldModel, deter: torch.Tensor, stoch: torch.Tensor, post_logits: torch.Tensor,
                       prior_logits: torch.Tensor, obs: dict[str, torch.Tensor], reward: torch.Tensor,
                       is_terminal: torch.Tensor,
                       cfg: DreamerConfig) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-step losses [T, B] that train the world model: dyn, rep (after free bits), reward, continue,
    and one per observation key (`decoder/<key>`): vectors symlog-MSE summed over dims; images MSE of the
    sigmoid output against image/255, summed over H*W*C (not averaged, as the official). Returns them
    and the raw dynamics KL [T, B] (logged as wm/kl_raw, not trained).
    """
    kl_dyn = categorical_kl(post_logits.detach(), prior_logits)
    kl_rep = categorical_kl(post_logits, prior_logits.detach())
    continue_target = (1.0 - is_terminal.float()) * cfg.gamma  # the discount lives in the continue head
    losses = {
        "dyn": fn.free_bits(kl_dyn, cfg.free_nats, cfg.free_bits_mode),
        "rep": fn.free_bits(kl_rep, cfg.free_nats, cfg.free_bits_mode),
        "reward": wm.reward_head.loss(wm.reward_head(deter, stoch).float(), reward),
        "continue": F.binary_cross_entropy_with_logits(wm.continue_head(deter, stoch).squeeze(-1).float(),
                                                       continue_target, reduction="none"),
    }
    for key, pred in wm.decode_vectors(deter, stoch).items():
        losses[DECODER + key] = ((pred - fn.symlog(obs[key].float())) ** 2).sum(-1)
    for key, pred in wm.decode_images(deter, stoch).items():
        losses[DECODER + key] = ((pred - obs[key].float() / 255.0) ** 2).sum((-3, -2, -1))
    return losses, kl_dyn.detach()


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
