"""PPO (Schulman et al. 2017) as Stable-Baselines3 runs it: clipped surrogate, value loss, entropy bonus.

It learns from rollouts, not replay windows (`learns_from = "rollout"`): every `agent.n_steps`
steps of each env, the loop hands `update` the rollout in order, records [E, n_steps + 1, ...]
(replay/rollout.py): n_steps transitions per env, the last record shared with the next rollout
as its first. One `update` is one PPO iteration: `n_epochs` passes over the rollout's transitions
in shuffled minibatches of `batch_size`, each a guarded Adam step with the global gradient norm
clipped to `max_grad_norm`.

The rollout's log-probabilities and values are those of the weights that collected it: collection
is in-process and the weights change only inside `update`, so `update` computes them at its start
from the stored observations and actions (the same numbers SB3 stores while acting). Transition t
runs from record t to t+1: its reward, terminal and episode end are record t+1's (collect/records.py);
a transition that starts on an episode's last record (whose action is a dummy, followed by the next
episode's first record) is masked out. Time limits bootstrap from the value of the last observation,
as SB3 does with `terminal_observation`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from dreamlab import functional as fn
from dreamlab.agents.base import LearnsFrom, agent_config, counters_state, load_counters_state
from dreamlab.agents.ppo.networks import ActorCritic
from dreamlab.config.schema import Config, PPOConfig
from dreamlab.nets.encoders import ObservationEncoder
from dreamlab.nets.optim import anneal_lr, guarded_step
from dreamlab.track import names
from dreamlab.track.media import Media


def check_config(config: Config, action_space: gym.Space) -> None:
    """One-line ConfigErrors for what PPO cannot run: parallel collection, frame stacks, other action spaces."""
    from dreamlab.config.load import ConfigError

    if config.collect.mode != "sync":
        raise ConfigError(f"collect.mode={config.collect.mode}: agent=ppo learns on-policy from rollouts "
                          "collected with its current weights; use collect.mode=sync (env.num_envs sets the envs)")
    if config.env.frame_stack != 1:
        raise ConfigError(f"env.frame_stack={config.env.frame_stack}: agent=ppo reads single frames; "
                          "use env.frame_stack=1")
    if not isinstance(action_space, gym.spaces.Discrete | gym.spaces.Box):
        raise ConfigError(f"agent=ppo needs a Discrete or Box action space, got {action_space}")


class PPOAgent:
    learns_from: LearnsFrom = "rollout"  # the latest rollout of every env, in order (agents/base.py)

    def __init__(self, config: Config, obs_space: gym.spaces.Dict, action_space: gym.Space, device: torch.device):
        check_config(config, action_space)
        cfg = self.cfg = agent_config(config, PPOConfig)
        self.device = device
        self.batch_size = config.env.num_envs  # one rollout stream per env
        self.batch_length = cfg.n_steps + 1  # records per rollout: n_steps transitions
        self.learned_steps_per_window = cfg.n_steps * cfg.n_epochs  # transitions learned per env per update
        self.frame_stack = 1
        self.total_steps = config.run.steps
        self.action_shape = tuple(action_space.shape or ())
        self.encoder = ObservationEncoder(obs_space, cfg.cnn, 1, cfg.cnn_depth).to(device)
        self.net = ActorCritic(self.encoder.out_dim, action_space, cfg.hidden, cfg.log_std_init).to(device)
        self.params = [*self.encoder.parameters(), *self.net.parameters()]
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, eps=1e-5)  # SB3's eps for PPO
        self.rng = np.random.default_rng(config.seed + 1)
        self.torch_rng = torch.Generator(device=device).manual_seed(config.seed + 2)
        self.env_steps = 0  # env steps acted with exploration (lr and clip schedules follow it)
        self.action_repeat = config.env.action_repeat
        self.updates = 0

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], state: Any, explore: bool) -> tuple[np.ndarray, Any]:
        rows = len(obs["is_first"])
        inputs, state = self.encoder.acting_inputs(obs, state, self.device)
        features = self.encoder(inputs)
        if explore:
            self.env_steps += rows * self.action_repeat
            action = self._sample(self.net.dist(features))
        else:
            action = self.net.mode(features)
        return action.cpu().numpy().reshape(rows, *self.action_shape), state

    def _sample(self, dist: torch.distributions.Categorical | torch.distributions.Independent) -> torch.Tensor:
        """A draw from `dist` with the agent's own generator (torch's samplers take none)."""
        if isinstance(dist, torch.distributions.Categorical):
            return fn.sample_probs(dist.probs, self.torch_rng)
        normal = dist.base_dist
        if not isinstance(normal, torch.distributions.Normal):
            raise TypeError(f"PPO samples Box actions from a Normal, got {type(normal).__name__}")
        return normal.loc + normal.scale * torch.randn(normal.loc.shape, generator=self.torch_rng, device=self.device)

    # ------------------------------------------------------------------ learning
    def _flat_inputs(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        keys = self.encoder.vector_keys + (["image"] if self.encoder.cnn is not None else [])
        return {k: torch.from_numpy(batch[k]).to(self.device).flatten(0, 1) for k in keys}

    def rollout_targets(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        """Transitions of a rollout [E, T+1] with the collecting weights' log-probs, values, GAE advantages
        and returns, flattened to [N] over the valid ones."""
        cfg = self.cfg
        envs, records = batch["reward"].shape
        flags = {k: torch.from_numpy(batch[k]).to(self.device) for k in ("reward", "is_last", "is_terminal")}
        actions = torch.from_numpy(batch["action"]).to(self.device)[:, :-1].flatten(0, 1)
        flat = self._flat_inputs(batch)
        with torch.no_grad():
            features = self.encoder(flat).unflatten(0, (envs, records))
            values = self.net.value(features)  # [E, T+1]
            log_probs = self.net.dist(features[:, :-1].flatten(0, 1)).log_prob(actions)
        advantages = fn.gae(flags["reward"][:, 1:].T, values[:, :-1].T, values[:, 1:].T,
                            flags["is_terminal"][:, 1:].T, flags["is_last"][:, 1:].T, cfg.gamma, cfg.gae_lambda).T
        valid = ~flags["is_last"][:, :-1].flatten()  # a transition from a last record is no transition
        inputs = {k: v.unflatten(0, (envs, records))[:, :-1].flatten(0, 1)[valid]
                  for k, v in flat.items()}
        old_values = values[:, :-1].flatten()[valid]
        adv = advantages.flatten()[valid]
        return {"inputs": inputs, "actions": actions[valid], "log_probs": log_probs[valid], "values": old_values,
                "advantages": adv, "returns": adv + old_values}

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        cfg = self.cfg
        data = self.rollout_targets(batch)
        progress = self.env_steps / self.total_steps
        lr = anneal_lr(self.optimizer, cfg.lr, cfg.lr_end, progress)
        clip = cfg.clip_range if cfg.clip_range_end is None else (
            cfg.clip_range + min(1.0, progress) * (cfg.clip_range_end - cfg.clip_range))
        count = len(data["advantages"])
        stats: dict[str, list[float]] = {k: [] for k in ("policy", "value", "entropy", "kl", "clipped", "norm")}
        skipped = 0
        for _ in range(cfg.n_epochs):
            order = torch.randperm(count, generator=self.torch_rng, device=self.device)
            for start in range(0, count, cfg.batch_size):
                index = order[start:start + cfg.batch_size]
                losses = self._minibatch_losses(data, index, clip)
                loss = losses["policy"] + cfg.vf_coef * losses["value"] - cfg.ent_coef * losses["entropy"]
                step = guarded_step(loss, self.optimizer, {"policy": self.params}, cfg.max_grad_norm)
                skipped += not step.stepped
                for key in ("policy", "value", "entropy", "kl", "clipped"):
                    stats[key].append(float(losses[key].detach()))
                stats["norm"].append(step.norms.get("policy", float("nan")))
        if skipped:
            return {names.PERF_NONFINITE_UPDATES: 1.0}
        self.updates += 1
        mean = {k: float(np.mean(v)) for k, v in stats.items()}
        returns, values = data["returns"], data["values"]
        explained = 1.0 - float((returns - values).var() / returns.var().clamp(min=1e-8))
        return {names.PPO_POLICY_LOSS: mean["policy"], names.PPO_VALUE_LOSS: mean["value"],
                names.PPO_ENTROPY: mean["entropy"], names.PPO_APPROX_KL: mean["kl"],
                names.PPO_CLIP_FRACTION: mean["clipped"], names.PPO_CLIP_RANGE: clip,
                names.PPO_EXPLAINED_VARIANCE: explained, names.RL_LR: lr,
                names.grad_norm("policy"): mean["norm"], names.PERF_NONFINITE_UPDATES: 0.0}

    def _minibatch_losses(self, data: dict[str, Any], index: torch.Tensor, clip: float) -> dict[str, torch.Tensor]:
        """SB3's PPO losses on one minibatch: clipped surrogate, squared value error, entropy, and the
        diagnostics approx_kl ((r - 1) - log r, as SB3) and the clipped fraction."""
        features = self.encoder({k: v[index] for k, v in data["inputs"].items()})
        dist = self.net.dist(features)
        log_prob = dist.log_prob(data["actions"][index])
        advantages = data["advantages"][index]
        if self.cfg.normalize_advantage and len(index) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        old_log_prob = data["log_probs"][index]
        value_error = data["returns"][index] - self.net.value(features)
        with torch.no_grad():
            log_ratio = log_prob - old_log_prob
            kl = (log_ratio.exp() - 1 - log_ratio).mean()
            clipped = ((log_ratio.exp() - 1).abs() > clip).float().mean()
        return {"policy": fn.clipped_surrogate(log_prob, old_log_prob, advantages, clip),
                "value": value_error.pow(2).mean(), "entropy": dist.entropy().mean(), "kl": kl, "clipped": clipped}

    def extra_updates(self) -> int:
        return 0

    def media(self, batch: dict[str, np.ndarray]) -> Media:
        return {}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {**self.policy_state_dict(), "optimizer": self.optimizer.state_dict(), **counters_state(self)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_policy_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])
        load_counters_state(self, state)

    def policy_state_dict(self) -> dict[str, Any]:
        return {"encoder": self.encoder.state_dict(), "net": self.net.state_dict()}

    def load_policy_state_dict(self, state: dict[str, Any]) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.net.load_state_dict(state["net"])
