"""Pure clocks of the loop: how many updates are due, and when to evaluate or save."""

from __future__ import annotations

from typing import Any


class UpdateSchedule:
    """train_ratio = replayed steps per agent step (the policy's steps: env steps / action_repeat).

    Each update replays `replayed_per_update` steps (batch x learned steps per window), so every
    agent step earns train_ratio / replayed_per_update updates; fractions carry over as credit. As
    in the official DreamerV3, the action repeat does not multiply the updates: env steps (what
    `due` is given, like `learning_starts`) are agent steps x `action_repeat`. Nothing is earned
    before `learning_starts` env steps: the first agent step that earns is the one that brings the
    env steps to `learning_starts` or past it.
    """

    def __init__(self, train_ratio: float, replayed_per_update: int, learning_starts: int = 0,
                 action_repeat: int = 1):
        self.rate = train_ratio / replayed_per_update
        self.learning_starts = learning_starts
        self.action_repeat = action_repeat
        self.first_agent_step = -(-learning_starts // action_repeat)  # ceil: agent steps before learning starts
        self.credit = 0.0

    def due(self, env_steps: int, new_steps: int) -> int:
        """Updates to run now, after `new_steps` env steps brought the total to `env_steps`."""
        agent_steps, new_agent_steps = env_steps // self.action_repeat, new_steps // self.action_repeat
        if agent_steps < self.first_agent_step:
            return 0
        earning = min(new_agent_steps, agent_steps - self.first_agent_step + 1)
        self.credit += earning * self.rate
        count = int(self.credit)
        self.credit -= count
        return count

    def state_dict(self) -> dict[str, Any]:
        return {"credit": self.credit}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.credit = float(state["credit"])


class Every:
    """True once each time the step counter passes a multiple of `period`."""

    def __init__(self, period: int, next_at: int | None = None):
        self.period = period
        self.next_at = period if next_at is None else next_at

    def __call__(self, step: int) -> bool:
        if step < self.next_at:
            return False
        self.next_at = (step // self.period + 1) * self.period
        return True


class RolloutSchedule:
    """One update per complete rollout, for agents that learn from rollouts (replay/rollout.py): due
    once when the rollout storage becomes ready; train.train_ratio and learning_starts do not apply."""

    def __init__(self, rollouts: Any):
        self.rollouts = rollouts

    def due(self, env_steps: int, new_steps: int) -> int:
        return int(self.rollouts.ready())

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore: readiness is the storage's own (saved with the replay)."""
