"""Atari 2600 through ale-py: `env.id=ALE/<Game>-v5` (the atari extra; presets env=atari100k, env=atari).

Every rule comes from ALE or Gymnasium, nothing is written again here:

- ALE's own options (`env.kwargs`, passed to `gymnasium.make`): `repeat_action_probability` (sticky
  actions), `full_action_space` (all 18 actions, else the game's minimal set) and
  `max_num_frames_per_episode` (the episode cap in emulator frames: a truncation, never a terminal).
  ALE itself always runs at `frameskip=1`.
- Gymnasium's `AtariPreprocessing`: the action repeat (`frame_skip=env.action_repeat`, rewards
  summed, unclipped) with the max over the last two frames, up to `env.kwargs.noop_max` no-ops at
  each reset (default 30; taken out of the kwargs before `gymnasium.make`), the resize to
  `env.image_size` (area filter), ALE's own grayscale with `env.grayscale`, and no terminal on a
  lost life.

The repeat happens inside AtariPreprocessing, so `make_env` does not add dreamlab's ActionRepeat for
these ids; `env.action_repeat` still counts the frames of each agent step, so `env/steps` counts
frames (agent steps x 4, as the official DreamerV3) and `train.train_ratio` counts agent steps.
Observations come out as `{"image": uint8 [S, S, 3]}` (or [S, S, 1] in grayscale), never flattened.
Gymnasium 1.x knows the `ALE/` ids only once `ale_py` is imported: `import_ale` does that, lazily.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from dreamlab.config.schema import EnvConfig
from dreamlab.config.values import ATARI_PREFIX as PREFIX  # defined in config, which checks these ids too

NOOP_MAX = 30  # default of env.kwargs.noop_max: no-ops at each reset, 1 to noop_max (AtariPreprocessing's draw)
MANAGED = {  # gymnasium.make arguments dreamlab sets itself for ALE ids, and the key that decides each
    "frameskip": "env.action_repeat (the frame skip, done by AtariPreprocessing; ALE runs at frameskip=1)",
    "obs_type": "env.grayscale",
    "render_mode": "dreamlab (rgb_array when recording)",
}


def is_atari(env_id: str) -> bool:
    return env_id.startswith(PREFIX)


def import_ale(env_id: str) -> None:
    """Import ale_py and register its `ALE/` ids with Gymnasium; one ConfigError line without the extra."""
    try:
        import ale_py
    except ImportError as exc:
        from dreamlab.config.load import ConfigError

        raise ConfigError(f"env.id={env_id}: needs the atari extra: pip install -e '.[atari]' ({exc})") from None
    gym.register_envs(ale_py)


def make(cfg: EnvConfig, render: bool = False) -> gym.Env:
    """ALE at frameskip 1 -> AtariPreprocessing (repeat + max-pool, no-ops, resize, grayscale) ->
    the optional env.max_episode_steps limit (agent steps) -> {"image": frame}."""
    from dreamlab.config.load import ConfigError

    import_ale(cfg.id)
    kwargs = dict(cfg.kwargs)
    for key, owner in MANAGED.items():
        if key in kwargs:
            raise ConfigError(f"env.kwargs.{key}: set by {owner} for {cfg.id}; remove it")
    if cfg.pixels:
        raise ConfigError(f"env.pixels=true: {cfg.id} observes its frames already (env.image_size, env.grayscale "
                          "size them); leave env.pixels=false")
    noop_max = kwargs.pop("noop_max", NOOP_MAX)
    if not isinstance(noop_max, int) or isinstance(noop_max, bool) or noop_max < 0:
        raise ConfigError(f"env.kwargs.noop_max: expected an integer >= 0, got {noop_max!r}")
    kwargs.update(frameskip=1, obs_type="grayscale" if cfg.grayscale else "rgb")
    if render:
        kwargs["render_mode"] = "rgb_array"
    try:
        env = gym.make(cfg.id, disable_env_checker=True, **kwargs)
    except gym.error.Error as exc:
        raise ValueError(f"env.id={cfg.id!r}: {exc}") from None
    env = gym.wrappers.AtariPreprocessing(
        env, noop_max=noop_max, frame_skip=cfg.action_repeat, screen_size=cfg.image_size,
        terminal_on_life_loss=False, grayscale_obs=cfg.grayscale, grayscale_newaxis=True, scale_obs=False)
    skip_unread_screens(env)
    if cfg.max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, cfg.max_episode_steps)
    return ImageKey(env)


def skip_unread_screens(env: gym.wrappers.AtariPreprocessing) -> None:
    """Stop the inner `AtariEnv` from copying the 210x160 screen at every emulator frame.

    `AtariEnv.step` returns a copy of the screen (its `obs_type`) at each of the 4 frames of an agent
    step, and `AtariPreprocessing` drops every one of them: it reads the last two screens from ALE
    itself (`ale.getScreenRGB(buffer)`), so its frames do not depend on the inner `obs_type`. That
    copy was 17% of an agent step. Switched to ALE's 128-byte RAM after AtariPreprocessing has sized
    its buffers from the screen space; the frames that come out are unchanged (tests/test_atari.py
    compares them with plain AtariPreprocessing's). `gym.make`'s passive checker, which would
    compare the inner observation with its space, is off for these ids (AtariPreprocessing checks).
    """
    inner: Any = env.unwrapped  # ale_py's AtariEnv: its private obs_type
    if getattr(inner, "_obs_type", None) in ("rgb", "grayscale"):
        inner._obs_type = "ram"


class ImageKey(gym.ObservationWrapper):
    """A uint8 frame observation [H, W, C] -> {"image": frame}, unchanged (DictObservation keeps images as they are)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, space.shape, np.uint8)})

    def observation(self, observation: Any) -> dict[str, np.ndarray]:
        return {"image": observation}
