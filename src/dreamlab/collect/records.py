"""Step records, what collectors emit and the replay stores: keys, dtypes and the one validator.

A record batch is a flat dict of numpy arrays with a leading env axis [E, ...]:
observation keys (every key but the ones below: float32 vectors [E, d] and uint8 images
[E, H, W, C], as envs/wrappers.DictObservation emits them) plus
`reward` float32 (arrived with this obs; 0 when is_first), `is_first`, `is_last`, `is_terminal`
(bool; is_last without is_terminal is a time limit) and `action` (taken at this obs; a dummy
zero on the last record of an episode).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

FLAGS = ("is_first", "is_last", "is_terminal")
STEP_KEYS = ("reward", "action", *FLAGS)  # every other key of a record is an observation


def action_spec(space: gym.Space) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one stored action: Discrete -> int64 (), MultiDiscrete -> int64 (len(nvec),),
    Box -> float32 of the box's shape."""
    if isinstance(space, gym.spaces.Discrete):
        return (), np.dtype(np.int64)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return (len(space.nvec),), np.dtype(np.int64)
    if isinstance(space, gym.spaces.Box):
        return tuple(space.shape), np.dtype(np.float32)
    raise TypeError(f"unsupported action space {space}; expected Discrete, MultiDiscrete or Box")


def dict_space(space: gym.Space) -> gym.spaces.Dict:
    """The observation space of an env made by envs.make.make_env, which is always a Dict of the record's
    obs keys (envs/wrappers.DictObservation); a TypeError for anything else."""
    if not isinstance(space, gym.spaces.Dict):
        raise TypeError(f"expected a Dict observation space (envs.make.make_env wraps every env so), got {space}")
    return space


def obs_keys(records: dict[str, np.ndarray]) -> list[str]:
    """The observation keys of a record (or of an observation dict): all but reward, action and flags."""
    return [key for key in records if key not in STEP_KEYS]


def is_image(value: np.ndarray) -> bool:
    """An image record: uint8 [E, H, W, C]."""
    return value.dtype == np.uint8 and value.ndim == 4


def validate(records: dict[str, np.ndarray], num_envs: int) -> None:
    """Check keys, leading axis and dtypes once, where records enter the replay."""
    missing = set(STEP_KEYS) - set(records)
    if missing:
        raise ValueError(f"step record lacks keys {sorted(missing)}")
    if not obs_keys(records):
        raise ValueError("step record has no observation key (e.g. 'state' or 'image')")
    for key, value in records.items():
        if value.shape[:1] != (num_envs,):
            raise ValueError(f"step record {key!r}: leading axis {value.shape[:1]} != ({num_envs},)")
    for key in FLAGS:
        if records[key].dtype != np.bool_:
            raise ValueError(f"step record {key!r}: dtype {records[key].dtype}, expected bool")
    if records["reward"].dtype != np.float32:
        raise ValueError(f"step record 'reward': dtype {records['reward'].dtype}, expected float32")
    if "image" in records and not is_image(records["image"]):
        image = records["image"]
        raise ValueError(f"step record 'image': {image.dtype} {image.shape[1:]}, expected uint8 [H, W, C] frames")
    if np.any(records["is_terminal"] & ~records["is_last"]):
        raise ValueError("step record: is_terminal without is_last")
