"""dreamlab: fast, correct world-model reinforcement learning research."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from dreamlab.train.run import RunResult


def train(cfg_overrides: list[str] | None = None, quiet: bool = True) -> RunResult:
    """Run what `dreamlab train` runs, with the same overrides; returns the run's result."""
    from dreamlab.train.run import train as _train

    return _train(list(cfg_overrides or []), quiet=quiet)


__all__ = ["train", "__version__"]
