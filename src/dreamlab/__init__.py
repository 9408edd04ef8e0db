"""dreamlab: fast, correct world-model reinforcement learning research.

The Python API (docs/python_api.md):

    result = dreamlab.train(["agent=iqn", "env=cartpole", "run.steps=20000"])   # -> RunResult
    policy = dreamlab.load(result.run_dir, checkpoint="best")                   # -> Policy
    env = dreamlab.make_env(result.run_dir)                                     # the env the run saw
    action, state = policy.predict(obs, state=None, deterministic=True)

Imports are lazy: `import dreamlab` does not load torch or the agents.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# The subpackage dreamlab.train (empty __init__, no torch) is imported first so that `def train`
# below is the attribute that stays: importing a submodule later (dreamlab.train.run) finds the
# package in sys.modules and no longer rebinds `dreamlab.train` to it.
importlib.import_module(f"{__name__}.train")

if TYPE_CHECKING:
    import gymnasium as gym

    from dreamlab.policy import Policy
    from dreamlab.train.run import RunResult


def train(cfg_overrides: list[str] | None = None, quiet: bool = True) -> RunResult:
    """Run what `dreamlab train` runs, with the same overrides; returns the run's result.

    cfg_overrides: e.g. ["agent=iqn", "env=cartpole", "seed=1", "agent.lr=3e-4"]. quiet (default
    here, unlike the command line): no progress display; the run directory line and the summary
    still print. Raises ConfigError (a ValueError) for a bad config, before any run directory exists.
    The command line trains through this function too: both end by writing curves.png.
    """
    from dreamlab.analyze.plot import write_curves
    from dreamlab.train.run import train as _train

    return _train(list(cfg_overrides or []), quiet=quiet, finish=write_curves)


def load(run_dir: str | Path, checkpoint: str = "best", device: str | None = None) -> Policy:
    """The policy of a saved run: checkpoint "best" (best evaluation's weights) or "latest"."""
    from dreamlab.policy import load as _load

    return _load(run_dir, checkpoint, device)


def make_env(run_dir: str | Path, index: int = 0, render: bool = False) -> gym.Env:
    """The env a run trained on, as its agent (and `Policy.predict`) sees it."""
    from dreamlab.policy import make_env as _make_env

    return _make_env(run_dir, index, render)


def __getattr__(name: str) -> type:
    """Policy and RunResult, imported on first use."""
    if name == "Policy":
        from dreamlab.policy import Policy

        return Policy
    if name == "RunResult":
        from dreamlab.train.run import RunResult

        return RunResult
    raise AttributeError(f"module 'dreamlab' has no attribute {name!r}")


__all__ = ["train", "load", "make_env", "Policy", "RunResult", "__version__"]
