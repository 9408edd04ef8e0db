"""Replay: preallocated numpy rings, one per env stream, sampled as fixed-length windows.

Windows may cross episode ends; `is_first` marks where a new episode begins (no padding).
Sampling is a vectorized gather: no Python loop over the batch. Each frame is stored once; frame
stacks for model-free pixel agents are assembled at sample time (`stack`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dreamlab.config.values import parse_bytes  # noqa: F401  (replay.max_bytes's parser, defined in config)

DEFAULT_CAPACITY = 100_000


class ReplayBuffer:
    def __init__(self, capacity: int | None, num_streams: int, seed: int = 0, chunk: int = 4096,
                 max_bytes: int | None = None):
        """capacity: steps over all streams together (each stream keeps capacity // num_streams);
        max_bytes: the steps that fit in this many bytes (known at the first add), or fewer if
        `capacity` is also given. Neither given: DEFAULT_CAPACITY steps."""
        self.explicit_capacity = capacity is not None
        if capacity is None:
            capacity = DEFAULT_CAPACITY if max_bytes is None else 2 * num_streams  # until the first add
        if capacity // num_streams < 2:
            raise ValueError(f"replay.capacity={capacity} leaves < 2 steps per stream for {num_streams} envs")
        self.stream_capacity = capacity // num_streams
        self.max_bytes = max_bytes
        self.num_streams = num_streams
        self.chunk = chunk
        self.data: dict[str, np.ndarray] = {}
        self.pos = np.zeros(num_streams, np.int64)  # next write index per stream
        self.filled = np.zeros(num_streams, np.int64)
        self.rng = np.random.default_rng(seed)
        self.dirty_chunks: set[int] = set()  # chunks changed since the last save (replay/persist.py)

    def allocate(self, spec: dict[str, tuple[tuple[int, ...], np.dtype]]) -> None:
        """Storage for keys of the given per-step shape and dtype (the first add, or a load)."""
        if self.max_bytes is not None:
            step_bytes = sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in spec.values())
            fitting = self.max_bytes // (step_bytes * self.num_streams)
            if fitting < 2:
                raise ValueError(f"replay.max_bytes={self.max_bytes} holds < 2 steps of {step_bytes} bytes per stream")
            self.stream_capacity = min(self.stream_capacity, int(fitting)) if self.explicit_capacity else int(fitting)
        try:
            self.data = {key: np.zeros((self.num_streams, self.stream_capacity, *shape), np.dtype(dtype))
                         for key, (shape, dtype) in spec.items()}
        except MemoryError:
            raise ValueError(f"replay of {self.num_streams} x {self.stream_capacity} steps does not fit in memory "
                             "here; lower replay.max_bytes or replay.capacity") from None

    def add(self, records: dict[str, np.ndarray], streams: np.ndarray | None = None) -> None:
        """Append one step to each of `streams` (default: all); records are [len(streams), ...]."""
        if not self.data:
            self.allocate({key: (value.shape[1:], value.dtype) for key, value in records.items()})
        streams = np.arange(self.num_streams) if streams is None else np.asarray(streams)
        index = self.pos[streams]
        for key, storage in self.data.items():
            storage[streams, index] = records[key]
        self.dirty_chunks.update((index // self.chunk).tolist())
        self.pos[streams] = (index + 1) % self.stream_capacity
        self.filled[streams] = np.minimum(self.filled[streams] + 1, self.stream_capacity)

    def mark_last(self, truncated: bool = True, streams: np.ndarray | None = None) -> None:
        """End the newest episode of `streams` (default: all); used when their envs cannot continue
        (a resume that cannot restore the envs, a collector process restarted)."""
        candidates = np.arange(self.num_streams) if streams is None else np.asarray(streams)
        streams = candidates[self.filled[candidates] > 0]
        newest = (self.pos[streams] - 1) % self.stream_capacity
        self.data["is_last"][streams, newest] = True
        if not truncated:
            self.data["is_terminal"][streams, newest] = True
        self.dirty_chunks.update((newest // self.chunk).tolist())

    def __len__(self) -> int:
        return int(self.filled.sum())

    @property
    def nbytes(self) -> int:
        return int(sum(v.nbytes for v in self.data.values()))

    def can_sample(self, length: int) -> bool:
        return bool(np.any(self.filled >= length))

    def window_indices(self, batch: int, length: int,
                       rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Uniform over all windows of `length` steps that lie in stored data of one stream.

        Returns (stream [B, 1], position [B, T]) for fancy indexing of the storage arrays.
        """
        starts_per_stream = np.maximum(self.filled - length + 1, 0)
        total = int(starts_per_stream.sum())
        if total == 0:
            raise ValueError(f"replay holds no window of length {length} yet")
        flat = (self.rng if rng is None else rng).integers(0, total, size=batch)
        ends = np.cumsum(starts_per_stream)
        stream = np.searchsorted(ends, flat, side="right")
        offset = flat - (ends - starts_per_stream)[stream]
        oldest = (self.pos - self.filled) % self.stream_capacity
        start = (oldest[stream] + offset) % self.stream_capacity
        position = (start[:, None] + np.arange(length)) % self.stream_capacity
        return stream[:, None], position

    def sample(self, batch: int, length: int, stack: int = 1,
               rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """A batch dict of arrays [B, T, ...], windows drawn uniformly (with the buffer's RNG unless `rng`).

        stack > 1: `image` becomes [B, T, H, W, C * stack], each step's frame preceded by the
        `stack - 1` frames before it in its episode, oldest first (the episode's first frame
        repeats where the episode is younger than the stack).
        """
        stream, position = self.window_indices(batch, length, rng)
        stack = stack if "image" in self.data else 1
        out = {key: storage[stream, position] for key, storage in self.data.items()
               if not (stack > 1 and key == "image")}
        if stack > 1:
            out["image"] = self.stacked_frames(stream, position, stack)
        return out

    def stacked_frames(self, stream: np.ndarray, position: np.ndarray, stack: int) -> np.ndarray:
        frames = self.data["image"]
        is_first = self.data["is_first"]
        oldest = ((self.pos - self.filled) % self.stream_capacity)[stream]
        streams = np.broadcast_to(stream, position.shape)
        lags = [position]
        for _ in range(stack - 1):
            current = lags[-1]
            at_start = is_first[streams, current] | (current == oldest)  # nothing older in this episode
            lags.append(np.where(at_start, current, (current - 1) % self.stream_capacity))
        return np.concatenate([frames[streams, index] for index in reversed(lags)], axis=-1)

    def state_dict(self) -> dict[str, Any]:
        """Counters and RNG (the arrays themselves are saved in chunks by replay/persist.py)."""
        return {"pos": self.pos.copy(), "filled": self.filled.copy(), "rng": self.rng.bit_generator.state,
                "stream_capacity": self.stream_capacity, "num_streams": self.num_streams}

    def load_counters(self, state: dict[str, Any]) -> None:
        if (state["stream_capacity"], state["num_streams"]) != (self.stream_capacity, self.num_streams):
            raise ValueError(
                f"saved replay has {state['num_streams']} streams x {state['stream_capacity']} steps; this run has "
                f"{self.num_streams} x {self.stream_capacity} (replay.capacity, replay.max_bytes or env.num_envs "
                "changed)")
        self.pos = np.array(state["pos"], np.int64)
        self.filled = np.array(state["filled"], np.int64)
        self.rng.bit_generator.state = state["rng"]
