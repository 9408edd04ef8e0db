"""Throughput bookkeeping between two training-scalar rows: the per-update metrics and finished
episodes gathered since the last row, the counters as they stood at it, and the rates of the window
in between (env steps, updates and transitions learned per second of training, and the share of that
time spent in updates). It computes a row's own part; train/outputs.py writes it."""

from __future__ import annotations

import numpy as np

from dreamlab.track import names
from dreamlab.track.sinks import MeanAccumulator
from dreamlab.train.counters import Counters


class Throughput:
    """What the next training-scalar row holds, and where the last one left the counters."""

    def __init__(self) -> None:
        self.accumulator = MeanAccumulator()  # per-update metrics since the last row
        self.episode_stats: list[tuple[float, int]] = []  # (return, length) of episodes finished since
        self.last_updates = 0  # the counters at the last row (or at attach: a resumed run's restored ones)
        self.last_env_steps = 0
        self.last_train_seconds = 0.0
        self.last_update_seconds = 0.0

    def mark(self, c: Counters) -> None:
        """The counters a row was written at: the next row's window starts here."""
        self.last_updates, self.last_env_steps = c.updates, c.env_steps
        self.last_train_seconds, self.last_update_seconds = c.train_seconds, c.update_seconds

    def due(self, c: Counters) -> bool:
        """Whether anything new (an update or a finished episode) happened since the last row."""
        return c.updates != self.last_updates or bool(self.episode_stats)

    def row(self, c: Counters, transitions_per_update: int) -> dict[str, float]:
        """Means of the per-update metrics, episode stats and rates since the last row, then the update
        count. Takes the gathered metrics and episodes; the window's start moves only with `mark`."""
        metrics = self.accumulator.pop()
        new_updates, new_steps = c.updates - self.last_updates, c.env_steps - self.last_env_steps
        if self.episode_stats:
            metrics[names.ENV_EPISODE_RETURN] = float(np.mean([r for r, _ in self.episode_stats]))
            metrics[names.ENV_EPISODE_LENGTH] = float(np.mean([n for _, n in self.episode_stats]))
            self.episode_stats.clear()
        learner_seconds = c.train_seconds - self.last_train_seconds
        update_seconds = c.update_seconds - self.last_update_seconds
        if learner_seconds > 0:
            # rates per second of training (collection + updates), as summary.json's train_seconds: the
            # wall time since the last row also holds evaluations and checkpoints, which made the short
            # last window of a run (written after the final evaluation) read near zero
            metrics[names.PERF_LEARNER_TRAIN_FRACTION] = update_seconds / learner_seconds
            metrics[names.ENV_STEPS_PER_S] = new_steps / learner_seconds
            metrics[names.PERF_UPDATES_PER_S] = new_updates / learner_seconds
            metrics[names.PERF_TRANSITIONS_LEARNED_PER_S] = new_updates * transitions_per_update / learner_seconds
        metrics[names.PERF_UPDATES] = float(c.updates)
        return metrics
