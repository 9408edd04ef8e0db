"""The agent contract. The loop, evaluation and checkpointing use nothing else.

An agent is built as `Agent(config, obs_space, action_space, device)` from the full Config.
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np


class Agent(Protocol):
    batch_size: int  # windows per update
    batch_length: int  # steps per window sampled from the replay
    learned_steps_per_window: int  # replayed steps one window counts for train_ratio (IQN 1, Dreamer T)
    frame_stack: int  # image frames stacked per observation at sample time (1: none)

    def act(self, obs: dict[str, np.ndarray], state: Any, explore: bool) -> tuple[np.ndarray, Any]:
        """Actions for a batch of observations.

        Args:
            obs: step-record obs keys [E, ...] plus `is_first` [E] (resets `state` where true).
            state: the agent's recurrent state from the previous call (None at the start).
            explore: sample exploratory actions (training) or act deterministically (evaluation).
        Returns:
            (actions [E, ...] in the env's action space, new state).
        """

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One gradient update on a replay batch [B, T, ...]; returns metrics named in track/names.py.

        A non-finite loss skips the optimizer step and reports `perf/nonfinite_updates` = 1.
        """

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: nets, optimizers, EMA trackers, counters, RNG."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def policy_state_dict(self) -> dict[str, Any]:
        """Weights needed to act (saved as checkpoints/best for `dreamlab eval`)."""

    def load_policy_state_dict(self, state: dict[str, Any]) -> None: ...


def require_discrete_actions(agent: str, action_space: gym.Space) -> None:
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(f"{agent} needs a discrete action space, got {action_space}; use agent=sac for Box actions")


def counters_state(agent: Any) -> dict[str, Any]:
    """The RNGs and step counters every model-free agent keeps (rng, torch_rng, env_steps, updates)."""
    return {"rng": agent.rng.bit_generator.state, "torch_rng": agent.torch_rng.get_state(),
            "env_steps": agent.env_steps, "updates": agent.updates}


def load_counters_state(agent: Any, state: dict[str, Any]) -> None:
    agent.rng.bit_generator.state = state["rng"]
    agent.torch_rng.set_state(state["torch_rng"])
    agent.env_steps = int(state["env_steps"])
    agent.updates = int(state["updates"])
