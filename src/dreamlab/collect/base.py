"""What every collector hands the loop, and the stepping code shared by collector processes and Ray actors.

The loop sees one interface (SyncCollector, ProcessCollector and RayCollector all implement it):

- `collect(policy, wait, learner_updates) -> list[Chunk]`: new step records; parallel collectors
  return at most one data chunk per call and, with `wait`, block briefly (0.1 s) until one arrives;
- `sync_policy(policy, updates, env_steps)`: publish the learner's weights (every collect.sync_every updates);
- `metrics() -> dict[str, float]`, `state_dict()` / `load_state_dict()`, `close()`;
- `num_streams` (replay streams fed) and `exact_resume` (env states restored from checkpoints).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from dreamlab.config.schema import Config
from dreamlab.envs.make import env_seed, make_env
from dreamlab.track import names

RESEED = 7919  # seed offset of each collector restart: a restarted env never replays old episodes
FAILED_STARTS = 3  # a collector that dies before its first chunk this many times in a row stops the run
STARTUP = 60.0  # seconds a collector may take to start (imports, envs, policy) on top of collect.worker_timeout


@dataclasses.dataclass
class Chunk:
    """Step records of `streams` for T consecutive steps, or (records None) a cut of those streams.

    records: step-record keys -> [T, E, ...]; a cut means the collector of these streams restarted,
    so the replay must end their newest stored episode as truncated.
    """

    streams: np.ndarray  # [E] replay streams, one per env
    records: dict[str, np.ndarray] | None
    stepped: int = 0  # env.step calls behind these records (resets excluded)
    finished: list = dataclasses.field(default_factory=list)  # (return, length) of episodes ended here
    worker: int = 0
    seq: int = 0  # chunk number within one incarnation of the worker, from 1
    policy_version: int = 0  # learner updates when the acting weights were published
    env_errors: int = 0  # env.step exceptions since the worker's previous chunk
    seconds: float = 0.0  # wall time the worker spent producing the chunk


def tell_env_steps(agent: Any, env_steps: int) -> None:
    """Agents whose schedules follow env steps (epsilon, random warmup, lr) get the global count."""
    if hasattr(agent, "env_steps"):
        agent.env_steps = int(env_steps)


def make_env_at(cfg: Config, index: int) -> gym.Env:
    """make_env for env `index` (a remote env picks its server by index)."""
    return make_env(cfg.env, index)


def spaces(cfg: Config) -> tuple[gym.Space, gym.Space]:
    """Observation and action space of the configured env, from a probe env closed right away."""
    env = make_env_at(cfg, 0)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def worker_streams(cfg: Config, worker: int) -> np.ndarray:
    per = cfg.collect.envs_per_worker
    return np.arange(worker * per, (worker + 1) * per)


class CollectorCore:
    """One collector's envs and CPU policy copy; produces chunks (runs in a process or a Ray actor)."""

    def __init__(self, cfg: Config, worker: int, incarnation: int):
        from dreamlab.agents import make_agent
        from dreamlab.collect.sync import SyncCollector

        torch.set_num_threads(1)
        self.cfg, self.worker, self.incarnation = cfg, worker, incarnation
        self.streams = worker_streams(cfg, worker)
        envs = [make_env_at(cfg, int(i)) for i in self.streams]
        seeds = [env_seed(cfg.seed, int(i)) + RESEED * incarnation for i in self.streams]
        self.collector = SyncCollector(envs, seeds, catch_env_errors=True)
        # each collector explores with its own random stream
        policy_cfg = dataclasses.replace(cfg, seed=cfg.seed + 1009 * (worker + 1) + RESEED * incarnation)
        self.policy = make_agent(policy_cfg, envs[0].observation_space, envs[0].action_space, torch.device("cpu"))
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
        rows, finished = [], []
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

    def state_dict(self) -> dict[str, Any]:
        return {"exact": False, "mode": self.mode, "incarnations": list(self.incarnations),
                "restarts": self.stats.restarts}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = list(state.get("incarnations", []))
        self.incarnations = [(saved[i] if i < len(saved) else 0) + 1 for i in range(self.cfg.collect.workers)]
        self.stats.restarts = int(state.get("restarts", 0))
