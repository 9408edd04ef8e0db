"""IQN agent: double-Q n-step quantile regression with a Polyak target and epsilon-greedy acting."""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from dreamlab.agents.base import LearnsFrom, agent_config, counters_state, load_counters_state, require_discrete_actions
from dreamlab.agents.iqn.networks import QuantileNetwork
from dreamlab.config.schema import Config, IQNConfig
from dreamlab.functional import n_step_returns, quantile_huber_loss_per_sample
from dreamlab.nets.encoders import ObservationEncoder
from dreamlab.nets.mlp import polyak_update
from dreamlab.nets.optim import anneal_lr, guarded_step
from dreamlab.track import names
from dreamlab.track.media import Media


class IQNAgent:
    learns_from: LearnsFrom = "replay"

    def __init__(self, config: Config, obs_space: gym.spaces.Dict, action_space: gym.Space, device: torch.device):
        discrete = require_discrete_actions("IQN", action_space)
        self.obs_keys = sorted(obs_space.spaces)
        self.cfg = agent_config(config, IQNConfig)
        self.total_steps = config.run.steps
        self.device = device
        self.num_actions = int(discrete.n)
        self.batch_size = self.cfg.batch_size
        self.batch_length = self.cfg.n_step + 1
        self.learned_steps_per_window = 1
        self.frame_stack = config.env.frame_stack
        encoder = ObservationEncoder(obs_space, self.cfg.cnn, self.frame_stack, self.cfg.cnn_depth)
        self.online = QuantileNetwork(encoder, self.num_actions, self.cfg.hidden, self.cfg.head_hidden,
                                      self.cfg.cosines).to(device)
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        self.online_params: list[torch.Tensor] = list(self.online.parameters())
        self.target_params: list[torch.Tensor] = list(self.target.parameters())
        self.optimizer = torch.optim.Adam(self.online_params, lr=self.cfg.lr, eps=self.cfg.adam_eps,
                                          fused=True)
        self.rng = np.random.default_rng(config.seed + 1)
        self.torch_rng = torch.Generator(device=device).manual_seed(config.seed + 2)
        self.env_steps = 0  # env steps of exploratory act() rows (x action repeat): drive the epsilon schedule
        self.action_repeat = config.env.action_repeat
        self.updates = 0
        act_taus = (torch.arange(self.cfg.taus_act, dtype=torch.float32) + 0.5) / self.cfg.taus_act
        self.eval_taus = act_taus.to(device)  # evenly spaced: deterministic evaluation

    def epsilon(self) -> float:
        fraction = min(1.0, self.env_steps / self.cfg.eps_decay_steps)
        return self.cfg.eps_start + fraction * (self.cfg.eps_end - self.cfg.eps_start)

    def _taus(self, rows: int, count: int) -> torch.Tensor:
        """Quantile fractions [rows, count] ~ U(0, 1), or [1, count] when shared by the batch."""
        return torch.rand(1 if self.cfg.shared_taus else rows, count, generator=self.torch_rng, device=self.device)

    def _q_values(self, net: QuantileNetwork, obs: dict[str, torch.Tensor], taus: torch.Tensor) -> torch.Tensor:
        return net(obs, taus).mean(dim=1)  # [B, A]

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], state: Any, explore: bool) -> tuple[np.ndarray, Any]:
        inputs, state = self.online.encoder.acting_inputs(obs, state, self.device)
        rows = len(obs["is_first"])
        if explore:
            taus = self._taus(rows, self.cfg.taus_act)
        else:
            taus = self.eval_taus.unsqueeze(0)
        greedy = self._q_values(self.online, inputs, taus).argmax(dim=1).cpu().numpy()
        if not explore:
            return greedy, state
        random_actions = self.rng.integers(0, self.num_actions, size=rows)
        explore_mask = self.rng.random(rows) < self.epsilon()
        self.env_steps += rows * self.action_repeat
        return np.where(explore_mask, random_actions, greedy), state

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        cfg = self.cfg
        time_first = {k: torch.as_tensor(np.swapaxes(batch[k], 0, 1), device=self.device)
                      for k in ("reward", "is_first", "is_terminal", "is_last")}
        returns, discounts, boot_index, valid = n_step_returns(
            time_first["reward"], time_first["is_first"], time_first["is_terminal"], time_first["is_last"],
            cfg.gamma)
        windows = {k: torch.as_tensor(batch[k], device=self.device) for k in self.obs_keys}  # [B, n+1, ...]
        rows = torch.arange(len(boot_index), device=self.device)
        obs = {k: v[:, 0] for k, v in windows.items()}
        next_obs = {k: v[rows, boot_index] for k, v in windows.items()}
        actions = torch.as_tensor(batch["action"][:, 0], device=self.device)

        with torch.no_grad():
            chooser = self.online if cfg.double_q else self.target
            next_action = self._q_values(chooser, next_obs, self._taus(len(rows), cfg.taus_act)).argmax(1)
            next_quantiles = self.target(next_obs, self._taus(len(rows), cfg.taus_target))
            next_quantiles = next_quantiles[rows, :, next_action]  # [B, N']
            targets = returns.unsqueeze(1) + discounts.unsqueeze(1) * next_quantiles

        taus = self._taus(len(rows), cfg.taus_online)
        quantiles = self.online(obs, taus)[rows, :, actions]  # [B, N]
        per_sample = quantile_huber_loss_per_sample(quantiles, taus, targets, cfg.kappa)
        weight = valid.float()
        loss = (per_sample * weight).sum() / weight.sum().clamp(min=1.0)

        lr = anneal_lr(self.optimizer, cfg.lr, cfg.lr_end, self.env_steps / self.total_steps)
        step = guarded_step(loss, self.optimizer, {"q": self.online_params}, cfg.grad_clip)
        if not step.stepped:
            return {names.PERF_NONFINITE_UPDATES: 1.0}
        self.updates += 1
        if self.updates % cfg.target_every == 0:
            polyak_update(self.target_params, self.online_params, cfg.target_tau)
        return {
            names.LOSS_TD: float(loss.detach()),
            names.RL_AVG_Q: float(quantiles.detach().mean()),
            names.grad_norm("q"): step.norms["q"],
            names.RL_EPSILON: self.epsilon(),
            names.RL_LR: lr,
            names.PERF_NONFINITE_UPDATES: 0.0,
        }

    def extra_updates(self) -> int:
        return 0

    def media(self, batch: dict[str, np.ndarray]) -> Media:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            **counters_state(self),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        load_counters_state(self, state)

    def policy_state_dict(self) -> dict[str, Any]:
        return {"online": self.online.state_dict()}

    def load_policy_state_dict(self, state: dict[str, Any]) -> None:
        self.online.load_state_dict(state["online"])
