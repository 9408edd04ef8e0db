"""Checkpoints: atomic writes (temp file then rename) and loading without executing code.

Files are written with torch.save of `to_plain(payload)`; the reading side (load, FORMAT,
CheckpointError: only tensors and plain containers load, numpy arrays come back as numpy arrays)
is agents/saved.py, re-exported here. A write the disk refuses raises StorageError and leaves the
previous file in place; every file that cannot be read or is not a checkpoint of this FORMAT
raises CheckpointError, one line naming the file.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dreamlab.agents.saved import FORMAT, CheckpointError, first_line, from_plain, load, to_plain
from dreamlab.track.run_dir import atomic_file

__all__ = ["FORMAT", "CheckpointError", "first_line", "from_plain", "load", "rng_state", "save", "set_rng_state",
           "to_plain"]


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` atomically (StorageError, and `path` untouched, when the disk refuses)."""
    with atomic_file(path) as file:
        torch.save(to_plain(payload), file)
