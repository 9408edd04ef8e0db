"""Monitors the loop derives from the metrics stream, for every agent.

- Collapse alarm: an evaluation well below the best so far while the value estimate rose since
  that best: the signature of an actor exploiting its model or critic (docs/dreamerv3.md, Failures
  these choices guard against, #7). It reads the value estimate from the metrics that the registry
  (track/names.py) names as value estimates, VALUE_KEYS: any agent that logs one of them is watched.

Signals of one algorithm live in its agent: DreamerV3's surprise log-ratios and surprise gate are in
agents/dreamer/focus.py.
"""

from __future__ import annotations

from typing import Any

from dreamlab.track import names

VALUE_KEYS = (names.CRITIC_VALUE_MEAN, names.RL_AVG_Q)  # value estimates, whichever an agent logs


class CollapseAlarm:
    """1 when eval < best * (1 - drop) and the latest value estimate exceeds its level at the best eval."""

    def __init__(self, drop: float = 0.3):
        self.drop = drop
        self.best: float | None = None
        self.value_at_best: float | None = None
        self.latest_value: float | None = None

    def observe_training(self, metrics: dict[str, float]) -> None:
        for key in VALUE_KEYS:
            if key in metrics:
                self.latest_value = metrics[key]

    def on_eval(self, value: float) -> float:
        if self.best is None or value > self.best:
            self.best, self.value_at_best = value, self.latest_value
            return 0.0
        fell = value < self.best - self.drop * abs(self.best)
        rose = (self.latest_value is not None and self.value_at_best is not None
                and self.latest_value > self.value_at_best)
        return float(fell and rose)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "value_at_best": self.value_at_best, "latest_value": self.latest_value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.value_at_best = state["best"], state["value_at_best"]
        self.latest_value = state["latest_value"]
