"""Derived stability signals computed from the metrics stream, agent-independent.

- Surprise: each world-model loss component of the newest update against its own EMA, as
  log(loss / EMA) (`wm/surprise/<component>_log_ratio`, and their mean as the total).
- Surprise gate: while the total surprise stays above a threshold, the world model gets the
  updates to itself (`monitor/wm_focus` is 1 on each update where the gate is open).
- Collapse alarm: an evaluation well below the best so far while the value estimate rose since
  that best: the signature of an actor exploiting its model or critic (docs/dreamerv3.md, Failures
  these choices guard against, #7).
"""

from __future__ import annotations

import math
from typing import Any

from dreamlab.track import names

SURPRISE_COMPONENTS = {names.WM_LOSS_REWARD: "reward", names.WM_LOSS_CONTINUE: "continue", names.WM_KL_RAW: "kl"}


def surprise_components(metrics: dict[str, float]) -> dict[str, str]:
    """{metric name: component}: the fixed components plus one per observation key (`wm/loss_<key>`)."""
    found = {k: k[len(names.WM_LOSS_PREFIX):] for k in metrics
             if k.startswith(names.WM_LOSS_PREFIX) and k != names.WM_LOSS_TOTAL and k not in SURPRISE_COMPONENTS}
    return {**found, **SURPRISE_COMPONENTS}
VALUE_KEYS = (names.CRITIC_VALUE_MEAN, names.RL_AVG_Q)


class Surprise:
    def __init__(self, decay: float = 0.99, eps: float = 1e-6):
        self.decay, self.eps = decay, eps
        self.ema: dict[str, float] = {}

    def __call__(self, metrics: dict[str, float]) -> dict[str, float]:
        out = {}
        for key, component in surprise_components(metrics).items():
            value = metrics.get(key)
            if value is None or not math.isfinite(value):
                continue
            ema = self.ema.get(key)
            if ema is not None:
                out[names.surprise(component)] = math.log((value + self.eps) / (ema + self.eps))
            self.ema[key] = value if ema is None else self.decay * ema + (1 - self.decay) * value
        if out:
            out[names.WM_SURPRISE_TOTAL] = sum(out.values()) / len(out)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"ema": dict(self.ema)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema = dict(state["ema"])


class SurpriseGate:
    """Opens while `wm/surprise/total_log_ratio` > threshold (None: never).

    The loop reads `open` after each update: `pause_ac` makes the agent's next updates train the
    world model only; `extra_wm` adds `extra` world-model-only updates on fresh batches.
    """

    def __init__(self, threshold: float | None, mode: str = "pause_ac", extra: int = 1):
        self.threshold, self.mode, self.extra = threshold, mode, extra
        self.open = False

    def observe(self, surprise: dict[str, float]) -> float:
        total = surprise.get(names.WM_SURPRISE_TOTAL)
        self.open = self.threshold is not None and total is not None and total > self.threshold
        return float(self.open)

    def extra_updates(self) -> int:
        return self.extra if self.open and self.mode == "extra_wm" else 0

    def pauses_actor_critic(self) -> bool:
        return self.open and self.mode == "pause_ac"

    def state_dict(self) -> dict[str, Any]:
        return {"open": self.open}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.open = bool(state["open"])


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
