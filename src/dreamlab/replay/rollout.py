"""Rollout storage for agents that learn from their latest rollout in order (on-policy: PPO).

A `RolloutBuffer` is a replay of exactly `length` records per env stream, so it saves, loads and
reports its bytes as the replay does (replay/persist.py). It is `ready` once every stream holds
`length` records of which `length - 1` are new since the last rollout was taken: a rollout of
`length - 1` transitions per env, whose last record (the observation the next rollout starts
from) is also the first record of the next one. `sample` hands out that rollout, [E, length, ...]
in time order, and starts the next.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dreamlab.replay.buffer import ReplayBuffer


class RolloutBuffer(ReplayBuffer):
    def __init__(self, length: int, num_streams: int, seed: int = 0):
        if length < 2:
            raise ValueError(f"a rollout needs at least 2 records per env, got {length}")
        super().__init__(length * num_streams, num_streams, seed=seed)
        self.length = length
        self.fresh = np.zeros(num_streams, np.int64)  # records added per stream since the last rollout was taken

    def add(self, records: dict[str, np.ndarray], streams: np.ndarray | None = None) -> None:
        super().add(records, streams)
        self.fresh[np.arange(self.num_streams) if streams is None else np.asarray(streams)] += 1

    def ready(self) -> bool:
        return bool(np.all(self.filled >= self.length) and np.all(self.fresh >= self.length - 1))

    def can_sample(self, length: int) -> bool:
        return self.ready()

    def sample(self, batch: int, length: int, stack: int = 1,
               rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """The rollout of every stream in time order, [E, length, ...]; the next rollout starts after it.
        (`batch`, `stack` and `rng` are the replay's arguments: a rollout has one stream per env and no choice.)"""
        if not self.ready():
            raise ValueError(f"the rollout is not complete: {int(self.fresh.min())} of {self.length - 1} new steps")
        order = (self.pos[:, None] + np.arange(self.length)) % self.stream_capacity  # oldest first
        streams = np.arange(self.num_streams)[:, None]
        self.fresh[:] = 0
        return {key: storage[streams, order] for key, storage in self.data.items()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "fresh": self.fresh.copy()}

    def load_counters(self, state: dict[str, Any]) -> None:
        super().load_counters(state)
        self.fresh = np.array(state["fresh"], np.int64)
