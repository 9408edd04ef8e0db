"""SAC agent: squashed-Gaussian actor, twin critics with a Polyak target, learned temperature.

One update = one backward pass and one Adam step over all parameters. Each loss reaches only its
own parameters: the critic loss the critics (and the encoder), the actor loss the actor (it reads
the critics with detached weights and detached features), the temperature loss log(alpha). Adam
treats every parameter on its own, so this equals three optimizers stepping on the same batch,
except that the actor sees the critics from before this update. `agent.sequential=true` follows
SB3's order instead: a critic step, then the actor and temperature against the updated critics.

From pixels, as in SB3's and DrQ's SAC, the target critics read the next observation through a
target encoder: a copy of the encoder, Polyak-averaged with the critics' tau (agent.tau) at every
target update (agent.target_every). The next action of the soft target is sampled from the online
encoder's features (no gradient), as DrQ does, so an update runs the CNN three times: the
observations, and the next observations through each encoder. From vectors alone the encoder has no
weights and no copy is kept.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from dreamlab import functional as fn
from dreamlab.agents.base import LearnsFrom, agent_config, counters_state, load_counters_state
from dreamlab.agents.sac.networks import SquashedGaussianActor, TwinCritic
from dreamlab.config.schema import Config, SACConfig
from dreamlab.nets.encoders import ObservationEncoder
from dreamlab.nets.mlp import polyak_update
from dreamlab.nets.optim import anneal_lr, guarded_step
from dreamlab.track import names
from dreamlab.track.media import Media


def require_box_actions(action_space: gym.Space) -> gym.spaces.Box:
    if not isinstance(action_space, gym.spaces.Box):
        raise ValueError(f"SAC needs a Box (continuous) action space, got {action_space}; "
                         "use agent=iqn or agent=dreamer for discrete actions")
    return action_space


class SACAgent:
    learns_from: LearnsFrom = "replay"

    def __init__(self, config: Config, obs_space: gym.spaces.Dict, action_space: gym.Space, device: torch.device):
        box = require_box_actions(action_space)
        cfg = self.cfg = agent_config(config, SACConfig)
        self.device = device
        self.batch_size = cfg.batch_size
        self.batch_length = 2  # a transition: obs, then the next record
        self.learned_steps_per_window = 1
        self.total_steps = config.run.steps
        self.random_steps = config.train.learning_starts  # uniform actions before learning starts
        self.action_shape = box.shape
        action_dim = int(np.prod(self.action_shape))
        self.target_entropy = -float(action_dim) if cfg.target_entropy is None else cfg.target_entropy

        self.frame_stack = config.env.frame_stack
        self.encoder = ObservationEncoder(obs_space, cfg.cnn, self.frame_stack, cfg.cnn_depth).to(device)
        features = self.encoder.out_dim
        self.actor = SquashedGaussianActor(features, action_dim, cfg.hidden, cfg.log_std_min,
                                           cfg.log_std_max).to(device)
        self.critic = TwinCritic(features, action_dim, cfg.hidden, cfg.critics).to(device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        # the target critics' encoder (pixels): a Polyak copy, None when the encoder has no weights
        has_weights = any(True for _ in self.encoder.parameters())
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False) if has_weights else None
        self.log_alpha = torch.nn.Parameter(torch.tensor(float(np.log(cfg.alpha)), device=device),
                                            requires_grad=cfg.learn_alpha)
        # critic gradients train the encoder; the actor reads detached features
        self.groups: dict[str, list[torch.Tensor]] = {
            "actor": list(self.actor.parameters()), "critic": [*self.critic.parameters(), *self.encoder.parameters()]}
        params = [*self.groups["actor"], *self.groups["critic"]] + ([self.log_alpha] if cfg.learn_alpha else [])
        self.optimizer = torch.optim.Adam(params, lr=cfg.lr, fused=device.type in ("cpu", "cuda"))
        self.online_params: list[torch.Tensor] = list(self.critic.parameters())  # Polyak pairs: -> target_params
        self.target_params: list[torch.Tensor] = list(self.target_critic.parameters())
        if self.target_encoder is not None:  # one Polyak step moves both, with the same tau
            self.online_params += list(self.encoder.parameters())
            self.target_params += list(self.target_encoder.parameters())
        self.rng = np.random.default_rng(config.seed + 1)
        self.torch_rng = torch.Generator(device=device).manual_seed(config.seed + 2)
        self.env_steps = 0  # env steps (act() rows x action repeat) explored; the first `random_steps` are uniform
        self.action_repeat = config.env.action_repeat
        self.updates = 0

    # ------------------------------------------------------------------ acting
    def _sample(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised a = tanh(mean + std * eps) and its log-probability."""
        mean, log_std = self.actor(features)
        noise = torch.randn(mean.shape, generator=self.torch_rng, device=self.device)
        pre_tanh = mean + log_std.exp() * noise
        return torch.tanh(pre_tanh), fn.squashed_gaussian_log_prob(pre_tanh, mean, log_std)

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], state: Any, explore: bool) -> tuple[np.ndarray, Any]:
        rows = len(obs["is_first"])
        inputs, state = self.encoder.acting_inputs(obs, state, self.device)  # keeps frame stacks current
        if explore and self.env_steps < self.random_steps:
            self.env_steps += rows * self.action_repeat
            return self.rng.uniform(-1.0, 1.0, size=(rows, *self.action_shape)).astype(np.float32), state
        features = self.encoder(inputs)
        if explore:
            self.env_steps += rows * self.action_repeat
            action = self._sample(features)[0]
        else:
            action = torch.tanh(self.actor(features)[0])  # deterministic evaluation: the mean
        return action.cpu().numpy().reshape(rows, *self.action_shape), state

    # ------------------------------------------------------------------ learning
    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        cfg = self.cfg
        flags = {k: torch.from_numpy(batch[k].T).to(self.device)
                 for k in ("reward", "is_first", "is_terminal", "is_last")}  # [2, B]
        rewards, discounts, _, valid = fn.n_step_returns(flags["reward"], flags["is_first"], flags["is_terminal"],
                                                         flags["is_last"], cfg.gamma)
        actions = torch.from_numpy(batch["action"][:, 0]).to(self.device).flatten(1)
        features = self.encoder(self.encoder.batch_inputs(batch, 0, self.device))
        alpha = self.log_alpha.detach().exp()

        with torch.no_grad():
            next_inputs = self.encoder.batch_inputs(batch, 1, self.device)
            next_features = self.encoder(next_inputs)
            next_actions, next_log_prob = self._sample(next_features)
            target_features = next_features if self.target_encoder is None else self.target_encoder(next_inputs)
            next_q = self.target_critic(target_features, next_actions)
            targets = fn.soft_q_target(rewards, discounts, next_q, next_log_prob, alpha)

        q = self.critic(features, actions)  # [critics, B]
        weight = valid.float()
        q_loss = 0.5 * (((q - targets) ** 2).sum(0) * weight).sum() / weight.sum().clamp(min=1.0)

        # every record's obs is a real state, so the actor and temperature use all rows
        policy_actions, log_prob = self._sample(features.detach())
        alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
        alpha_term = alpha_loss if cfg.learn_alpha else 0.0

        def policy_loss_now() -> torch.Tensor:
            q_policy = self.critic(features.detach(), policy_actions, detach=True).min(0).values
            return (alpha * log_prob - q_policy).mean()

        lr = anneal_lr(self.optimizer, cfg.lr, cfg.lr_end, self.env_steps / self.total_steps)
        if cfg.sequential:  # SB3's order: the critics step first, then the actor reads the updated critics
            critic_norms = self._step(q_loss, ("critic",))
            policy_loss = policy_loss_now()
            norms = None
            if critic_norms is not None:
                actor_norms = self._step(policy_loss + alpha_term, ("actor",))
                norms = None if actor_norms is None else {**critic_norms, **actor_norms}
        else:
            policy_loss = policy_loss_now()
            norms = self._step(q_loss + policy_loss + alpha_term, ("critic", "actor"))
        if norms is None:
            return {names.PERF_NONFINITE_UPDATES: 1.0}
        self.updates += 1
        if self.updates % cfg.target_every == 0:
            polyak_update(self.target_params, self.online_params, cfg.tau)
        return {
            names.SAC_Q_LOSS: float(q_loss.detach()),
            names.SAC_POLICY_LOSS: float(policy_loss.detach()),
            names.SAC_ALPHA: float(alpha),
            names.SAC_ENTROPY: float(-log_prob.detach().mean()),
            names.RL_AVG_Q: float(q.detach().mean()),
            names.RL_LR: lr,
            names.grad_norm("actor"): float(norms["actor"]),
            names.grad_norm("critic"): float(norms["critic"]),
            names.PERF_NONFINITE_UPDATES: 0.0,
        }

    def _step(self, loss: torch.Tensor, groups: tuple[str, ...]) -> dict[str, float] | None:
        """The guarded Adam step for the parameters `loss` reaches (Adam skips those without a gradient),
        each group's norm clipped to agent.grad_clip; None, and no step, when the loss or a gradient is
        not finite."""
        step = guarded_step(loss, self.optimizer, {key: self.groups[key] for key in groups}, self.cfg.grad_clip)
        return step.norms if step.stepped else None

    def extra_updates(self) -> int:
        return 0

    def media(self, batch: dict[str, np.ndarray]) -> Media:
        return {}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder.state_dict(),
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "target_critic": self.target_critic.state_dict(),
            **({} if self.target_encoder is None else {"target_encoder": self.target_encoder.state_dict()}),
            "log_alpha": self.log_alpha.detach().clone(),
            "optimizer": self.optimizer.state_dict(),
            **counters_state(self),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_policy_state_dict(state)
        self.critic.load_state_dict(state["critic"])
        self.target_critic.load_state_dict(state["target_critic"])
        if self.target_encoder is not None:  # a checkpoint from before the target encoder: start from the online one
            self.target_encoder.load_state_dict(state.get("target_encoder", state["encoder"]))
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.optimizer.load_state_dict(state["optimizer"])
        load_counters_state(self, state)

    def policy_state_dict(self) -> dict[str, Any]:
        return {"encoder": self.encoder.state_dict(), "actor": self.actor.state_dict()}

    def load_policy_state_dict(self, state: dict[str, Any]) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.actor.load_state_dict(state["actor"])
