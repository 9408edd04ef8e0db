"""The run's counters: env steps, updates, episodes, the training and evaluation clocks, the best and
threshold evaluations and the non-finite streak. One plain dataclass that the loop advances, the
checkpoint saves whole (train/snapshot.py) and summary.json reports (train/outputs.py)."""

from __future__ import annotations

import dataclasses


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
