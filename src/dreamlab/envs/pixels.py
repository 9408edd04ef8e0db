"""Image observations for any Gymnasium env, made where the env runs.

`PixelObservation` renders `rgb_array` frames and resizes them in the env's own process (so a
collector process ships 64x64 frames, not 400x600 ones), optionally to grayscale, optionally
keeping the state vector beside the image. Frames stay uint8 all the way to the device.
An env that already renders at the requested size (DMC: `envs/dmc.py`) is not resized.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

INTERPOLATIONS = ("area", "linear", "nearest")


def resize(frame: np.ndarray, size: int, interpolation: str) -> np.ndarray:
    import cv2

    flag = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}[interpolation]
    if frame.shape[0] == size and frame.shape[1] == size:
        return frame
    return cv2.resize(frame, (size, size), interpolation=flag)


class PixelObservation(gym.ObservationWrapper):
    """obs -> {"image": uint8 [S, S, C]} (C = 3, or 1 in grayscale) [+ the state].

    keep_state keeps a Box observation as {"state": float32 [D]}, or a Dict observation's entries
    as they are (DictObservation normalises them later).
    """

    def __init__(self, env: gym.Env, size: int = 64, grayscale: bool = False, keep_state: bool = False,
                 interpolation: str = "area"):
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise ValueError(f"pixel observations need render_mode='rgb_array', got {env.render_mode!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation {interpolation!r}: choose one of {INTERPOLATIONS}")
        self.size, self.grayscale, self.keep_state, self.interpolation = size, grayscale, keep_state, interpolation
        spaces: dict[str, gym.Space] = {"image": gym.spaces.Box(0, 255, (size, size, 1 if grayscale else 3), np.uint8)}
        if keep_state:
            spaces.update(_state_spaces(env.observation_space))
        self.observation_space = gym.spaces.Dict(spaces)

    def observation(self, observation: Any) -> dict[str, np.ndarray]:
        frame = self.env.render()
        if not (isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8):
            got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise ValueError(f"env.pixels: render() must return uint8 [H, W, 3] frames, got {got}")
        frame = resize(frame, self.size, self.interpolation)
        if self.grayscale:
            frame = (frame @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)[..., None]
        out = {"image": np.ascontiguousarray(frame, dtype=np.uint8)}
        if self.keep_state and isinstance(observation, dict):
            out.update(observation)
        elif self.keep_state:
            out["state"] = np.asarray(observation, dtype=np.float32).reshape(-1)
        return out


def _state_spaces(state: gym.Space) -> dict[str, gym.Space]:
    """What keep_state keeps beside the image: a Box as "state" float32 [D], a Dict's entries as they are."""
    if isinstance(state, gym.spaces.Dict):
        if "image" in state.spaces:
            raise ValueError("env.keep_state: the env's own observation already has an 'image' key")
        return dict(state.spaces)
    if not isinstance(state, gym.spaces.Box):
        raise ValueError(f"env.keep_state needs a Box or Dict observation space, got {state}")
    return {"state": gym.spaces.Box(-np.inf, np.inf, (int(np.prod(state.shape)),), np.float32)}
