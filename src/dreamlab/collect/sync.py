"""In-process collection: step `num_envs` envs together with the current policy (the default).

Episodes follow DreamerV3's driver: the record of an episode's last obs carries a dummy action,
and the next call resets that env and emits the new episode's first obs with is_first.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from dreamlab.collect.interface import Actor, Chunk
from dreamlab.collect.records import action_spec
from dreamlab.envs import state as env_state


class SyncCollector:
    """Steps its envs in the calling process. `catch_env_errors`: an env whose step raises ends its
    episode as truncated (the next record repeats the last obs with is_last, reward 0) and is reset."""

    exact_resume = True  # env states are captured in checkpoints where possible

    def __init__(self, envs: list[gym.Env], seeds: list[int], catch_env_errors: bool = False):
        self.envs = envs
        self.seeds = seeds
        self.catch_env_errors = catch_env_errors
        self.env_errors = 0
        self.action_shape, self.action_dtype = action_spec(envs[0].action_space)
        self.policy_state: Any = None
        self.obs: dict[str, np.ndarray] | None = None
        self.reward = np.zeros(len(envs), np.float32)
        self.is_first = np.ones(len(envs), bool)
        self.is_last = np.zeros(len(envs), bool)
        self.is_terminal = np.zeros(len(envs), bool)
        self.episode_return = np.zeros(len(envs), np.float64)
        self.episode_length = np.zeros(len(envs), np.int64)
        self.started = np.zeros(len(envs), bool)  # first reset uses the env's seed

    @property
    def num_envs(self) -> int:
        return len(self.envs)

    @property
    def num_streams(self) -> int:
        return len(self.envs)

    def collect(self, policy: Actor, wait: bool = False, learner_updates: int = 0) -> list[Chunk]:
        """One step of every env as a chunk of T=1 (the Collector interface of collect/interface.py)."""
        records, stepped, finished = self.step(policy, explore=True)
        return [Chunk(np.arange(self.num_envs), {k: v[None] for k, v in records.items()}, stepped, finished)]

    def sync_policy(self, policy: Actor, updates: int, env_steps: int) -> None:
        """Nothing to do: the envs are stepped with the learner's own policy."""

    def metrics(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def _reset(self, index: int) -> dict[str, np.ndarray]:
        seed = None if self.started[index] else self.seeds[index]
        if seed is not None:
            self.envs[index].action_space.seed(seed)
        self.started[index] = True
        obs, _ = self.envs[index].reset(seed=seed)
        self.reward[index] = 0.0
        self.is_first[index], self.is_last[index], self.is_terminal[index] = True, False, False
        self.episode_return[index], self.episode_length[index] = 0.0, 0
        return obs

    def _current_obs(self) -> dict[str, np.ndarray]:
        """The newest obs of every env [E, ...] (reset first at the start), kept in `self.obs`."""
        if self.obs is None:
            observations = [self._reset(i) for i in range(self.num_envs)]
            self.obs = {k: np.stack([o[k] for o in observations]) for k in observations[0]}
        return self.obs

    def step(self, policy: Actor, explore: bool = True) -> tuple[dict[str, np.ndarray], int, list[tuple[float, int]]]:
        """Act on the current obs of every env and advance each env by one step.

        Returns (records [E, ...] of the current obs and the action taken there, env.step calls
        made, finished episodes as (return, length) pairs).
        """
        current = self._current_obs()
        action, self.policy_state = policy.act({**current, "is_first": self.is_first.copy()}, self.policy_state,
                                               explore)
        action = np.asarray(action, dtype=self.action_dtype).reshape(self.num_envs, *self.action_shape)
        action = np.where(self.is_last.reshape(-1, *[1] * len(self.action_shape)), 0, action)
        records = {**{k: v.copy() for k, v in current.items()}, "reward": self.reward.copy(),
                   "is_first": self.is_first.copy(), "is_last": self.is_last.copy(),
                   "is_terminal": self.is_terminal.copy(), "action": action}
        finished: list[tuple[float, int]] = []
        stepped = 0
        for i, env in enumerate(self.envs):
            if self.is_last[i]:
                new_obs = self._reset(i)
            else:
                try:
                    new_obs, reward, terminated, truncated, _ = env.step(action[i])
                except Exception:
                    if not self.catch_env_errors:
                        raise
                    self.env_errors += 1  # cut the episode: a truncation record with the last obs
                    self.reward[i], self.is_first[i], self.is_last[i], self.is_terminal[i] = 0.0, False, True, False
                    finished.append((float(self.episode_return[i]), int(self.episode_length[i])))
                    continue
                stepped += 1
                self.reward[i] = reward
                self.is_first[i], self.is_last[i] = False, terminated or truncated
                self.is_terminal[i] = terminated
                self.episode_return[i] += reward
                self.episode_length[i] += 1
                if self.is_last[i]:
                    finished.append((float(self.episode_return[i]), int(self.episode_length[i])))
            for key, value in new_obs.items():
                current[key][i] = value
        return records, stepped, finished

    def state_dict(self) -> dict[str, Any]:
        """Everything to continue mid-episode; `exact` is False when an env cannot be captured."""
        envs = [env_state.capture(env) for env in self.envs]
        if self.obs is None or any(e is None for e in envs):
            return {"exact": False, "started": self.started.copy()}
        arrays = {k: getattr(self, k).copy() for k in
                  ("reward", "is_first", "is_last", "is_terminal", "episode_return", "episode_length",
                   "started")}
        return {"exact": True, "envs": envs, "obs": {k: v.copy() for k, v in self.obs.items()},
                "policy_state": self.policy_state, **arrays}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state["exact"]:  # fresh episodes; seeds already used are not reused
            self.started = np.asarray(state["started"]).copy()
            for i in range(self.num_envs):
                self.envs[i].reset(seed=self.seeds[i] + 7919 * int(self.started[i]))
            self.started[:] = True
            self.obs = None
            return
        for env, captured in zip(self.envs, state["envs"], strict=True):
            env_state.restore(env, captured)
        self.obs = {k: np.array(v) for k, v in state["obs"].items()}
        self.policy_state = state["policy_state"]
        for key in ("reward", "is_first", "is_last", "is_terminal", "episode_return", "episode_length",
                    "started"):
            setattr(self, key, np.array(state[key]))
