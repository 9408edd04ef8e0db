"""The stepping code shared by collector processes and Ray actors, and their learner-side bookkeeping.

The loop sees one interface, collect/interface.Collector (SyncCollector, ProcessCollector and
RayCollector all implement it); Actor, Chunk and PolicyFactory are defined there too and imported
from here by the parallel collectors.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch

from dreamlab.collect.interface import Actor, Chunk, PolicyFactory
from dreamlab.collect.records import dict_space
from dreamlab.collect.sync import SyncCollector
from dreamlab.config.schema import Config
from dreamlab.envs.make import env_seed, make_env
from dreamlab.track import names

RESEED = 7919  # seed offset of each collector restart: a restarted env never replays old episodes
FAILED_STARTS = 3  # a collector that dies before its first chunk this many times in a row stops the run
STARTUP = 60.0  # seconds a collector may take to start (imports, envs, policy) on top of collect.worker_timeout


def tell_env_steps(agent: Actor, env_steps: int) -> None:
    """Schedules that follow env steps (epsilon, random warmup, lr) get the global count (parallel modes)."""
    agent.env_steps = int(env_steps)


def policy_factory(policy: Actor) -> PolicyFactory:
    """How a collector builds its own copy of the learner's `policy`: the agent's class, which the agent
    contract builds as `cls(config, obs_space, action_space, device)` (agents/base.py); picklable by
    reference, so it travels to collector processes and Ray actors with their other arguments."""
    return cast(PolicyFactory, type(policy))


def make_env_at(cfg: Config, index: int) -> gym.Env:
    """make_env for env `index` (a remote env picks its server by index)."""
    return make_env(cfg.env, index)


def spaces(cfg: Config) -> tuple[gym.spaces.Dict, gym.Space]:
    """Observation and action space of the configured env, from a probe env closed right away."""
    env = make_env_at(cfg, 0)
    try:
        return dict_space(env.observation_space), env.action_space
    finally:
        env.close()


def worker_streams(cfg: Config, worker: int) -> np.ndarray:
    per = cfg.collect.envs_per_worker
    return np.arange(worker * per, (worker + 1) * per)


class CollectorCore:
    """One collector's envs and CPU policy copy; produces chunks (runs in a process or a Ray actor)."""

    def __init__(self, cfg: Config, worker: int, incarnation: int, make_policy: PolicyFactory):
        """make_policy: builds the policy copy (policy_factory of the learner's agent)."""
        torch.set_num_threads(1)
        self.cfg, self.worker, self.incarnation = cfg, worker, incarnation
        self.streams = worker_streams(cfg, worker)
        envs = [make_env_at(cfg, int(i)) for i in self.streams]
        seeds = [env_seed(cfg.seed, int(i)) + RESEED * incarnation for i in self.streams]
        self.collector = SyncCollector(envs, seeds, catch_env_errors=True)
        # each collector explores with its own random stream
        policy_cfg = dataclasses.replace(cfg, seed=cfg.seed + 1009 * (worker + 1) + RESEED * incarnation)
        self.policy = make_policy(policy_cfg, dict_space(envs[0].observation_space), envs[0].action_space,
                                  torch.device("cpu"))
        self.version = -1
        self.seq = 0
        self.errors_reported = 0

    def load_policy(self, state: dict[str, Any], version: int, env_steps: int) -> None:
        self.policy.load_policy_state_dict(state)
        self.version = version
        tell_env_steps(self.policy, env_steps)

    def chunk(self, on_step: Callable[[], None] | None = None) -> Chunk:
        """Step every env `collect.chunk_steps` times with the current policy copy (calling `on_step` after each)."""
        started = time.perf_counter()
        rows: list[dict[str, np.ndarray]] = []
        finished: list[tuple[float, int]] = []
        for _ in range(self.cfg.collect.chunk_steps):
            records, _, done = self.collector.step(self.policy, explore=True)
            rows.append(records)
            finished.extend(done)
            if on_step is not None:
                on_step()
        # steps are counted as the records they produced (all but is_first), so the learner's env/steps
        # equals the non-first records in the replay; a step whose result died with its worker never counts
        stepped = int(sum(np.count_nonzero(~r["is_first"]) for r in rows))
        self.seq += 1
        errors = self.collector.env_errors - self.errors_reported
        self.errors_reported = self.collector.env_errors
        stacked = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
        return Chunk(self.streams, stacked, stepped, finished, self.worker, self.seq, self.version, errors,
                     time.perf_counter() - started)

    def close(self) -> None:
        self.collector.close()


class WorkerStats:
    """Learner-side counters of parallel collectors, turned into metrics at each scalar write."""

    def __init__(self, workers: int):
        self.steps = np.zeros(workers, np.int64)  # env steps delivered since the last write
        self.since = time.perf_counter()
        self.lags: list[int] = []
        self.restarts = 0
        self.env_errors = 0
        self.wait_seconds = 0.0  # learner time blocked waiting for data since the last write

    def observe(self, chunk: Chunk, learner_updates: int) -> None:
        self.steps[chunk.worker] += chunk.stepped
        self.lags.append(max(learner_updates - chunk.policy_version, 0))
        self.env_errors += chunk.env_errors

    def metrics(self, queue_depth: int) -> dict[str, float]:
        now = time.perf_counter()
        elapsed = max(now - self.since, 1e-9)
        metrics = {names.worker_steps_per_s(i): float(n) / elapsed for i, n in enumerate(self.steps)}
        metrics[names.COLLECT_QUEUE_DEPTH] = float(queue_depth)
        metrics[names.COLLECT_WORKER_RESTARTS] = float(self.restarts)
        metrics[names.COLLECT_ENV_ERRORS] = float(self.env_errors)
        metrics[names.COLLECT_LEARNER_WAIT_FRACTION] = self.wait_seconds / elapsed
        if self.lags:
            metrics[names.COLLECT_POLICY_LAG] = float(np.mean(self.lags))
            metrics[names.COLLECT_POLICY_LAG_MAX] = float(np.max(self.lags))
        self.steps[:] = 0
        self.lags.clear()
        self.since, self.wait_seconds = now, 0.0
        return metrics


class RestartingCollectorState:
    """Checkpoint state of collectors whose workers restart (process and Ray modes).

    Envs live in other processes, so a resume is never exact; every worker resumes as a new
    incarnation, so no episode seed is reused. Subclasses set `mode`, `cfg`, `incarnations`, `stats`.
    """

    mode = ""
    cfg: Config
    incarnations: list[int]
    stats: WorkerStats

    def state_dict(self) -> dict[str, Any]:
        return {"exact": False, "mode": self.mode, "incarnations": list(self.incarnations),
                "restarts": self.stats.restarts}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = list(state.get("incarnations", []))
        self.incarnations = [(saved[i] if i < len(saved) else 0) + 1 for i in range(self.cfg.collect.workers)]
        self.stats.restarts = int(state.get("restarts", 0))
