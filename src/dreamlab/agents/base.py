"""The agent contract: everything the loop, evaluation, checkpointing and the collectors may use of an
agent. They use nothing else: no attribute is probed with hasattr or getattr.

An agent is built as `Agent(config, obs_space, action_space, device)` from the full Config (the
collectors rely on it: collect/base.policy_factory), and `dreamlab.agents.make_agent` returns one.

Why a Protocol and not an abstract base class: the contract is checked where it is used. mypy proves
that each agent class satisfies it (make_agent returns every agent as an `Agent`), and
`isinstance(agent, Agent)` checks the members at run time; an agent states every member itself,
so nothing of what the loop calls hides in inherited defaults, and the collectors' smaller Actor
protocol (collect/interface.py, the acting part) is extended here instead of written twice.

Rules of the contract:

- `policy_state_dict()` holds only tensors in nested dicts (Actor): process mode shares it through
  shared memory, Ray mode through the object store (tests/test_contract.py checks every agent).
- Nothing per step is stored beside the records: `act` returns (action, state) only. A rollout agent
  (`learns_from = "rollout"`, PPO) that needs the log-probabilities and values of the weights that
  acted recomputes them at the start of `update` from the stored observations and actions; this is
  exact because rollouts are collected in-process (collect.mode=sync) and the weights change only
  inside `update`.
- `update` is the whole algorithm: anything an agent adds to its updates (DreamerV3's surprise gate,
  agents/dreamer/focus.py) is decided inside it and configured under `agent.*`. The one thing an
  agent may ask of the loop is more updates right away, on fresh batches: `extra_updates()`.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import gymnasium as gym
import numpy as np
import torch

from dreamlab.collect.interface import Actor
from dreamlab.config.schema import AgentConfig, Config
from dreamlab.track.media import Media

LearnsFrom = Literal["replay", "rollout"]


@runtime_checkable
class Agent(Actor, Protocol):
    batch_size: int  # windows per update (a rollout agent: envs, one rollout each)
    batch_length: int  # steps per window sampled from the replay (a rollout agent: records per rollout)
    learned_steps_per_window: int  # replayed steps one window counts for train_ratio (IQN 1, Dreamer T)
    frame_stack: int  # image frames stacked per observation at sample time (1: none)
    learns_from: LearnsFrom
    """replay: windows sampled from the replay on the train_ratio schedule; rollout: the latest rollout
    of every env, in order, one update per rollout (replay/rollout.py; train/session.py)."""

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One gradient update on a batch [B, T, ...] (replay windows or rollouts); returns metrics
        named in track/names.py.

        A non-finite loss or gradient skips the optimizer step (nets/optim.guarded_step) and reports
        `perf/nonfinite_updates` = 1.
        """
        ...

    def extra_updates(self) -> int:
        """Updates the agent asks for right after the one it just made, each on a fresh batch (0: none).

        The loop runs them at once, outside the train_ratio schedule; each is a whole update, counted
        and logged. Replay agents only (a rollout is learned from once). DreamerV3's surprise gate in
        agent.wm_focus_mode=extra_wm asks for world-model-only updates this way; every other agent
        returns 0.
        """
        ...

    def media(self, batch: dict[str, np.ndarray]) -> Media:
        """Pictures of replayed windows [B, T, ...] (DreamerV3: open-loop dreams from images); {} when the
        agent makes none. Must not change the training that follows (fork RNGs)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: nets, optimizers, EMA trackers, counters, RNG, and the
        state of anything `update` decides by (the surprise gate)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


C = TypeVar("C", bound=AgentConfig)


def agent_config(config: Config, kind: type[C]) -> C:
    """`config.agent` as the agent's own section; a TypeError names a config of another agent."""
    if not isinstance(config.agent, kind):
        raise TypeError(f"expected an agent config {kind.__name__}, got {type(config.agent).__name__} "
                        f"(agent={config.agent.name})")
    return config.agent


def require_discrete_actions(agent: str, action_space: gym.Space) -> gym.spaces.Discrete:
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(f"{agent} needs a discrete action space, got {action_space}; use agent=sac for Box actions")
    return action_space


class ModelFree(Protocol):
    """The RNGs and counters every model-free agent keeps (counters_state saves them)."""

    rng: np.random.Generator
    torch_rng: torch.Generator
    env_steps: int
    updates: int


def counters_state(agent: ModelFree) -> dict[str, Any]:
    """The RNGs and step counters every model-free agent keeps (rng, torch_rng, env_steps, updates)."""
    return {"rng": agent.rng.bit_generator.state, "torch_rng": agent.torch_rng.get_state(),
            "env_steps": agent.env_steps, "updates": agent.updates}


def load_counters_state(agent: ModelFree, state: dict[str, Any]) -> None:
    agent.rng.bit_generator.state = state["rng"]
    agent.torch_rng.set_state(state["torch_rng"])
    agent.env_steps = int(state["env_steps"])
    agent.updates = int(state["updates"])
