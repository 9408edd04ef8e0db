"""Reading checkpoint files: the format train/checkpoint.py writes, loaded without executing code.

It lives here, in the lowest layer that reads checkpoints (a DreamerV3 agent loads a frozen world
model from another run's, agent.load_world_model); train/checkpoint.py writes them and re-exports
what is here. Files are read with torch.load(weights_only=True): only tensors and plain containers
load; a file carrying any other pickled object is refused. Numpy arrays are stored as tensors under
a marker and come back as numpy arrays. Every file that cannot be read or is not a checkpoint of
this FORMAT raises CheckpointError, one line naming the file.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = 1  # of latest.pt and best.pt
_NDARRAY = "__ndarray__"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot or must not be loaded."""


def to_plain(obj: Any) -> Any:
    """Numpy arrays and scalars -> tensors / Python numbers, recursively."""
    if isinstance(obj, np.ndarray):
        return {_NDARRAY: torch.from_numpy(np.ascontiguousarray(obj)).clone()}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_plain(v) for v in obj)
    return obj


def from_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_NDARRAY}:
            return obj[_NDARRAY].numpy()
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(from_plain(v) for v in obj)
    return obj


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load(path: Path) -> dict[str, Any]:
    """A checkpoint's payload; CheckpointError when it is missing, unreadable, refused or of another format."""
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise CheckpointError(f"cannot read checkpoint {path}: the file is empty")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refusing {path}: it holds objects other than tensors and plain data ({first_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways (IndexError, KeyError, ...)
        raise CheckpointError(f"cannot read checkpoint {path}: {first_line(exc)}") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path} is not a dreamlab checkpoint")
    if payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {payload.get('format')!r} "
                              f"(this dreamlab reads format {FORMAT})")
    return from_plain(payload)
