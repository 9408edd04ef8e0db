"""make_env(cfg): any Gymnasium id with kwargs, wrapped to emit dict observations."""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np

from dreamlab.config.schema import EnvConfig
from dreamlab.envs.pixels import PixelObservation
from dreamlab.envs.wrappers import ActionRepeat, DictObservation

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # rendering without a screen
REMOTE = "remote"  # env.id of an env served by `dreamlab serve-env` (envs/remote/)


def make_env(cfg: EnvConfig, index: int = 0, render: bool = False) -> gym.Env:
    """One environment: gymnasium.make(id, **kwargs) -> Box actions in [-1, 1] -> action repeat -> pixels -> dict.

    Frames are rendered once per agent step, after the action repeat. `env.id=remote` connects to
    a served env instead (env `index` uses addresses[index % n]).
    Seeding happens at the first reset (`env.reset(seed=...)`), done by the collector with a
    seed derived from the run seed and the env's index.
    """
    env = _remote_env(cfg, index) if cfg.id == REMOTE else _local_env(cfg, render)
    env = unit_box_actions(env)
    if cfg.action_repeat > 1:
        env = ActionRepeat(env, cfg.action_repeat)
    if cfg.pixels:
        if cfg.id == REMOTE:
            raise ValueError("env.pixels renders where the env runs: for env.id=remote serve frames with "
                             "`dreamlab serve-env ENV_ID --pixels` and leave env.pixels=false here")
        env = PixelObservation(env, cfg.image_size, cfg.grayscale, cfg.keep_state, cfg.interpolation)
    return DictObservation(env)


def _local_env(cfg: EnvConfig, render: bool = False) -> gym.Env:
    kwargs = dict(cfg.kwargs)
    if cfg.max_episode_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    if cfg.pixels or render:
        kwargs["render_mode"] = "rgb_array"
    try:
        return gym.make(cfg.id, **kwargs)
    except gym.error.Error as exc:
        raise ValueError(f"env.id={cfg.id!r}: {exc}") from None


def _remote_env(cfg: EnvConfig, index: int) -> gym.Env:
    from dreamlab.envs.remote.client import RemoteEnv

    addresses = list(cfg.addresses) or ([cfg.address] if cfg.address else [])
    if not addresses:
        raise ValueError("env.id=remote needs env.address=host:port or env.addresses=[...]")
    token = cfg.token or os.environ.get("DREAMLAB_ENV_TOKEN", "")
    env: gym.Env = RemoteEnv(addresses[index % len(addresses)], token=token, timeout_s=cfg.timeout_s,
                             retries=cfg.retries)
    if cfg.max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, cfg.max_episode_steps)
    return env


def unit_box_actions(env: gym.Env) -> gym.Env:
    """The one place where continuous actions meet the env's bounds: agents act in [-1, 1].

    A bounded Box action space is rescaled linearly to [-1, 1] (gymnasium's RescaleAction);
    other spaces pass through.
    """
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        return env
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError(f"action space {space} is unbounded; continuous agents need finite bounds")
    if np.all(space.low == -1) and np.all(space.high == 1):
        return env
    unit = np.ones(space.shape, dtype=space.dtype)
    return gym.wrappers.RescaleAction(env, -unit, unit)


def env_seed(run_seed: int, index: int, purpose: str = "train") -> int:
    """Seed of env `index`: train and eval envs never share one."""
    offset = {"train": 0, "eval": 1_000_003}[purpose]
    return run_seed * 10_007 + offset + index
