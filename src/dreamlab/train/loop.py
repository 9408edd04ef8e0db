"""The training loop in one readable function: collect -> add -> update -> evaluate -> save."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from dreamlab.collect.base import tell_env_steps
from dreamlab.collect.interface import Chunk
from dreamlab.collect.records import validate
from dreamlab.track import names

if TYPE_CHECKING:
    from dreamlab.train.session import Session


class NonFiniteError(RuntimeError):
    """Several updates in a row produced a non-finite loss or gradient."""


def train_loop(s: Session) -> str:
    """Run until run.steps env steps, the stop rule, or a stop signal. Returns the end state."""
    cfg, counters = s.cfg, s.counters
    batch, length = s.agent.batch_size, s.agent.batch_length
    end_state = "completed"
    s.collector.sync_policy(s.agent, counters.updates, counters.env_steps)  # parallel modes: the first weights
    while counters.env_steps < cfg.run.steps:
        if s.stop_signal is not None:
            end_state = "interrupted"
            break
        started = time.perf_counter()
        # backpressure: past the slack of updates owed, no new data is taken and the collectors pause;
        # with nothing owed, the learner waits for data (sync mode: one step of every env, slack 0)
        if counters.updates_owed <= s.update_slack():
            for chunk in s.collector.collect(s.agent, wait=counters.updates_owed == 0,
                                             learner_updates=counters.updates):
                _ingest(s, chunk)
        _pay_updates(s, batch, length, s.update_slack())
        s.collector.sync_policy(s.agent, counters.updates, counters.env_steps)
        counters.train_seconds += time.perf_counter() - started
        if counters.updates // cfg.track.every > s.out.throughput.last_updates // cfg.track.every:
            # a row per track.every updates, written between steps so that it holds whole steps: their
            # env steps and their seconds (a row written amid a step's updates got its env steps, and the
            # next row its remaining seconds and no steps: a rate of 0, often the run's last row)
            s.write_training_scalars()

        if s.eval_clock(counters.env_steps):
            if _evaluate(s):
                end_state = "stopped_by_rule"
                break
        if s.checkpoint_clock(counters.env_steps):
            s.save_latest()
        s.out.display.update(counters)

    if end_state == "completed" and counters.updates_owed > 0:  # parallel modes: the train ratio is met exactly
        started = time.perf_counter()
        _pay_updates(s, batch, length, 0)
        counters.train_seconds += time.perf_counter() - started
    if end_state != "interrupted" and counters.last_eval_step != counters.env_steps:
        _evaluate(s)  # the final state of every run is evaluated
    s.write_training_scalars()
    return end_state


def _ingest(s: Session, chunk: Chunk) -> None:
    """Step records [T, E, ...] of a chunk into their replay streams; count steps and updates earned."""
    c = s.counters
    if chunk.records is None:  # the streams' collector restarted: their stored episodes end truncated
        if len(s.replay):
            s.replay.mark_last(truncated=True, streams=chunk.streams)
        return
    validate({k: v[0] for k, v in chunk.records.items()}, len(chunk.streams))
    for t in range(len(chunk.records["reward"])):
        s.replay.add({k: v[t] for k, v in chunk.records.items()}, streams=chunk.streams)
    new_steps = chunk.stepped * s.cfg.env.action_repeat  # env steps; the schedule earns per agent step
    c.env_steps += new_steps
    c.episodes += len(chunk.finished)
    s.out.throughput.episode_stats.extend(chunk.finished)
    c.updates_owed += s.schedule.due(c.env_steps, new_steps)
    if s.parallel:  # the learner does not act: its env-step schedules (lr, epsilon) follow the total
        tell_env_steps(s.agent, c.env_steps)


def _pay_updates(s: Session, batch: int, length: int, slack: int) -> None:
    """Run owed updates down to `slack` (at least one when any is owed); owed updates lapse while the
    replay holds no full window, as in sync mode."""
    c = s.counters
    for _ in range(max(c.updates_owed - slack, min(c.updates_owed, 1))):
        if not s.replay.can_sample(length):
            c.updates_owed = 0
            break
        _update(s, batch, length)
        c.updates_owed -= 1
        for _ in range(s.agent.extra_updates()):  # asked for by the agent (agents/base.py), outside the schedule
            _update(s, batch, length)


def _update(s: Session, batch: int, length: int) -> None:
    """One gradient update on a fresh replay batch, with its monitors and scalar logging."""
    started = time.perf_counter()
    metrics = s.agent.update(s.replay.sample(batch, length, stack=s.agent.frame_stack))
    s.counters.update_seconds += time.perf_counter() - started
    s.out.profile_step()
    _check_finite(s, metrics)
    s.collapse_alarm.observe_training(metrics)
    s.out.throughput.accumulator.add(metrics)
    s.counters.updates += 1
    if s.cfg.track.media_every and s.counters.updates % s.cfg.track.media_every == 0:
        s.out.write_media(s.counters.env_steps)


def _check_finite(s: Session, metrics: dict[str, float]) -> None:
    if metrics.get(names.PERF_NONFINITE_UPDATES, 0.0) == 0.0:
        s.counters.nonfinite_in_row = 0
        return
    s.counters.nonfinite_in_row += 1
    s.counters.nonfinite_total += 1
    if s.counters.nonfinite_in_row >= s.cfg.train.max_nonfinite:
        raise NonFiniteError(
            f"{s.counters.nonfinite_in_row} updates in a row had a non-finite loss or gradient at env step "
            f"{s.counters.env_steps}; stopped")


def _evaluate(s: Session) -> bool:
    """Evaluate, log, keep the best checkpoint; True when the stop rule fires."""
    c, run = s.counters, s.cfg.run
    started = time.perf_counter()
    s.evaluator.record = int(s.out.video_due(len(c.evals)))  # track.video_every: the first episode of env 0
    metrics, _ = s.evaluator.run(s.agent, s.cfg.eval.episodes)
    s.out.write_eval_video(c.env_steps)
    c.eval_seconds += time.perf_counter() - started
    c.last_eval_step = c.env_steps
    metrics[names.ENV_STEPS] = float(c.env_steps)
    value = metrics.get(run.primary_metric, math.nan)
    metrics[names.MONITOR_COLLAPSE_ALARM] = s.collapse_alarm.on_eval(value)
    s.out.sinks.write(c.env_steps, metrics)
    c.evals.append([c.env_steps, round(c.train_seconds, 3), value])
    if c.best_eval is None or value > c.best_eval:
        c.best_eval, c.best_step = value, c.env_steps
        if s.cfg.checkpoint.best:
            s.save_best()
    if run.threshold is not None and c.threshold_step is None and value >= run.threshold:
        c.threshold_step, c.threshold_seconds = c.env_steps, c.train_seconds
    s.out.display.set_eval(value)
    return run.stop_when is not None and value >= run.stop_when
