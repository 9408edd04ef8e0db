"""DreamerV3 agent: act() filters observations through the RSSM; update() trains the world model on
replayed sequences and the actor and critic on imagined ones (docs/dreamerv3.md).

Every world-model loss term has its scale (`wm_scales`: agent.beta_dyn, beta_rep, beta_pred); a term
without one, or a scale naming no term, is refused at the first update. The surprise gate
(agents/dreamer/focus.py, agent.wm_focus_*) decides inside `update` whether an update leaves the
actor-critic alone, and asks the loop for extra world-model updates through `extra_updates()`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from dreamlab import functional as fn
from dreamlab.agents import saved
from dreamlab.agents.base import LearnsFrom, agent_config
from dreamlab.agents.dreamer.actions import ActionSpace
from dreamlab.agents.dreamer.behavior import Actor, Critic, ReturnNormalizer
from dreamlab.agents.dreamer.focus import WorldModelFocus
from dreamlab.agents.dreamer.losses import (
    check_per_step,
    loss_metric,
    replay_returns,
    surprise_components,
    weighted_total,
    world_model_losses,
    world_model_scales,
)
from dreamlab.agents.dreamer.openloop import open_loop
from dreamlab.agents.dreamer.world_model import WorldModel, select_keys
from dreamlab.config.load import ConfigError
from dreamlab.config.schema import Config, DreamerConfig
from dreamlab.nets.heads import TwohotHead
from dreamlab.nets.laprop import LaProp
from dreamlab.nets.optim import guarded_step
from dreamlab.track import names
from dreamlab.track.media import Media, openloop_layout

OPENLOOP_CONTEXT = 5  # replayed frames the posterior sees before the prior dreams on (as the official)
CLIP_ADAM = {"wm": 1000.0, "actor": 100.0, "critic": 100.0}  # agent.optimizer=adam: gradient norm limits (2023)


def frozen(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's parameters, detached: for torch.func.functional_call through it without training it."""
    return {name: p.detach() for name, p in module.named_parameters()}


def head_mean(head: TwohotHead, deter: torch.Tensor, stoch: torch.Tensor, detached: bool = False) -> torch.Tensor:
    """A twohot head's mean prediction; `detached`: through its parameters detached (the gradient
    reaches the inputs only)."""
    logits = torch.func.functional_call(head, frozen(head), (deter, stoch)) if detached else head(deter, stoch)
    return head.mean(logits.float()).float()


