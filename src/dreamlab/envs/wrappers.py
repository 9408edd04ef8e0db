"""Observation and action wrappers applied in the env's own process."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class DictObservation(gym.ObservationWrapper):
    """Observations always as a dict: a Box vector becomes {"state": float32 [D]}."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        if isinstance(space, gym.spaces.Dict):
            self.observation_space = space
            self._wrap = False
        elif isinstance(space, gym.spaces.Box):
            shape = (int(np.prod(space.shape)),)
            low = np.broadcast_to(space.low, space.shape).reshape(shape).astype(np.float32)
            high = np.broadcast_to(space.high, space.shape).reshape(shape).astype(np.float32)
            self.observation_space = gym.spaces.Dict({"state": gym.spaces.Box(low, high, shape, np.float32)})
            self._wrap = True
        else:
            raise TypeError(f"unsupported observation space {space}; expected Box or Dict")

    def observation(self, observation: Any) -> dict[str, np.ndarray]:
        if not self._wrap:
            return observation
        return {"state": np.asarray(observation, dtype=np.float32).reshape(-1)}


class ActionRepeat(gym.Wrapper):
    """Repeat each action `repeat` times, summing rewards; stops early when the episode ends."""

    def __init__(self, env: gym.Env, repeat: int):
        super().__init__(env)
        self.repeat = repeat

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info
