"""make_env(cfg): any Gymnasium id with kwargs, wrapped to emit dict observations."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np

from dreamlab.config.schema import EnvConfig
from dreamlab.config.values import REMOTE
from dreamlab.envs import atari, crafter, dmc
from dreamlab.envs.imports import import_id_module, import_packages
from dreamlab.envs.pixels import PixelObservation, image_observations
from dreamlab.envs.wrappers import ActionRepeat, DictObservation

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # rendering without a screen


def make_env(cfg: EnvConfig, index: int = 0, render: bool = False) -> gym.Env:
    """One environment: gymnasium.make(id, **kwargs) -> agent actions (0-based, Box in [-1, 1]) ->
    action repeat -> pixels -> dict observations (float32 vectors [d], uint8 images [H, W, C]).

    Frames are rendered once per agent step, after the action repeat; `dm_control/` ids render at
    env.image_size directly (envs/dmc.py). `env.id=remote` connects to a served env instead (env
    `index` uses addresses[index % n]).
    Seeding happens at the first reset (`env.reset(seed=...)`), done by the collector with a
    seed derived from the run seed and the env's index.
    `env.imports` are imported first (envs/imports.py), so they register their ids in every process
    that builds envs; an env's own uint8 frames become images (envs/pixels.py ImageObservation).
    """
    import_packages(cfg.imports)
    if atari.is_atari(cfg.id):  # ALE/ ids: AtariPreprocessing repeats env.action_repeat frames (envs/atari.py)
        return DictObservation(agent_actions(atari.make(cfg, render)))
    env = _remote_env(cfg, index) if cfg.id == REMOTE else _local_env(cfg, render)
    env = agent_actions(env)
    if cfg.action_repeat > 1:
        env = ActionRepeat(env, cfg.action_repeat)
    if cfg.pixels:
        if cfg.id == REMOTE:
            raise ValueError("env.pixels renders where the env runs: for env.id=remote serve frames with "
                             "`dreamlab serve-env ENV_ID --pixels` and leave env.pixels=false here")
        env = PixelObservation(env, cfg.image_size, cfg.grayscale, cfg.keep_state, cfg.interpolation)
    return observations(env, cfg)


def observations(env: gym.Env, cfg: EnvConfig) -> gym.Env:
    """The env's own frames as images (resized and grayscaled here), then dict observations; an
    observation space no agent reads is a ConfigError naming the key or the space."""
    from dreamlab.config.load import ConfigError

    try:
        env = image_observations(env, cfg.image_size, cfg.grayscale, cfg.interpolation, cfg.resize_dict_images)
        return DictObservation(env)
    except ValueError as exc:
        raise ConfigError(f"env.id={cfg.id}: {exc}") from None


def _local_env(cfg: EnvConfig, render: bool = False) -> gym.Env:
    kwargs = dict(cfg.kwargs)
    if cfg.max_episode_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    if cfg.pixels or render:
        kwargs["render_mode"] = "rgb_array"
    if crafter.is_crafter(cfg.id):
        crafter.prepare(cfg, kwargs)
    if dmc.is_dmc(cfg.id):
        dmc.import_dmc(cfg.id)
        if cfg.pixels:
            kwargs.setdefault("render_kwargs", dmc.render_kwargs(cfg.id, cfg.image_size))
    if ":" in cfg.id:
        import_id_module(cfg.id)
    try:
        env = gym.make(cfg.id, **kwargs)
    except gym.error.Error as exc:
        hint = ""
        if isinstance(exc, gym.error.NameNotFound | gym.error.NamespaceNotFound) and not cfg.imports:
            hint = " (ids registered by a package on import need env.imports=[package])"
        raise ValueError(f"env.id={cfg.id!r}: {exc}{hint}") from None
    if dmc.is_dmc(cfg.id) and cfg.pixels:
        env = dmc.PersistentCamera(env, cfg.image_size, int(kwargs["render_kwargs"].get("camera_id", 0)))
    return env


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


def agent_actions(env: gym.Env) -> gym.Env:
    """The one place where agents' actions meet the env's action space.

    Agents act in 0-based integer spaces and in [-1, 1] boxes: Discrete(n, start=s) is presented as
    Discrete(n), MultiDiscrete(nvec, start) as MultiDiscrete(nvec), and the start is added before
    env.step; a bounded Box is presented as [-1, 1] (clipped there, then rescaled to the env's
    bounds). Other spaces pass through.
    """
    space = env.action_space
    if isinstance(space, gym.spaces.Box):
        return unit_box_actions(env)
    if isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete) and np.any(space.start != 0):
        return ZeroBasedActions(env)
    return env


class ZeroBasedActions(gym.ActionWrapper):
    """Discrete(n, start=s) -> Discrete(n), MultiDiscrete(nvec, start) -> MultiDiscrete(nvec);
    env action = agent action + start."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.action_space
        if isinstance(space, gym.spaces.Discrete):
            self.action_space = gym.spaces.Discrete(int(space.n))
        elif isinstance(space, gym.spaces.MultiDiscrete):
            self.action_space = gym.spaces.MultiDiscrete(space.nvec, dtype=space.dtype)
        else:
            raise TypeError(f"ZeroBasedActions needs a Discrete or MultiDiscrete action space, got {space}")
        self.start = space.start

    def action(self, action: Any) -> Any:
        if isinstance(self.env.action_space, gym.spaces.Discrete):
            return self.env.action_space.dtype.type(int(np.asarray(action)) + int(self.start))
        return (np.asarray(action) + self.start).astype(self.env.action_space.dtype)


def unit_box_actions(env: gym.Env) -> gym.Env:
    """Continuous actions in [-1, 1]: a bounded Box action space is presented as [-1, 1] (same
    shape and dtype); actions are clipped to [-1, 1] and rescaled linearly to the env's bounds."""
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        return env
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError(f"action space {space} is unbounded; continuous agents need finite bounds")
    return UnitBoxActions(env)


class UnitBoxActions(gym.ActionWrapper):
    """Box(low, high) -> Box(-1, 1): env action = low + (clip(a, -1, 1) + 1) / 2 * (high - low), in the env's dtype."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(f"UnitBoxActions needs a Box action space, got {space}")
        unit = np.ones(space.shape, dtype=space.dtype)
        self.action_space = gym.spaces.Box(-unit, unit, space.shape, space.dtype)
        self.low = space.low.astype(np.float64)
        self.high = space.high.astype(np.float64)
        self.identity = bool(np.all(self.low == -1) and np.all(self.high == 1))  # clip only

    def action(self, action: Any) -> np.ndarray:
        unit = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        if self.identity:
            return unit.astype(self.env.action_space.dtype)
        scaled = self.low + (unit + 1.0) * 0.5 * (self.high - self.low)
        return np.clip(scaled, self.low, self.high).astype(self.env.action_space.dtype)


def env_seed(run_seed: int, index: int, purpose: str = "train") -> int:
    """Seed of env `index`: train and eval envs never share one."""
    offset = {"train": 0, "eval": 1_000_003}[purpose]
    return run_seed * 10_007 + offset + index