class DreamerAgent:
    learns_from: LearnsFrom = "replay"

    def __init__(self, config: Config, obs_space: gym.spaces.Dict, action_space: gym.Space, device: torch.device):
        cfg = self.cfg = agent_config(config, DreamerConfig)
        self.actions = ActionSpace(action_space)
        if cfg.actor_grad == "dynamics" and not self.actions.continuous:
            raise ConfigError(f"agent.actor_grad=dynamics needs Box actions, got {action_space}; discrete actions "
                             "learn by REINFORCE (agent.actor_grad=reinforce)")
        vectors, images = select_keys(obs_space, cfg.mlp_keys, cfg.cnn_keys)
        self.obs_keys = sorted([*vectors, *images])
        self.image_keys = sorted(images)
        self.device = device
        self.batch_size, self.batch_length = cfg.batch_size, cfg.batch_length
        self.learned_steps_per_window = cfg.batch_length
        self.frame_stack = 1  # the RSSM carries the history
        self.action_repeat = config.env.action_repeat
        self.env_steps = 0  # env steps acted with exploration (no schedule of DreamerV3 follows them)
        self.wm = WorldModel(vectors, images, self.actions.input_dim, cfg).to(device)
        decoded = [*self.wm.vector_dims, *self.wm.image_channels]  # the order the decoder losses come in
        self.wm_scales = world_model_scales(decoded)  # loss term -> its agent.beta_* (checked at each update)
        self.focus = WorldModelFocus(surprise_components(decoded), cfg.wm_focus_threshold, cfg.wm_focus_mode,
                                     cfg.wm_focus_extra)
        latent = (cfg.deter, cfg.groups, cfg.classes)
        self.actor = Actor(latent, cfg.units, cfg.ac_layers, self.actions).to(device)
        self.critic = Critic(latent, cfg.units, cfg.ac_layers, cfg.bins, cfg.slow_critic_rate).to(device)
        self.return_norm = ReturnNormalizer().to(device)
        self.frozen_wm = bool(cfg.load_world_model)
        if self.frozen_wm:
            self._load_world_model(Path(cfg.load_world_model))
        self.modules: dict[str, torch.nn.Module] = {"wm": self.wm, "actor": self.actor, "critic": self.critic.net}
        self.param_groups = {k: list(m.parameters()) for k, m in self.modules.items()}  # grad norms per module
        self.optimizers = self._make_optimizers()
        self.updates = 0
        self.ac_updates = 0
        self._compile(cfg)

    # ------------------------------------------------------------------ setup
    def _compile(self, cfg: DreamerConfig) -> None:
        """Set the update's forward, its two loops and their per-step cells as agent.compile and
        agent.compile_scope ask. `update`: the whole forward traced with its loops unrolled (fastest
        updates, minutes to compile). `steps`: the forward compiled between the loops, which stay
        Python around the filtering and imagination cells, each compiled once (seconds to compile)."""
        self._losses = self._forward_losses
        self._observe_step, self._imagine_step = self.wm.rssm.observe_step, self._imagine_one
        self._observe, self._imagine_loop, self._imagine_dynamics_loop = (self.wm.rssm.observe, self._imagine,
                                                                          self._imagine_dynamics)
        if not cfg.compile:
            return
        self._losses = torch.compile(self._forward_losses)
        if cfg.compile_scope == "steps":
            self._observe_step = torch.compile(self._observe_step)
            self._imagine_step = torch.compile(self._imagine_step)
            self._observe, self._imagine_loop, self._imagine_dynamics_loop = (
                torch.compiler.disable(f) for f in (self._observe, self._imagine_loop, self._imagine_dynamics_loop))

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.cfg
        trained = {k: list(m.parameters()) for k, m in self.modules.items() if not (k == "wm" and self.frozen_wm)}
        if cfg.optimizer == "laprop":
            params = [p for group in trained.values() for p in group]
            return {"all": LaProp(params, lr=cfg.lr, agc=cfg.agc, warmup=cfg.warmup)}
        lrs = {"wm": cfg.wm_lr, "actor": cfg.ac_lr, "critic": cfg.ac_lr}
        eps = {"wm": 1e-8, "actor": 1e-5, "critic": 1e-5}
        return {k: torch.optim.Adam(p, lr=lrs[k], eps=eps[k]) for k, p in trained.items()}

    def _load_world_model(self, run_dir: Path) -> None:
        payload = saved.load(run_dir / "checkpoints" / "latest.pt")
        try:
            self.wm.load_state_dict(payload["agent"]["wm"])
        except (KeyError, RuntimeError) as exc:
            raise ConfigError(f"agent.load_world_model={run_dir}: no matching world model ({exc})") from None
        self.wm.requires_grad_(False)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.cfg.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], state: Any, explore: bool) -> tuple[np.ndarray, Any]:
        rows = len(obs["is_first"])
        if state is None or state[0].shape[0] != rows:
            deter, stoch = self.wm.rssm.initial(rows, self.device)
            state = (deter, stoch, torch.zeros(rows, self.actions.input_dim, device=self.device))
        deter, stoch, prev_action = state
        keep = (1.0 - torch.as_tensor(obs["is_first"], device=self.device).float()).unsqueeze(-1)
        with self._autocast():
            embed = self.wm.encode({k: torch.as_tensor(obs[k], device=self.device) for k in self.obs_keys})
            deter = self.wm.rssm.core(deter * keep, stoch * keep, prev_action * keep).float()
            stoch = self.wm.rssm.sample(self.wm.rssm.posterior(deter, embed).float())
            policy = self.actor(deter, stoch)
        action = policy.sample() if explore else policy.mode()
        if explore:
            self.env_steps += rows * self.action_repeat
        return self.actions.to_env(action).cpu().numpy(), (deter, stoch, self.actions.encode(action))

    # ------------------------------------------------------------------ learning
    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One update on replayed sequences [B, T, ...]: the world model, and the actor-critic unless the
        schedule (agent.wm_warmup_updates, wm_ac_ratio) or the surprise gate leaves it out."""
        cfg = self.cfg
        seq = {k: torch.as_tensor(np.swapaxes(v, 0, 1), device=self.device) for k, v in batch.items()}
        world_model_only = self.focus.world_model_only()
        train_ac = (self.updates >= cfg.wm_warmup_updates and self.updates % cfg.wm_ac_ratio == 0
                    and not world_model_only)
        total, metrics = self._losses(seq, train_ac)
        if not total.requires_grad:  # a frozen world model between actor-critic updates: nothing to train
            self.updates += 1
            out = {**{k: float(v) for k, v in metrics.items()}, names.PERF_NONFINITE_UPDATES: 0.0}
        else:
            out = self._step(total, metrics, train_ac)
        out.update(self.focus.observe(out))
        return out

    def extra_updates(self) -> int:
        """extra_wm surprise gate: world-model-only updates asked for after a surprising update."""
        return self.focus.pending

    def _forward_losses(self, seq: dict[str, torch.Tensor],
                        train_ac: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The update's whole forward pass: world model on the replayed sequences, then (if train_ac)
        actor and critic on imagined ones. Returns the total loss and the metrics as tensors.
        With agent.compile this is the function torch.compile traces (forward and backward)."""
        cfg = self.cfg
        is_first = seq["is_first"].clone()
        is_first[0] = True  # every window starts from the zero state
        actions = self.actions.encode(self.actions.from_env(seq["action"]))
        metrics: dict[str, torch.Tensor] = {}
        with self._autocast():
            observed = {k: seq[k] for k in self.obs_keys}
            embed = self.wm.encode(observed)
            carry = (*self.wm.rssm.initial(is_first.shape[1], self.device), torch.zeros_like(actions[0]))
            deters, stochs, post_logits, _ = self._observe(embed, actions, is_first, carry, self._observe_step)
            prior_logits = self.wm.rssm.prior(deters)
            wm_losses, kl_raw = world_model_losses(self.wm, deters, stochs, post_logits.float(), prior_logits.float(),
                                                   observed, seq["reward"], seq["is_terminal"], cfg)
            total = self._world_model_total(wm_losses, kl_raw, tuple(is_first.shape), metrics)
            if train_ac:
                total = total + self._behavior_loss(deters, stochs, seq, metrics)
        return total, metrics

    def _world_model_total(self, losses: dict[str, torch.Tensor], kl_raw: torch.Tensor, shape: tuple[int, ...],
                           metrics: dict[str, torch.Tensor]) -> torch.Tensor:
        """The scaled sum of the world-model loss terms (each per-step [T, B], checked) and their metrics."""
        for name, loss in {**losses, "kl_raw": kl_raw}.items():
            check_per_step(f"world-model loss {name!r}", loss, shape)
        means = {k: v.mean() for k, v in losses.items()}
        total = weighted_total(means, self.wm_scales, self.cfg)
        metrics[names.WM_LOSS_TOTAL] = total
        metrics.update({loss_metric(k): means[k] for k in ("dyn", "rep")})
        metrics[names.WM_KL_RAW] = kl_raw.mean()
        metrics.update({loss_metric(k): v for k, v in means.items() if k not in ("dyn", "rep")})
        return total.detach() * 0.0 if self.frozen_wm else total  # frozen: its losses are only logged

    def _imagine(self, deter: torch.Tensor, stoch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Roll the prior forward H steps from starts deter [N, D], stoch indices [N, G] (REINFORCE).

        Only the actor's raw outputs keep a graph (its loss reuses them instead of a second pass over
        the states); the model states carry no gradient. Returns deters [H+1, N, D], stoch indices
        [H+1, N, G], the actions [H, N, ...] (distribution shape) and the actor's raw outputs [H, N, ...].
        """
        deters, stochs, actions, raws = [deter], [stoch], [], []
        for _ in range(self.cfg.imag_horizon):
            deter, stoch, action, raw = self._imagine_step(deter, stoch)
            deters.append(deter)
            stochs.append(stoch)
            actions.append(action)
            raws.append(raw)
        return torch.stack(deters), torch.stack(stochs), torch.stack(actions), torch.stack(raws)

    def _imagine_one(self, deter: torch.Tensor, stoch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One REINFORCE imagination step: the actor's raw output (with its graph) at (deter, stoch
        indices), a sampled action, the next prior state. Returns deter', stoch' indices, action, raw."""
        raw = self.actor.net(deter, stoch).float()
        action = self.actions.dist(raw.detach()).sample()
        deter, stoch = self.wm.rssm.imagine_step(deter, stoch, self.actions.encode(action))
        return deter.float(), stoch, action, raw

    def _imagine_dynamics(self, deter: torch.Tensor, stoch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Roll out H steps with the gradient of each reparameterised action flowing through the
        dynamics into the later states (agent.actor_grad=dynamics). The world model's parameters
        are used detached, so none of this gradient reaches them; the actor reads detached states.

        deter [N, D], stoch one-hot [N, G*K]. Returns deters [H+1, N, D], stoch one-hots [H+1, N, G*K]
        (straight-through samples), actions and the actor's raw outputs [H, N, ...].
        """
        rssm = frozen(self.wm.rssm)
        deters, stochs, actions, raws = [deter], [stoch], [], []
        for _ in range(self.cfg.imag_horizon):
            raw = self.actor.net(deter.detach(), stoch.detach()).float()
            action = self.actions.bounded(raw).rsample()
            deter, stoch = torch.func.functional_call(self.wm.rssm, rssm, (deter, stoch, self.actions.encode(action)))
            deter = deter.float()
            deters.append(deter)
            stochs.append(stoch.float())
            actions.append(action)
            raws.append(raw)
        return torch.stack(deters), torch.stack(stochs), torch.stack(actions), torch.stack(raws)

    def _behavior_loss(self, deters: torch.Tensor, stochs: torch.Tensor, seq: dict[str, torch.Tensor],
                       metrics: dict[str, torch.Tensor]) -> torch.Tensor:
        cfg = self.cfg
        time_steps, batch = deters.shape[:2]
        dynamics = cfg.actor_grad == "dynamics"
        # Detached starts: no actor or critic gradient reaches the world model.
        start_deter = deters.detach().reshape(time_steps * batch, -1).float()
        start_stoch = stochs.detach().reshape(time_steps * batch, -1).float()
        all_starts = cfg.imag_starts == 0 or cfg.imag_starts >= start_deter.shape[0]
        if not all_starts:
            chosen = torch.randperm(start_deter.shape[0], device=start_deter.device)[:cfg.imag_starts]
            start_deter, start_stoch = start_deter[chosen], start_stoch[chosen]
        if dynamics:
            img_deter, img_stoch, actions, raws = self._imagine_dynamics_loop(start_deter, start_stoch)
        else:
            start_index = start_stoch.view(-1, cfg.groups, cfg.classes).argmax(-1)
            img_deter, img_stoch, actions, raws = self._imagine_loop(start_deter, start_index)
        # one critic pass over all H+1 (detached) states: its detached mean bootstraps the REINFORCE
        # returns, its first H rows carry the critic loss
        critic_all = self.critic.net(img_deter.detach(), img_stoch.detach()).float()
        with torch.no_grad():
            continues = torch.sigmoid(self.wm.continue_head(img_deter, img_stoch).squeeze(-1)).float()
            weights = torch.cumprod(continues[:-1], 0)
            slow_values = self.critic.slow.mean(self.critic.slow(img_deter[:-1], img_stoch[:-1])).float()
        if dynamics:  # returns differentiable in the imagined states (heads used with detached parameters)
            rewards = head_mean(self.wm.reward_head, img_deter, img_stoch, detached=True)
            values = head_mean(self.critic.net, img_deter, img_stoch, detached=True)
        else:
            with torch.no_grad():
                rewards = head_mean(self.wm.reward_head, img_deter, img_stoch)
                values = self.critic.net.mean(critic_all.detach()).float()
        returns = fn.lambda_returns(rewards[1:], continues[1:], values, 1.0, cfg.lam)  # discount in continues
        scale = self.return_norm.update(returns.detach())
        policy = self.actions.dist(raws)
        entropy = policy.entropy()
        if dynamics:  # the 2023 paper: maximise normalised returns through the dynamics
            actor_steps = weights * (-returns / scale - cfg.actor_entropy * entropy)
        else:
            advantage = ((returns - values[:-1]) / scale).detach()
            log_prob = policy.log_prob(actions.detach())
            actor_steps = weights * (-log_prob * advantage - cfg.actor_entropy * entropy)
        imagined = (cfg.imag_horizon, start_deter.shape[0])  # [H, N]
        check_per_step("actor loss", actor_steps, imagined)
        actor_loss = actor_steps.mean()
        returns, values = returns.detach(), values.detach()
        critic_logits = critic_all[:-1]
        critic_steps = weights * self.critic.net.loss(critic_logits, returns, (cfg.slow_critic_reg, slow_values))
        check_per_step("critic loss", critic_steps, imagined)
        critic_loss = critic_steps.mean()
        total = actor_loss + critic_loss
        if cfg.repval_scale > 0:
            total = total + cfg.repval_scale * self._replay_value_loss(deters, stochs, seq, returns, all_starts)
        metrics.update({names.ACTOR_LOSS: actor_loss, names.ACTOR_ENTROPY: entropy.mean(),
                        names.CRITIC_LOSS: critic_loss, names.CRITIC_VALUE_MEAN: values[:-1].mean(),
                        names.DREAM_REWARD_MEAN: rewards[1:].detach().mean(), names.DREAM_VALUE_MEAN: returns.mean(),
                        names.DREAM_RETURN_SCALE: scale, names.DREAM_CONTINUE_MEAN: continues.mean()})
        return total

    def _replay_value_loss(self, deters: torch.Tensor, stochs: torch.Tensor, seq: dict[str, torch.Tensor],
                           imagined_returns: torch.Tensor, all_starts: bool) -> torch.Tensor:
        """The critic on replayed states against lambda returns along the real sequence (official repval)."""
        cfg = self.cfg
        logits = self.critic.net(deters, stochs).float()  # not detached: also trains the world model (repval_grad)
        with torch.no_grad():
            if all_starts:
                bootstrap = imagined_returns[0].view(deters.shape[:2])
            else:
                bootstrap = self.critic.net.mean(logits).float()
            targets = replay_returns(seq["reward"].float(), seq["is_terminal"], seq["is_last"], bootstrap,
                                     cfg.gamma, cfg.lam)
            slow = self.critic.slow.mean(self.critic.slow(deters[:-1].detach(), stochs[:-1].detach())).float()
            mask = 1.0 - seq["is_last"][:-1].float()
        head = self.critic.net
        loss = head.loss(logits[:-1], targets, (cfg.slow_critic_reg, slow))
        steps = mask * loss
        check_per_step("replay value loss", steps, (deters.shape[0] - 1, deters.shape[1]))  # [T-1, B]
        return steps.mean()

    def _step(self, total: torch.Tensor, metrics: dict[str, torch.Tensor], train_ac: bool) -> dict[str, float]:
        """The guarded step of every optimizer (agent.optimizer=adam: each module's norm clipped, as 2023)."""
        step = guarded_step(total, list(self.optimizers.values()), self.param_groups,
                            CLIP_ADAM if self.cfg.optimizer == "adam" else None)
        if not step.stepped:
            return {names.PERF_NONFINITE_UPDATES: 1.0}
        if train_ac:
            self.critic.update_slow()
            self.ac_updates += 1
        self.updates += 1
        out = {k: float(v.detach()) for k, v in metrics.items()}
        out.update({names.grad_norm(k): v for k, v in step.norms.items()})
        out[names.PERF_NONFINITE_UPDATES] = 0.0
        return out

    # ------------------------------------------------------------------ media
    def media(self, batch: dict[str, np.ndarray]) -> Media:
        """{"media/openloop": (grid image, video frames)} from replayed image sequences; {} without images.

        Runs on forked RNGs, so writing media never changes the training that follows.
        """
        if not self.image_keys:
            return {}
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), self._autocast():
            truth, model = open_loop(self.wm, batch, self.actions, self.image_keys[0], OPENLOOP_CONTEXT,
                                     self.device)
        return {names.MEDIA_OPENLOOP: openloop_layout(truth, model, OPENLOOP_CONTEXT)}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"wm": self.wm.state_dict(), "actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "return_norm": self.return_norm.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "updates": self.updates, "ac_updates": self.ac_updates, "env_steps": self.env_steps,
                "focus": self.focus.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wm.load_state_dict(state["wm"])
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.return_norm.load_state_dict(state["return_norm"])
        for key, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][key])
        self.updates, self.ac_updates = int(state["updates"]), int(state["ac_updates"])
        self.env_steps = int(state.get("env_steps", 0))  # absent in checkpoints written before it was kept
        if "focus" in state:  # absent before the surprise gate moved into the agent: it starts closed
            self.focus.load_state_dict(state["focus"])

    def policy_state_dict(self) -> dict[str, Any]:
        return {"wm": self.wm.state_dict(), "actor": self.actor.state_dict()}

    def load_policy_state_dict(self, state: dict[str, Any]) -> None:
        self.wm.load_state_dict(state["wm"])
        self.actor.load_state_dict(state["actor"])
