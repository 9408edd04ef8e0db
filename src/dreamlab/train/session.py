"""One training session: builds every part of a run from the config and composes them for the loop.
The parts are the agent, the collector, the evaluator, what the agent learns from (replay or
rollouts) with its update schedule, the clocks, the counters (train/counters.py) and the monitors;
`session.out` (train/outputs.py) writes what the run reports, and `session.checkpoints`
(train/snapshot.py) saves and restores all of it. The session itself only builds and delegates."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dreamlab.agents import make_agent
from dreamlab.agents.base import Agent
from dreamlab.collect.base import spaces
from dreamlab.collect.interface import Collector
from dreamlab.collect.records import dict_space
from dreamlab.collect.sync import SyncCollector
from dreamlab.config.load import ConfigError
from dreamlab.config.schema import Config
from dreamlab.device import resolve_device, set_threads
from dreamlab.envs.make import REMOTE, env_seed, make_env
from dreamlab.replay.buffer import ReplayBuffer, parse_bytes
from dreamlab.replay.rollout import RolloutBuffer
from dreamlab.track.monitors import CollapseAlarm
from dreamlab.train.counters import Counters
from dreamlab.train.evaluate import Evaluator, env_errors
from dreamlab.train.outputs import RunOutputs
from dreamlab.train.schedule import Every, RolloutSchedule, UpdateSchedule
from dreamlab.train.snapshot import Checkpoints, Parts


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Session:
    """Everything a run holds; `train/loop.py` drives it."""

    def __init__(self, cfg: Config):
        if cfg.track.video_every and cfg.env.id == REMOTE:
            raise ValueError("track.video_every renders the env here; a remote env (env.id=remote) cannot be recorded")
        self.cfg = cfg
        self.threads = set_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        seed_everything(cfg.seed)
        self.parallel = cfg.collect.mode != "sync"
        self.agent: Agent
        self.collector: Collector
        if self.parallel:
            with env_errors(cfg.env, ConfigError):
                env_spaces = spaces(cfg)
            self.agent = make_agent(cfg, *env_spaces, self.device)
            self.collector = self._parallel_collector()
        else:
            with env_errors(cfg.env, ConfigError):
                envs = [make_env(cfg.env, i) for i in range(cfg.env.num_envs)]
            self.collector = SyncCollector(envs, [env_seed(cfg.seed, i) for i in range(cfg.env.num_envs)])
            self.agent = make_agent(cfg, dict_space(envs[0].observation_space), envs[0].action_space, self.device)
        # track.video_every: env 0 of the evaluator renders; `record` is switched on for the evaluations due
        self.evaluator = Evaluator(cfg.env, cfg.seed, cfg.eval.num_envs, record=int(cfg.track.video_every > 0),
                                   sample=cfg.eval.sample)
        self.replay, self.schedule = self._learning_data()
        self.eval_clock = Every(cfg.eval.every)
        self.checkpoint_clock = Every(cfg.checkpoint.every)
        self.counters = Counters()
        self.collapse_alarm = CollapseAlarm()
        self.stop_signal: int | None = None
        self.out = RunOutputs(cfg, self.agent, self.replay, self.collector, self.evaluator, self.parallel)
        self.checkpoints = Checkpoints(Parts(self.agent, self.replay, self.collector, self.schedule, self.eval_clock,
                                             self.checkpoint_clock, self.collapse_alarm), cfg.replay.save)

    def _learning_data(self) -> tuple[ReplayBuffer, UpdateSchedule | RolloutSchedule]:
        """What the agent learns from (agents/base.py `learns_from`) and when it updates: replay windows
        on the train_ratio schedule, or the latest rollout of every env, one update per rollout."""
        cfg, agent = self.cfg, self.agent
        if agent.learns_from == "rollout":
            rollouts = RolloutBuffer(agent.batch_length, self.collector.num_streams, seed=cfg.seed + 3)
            return rollouts, RolloutSchedule(rollouts)
        replay = ReplayBuffer(cfg.replay.capacity, self.collector.num_streams, seed=cfg.seed + 3,
                              chunk=cfg.replay.chunk, max_bytes=parse_bytes(cfg.replay.max_bytes))
        schedule = UpdateSchedule(cfg.train.train_ratio, agent.batch_size * agent.learned_steps_per_window,
                                  cfg.train.learning_starts, cfg.env.action_repeat)
        return replay, schedule

    def _parallel_collector(self) -> Collector:
        """collect.mode=process|ray: collectors outside this process, one replay stream per env."""
        if self.cfg.collect.mode == "ray":
            from dreamlab.collect.ray_actors import RayCollector

            return RayCollector(self.cfg, self.agent)
        from dreamlab.collect.process import ProcessCollector

        return ProcessCollector(self.cfg, self.agent)

    def update_slack(self) -> int:
        """Updates that may stay owed before collection pauses: collect.ratio_tolerance of those earned."""
        if not self.parallel:
            return 0
        return int(self.cfg.collect.ratio_tolerance * (self.counters.updates + self.counters.updates_owed))

    def attach(self, run_dir: Path, quiet: bool) -> None:
        """Open the run directory's outputs (a resumed run's rows past its checkpoint are dropped: they
        are logged again)."""
        self.out.attach(run_dir, quiet, self.counters, self.checkpoints.restored_step)

    @property
    def checkpoint_dir(self) -> Path:
        return self.out.attached_dir / "checkpoints"

    def write_training_scalars(self) -> None:
        """The training-scalar row of the updates and episodes since the last one (train/outputs.py)."""
        self.out.write_training_scalars(self.counters)

    def save_latest(self) -> None:
        """The scalars logged so far (a resumed run then continues the same rows), then checkpoints/latest.pt."""
        self.write_training_scalars()
        self.checkpoints.save_latest(self.checkpoint_dir, self.counters)

    def save_best(self) -> None:
        self.checkpoints.save_best(self.checkpoint_dir, self.counters)

    def restore(self, run_dir: Path) -> None:
        """Resume the run in `run_dir` from its checkpoints/latest.pt: every part continues where it stopped."""
        self.out.run_dir = run_dir
        self.counters = self.checkpoints.restore(self.checkpoint_dir)

    def kept_checkpoint(self) -> str:
        """What a failed run leaves to resume from, for its one-line error."""
        return self.checkpoints.kept()

    def summary(self, end_state: str) -> dict[str, Any]:
        return self.out.summary(end_state, self.counters, self.device, self.threads)

    def write_summary(self, end_state: str) -> dict[str, Any]:
        summary = self.summary(end_state)
        self.out.write_summary(summary)
        return summary

    def close(self) -> None:
        self.out.close()
        self.evaluator.close()
        self.collector.close()
