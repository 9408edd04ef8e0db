"""Image observations for any Gymnasium env, made where the env runs.

`PixelObservation` renders `rgb_array` frames and resizes them in the env's own process (so a
collector process ships 64x64 frames, not 400x600 ones), optionally to grayscale, optionally
keeping the state vector beside the image. Frames stay uint8 all the way to the device.
An env that already renders at the requested size (DMC: `envs/dmc.py`) is not resized.

`ImageObservation` does the same (one code path: `process_frame`) for an env whose own observation
is a frame, a uint8 Box [H, W, C] with C in 1, 3, 4 (Atari, CarRacing, ...): alone it becomes
{"image": [S, S, C]}, resized to a square S = env.image_size whatever its aspect ratio (as DreamerV3
and the usual Atari setup resize 210x160 to 64x64 or 84x84); inside a Dict it keeps its key and its
size unless env.resize_dict_images. env.grayscale applies to every such frame.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from dreamlab.envs.wrappers import is_image_space

INTERPOLATIONS = ("area", "linear", "nearest")


LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 luminance weights


def resize(frame: np.ndarray, size: int, interpolation: str) -> np.ndarray:
    """uint8 [H, W, C] -> [size, size, C] (a frame of that size is returned as it is)."""
    import cv2

    flag = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}[interpolation]
    if frame.shape[0] == size and frame.shape[1] == size:
        return frame
    out = cv2.resize(frame, (size, size), interpolation=flag)
    return out[..., None] if out.ndim == 2 else out  # OpenCV drops a single channel axis


def grayscale(frame: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3 or 4] -> [H, W, 1] (the luminance of RGB; an alpha channel is ignored)."""
    return (frame[..., :3] @ LUMA).astype(np.uint8)[..., None]


def process_frame(frame: np.ndarray, size: int | None, gray: bool, interpolation: str) -> np.ndarray:
    """The one frame pipeline of env.pixels and of envs that emit frames: resize to size x size
    (None: keep the size), then grayscale (a single-channel frame stays as it is); contiguous uint8."""
    if size is not None:
        frame = resize(frame, size, interpolation)
    if gray and frame.shape[-1] > 1:
        frame = grayscale(frame)
    return np.ascontiguousarray(frame, dtype=np.uint8)


def frame_space(space: gym.Space, size: int | None, gray: bool) -> gym.spaces.Box:
    """The space of `process_frame`'s output for frames of `space` (a Box [H, W, C])."""
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3:
        raise ValueError(f"expected frames of shape [H, W, C], got {space}")
    height, width, channels = space.shape
    if size is not None:
        height = width = size
    return gym.spaces.Box(0, 255, (height, width, 1 if gray else channels), np.uint8)


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
        out = {"image": process_frame(frame, self.size, self.grayscale, self.interpolation)}
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
    if is_image_space(state):
        raise ValueError(f"env.keep_state: the env's own observation is a frame {state.shape}, not a state; "
                         "use env.pixels=false to observe it as `image`")
    return {"state": gym.spaces.Box(-np.inf, np.inf, (int(np.prod(state.shape)),), np.float32)}


class ImageObservation(gym.ObservationWrapper):
    """An env's own uint8 [H, W, C] frames (C in 1, 3, 4) through `process_frame`, in the env's process.

    A frame that is the whole observation becomes {"image": uint8 [S, S, C']}, S = size (square,
    whatever the frame's aspect ratio). In a Dict observation each frame keeps its key; it is resized
    to S x S only with `resize_dict`. C' = 1 with `gray`, else C. Everything else passes unchanged
    (DictObservation normalises it). Build it with `image_observations`, which skips envs without frames.
    """

    def __init__(self, env: gym.Env, size: int, gray: bool = False, interpolation: str = "area",
                 resize_dict: bool = False):
        super().__init__(env)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation {interpolation!r}: choose one of {INTERPOLATIONS}")
        self.gray, self.interpolation = gray, interpolation
        space = env.observation_space
        self.whole = not isinstance(space, gym.spaces.Dict)
        self.sizes: dict[str, int | None] = {"image": size}
        if not isinstance(space, gym.spaces.Dict):
            self.observation_space = gym.spaces.Dict({"image": frame_space(space, size, gray)})
        else:
            self.sizes = {key: size if resize_dict else None for key in _frames(space, size, gray, resize_dict)}
            self.observation_space = gym.spaces.Dict(
                {key: frame_space(sub, self.sizes[key], gray) if key in self.sizes else sub
                 for key, sub in space.spaces.items()})

    def observation(self, observation: Any) -> dict[str, Any]:
        if self.whole:
            return {"image": process_frame(observation, self.sizes["image"], self.gray, self.interpolation)}
        out = dict(observation)
        for key, size in self.sizes.items():
            out[key] = process_frame(observation[key], size, self.gray, self.interpolation)
        return out


def _frames(space: gym.spaces.Dict, size: int, gray: bool, resize_dict: bool) -> list[str]:
    """The keys of a Dict's frames that `process_frame` would change."""
    keys = []
    for key, sub in space.spaces.items():
        if is_image_space(sub) and ((resize_dict and sub.shape[:2] != (size, size)) or (gray and sub.shape[2] > 1)):
            keys.append(key)
    return keys


def image_observations(env: gym.Env, size: int, gray: bool = False, interpolation: str = "area",
                       resize_dict: bool = False) -> gym.Env:
    """`env` with ImageObservation where its observation is a frame or a Dict holding frames to change."""
    space = env.observation_space
    if is_image_space(space) or (isinstance(space, gym.spaces.Dict) and _frames(space, size, gray, resize_dict)):
        return ImageObservation(env, size, gray, interpolation, resize_dict)
    return env
