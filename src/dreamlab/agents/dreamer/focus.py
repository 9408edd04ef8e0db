"""DreamerV3's surprise signals and the surprise gate (off by default; not in the official DreamerV3).

- Surprise: each world-model loss component of the newest update against its own EMA, as
  log(loss / EMA) (`wm/surprise/<component>_log_ratio`, and their mean as
  `wm/surprise/total_log_ratio`).
- Surprise gate (`agent.wm_focus_threshold`): while the total surprise stays above the threshold,
  the world model gets the updates to itself (`monitor/wm_focus` is 1 on each update after which the
  gate is open). `agent.wm_focus_mode=pause_ac`: the next updates train the world model only;
  `extra_wm`: each surprising update is followed by `agent.wm_focus_extra` world-model-only updates
  on fresh batches, which the agent asks of the loop (agents/base.Agent.extra_updates).

All of it is decided inside the agent's `update` (WorldModelFocus) and saved with the agent's state.
"""

from __future__ import annotations

import math
from typing import Any

from dreamlab.track import names


class Surprise:
    """log(value / EMA) of each component metric, EMA decay `decay`; the first value only seeds the EMA.

    components: {metric name: component name}, in the order their mean is summed.
    """

    def __init__(self, components: dict[str, str], decay: float = 0.99, eps: float = 1e-6):
        self.components = dict(components)
        self.decay, self.eps = decay, eps
        self.ema: dict[str, float] = {}

    def __call__(self, metrics: dict[str, float]) -> dict[str, float]:
        out = {}
        for key, component in self.components.items():
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
    """Opens while `wm/surprise/total_log_ratio` > threshold (None: never)."""

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


class WorldModelFocus:
    """The surprise signals and gate as one update sees them: `world_model_only()` at its start, `observe`
    after it. An update that follows a surprising one in extra_wm mode is one of the extra updates asked
    for (`pending`); it trains the world model only and does not ask for more."""

    def __init__(self, components: dict[str, str], threshold: float | None, mode: str, extra: int):
        self.surprise = Surprise(components)
        self.gate = SurpriseGate(threshold, mode, extra)
        self.pending = 0  # extra world-model-only updates asked of the loop and not run yet
        self.extra_now = False  # the current update is one of them

    def world_model_only(self) -> bool:
        """Start of an update: whether it leaves the actor-critic alone (an extra update, or a paused one)."""
        self.extra_now = self.pending > 0
        if self.extra_now:
            self.pending -= 1
        return self.extra_now or self.gate.pauses_actor_critic()

    def observe(self, metrics: dict[str, float]) -> dict[str, float]:
        """End of an update: its surprise metrics and, with the gate on, `monitor/wm_focus`; a surprising
        update (not itself an extra one) in extra_wm mode asks for the extra updates."""
        out = self.surprise(metrics)
        if self.gate.threshold is not None:
            out[names.MONITOR_WM_FOCUS] = self.gate.observe(out)
            if not self.extra_now:
                self.pending = self.gate.extra_updates()
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"surprise": self.surprise.state_dict(), "gate": self.gate.state_dict(), "pending": self.pending}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.surprise.load_state_dict(state["surprise"])
        self.gate.load_state_dict(state["gate"])
        self.pending = int(state["pending"])
