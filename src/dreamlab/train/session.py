"""One training session: builds every part from the config, saves and restores all of it.

A checkpoint holds the agent (nets, optimizers, counters, RNG), the replay manifest (the arrays
live in checkpoints/replay/ as chunk files), the collector (env states mid-episode where they
can be captured), the loop counters and clocks, and the global RNGs.
"""

from __future__ import annotations

import dataclasses
import random
import warnings
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
from dreamlab.replay import persist
from dreamlab.replay.buffer import ReplayBuffer, parse_bytes
from dreamlab.replay.rollout import RolloutBuffer
from dreamlab.track import names
from dreamlab.track.monitors import CollapseAlarm
from dreamlab.track.run_dir import StorageError, write_json_atomic
from dreamlab.track.sinks import MeanAccumulator, Tracker
from dreamlab.train import checkpoint
from dreamlab.train.evaluate import Evaluator, env_errors
from dreamlab.train.progress import Progress, progress_for
from dreamlab.train.schedule import Every, RolloutSchedule, UpdateSchedule

MEDIA_SEQUENCES = 4  # replayed windows shown side by side in each media grid and video


@dataclasses.dataclass
class Counters:
    env_steps: int = 0
    updates: int = 0
    episodes: int = 0
    train_seconds: float = 0.0  # collection + updates, evaluation excluded
    update_seconds: float = 0.0
    eval_seconds: float = 0.0
    best_eval: float | None = None
    best_step: int | None = None
    threshold_step: int | None = None
    threshold_seconds: float | None = None
    last_eval_step: int = -1
    evals: list[list[float]] = dataclasses.field(default_factory=list)  # [env_steps, train_seconds, value]
    nonfinite_in_row: int = 0
    nonfinite_total: int = 0
    updates_owed: int = 0  # earned by train_ratio, not yet run (parallel collection pays them with a slack)


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
        self.media_rng = np.random.default_rng(cfg.seed + 5)  # media windows: the training stream is untouched
        self.eval_clock = Every(cfg.eval.every)
        self.checkpoint_clock = Every(cfg.checkpoint.every)
        self.counters = Counters()
        self.accumulator = MeanAccumulator()
        self.collapse_alarm = CollapseAlarm()
        self.episode_stats: list[tuple[float, int]] = []
        self.stop_signal: int | None = None
        self.replay_manifest: dict[str, Any] | None = None
        self.restored_step: int | None = None  # env step of the checkpoint this session resumed from
        self.saved_step: int | None = None  # env step of the checkpoint on disk (latest.pt)
        self.run_dir: Path | None = None
        self.tracker: Tracker | None = None
        self.progress: Progress | None = None
        self.profiler: torch.profiler.profile | None = None

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
        """Open the run directory's sinks (a resumed run's rows past its checkpoint are dropped: they are
        logged again) and the progress display."""
        self.run_dir = run_dir
        self.tracker = Tracker(run_dir, tensorboard=self.cfg.track.tensorboard, resume_step=self.restored_step)
        self.progress = progress_for(self.cfg, self.counters, quiet)
        self.last_write_updates, self.last_write_steps = self.counters.updates, self.counters.env_steps
        self.last_write_train_seconds = self.counters.train_seconds
        self.last_write_update_seconds = self.counters.update_seconds
        self.profiler = self._start_profiler() if self.cfg.run.profile else None

    @property
    def attached_dir(self) -> Path:
        """The run directory (set by attach, or by a resume before it)."""
        if self.run_dir is None:
            raise RuntimeError("the session has no run directory yet")
        return self.run_dir

    @property
    def sinks(self) -> Tracker:
        """The run directory's sinks (opened by attach)."""
        if self.tracker is None:
            raise RuntimeError("the session is not attached to a run directory")
        return self.tracker

    @property
    def display(self) -> Progress:
        """The progress display (opened by attach)."""
        if self.progress is None:
            raise RuntimeError("the session is not attached to a run directory")
        return self.progress

    def _start_profiler(self) -> torch.profiler.profile:
        run_dir = self.attached_dir

        def write(prof: torch.profiler.profile) -> None:
            table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40)
            (run_dir / "profile.txt").write_text(table)
            prof.export_chrome_trace(str(run_dir / "profile_trace.json"))

        schedule = torch.profiler.schedule(wait=8, warmup=2, active=5, repeat=1)
        profiler = torch.profiler.profile(schedule=schedule, on_trace_ready=write, record_shapes=True)
        profiler.start()
        return profiler

    def profile_step(self) -> None:
        """Advance the profiler by one update (a no-op unless run.profile)."""
        if self.profiler is not None:
            self.profiler.step()

    def write_training_scalars(self) -> None:
        """Means of the per-update metrics since the last write, episode stats and throughput."""
        c = self.counters
        if c.updates == self.last_write_updates and not self.episode_stats:
            return  # nothing new since the last write
        metrics = self.accumulator.pop()
        new_updates, new_steps = c.updates - self.last_write_updates, c.env_steps - self.last_write_steps
        if self.episode_stats:
            metrics[names.ENV_EPISODE_RETURN] = float(np.mean([r for r, _ in self.episode_stats]))
            metrics[names.ENV_EPISODE_LENGTH] = float(np.mean([n for _, n in self.episode_stats]))
            self.episode_stats.clear()
        learner_seconds = c.train_seconds - self.last_write_train_seconds
        update_seconds = c.update_seconds - self.last_write_update_seconds
        if learner_seconds > 0:
            # rates per second of training (collection + updates), as summary.json's train_seconds: the
            # wall time since the last row also holds evaluations and checkpoints, which made the short
            # last window of a run (written after the final evaluation) read near zero
            metrics[names.PERF_LEARNER_TRAIN_FRACTION] = update_seconds / learner_seconds
            metrics[names.ENV_STEPS_PER_S] = new_steps / learner_seconds
            metrics[names.PERF_UPDATES_PER_S] = new_updates / learner_seconds
            metrics[names.PERF_TRANSITIONS_LEARNED_PER_S] = (
                new_updates * self.agent.batch_size * self.agent.learned_steps_per_window / learner_seconds)
        metrics[names.PERF_UPDATES] = float(c.updates)
        if self.parallel:
            metrics.update(self.collector.metrics())
            metrics[names.COLLECT_UPDATES_OWED] = float(c.updates_owed)
        metrics[names.PERF_REPLAY_SIZE] = float(len(self.replay))
        metrics[names.PERF_REPLAY_BYTES] = float(self.replay.nbytes)
        metrics[names.ENV_STEPS] = float(c.env_steps)
        self.sinks.write(c.env_steps, metrics)
        self.last_write_updates, self.last_write_steps = c.updates, c.env_steps
        self.last_write_train_seconds, self.last_write_update_seconds = c.train_seconds, c.update_seconds

    def write_media(self) -> None:
        """The agent's media (DreamerV3: open-loop dreams from images) on replayed windows, if it makes any.

        A failure warns and training goes on: pictures are never worth a lost run.
        """
        length = self.agent.batch_length
        if not self.replay.can_sample(length):
            return
        try:
            out = self.agent.media(self.replay.sample(MEDIA_SEQUENCES, length, rng=self.media_rng))
            if out:
                self.sinks.write_media(self.counters.env_steps, out)
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"writing media failed at env step {self.counters.env_steps}: {exc}", stacklevel=1)

    def video_due(self) -> bool:
        """track.video_every: whether the evaluation about to run records a video (the first, then every
        video_every-th)."""
        every = self.cfg.track.video_every
        return bool(every) and len(self.counters.evals) % every == 0

    def write_eval_video(self) -> None:
        """The frames the evaluator recorded (its first episode on env 0) to videos/eval_<env step>.mp4
        and TensorBoard; a failure warns and training goes on."""
        frames, self.evaluator.frames = self.evaluator.frames, []
        if not frames:
            return
        fps = (self.evaluator.envs[0].metadata.get("render_fps") or 30) / self.cfg.env.action_repeat
        try:
            self.sinks.write_video(self.counters.env_steps, names.VIDEO_EVAL, frames, max(1, round(fps)))
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"writing the evaluation video failed at env step {self.counters.env_steps}: {exc}",
                          stacklevel=1)

    @property
    def checkpoint_dir(self) -> Path:
        return self.attached_dir / "checkpoints"

    def save_latest(self) -> None:
        """Write checkpoints/latest.pt and the replay chunks it names. When the disk refuses (StorageError),
        the previous checkpoint stays whole and the chunks written for the new one are deleted."""
        self.write_training_scalars()  # a resumed run then continues the same rows
        replay_dir = self.checkpoint_dir / "replay"
        kept_manifest = self.replay_manifest
        try:
            self._save_latest(replay_dir)
        except StorageError:
            if self.cfg.replay.save:
                persist.prune(replay_dir, kept_manifest or {"files": {}})
            self.replay_manifest = kept_manifest
            raise
        self.saved_step = self.counters.env_steps
        if self.replay_manifest is not None:
            persist.prune(replay_dir, self.replay_manifest)

    def _save_latest(self, replay_dir: Path) -> None:
        if self.cfg.replay.save:
            self.replay_manifest = persist.save(self.replay, replay_dir, self.replay_manifest,
                                                version=self.counters.env_steps)
        payload = {
            "format": checkpoint.FORMAT,
            "agent": self.agent.state_dict(),
            "replay": self.replay_manifest if self.cfg.replay.save else None,
            "collector": self.collector.state_dict(),
            "counters": dataclasses.asdict(self.counters),
            "schedule": self.schedule.state_dict(),
            "clocks": {"eval": self.eval_clock.next_at, "checkpoint": self.checkpoint_clock.next_at},
            "monitors": {"collapse": self.collapse_alarm.state_dict()},
            "rng": checkpoint.rng_state(),
        }
        checkpoint.save(self.checkpoint_dir / "latest.pt", payload)

    def save_best(self) -> None:
        payload = {"format": checkpoint.FORMAT, "policy": self.agent.policy_state_dict(),
                   "env_steps": self.counters.env_steps, "eval": self.counters.best_eval}
        checkpoint.save(self.checkpoint_dir / "best.pt", payload)

    def restore(self) -> None:
        """Load checkpoints/latest.pt: every part continues where it stopped."""
        path = self.checkpoint_dir / "latest.pt"
        payload = checkpoint.load(path)
        try:
            self.agent.load_state_dict(payload["agent"])
            if payload["replay"] is not None:
                self._restore_replay(path, payload["replay"])
            self.collector.load_state_dict(payload["collector"])
            if not (payload["collector"]["exact"] and self.collector.exact_resume) and len(self.replay):
                self.replay.mark_last(truncated=True)  # episodes restart: cut the stored ones
            self.counters = Counters(**payload["counters"])
            self.schedule.load_state_dict(payload["schedule"])
            self.eval_clock.next_at = payload["clocks"]["eval"]
            self.checkpoint_clock.next_at = payload["clocks"]["checkpoint"]
            # older checkpoints also hold "surprise" and "surprise_gate" here: DreamerV3's, now in its agent state
            self.collapse_alarm.load_state_dict(payload["monitors"]["collapse"])
            checkpoint.set_rng_state(payload["rng"])
        except checkpoint.CheckpointError:
            raise  # already says what is wrong with which file
        except (KeyError, ValueError, RuntimeError) as exc:
            raise checkpoint.CheckpointError(f"checkpoint does not fit this run: {str(exc).splitlines()[0]}") from None
        self.restored_step = self.saved_step = self.counters.env_steps

    def _restore_replay(self, path: Path, manifest: dict[str, Any]) -> None:
        try:
            persist.load(self.replay, self.checkpoint_dir / "replay", manifest)
        except persist.ReplayFileError as exc:
            raise checkpoint.CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
        self.replay_manifest = manifest

    def kept_checkpoint(self) -> str:
        """What a failed run leaves to resume from, for its one-line error."""
        if self.saved_step is None:
            return "no checkpoint was written yet"
        return f"checkpoints/latest.pt of env step {self.saved_step} is kept"

    def summary(self, end_state: str) -> dict[str, Any]:
        c = self.counters
        return {
            "run_dir": str(self.run_dir),
            "end_state": end_state,
            "env_steps": c.env_steps,
            "updates": c.updates,
            "episodes": c.episodes,
            "primary_metric": self.cfg.run.primary_metric,
            "best_eval": c.best_eval,
            "best_step": c.best_step,
            "final_eval": c.evals[-1][2] if c.evals else None,
            "threshold": self.cfg.run.threshold,
            "threshold_step": c.threshold_step,
            "threshold_seconds": None if c.threshold_seconds is None else round(c.threshold_seconds, 3),
            "train_seconds": round(c.train_seconds, 3),
            "update_seconds": round(c.update_seconds, 3),
            "eval_seconds": round(c.eval_seconds, 3),
            "nonfinite_updates": c.nonfinite_total,
            "evals": c.evals,
            "device": str(self.device),
            "threads": self.threads,
        }

    def write_summary(self, end_state: str) -> dict[str, Any]:
        summary = self.summary(end_state)
        write_json_atomic(self.attached_dir / "summary.json", summary)
        return summary

    def close(self) -> None:
        if self.profiler is not None:
            self.profiler.stop()
        if self.progress is not None:
            self.progress.close()
        if self.tracker is not None:
            self.tracker.close()
        self.evaluator.close()
        self.collector.close()
