"""What collectors exchange with the rest of a run: the Actor they step envs with, how a collector
process builds its own copy of one (PolicyFactory), the Chunk of step records they hand the loop, and
the Collector interface the loop drives.

Actor is the acting part of the agent contract, defined here once, in the lowest layer that uses it;
agents/base.Agent extends it with what the loop, evaluation and checkpointing need.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch

from dreamlab.config.schema import Config


@runtime_checkable
class Actor(Protocol):
    """What collectors (and evaluation) need from an agent."""

    env_steps: int
    """Env steps acted with exploration (x env.action_repeat), for schedules that follow them (epsilon,
    random warm-up, learning rates). `act(explore=True)` counts them in sync mode; in parallel modes,
    where the learner does not act, the loop and the collectors set it to the global count."""

    def act(self, obs: dict[str, np.ndarray], state: Any, explore: bool) -> tuple[np.ndarray, Any]:
        """Actions for a batch of observations.

        Args:
            obs: step-record obs keys [E, ...] plus `is_first` [E] (resets `state` where true).
            state: the agent's recurrent state from the previous call (None at the start); opaque to
                the caller, which passes it back unchanged.
            explore: sample exploratory actions (training) or act deterministically (evaluation).
        Returns:
            (actions [E, ...] in the env's action space, new state). Nothing else per step is stored:
            an agent that needs its acting-time log-probabilities or values (a rollout agent, PPO)
            recomputes them in `update` from the weights that acted (see agents/base.Agent).
        """
        ...

    def policy_state_dict(self) -> dict[str, Any]:
        """The weights needed to act: only tensors, in dicts nested to any depth (empty dicts allowed).

        Process mode copies it into shared memory and Ray mode sends it through the object store, so
        nothing else (numbers, strings, numpy arrays) may appear in it; checkpoints/best.pt stores it.
        """
        ...

    def load_policy_state_dict(self, state: dict[str, Any]) -> None: ...


PolicyFactory = Callable[[Config, gym.spaces.Dict, gym.Space, torch.device], Actor]
"""Builds a collector's own Actor as `factory(config, obs_space, action_space, device)`: an agent class
(the contract builds every agent this way) or dreamlab.agents.make_agent. Picklable by reference, so
it travels to collector processes and Ray actors."""


@dataclasses.dataclass
class Chunk:
    """Step records of `streams` for T consecutive steps, or (records None) a cut of those streams.

    records: step-record keys -> [T, E, ...]; a cut means the collector of these streams restarted,
    so the replay must end their newest stored episode as truncated.
    """

    streams: np.ndarray  # [E] replay streams, one per env
    records: dict[str, np.ndarray] | None
    stepped: int = 0  # env.step calls behind these records (resets excluded)
    finished: list[tuple[float, int]] = dataclasses.field(default_factory=list)  # (return, length) of episodes
    worker: int = 0
    seq: int = 0  # chunk number within one incarnation of the worker, from 1
    policy_version: int = 0  # learner updates when the acting weights were published
    env_errors: int = 0  # env.step exceptions since the worker's previous chunk
    seconds: float = 0.0  # wall time the worker spent producing the chunk


class Collector(Protocol):
    """What the loop and the session use of a collector (SyncCollector, ProcessCollector, RayCollector)."""

    @property
    def num_streams(self) -> int:
        """Replay streams fed: one per env."""
        ...

    @property
    def exact_resume(self) -> bool:
        """Whether env states are restored from checkpoints (False: a resume starts fresh episodes)."""
        ...

    def collect(self, policy: Actor, wait: bool = False, learner_updates: int = 0) -> list[Chunk]:
        """New step records; parallel collectors return at most one data chunk per call (and any cuts)
        and, with `wait`, block briefly (0.1 s) until one arrives."""
        ...

    def sync_policy(self, policy: Actor, updates: int, env_steps: int) -> None:
        """Publish the learner's weights (every collect.sync_every updates; sync mode: nothing to do)."""
        ...

    def metrics(self) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def close(self) -> None: ...
