"""Collectors as Ray actors (`collect.mode=ray`, the `ray` extra); imported only in that mode.

The same CollectorCore as a collector process, inside an actor: on a local Ray instance by default,
or on a cluster at `collect.ray_address`. The learner pulls: each actor has at most
`collect.queue_chunks` chunk requests in flight, so an actor idles when the learner is behind.
Weights go out through Ray's object store (one `ray.put` per sync, read by every actor); an actor
method call queued behind the chunk requests, so an actor always acts with the newest weights it
has received. A dead or silent actor is replaced and its streams are cut, as in process mode.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

try:
    import ray
except ImportError:  # the optional extra: one line (exit 2) instead of a traceback
    from dreamlab.config.load import ConfigError

    raise ConfigError("collect.mode=ray needs the ray extra: pip install -e '.[ray]'") from None

from dreamlab.collect.base import STARTUP, Chunk, CollectorCore, PolicyFactory, WorkerStats, policy_factory
from dreamlab.collect.restarts import RestartingCollector, RestartPolicy
from dreamlab.config.schema import Config


class CollectorActor:
    """Ray actor body: one CollectorCore."""

    def __init__(self, cfg: Config, worker: int, incarnation: int, make_policy: PolicyFactory):
        self.core = CollectorCore(cfg, worker, incarnation, make_policy)

    def set_policy(self, state: dict[str, Any], version: int, env_steps: int) -> None:
        self.core.load_policy(state, version, env_steps)

    def chunk(self) -> Chunk:
        return self.core.chunk()


class _Actor:
    def __init__(self, index: int, incarnation: int, handle: Any):
        self.index, self.incarnation, self.handle = index, incarnation, handle
        self.in_flight: list[Any] = []  # chunk refs, oldest first
        self.expected_seq = 1
        self.last_seen = time.time()


class RayCollector(RestartingCollector):
    mode = "ray"
    exact_resume = False

    def __init__(self, cfg: Config, policy: Any):
        self.cfg = cfg
        self.make_policy = policy_factory(policy)
        self.num_streams = cfg.collect.workers * cfg.collect.envs_per_worker
        self.actors: list[_Actor] = []
        self.stats = WorkerStats(cfg.collect.workers)
        self.restart_policy = RestartPolicy(cfg.collect.workers, cfg.collect.max_restarts, self.stats,
                                            label="collector actor")
        self.published_at: int | None = None
        self.weights: tuple[Any, int, int] | None = None  # (object ref, version, env_steps)
        self.pending_cuts: list[Chunk] = []
        self.started_ray = False
        self.remote_class: Any = None

    def _ensure_ray(self) -> None:
        """Connect to collect.ray_address, or start a local instance (shut down again by close())."""
        if ray.is_initialized():
            return
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        address = self.cfg.collect.ray_address or None
        if not address:
            # Ray runs its workers at nice 15, so beside a busy learner (or any other busy process) on a
            # small machine the collectors starve: under two other busy processes on 2 cores an actor took
            # 76 s to construct. Collectors are the run's own work, so they run at the learner's priority.
            os.environ.setdefault("RAY_worker_niceness", "0")
        num_cpus = None if address else max(os.cpu_count() or 1, self.cfg.collect.workers)  # None: the cluster's
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
        self.started_ray = True

    def _start(self, policy: Any, learner_updates: int) -> None:
        self._ensure_ray()
        self.remote_class = ray.remote(num_cpus=1, max_restarts=0)(CollectorActor)
        self.sync_policy(policy, learner_updates, 0)
        self.actors = [self._spawn(i) for i in range(self.cfg.collect.workers)]

    def _spawn(self, index: int) -> _Actor:
        incarnation = self.incarnations[index]
        handle = self.remote_class.options(name=None).remote(self.cfg, index, incarnation, self.make_policy)
        actor = _Actor(index, incarnation, handle)
        if self.weights is not None:
            handle.set_policy.remote(*self.weights)
        self._top_up(actor)
        return actor

    def _top_up(self, actor: _Actor) -> None:
        while len(actor.in_flight) < self.cfg.collect.queue_chunks:
            actor.in_flight.append(actor.handle.chunk.remote())

    def sync_policy(self, policy: Any, updates: int, env_steps: int) -> None:
        if self.published_at is not None and updates - self.published_at < self.cfg.collect.sync_every:
            return
        self._ensure_ray()  # ray.put would otherwise start an instance that close() does not know of
        state = {k: {n: t.detach().cpu() for n, t in v.items()} if isinstance(v, dict) else v
                 for k, v in policy.policy_state_dict().items()}
        self.weights = (ray.put(state), updates, env_steps)
        self.published_at = updates
        for actor in self.actors:
            actor.handle.set_policy.remote(*self.weights)

    def _restart(self, actor: _Actor, why: str) -> None:
        self.restart_policy.restart(actor.index, actor.expected_seq > 1, why)  # raises when it gives up
        ray.kill(actor.handle, no_restart=True)
        self.actors[actor.index] = self._spawn(actor.index)
        self.cut_streams(actor.index)

    def _receive(self, actor: _Actor, ref: Any, learner_updates: int) -> Chunk | None:
        actor.in_flight.remove(ref)
        try:
            chunk = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
            cause = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            self._restart(actor, f"failed ({type(exc).__name__}: {cause})")
            return None
        if chunk.seq != actor.expected_seq:
            raise RuntimeError(f"collector actor {actor.index}: chunk {chunk.seq} arrived, expected "
                               f"{actor.expected_seq}")
        actor.expected_seq += 1
        actor.last_seen = time.time()
        self.stats.observe(chunk, learner_updates)
        self._top_up(actor)
        return chunk

    def collect(self, policy: Any, wait: bool = False, learner_updates: int = 0) -> list[Chunk]:
        """At most one chunk (and any cuts from restarts); with `wait`, block up to 0.1 s for one."""
        if not self.actors:
            self._start(policy, learner_updates)
        now = time.time()
        for actor in list(self.actors):
            allowed = self.cfg.collect.worker_timeout + (STARTUP if actor.expected_seq == 1 else 0.0)
            if now - actor.last_seen > allowed:
                done, _ = ray.wait(actor.in_flight[:1], timeout=0)
                if done:  # a learner busy elsewhere (evaluating) is not a silent actor
                    actor.last_seen = now
                else:
                    self._restart(actor, f"was silent for {allowed:g} s")
        owners = {ref: actor for actor in self.actors for ref in actor.in_flight[:1]}  # oldest: in order
        started = time.perf_counter()
        ready, _ = ray.wait(list(owners), num_returns=len(owners), timeout=0)
        if not ready and wait:
            ready, _ = ray.wait(list(owners), num_returns=1, timeout=0.1)
            self.stats.wait_seconds += time.perf_counter() - started
        # fairness: of the actors with a chunk ready, serve the one served least recently
        ref = min(ready, key=lambda r: owners[r].last_seen) if ready else None
        chunk = self._receive(owners[ref], ref, learner_updates) if ref is not None else None
        cuts, self.pending_cuts = self.pending_cuts, []
        return cuts + ([chunk] if chunk is not None else [])

    def metrics(self) -> dict[str, float]:
        ready = 0
        for actor in self.actors:
            done, _ = ray.wait(actor.in_flight, num_returns=len(actor.in_flight), timeout=0)
            ready += len(done)
        return self.stats.metrics(ready)

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor.handle, no_restart=True)
        self.actors = []
        if self.started_ray and ray.is_initialized():
            ray.shutdown()
            self.started_ray = False
