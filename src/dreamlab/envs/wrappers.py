"""Observation and action wrappers applied in the env's own process."""

from __future__ import annotations

from typing import Any, TypeGuard

import gymnasium as gym
import numpy as np

# step-record fields (collect/records.py) that an observation key may not shadow
RESERVED_KEYS = ("reward", "action", "is_first", "is_last", "is_terminal")
IMAGE_CHANNELS = (1, 3, 4)
_NUMERIC = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiBinary, gym.spaces.MultiDiscrete)


def is_image_space(space: gym.Space) -> TypeGuard[gym.spaces.Box]:
    """An image entry: a uint8 Box of shape (H, W, C) with C in 1, 3 or 4 (kept as is)."""
    return (isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3
            and space.shape[2] in IMAGE_CHANNELS)


def vector_space(space: gym.Space, key: str) -> gym.spaces.Box:
    """Any numeric space of any shape (scalar () included) as a float32 vector Box (d,), d >= 1."""
    if isinstance(space, gym.spaces.Box):
        low, high = space.low, space.high
    elif isinstance(space, gym.spaces.Discrete):
        low, high = np.asarray(space.start), np.asarray(space.start + space.n - 1)
    elif isinstance(space, gym.spaces.MultiBinary):
        low, high = np.zeros(space.shape), np.ones(space.shape)
    elif isinstance(space, gym.spaces.MultiDiscrete):
        low, high = space.start, space.start + space.nvec - 1
    else:
        raise ValueError(f"observation key {key!r}: {space} is not a numeric space")
    shape = tuple(space.shape or ())
    size = int(np.prod(shape))
    if size == 0:
        raise ValueError(f"observation key {key!r}: empty shape {shape}, expected at least one value")
    flat = lambda bound: np.broadcast_to(bound, shape).reshape(size).astype(np.float32)  # noqa: E731
    return gym.spaces.Box(flat(low), flat(high), (size,), np.float32)


def check_key(key: Any, space: gym.Space) -> None:
    """A usable observation key: a non-empty string, no step-record field, not a nested space."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"observation key {key!r}: expected a non-empty string")
    if key in RESERVED_KEYS:
        raise ValueError(f"observation key {key!r} collides with a step-record field; rename it "
                         f"(reserved: {', '.join(RESERVED_KEYS)})")
    if isinstance(space, gym.spaces.Dict):
        raise ValueError(f"observation key {key!r}: nested Dict spaces are not supported; flatten them in a wrapper")
    problem = unreadable(space)
    if problem:
        raise ValueError(f"observation key {key!r}: {problem}")


def show(space: gym.Space, limit: int = 120) -> str:
    """A space's repr on one line, cut at `limit` characters."""
    text = " ".join(repr(space).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def unreadable(space: gym.Space) -> str:
    """Why no agent can read `space` as an observation entry ('' when one can): not numeric (Text,
    Graph, Sequence, Tuple, ...), or uint8 of rank >= 3 that is no image [H, W, C] (a 4-D stack,
    channels first): flattening that into a float vector is never what an agent should see."""
    if isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) >= 3 \
            and not is_image_space(space):
        return (f"{show(space)} is no image [H, W, C] with C in {', '.join(map(str, IMAGE_CHANNELS))} "
                "and no agent reads it; make it channels-last frames, one per key, in a wrapper")
    if not isinstance(space, _NUMERIC):
        return (f"no agent reads {show(space)}; expected numeric vectors (Box, Discrete, MultiBinary, "
                "MultiDiscrete) or uint8 images [H, W, C]; convert it in a wrapper")
    return ""


class DictObservation(gym.ObservationWrapper):
    """Observations always as a dict of float32 vectors [d] and uint8 images [H, W, C].

    A Box (or Discrete, MultiBinary, MultiDiscrete) observation becomes {"state": float32 [D]}
    (flattened); a frame that is the whole observation arrives here as {"image": ...} already
    (envs/pixels.py ImageObservation). A Dict observation keeps its keys: uint8 (H, W, C) Boxes with
    C in 1, 3, 4 pass through unchanged; every other numeric entry (any shape, scalar included; any
    dtype) is flattened to float32 (d,). Reserved or empty keys, nested Dicts and spaces no agent reads
    (`unreadable`) are a ValueError naming the key or the space.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        if isinstance(space, gym.spaces.Dict):
            for key, sub in space.spaces.items():
                check_key(key, sub)
            self._images = {k for k, sub in space.spaces.items() if is_image_space(sub)}
            self._keys = list(space.spaces)
            self.observation_space = gym.spaces.Dict(
                {k: sub if k in self._images else vector_space(sub, k) for k, sub in space.spaces.items()})
            self._wrap = ""
        elif is_image_space(space):  # a frame (make_env resizes it first: envs/pixels.py ImageObservation)
            self.observation_space = gym.spaces.Dict({"image": space})
            self._wrap = "image"
        elif not unreadable(space):
            self.observation_space = gym.spaces.Dict({"state": vector_space(space, "state")})
            self._wrap = "state"
        else:
            raise ValueError(f"observation space: {unreadable(space)}")

    def observation(self, observation: Any) -> dict[str, np.ndarray]:
        if self._wrap == "image":
            return {"image": observation}
        if self._wrap:
            return {"state": np.asarray(observation, dtype=np.float32).reshape(-1)}
        return {key: observation[key] if key in self._images else np.asarray(observation[key], np.float32).reshape(-1)
                for key in self._keys}


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
