"""The one place that resolves `device=auto|cpu|cuda` and CPU threads."""

from __future__ import annotations

import os

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """auto -> cuda when available, else cpu; cuda without a GPU is a ConfigError (one line, exit 2)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        from dreamlab.config.load import ConfigError

        raise ConfigError(f"device={name}: torch sees no CUDA device here; use device=auto or device=cpu")
    return torch.device(name)


def set_threads(threads: int = 0) -> int:
    """Set torch's CPU threads: 0 means all cores this process may use. Returns the count."""
    if threads <= 0:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads
