"""Deterministic evaluation episodes on env instances of their own."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dreamlab.agents.base import Agent
from dreamlab.collect.interface import Actor
from dreamlab.collect.records import dict_space
from dreamlab.config.schema import Config, EnvConfig
from dreamlab.envs import crafter
from dreamlab.envs.imports import MissingModule
from dreamlab.envs.make import REMOTE, env_seed, make_env
from dreamlab.track import names


@contextmanager
def env_errors(env: EnvConfig, error: type[Exception]) -> Iterator[None]:
    """Turn an env the config cannot build into one `error` line naming the key: an env.kwargs entry
    the env does not take (a TypeError from its constructor), or the module of a `module:Env-v0` id
    that cannot be imported. Any other exception passes through unchanged."""
    try:
        yield
    except TypeError as exc:
        found = re.search(r"unexpected keyword argument '([^']+)'", str(exc))
        if found is None or found.group(1) not in env.kwargs:
            raise
        raise error(f"env.kwargs.{found.group(1)}: {env.id} does not take this argument") from None
    except MissingModule as exc:  # already one line, with what to install
        raise error(str(exc)) from None
    except ModuleNotFoundError as exc:
        module = env.id.partition(":")[0]
        if ":" not in env.id or module not in str(exc):
            raise
        missing = getattr(exc.__cause__, "name", None) or exc.name or module
        raise error(f"env.id={env.id}: cannot import the module {module!r} (no module named {missing!r})") from None


class Evaluator:
    """Runs `episodes` episodes with explore=False (explore=True with `sample`); episode i always uses
    seed (run seed, i)."""

    def __init__(self, env_cfg: EnvConfig, seed: int, num_envs: int, record: int = 0, sample: bool = False):
        """record: keep the rendered frames of the first `record` episodes env 0 plays in `self.frames`."""
        self.envs = [make_env(env_cfg, i, render=record > 0 and i == 0) for i in range(num_envs)]
        self.env_id = env_cfg.id
        self.seed = seed
        self.record = record
        self.sample = sample  # eval.sample: act with explore=True (sampled actions)
        self.recorded = 0  # episodes env 0 has started in this run()
        self.frames: list[np.ndarray] = []

    def run(self, agent: Actor, episodes: int) -> tuple[dict[str, float], list[float]]:
        num_envs = len(self.envs)
        queue = list(range(episodes))
        active = np.zeros(num_envs, bool)
        is_first = np.ones(num_envs, bool)
        returns = np.zeros(num_envs)
        lengths = np.zeros(num_envs, np.int64)
        results: dict[int, tuple[float, int]] = {}
        last_infos: dict[int, dict[str, Any]] = {}  # each episode's last step info (Crafter: its achievements)
        episode_of = np.full(num_envs, -1)
        obs: dict[str, np.ndarray] = {}
        self.frames, self.recorded = [], 0
        for i in range(min(num_envs, episodes)):
            self._start(i, queue.pop(0), obs, episode_of)
            active[i] = True
        state = None
        while active.any():
            action, state = agent.act({**obs, "is_first": is_first.copy()}, state, explore=self.sample)
            is_first[:] = False
            for i in np.flatnonzero(active).tolist():
                new_obs, reward, terminated, truncated, info = self.envs[i].step(action[i])
                returns[i] += reward
                lengths[i] += 1
                for key, value in new_obs.items():
                    obs[key][i] = value
                if i == 0 and self.recorded <= self.record:
                    self._record_frame()
                if terminated or truncated:
                    results[int(episode_of[i])] = (float(returns[i]), int(lengths[i]))
                    last_infos[int(episode_of[i])] = info
                    returns[i], lengths[i] = 0.0, 0
                    if queue:
                        self._start(i, queue.pop(0), obs, episode_of)
                        is_first[i] = True
                    else:
                        active[i] = False
        episode_returns = [results[k][0] for k in sorted(results)]
        metrics = {
            names.EVAL_RETURN_MEAN: float(np.mean(episode_returns)),
            names.EVAL_RETURN_STD: float(np.std(episode_returns)),
            names.EVAL_LENGTH_MEAN: float(np.mean([results[k][1] for k in results])),
        }
        if crafter.is_crafter(self.env_id):  # achievement success rates and the Crafter score
            metrics.update(crafter.episode_metrics([last_infos[k] for k in sorted(last_infos)]))
        return metrics, episode_returns

    def _start(self, index: int, episode: int, obs: dict[str, np.ndarray], episode_of: np.ndarray) -> None:
        first, _ = self.envs[index].reset(seed=env_seed(self.seed, episode, "eval"))
        for key, value in first.items():
            if key not in obs:
                obs[key] = np.zeros((len(self.envs), *np.shape(value)), np.asarray(value).dtype)
            obs[key][index] = value
        episode_of[index] = episode
        if index == 0:
            self.recorded += 1
            if self.recorded <= self.record:
                self._record_frame()

    def _record_frame(self) -> None:
        frame = self.envs[0].render()
        if not isinstance(frame, np.ndarray):
            raise TypeError(f"{self.env_id}: render() returned {type(frame).__name__}, not an rgb_array frame")
        self.frames.append(frame)

    def close(self) -> None:
        for env in self.envs:
            env.close()


CHECKPOINTS = ("latest", "best")


@dataclass
class SavedRun:
    """A run's config and its agent with a checkpoint's weights, ready to act."""

    cfg: Config
    agent: Agent
    observation_space: gym.spaces.Dict  # what the agent reads: make_env(cfg.env)'s dict observations
    action_space: gym.Space  # what it returns: 0-based discrete, [-1, 1] boxes (envs/make.py)
    metadata: dict[str, Any]  # the env's metadata (render_fps for videos)


def run_config(run_dir: Path) -> Config:
    """The resolved config of a saved run (its config.yaml); ConfigError when there is none."""
    from omegaconf import DictConfig, OmegaConf

    from dreamlab.config.load import ConfigError, load

    config_path = Path(run_dir) / "config.yaml"
    if not config_path.exists():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    saved = OmegaConf.load(config_path)
    if not isinstance(saved, DictConfig):
        raise ConfigError(f"{config_path}: expected a mapping at the top level")
    return load([], base=saved)[1]


def saved_device(name: str) -> str:
    """A saved run's `device`, or auto when it names CUDA and torch sees none here."""
    import torch

    return "auto" if name.startswith("cuda") and not torch.cuda.is_available() else name


def nonfinite_tensors(state: Any, prefix: str = "") -> list[str]:
    """Dotted names of the floating-point tensors of a nested state dict that hold a NaN or an infinity."""
    import torch

    if isinstance(state, dict):
        return [name for key, value in state.items() for name in nonfinite_tensors(value, f"{prefix}{key}.")]
    if torch.is_tensor(state) and state.is_floating_point() and not torch.isfinite(state).all():
        return [prefix.rstrip(".")]
    return []


def warn_nonfinite(path: Path, agent: Actor) -> None:
    """A RuntimeWarning when the policy's weights loaded from `path` are not all finite: its actions
    (and any return measured with them) mean nothing."""
    broken = nonfinite_tensors(agent.policy_state_dict())
    if broken:
        warnings.warn(f"{path} holds non-finite policy weights ({len(broken)} tensors, e.g. {broken[0]}): "
                      "returns from this policy are meaningless", RuntimeWarning, stacklevel=3)


def load_saved_run(run_dir: Path, which: str = "latest", device: str | None = None) -> SavedRun:
    """Build the run's agent and load a checkpoint into it: the one way `dreamlab eval` and
    `dreamlab.load` read a run.

    which: "latest" (checkpoints/latest.pt: the full agent state) or "best" (checkpoints/best.pt:
    the best evaluation's policy weights, via load_policy_state_dict). device: None = the run's
    setting, or auto where that is CUDA and this machine has none (a GPU run loads on a laptop). Builds one env to read
    the spaces (env.id=remote: its server must answer). Raises ConfigError (no run directory),
    ValueError (unknown `which`), CheckpointError (missing, unreadable, of another format, or not
    fitting the config); warns (RuntimeWarning) when the loaded policy weights are not all finite.
    """
    from dreamlab.agents import make_agent
    from dreamlab.device import resolve_device
    from dreamlab.train import checkpoint

    if which not in CHECKPOINTS:
        raise ValueError(f"checkpoint={which!r}: expected one of {', '.join(CHECKPOINTS)}")
    run_dir = Path(run_dir)
    cfg = run_config(run_dir)
    path = run_dir / "checkpoints" / f"{which}.pt"
    payload = checkpoint.load(path)
    with env_errors(cfg.env, ValueError):  # the run's recorded env: exit 1, not a usage error
        probe = make_env(cfg.env)
    try:
        observation_space = dict_space(probe.observation_space)
        agent = make_agent(cfg, observation_space, probe.action_space,
                           resolve_device(saved_device(cfg.device) if device is None else device))
        saved = SavedRun(cfg, agent, observation_space, probe.action_space, dict(probe.metadata))
    finally:
        probe.close()
    try:
        if which == "best":
            agent.load_policy_state_dict(payload["policy"])
        else:
            agent.load_state_dict(payload["agent"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise checkpoint.CheckpointError(f"{path} does not fit the run's config: {str(exc).splitlines()[0]}") from None
    warn_nonfinite(path, agent)
    return saved


def evaluate_run(run_dir: Path, which: str = "latest", episodes: int | None = None,
                 seed: int | None = None, video: Path | None = None,
                 video_episodes: int = 1) -> tuple[dict[str, float], list[float]]:
    """Deterministic episodes from a saved run: config from its config.yaml, weights from a checkpoint.

    video: write the first `video_episodes` episodes env 0 plays there, an MP4 or an animated GIF by
    the suffix (frames are kept in memory at render size until the end: about 0.7 MB each for CartPole).
    """
    from dreamlab.device import set_threads
    from dreamlab.track.media import check_video_path, write_video

    if video is not None:
        check_video_path(video)
        if video_episodes < 1:
            raise ValueError(f"--video-episodes {video_episodes}: expected at least 1")
    cfg = run_config(run_dir)
    if video is not None and cfg.env.id == REMOTE:
        raise ValueError("--video renders the env here; a remote env (env.id=remote) cannot be recorded")
    set_threads(cfg.threads)
    saved = load_saved_run(run_dir, which)
    evaluator = Evaluator(cfg.env, cfg.seed if seed is None else seed, cfg.eval.num_envs,
                          record=video_episodes if video is not None else 0, sample=cfg.eval.sample)
    try:
        result = evaluator.run(saved.agent, episodes or cfg.eval.episodes)
        if video is not None:
            fps = (saved.metadata.get("render_fps") or 30) / cfg.env.action_repeat  # one frame per agent step
            write_video(evaluator.frames, video, fps=max(1, round(fps)))
        return result
    finally:
        evaluator.close()
