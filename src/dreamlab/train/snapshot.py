"""A run's checkpoints: packing its state into checkpoints/latest.pt and unpacking it again, and
best.pt. latest.pt holds nine sections: the format, the agent (nets, optimizers, counters,
RNG), the replay manifest (the arrays live in checkpoints/replay/ as chunk files), the collector (env
states mid-episode where they can be captured), the loop counters, the update schedule, the eval and
checkpoint clocks, the monitors, and the global RNGs. `pack` and `unpack` turn the parts into those
sections and back; `Checkpoints` writes and reads the files, keeping the replay chunks in step."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dreamlab.agents.base import Agent
from dreamlab.collect.interface import Collector
from dreamlab.replay import persist
from dreamlab.replay.buffer import ReplayBuffer
from dreamlab.track.monitors import CollapseAlarm
from dreamlab.track.run_dir import StorageError
from dreamlab.train import checkpoint
from dreamlab.train.counters import Counters
from dreamlab.train.schedule import Every, RolloutSchedule, UpdateSchedule


@dataclasses.dataclass
class Parts:
    """The stateful parts of a session that latest.pt holds (the counters apart: a restore replaces them)."""

    agent: Agent
    replay: ReplayBuffer
    collector: Collector
    schedule: UpdateSchedule | RolloutSchedule
    eval_clock: Every
    checkpoint_clock: Every
    collapse_alarm: CollapseAlarm


def pack(parts: Parts, counters: Counters, replay_manifest: dict[str, Any] | None) -> dict[str, Any]:
    """The sections of latest.pt; `replay_manifest` is None when replay.save is off."""
    return {
        "format": checkpoint.FORMAT,
        "agent": parts.agent.state_dict(),
        "replay": replay_manifest,
        "collector": parts.collector.state_dict(),
        "counters": dataclasses.asdict(counters),
        "schedule": parts.schedule.state_dict(),
        "clocks": {"eval": parts.eval_clock.next_at, "checkpoint": parts.checkpoint_clock.next_at},
        "monitors": {"collapse": parts.collapse_alarm.state_dict()},
        "rng": checkpoint.rng_state(),
    }


def unpack(parts: Parts, payload: dict[str, Any], load_replay: Callable[[dict[str, Any]], None]) -> Counters:
    """Restore every part from the sections of latest.pt, in place, and return the counters.
    `load_replay(manifest)` fills the replay from its chunk files (when the checkpoint names them);
    errors of a checkpoint that does not fit the parts (KeyError, ValueError, RuntimeError) pass through."""
    parts.agent.load_state_dict(payload["agent"])
    if payload["replay"] is not None:
        load_replay(payload["replay"])
    parts.collector.load_state_dict(payload["collector"])
    if not (payload["collector"]["exact"] and parts.collector.exact_resume) and len(parts.replay):
        parts.replay.mark_last(truncated=True)  # episodes restart: cut the stored ones
    counters = Counters(**payload["counters"])
    parts.schedule.load_state_dict(payload["schedule"])
    parts.eval_clock.next_at = payload["clocks"]["eval"]
    parts.checkpoint_clock.next_at = payload["clocks"]["checkpoint"]
    # older checkpoints also hold "surprise" and "surprise_gate" here: DreamerV3's, now in its agent state
    parts.collapse_alarm.load_state_dict(payload["monitors"]["collapse"])
    checkpoint.set_rng_state(payload["rng"])
    return counters


class Checkpoints:
    """checkpoints/ of one run: latest.pt with the replay chunks its manifest names, and best.pt."""

    def __init__(self, parts: Parts, save_replay: bool):
        self.parts = parts
        self.save_replay = save_replay  # replay.save
        self.replay_manifest: dict[str, Any] | None = None
        self.restored_step: int | None = None  # env step of the checkpoint this session resumed from
        self.saved_step: int | None = None  # env step of the checkpoint on disk (latest.pt)

    def save_latest(self, folder: Path, counters: Counters) -> None:
        """Write folder/latest.pt and the replay chunks it names. When the disk refuses (StorageError),
        the previous checkpoint stays whole and the chunks written for the new one are deleted."""
        replay_dir = folder / "replay"
        kept_manifest = self.replay_manifest
        try:
            self._save_latest(folder, replay_dir, counters)
        except StorageError:
            if self.save_replay:
                persist.prune(replay_dir, kept_manifest or {"files": {}})
            self.replay_manifest = kept_manifest
            raise
        self.saved_step = counters.env_steps
        if self.replay_manifest is not None:
            persist.prune(replay_dir, self.replay_manifest)

    def _save_latest(self, folder: Path, replay_dir: Path, counters: Counters) -> None:
        if self.save_replay:
            self.replay_manifest = persist.save(self.parts.replay, replay_dir, self.replay_manifest,
                                                version=counters.env_steps)
        checkpoint.save(folder / "latest.pt", pack(self.parts, counters,
                                                   self.replay_manifest if self.save_replay else None))

    def save_best(self, folder: Path, counters: Counters) -> None:
        """folder/best.pt: the policy of the best evaluation so far."""
        payload = {"format": checkpoint.FORMAT, "policy": self.parts.agent.policy_state_dict(),
                   "env_steps": counters.env_steps, "eval": counters.best_eval}
        checkpoint.save(folder / "best.pt", payload)

    def restore(self, folder: Path) -> Counters:
        """Load folder/latest.pt: every part continues where it stopped; returns the counters."""
        path = folder / "latest.pt"
        payload = checkpoint.load(path)

        def load_replay(manifest: dict[str, Any]) -> None:
            try:
                persist.load(self.parts.replay, folder / "replay", manifest)
            except persist.ReplayFileError as exc:
                raise checkpoint.CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
            self.replay_manifest = manifest

        try:
            counters = unpack(self.parts, payload, load_replay)
        except checkpoint.CheckpointError:
            raise  # already says what is wrong with which file
        except (KeyError, ValueError, RuntimeError) as exc:
            raise checkpoint.CheckpointError(f"checkpoint does not fit this run: {str(exc).splitlines()[0]}") from None
        self.restored_step = self.saved_step = counters.env_steps
        return counters

    def kept(self) -> str:
        """What a failed run leaves to resume from, for its one-line error."""
        if self.saved_step is None:
            return "no checkpoint was written yet"
        return f"checkpoints/latest.pt of env step {self.saved_step} is kept"
