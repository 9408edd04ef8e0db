"""The Python API's acting side: `load(run_dir)` -> Policy, `policy.predict(obs)`, `make_env(run_dir)`.

A Policy acts on raw observations of the env a run trained on, as `make_env(run_dir)` returns it
(dict observations: float32 vectors [d], uint8 images [H, W, C]), and its actions go straight into
that env's `step` (0-based discrete actions, Box actions in [-1, 1]; the env adds offsets and
rescales to the true bounds itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dreamlab.train.evaluate import SavedRun, load_saved_run, run_config


def make_env(run_dir: str | Path, index: int = 0, render: bool = False) -> gym.Env:
    """The env the run saw: its config.yaml's env section through dreamlab.envs.make.make_env.

    index: which of the run's envs (env.id=remote: address index % n). render: also render
    rgb_array frames (`env.render()`). Seed it with `env.reset(seed=...)`.
    """
    from dreamlab.envs.make import make_env as make_configured_env

    return make_configured_env(run_config(Path(run_dir)).env, index, render=render)


def load(run_dir: str | Path, checkpoint: str = "best", device: str | None = None) -> Policy:
    """The run's policy from checkpoints/<checkpoint>.pt.

    checkpoint: "best" (the best evaluation's policy weights) or "latest" (the last checkpoint's
    full agent state). device: "cpu", "cuda" or "auto"; None is the run's
    setting (auto where that is CUDA and none is here).
    Raises ConfigError (no config.yaml), ValueError (unknown checkpoint name) or CheckpointError
    (missing, unreadable, or not fitting the run's config), each with a one-line message.
    """
    return Policy(load_saved_run(Path(run_dir), checkpoint, device), Path(run_dir), checkpoint)


class Policy:
    """A trained agent acting on raw env observations, one env or a batch of envs at a time.

    Attributes: observation_space (gym.spaces.Dict: what predict reads), action_space (what it
    returns), cfg (the run's Config), run_dir, checkpoint, agent (the underlying agent).
    """

    def __init__(self, saved: SavedRun, run_dir: Path, checkpoint: str):
        self.agent = saved.agent
        self.cfg = saved.cfg
        self.observation_space: gym.spaces.Dict = saved.observation_space
        self.action_space: gym.Space = saved.action_space
        self.run_dir = run_dir
        self.checkpoint = checkpoint

    def predict(self, obs: dict[str, Any], state: Any = None, *, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """Actions for one observation or a batch, and the recurrent state to pass back next call.

        Args:
            obs: a raw observation {key: array of the space's shape} (one env), or a batch
                {key: [E, *shape]} (E envs); every key of `observation_space` is needed.
            state: None to start fresh (every env at an episode start), else the state the
                previous call returned (opaque: DreamerV3's latent and last action, IQN/SAC's
                frame stacks, or None).
            episode_start: bool [E] (one bool for a single observation), default all False:
                True where that env just reset, so its memory restarts while the others keep
                theirs (SB3's episode_start). With state=None every env starts over anyway.
            deterministic: the policy's mode (explore=False, as `dreamlab eval`); False samples
                as in training (IQN: epsilon-greedy at its current epsilon).
        Returns:
            (action, state): action of the action space's shape for a single observation, [E, ...]
            for a batch; it goes straight into `make_env(run_dir).step`.
        """
        batch, single = self._batch(obs)
        rows = len(next(iter(batch.values())))
        batch["is_first"] = self._is_first(rows, state, episode_start)
        actions, state = self.agent.act(batch, state, explore=not deterministic)
        return (actions[0] if single else actions), state

    def _batch(self, obs: dict[str, Any]) -> tuple[dict[str, np.ndarray], bool]:
        """obs -> ({key: [E, *shape]} in the space's dtypes, whether it was a single observation)."""
        if not isinstance(obs, dict):
            raise ValueError(f"predict: expected a dict observation with keys {list(self.observation_space)}, "
                             f"got {type(obs).__name__}")
        batch, single = {}, None
        for key, space in self.observation_space.items():
            if key not in obs:
                raise ValueError(f"predict: observation key {key!r} missing (expected {list(self.observation_space)})")
            shape = tuple(space.shape or ())
            value = np.asarray(obs[key], dtype=space.dtype)
            is_single = value.shape == shape
            if not is_single and value.shape[1:] != shape:
                raise ValueError(f"predict: observation {key!r} has shape {value.shape}; expected {shape} "
                                 f"or [E, {', '.join(map(str, shape))}]")
            if single is not None and is_single != single:
                raise ValueError("predict: some observation keys are batched and others are not")
            single = is_single
            batch[key] = value[None] if is_single else value
        return batch, bool(single)

    @staticmethod
    def _is_first(rows: int, state: Any, episode_start: Any) -> np.ndarray:
        """The agents' `is_first` [E]: True everywhere without a state, else episode_start."""
        flags = np.zeros(rows, bool) if episode_start is None else np.asarray(episode_start, dtype=bool).reshape(-1)
        if flags.shape != (rows,):
            raise ValueError(f"predict: episode_start has {flags.size} entries for {rows} observations")
        return np.ones(rows, bool) if state is None else flags.copy()
