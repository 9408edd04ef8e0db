"""What a run writes about itself, outside its checkpoints: the run directory's sinks (metrics.jsonl,
TensorBoard, MLflow) with the training-scalar rows and evaluation rows, the progress display, the
agent's media and the evaluation videos, the profiler, and summary.json. `RunOutputs` holds them
(`session.out`); the sinks and the display open when the session attaches to its run directory."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dreamlab.agents.base import Agent
from dreamlab.collect.interface import Collector
from dreamlab.config.schema import Config
from dreamlab.replay.buffer import ReplayBuffer
from dreamlab.track import names
from dreamlab.track.run_dir import write_json_atomic
from dreamlab.track.sinks import Tracker
from dreamlab.train.counters import Counters
from dreamlab.train.evaluate import Evaluator
from dreamlab.train.progress import Progress, progress_for
from dreamlab.train.throughput import Throughput

MEDIA_SEQUENCES = 4  # replayed windows shown side by side in each media grid and video


class RunOutputs:
    """The sinks, display, media, videos, profiler and summary of one run."""

    def __init__(self, cfg: Config, agent: Agent, replay: ReplayBuffer, collector: Collector, evaluator: Evaluator,
                 parallel: bool):
        self.cfg, self.agent, self.replay, self.collector, self.evaluator = cfg, agent, replay, collector, evaluator
        self.parallel = parallel
        self.throughput = Throughput()
        self.media_rng = np.random.default_rng(cfg.seed + 5)  # media windows: the training stream is untouched
        self.run_dir: Path | None = None
        self.tracker: Tracker | None = None
        self.progress: Progress | None = None
        self.profiler: torch.profiler.profile | None = None

    def attach(self, run_dir: Path, quiet: bool, counters: Counters, resume_step: int | None) -> None:
        """Open the run directory's sinks (a resumed run's rows past `resume_step`, its checkpoint, are
        dropped: they are logged again) and the progress display."""
        self.run_dir = run_dir
        self.tracker = Tracker(run_dir, tensorboard=self.cfg.track.tensorboard, resume_step=resume_step)
        self.progress = progress_for(self.cfg, counters, quiet)
        self.throughput.mark(counters)
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

    def write_training_scalars(self, c: Counters) -> None:
        """Means of the per-update metrics since the last write, episode stats and throughput, the
        collectors' metrics (parallel modes) and the replay's size."""
        if not self.throughput.due(c):
            return  # nothing new since the last write
        metrics = self.throughput.row(c, self.agent.batch_size * self.agent.learned_steps_per_window)
        if self.parallel:
            metrics.update(self.collector.metrics())
            metrics[names.COLLECT_UPDATES_OWED] = float(c.updates_owed)
        metrics[names.PERF_REPLAY_SIZE] = float(len(self.replay))
        metrics[names.PERF_REPLAY_BYTES] = float(self.replay.nbytes)
        metrics[names.ENV_STEPS] = float(c.env_steps)
        self.sinks.write(c.env_steps, metrics)
        self.throughput.mark(c)

    def write_media(self, env_steps: int) -> None:
        """The agent's media (DreamerV3: open-loop dreams from images) on replayed windows, if it makes any.

        A failure warns and training goes on: pictures are never worth a lost run.
        """
        length = self.agent.batch_length
        if not self.replay.can_sample(length):
            return
        try:
            out = self.agent.media(self.replay.sample(MEDIA_SEQUENCES, length, rng=self.media_rng))
            if out:
                self.sinks.write_media(env_steps, out)
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"writing media failed at env step {env_steps}: {exc}", stacklevel=1)

    def video_due(self, evals_done: int) -> bool:
        """track.video_every: whether the evaluation about to run (after `evals_done` of them) records a
        video (the first, then every video_every-th)."""
        every = self.cfg.track.video_every
        return bool(every) and evals_done % every == 0

    def write_eval_video(self, env_steps: int) -> None:
        """The frames the evaluator recorded (its first episode on env 0) to videos/eval_<env step>.mp4
        and TensorBoard; a failure warns and training goes on."""
        frames, self.evaluator.frames = self.evaluator.frames, []
        if not frames:
            return
        fps = (self.evaluator.envs[0].metadata.get("render_fps") or 30) / self.cfg.env.action_repeat
        try:
            self.sinks.write_video(env_steps, names.VIDEO_EVAL, frames, max(1, round(fps)))
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"writing the evaluation video failed at env step {env_steps}: {exc}", stacklevel=1)

    def summary(self, end_state: str, c: Counters, device: torch.device, threads: int) -> dict[str, Any]:
        """summary.json's content."""
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
            "device": str(device),
            "threads": threads,
        }

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.attached_dir / "summary.json", summary)

    def close(self) -> None:
        """Stop the profiler, close the display and the sinks (the collectors and evaluator are the
        session's)."""
        if self.profiler is not None:
            self.profiler.stop()
        if self.progress is not None:
            self.progress.close()
        if self.tracker is not None:
            self.tracker.close()
