"""Chunked, incremental save/load of a ReplayBuffer for resume.

Each save writes only the chunks changed since the previous save, as new files named
`chunk_<index>_<version>.npz`, and returns a manifest naming the file of every chunk. The
checkpoint stores the manifest, so the replay on disk and the checkpoint always agree: files the
newest checkpoint does not name are deleted only after that checkpoint is in place (`prune`).
Chunks never written hold zeros and get no file, so a part-filled ring costs only its data on
disk and, after a resume, in memory. Files are plain npz, loaded with allow_pickle=False, and only
from `folder` itself: a manifest naming any other path is refused.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from dreamlab.replay.buffer import ReplayBuffer
from dreamlab.track.run_dir import atomic_file

CHUNK_NAME = re.compile(r"chunk_\d+_\d+\.npz")


class ReplayFileError(ValueError):
    """A chunk the manifest names that cannot be loaded: missing, damaged, or outside the replay folder."""


def save(buffer: ReplayBuffer, folder: Path, previous: dict[str, Any] | None, version: int) -> dict[str, Any]:
    """Write changed chunks into `folder`; return the manifest for the checkpoint (StorageError, and
    no partial file left, when the disk refuses a chunk)."""
    files = dict((previous or {}).get("files", {}))
    if previous is None:  # every chunk that holds data (the ring fills from index 0; the rest is zeros)
        buffer.dirty_chunks = set(range(-(-int(buffer.filled.max(initial=0)) // buffer.chunk)))
    if buffer.data:
        for index in sorted(buffer.dirty_chunks):
            lo, hi = index * buffer.chunk, min((index + 1) * buffer.chunk, buffer.stream_capacity)
            name = f"chunk_{index:05d}_{version:06d}.npz"
            with atomic_file(folder / name) as file:
                # the stubs' savez(allow_pickle: bool, **arrays) makes any ** dict look like it could set allow_pickle
                np.savez(file, **{key: array[:, lo:hi] for key, array in buffer.data.items()})  # type: ignore[arg-type]
            files[str(index)] = name
    buffer.dirty_chunks = set()
    spec = {key: [list(a.shape[2:]), a.dtype.str] for key, a in buffer.data.items()}
    return {"files": files, "chunk": buffer.chunk, "spec": spec, "counters": buffer.state_dict()}


def chunk_path(folder: Path, name: Any) -> Path:
    """`folder / name` for a chunk file name this module writes; ReplayFileError for any other name
    (an absolute path or `../` would read files outside the checkpoint)."""
    if not isinstance(name, str) or not CHUNK_NAME.fullmatch(name):
        raise ReplayFileError(f"replay manifest names {name!r}, not a chunk file in {folder}")
    return folder / name


def load(buffer: ReplayBuffer, folder: Path, manifest: dict[str, Any]) -> None:
    """Fill `buffer` from the chunks `manifest` names in `folder` (ReplayFileError when one cannot be read)."""
    paths = {index: chunk_path(folder, name) for index, name in manifest["files"].items()}
    if not manifest["spec"]:
        buffer.load_counters(manifest["counters"])
        return
    if manifest["chunk"] != buffer.chunk:
        buffer.chunk = manifest["chunk"]
    buffer.allocate({key: (tuple(shape), np.dtype(dtype)) for key, (shape, dtype) in manifest["spec"].items()})
    buffer.load_counters(manifest["counters"])  # after allocate: replay.max_bytes may lower the capacity
    for index, path in paths.items():
        lo = int(index) * buffer.chunk
        try:
            with np.load(path, allow_pickle=False) as arrays:
                for key in buffer.data:
                    part = arrays[key]
                    buffer.data[key][:, lo:lo + part.shape[1]] = part
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ReplayFileError(f"replay chunk {path} is unreadable: {exc}") from None
    buffer.dirty_chunks = set()


def prune(folder: Path, keep: dict[str, Any]) -> None:
    """Delete chunk files the newest checkpoint's manifest does not name."""
    wanted = set(keep["files"].values())
    for path in folder.glob("chunk_*.npz"):
        if path.name not in wanted:
            path.unlink(missing_ok=True)
