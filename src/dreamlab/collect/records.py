"""Step records (DESIGN.md section 3): keys, dtypes and the one validator.

A record batch is a flat dict of numpy arrays with a leading env axis [E, ...]:
obs keys (`state` float32 [D], later `image` uint8 [H, W, C]) plus
`reward` float32 (arrived with this obs; 0 when is_first), `is_first`, `is_last`, `is_terminal`
(bool; is_last without is_terminal is a time limit) and `action` (taken at this obs; a dummy
zero on the last record of an episode).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

FLAGS = ("is_first", "is_last", "is_terminal")
OBS_KEYS = ("state", "image")


def action_spec(space: gym.Space) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one stored action."""
    if isinstance(space, gym.spaces.Discrete):
        return (), np.dtype(np.int64)
    if isinstance(space, gym.spaces.Box):
        return tuple(space.shape), np.dtype(np.float32)
    raise TypeError(f"unsupported action space {space}; expected Discrete or Box")


def validate(records: dict[str, np.ndarray], num_envs: int) -> None:
    """Check keys, leading axis and dtypes once, where records enter the replay."""
    missing = {"reward", "action", *FLAGS} - set(records)
    if missing or not any(k in records for k in OBS_KEYS):
        raise ValueError(f"step record lacks keys {sorted(missing) or 'state/image'}")
    for key, value in records.items():
        if value.shape[:1] != (num_envs,):
            raise ValueError(f"step record {key!r}: leading axis {value.shape[:1]} != ({num_envs},)")
    for key in FLAGS:
        if records[key].dtype != np.bool_:
            raise ValueError(f"step record {key!r}: dtype {records[key].dtype}, expected bool")
    if records["reward"].dtype != np.float32:
        raise ValueError(f"step record 'reward': dtype {records['reward'].dtype}, expected float32")
    if "image" in records and (records["image"].dtype != np.uint8 or records["image"].ndim != 4):
        image = records["image"]
        raise ValueError(f"step record 'image': {image.dtype} {image.shape[1:]}, expected uint8 [H, W, C] frames")
    if np.any(records["is_terminal"] & ~records["is_last"]):
        raise ValueError("step record: is_terminal without is_last")
