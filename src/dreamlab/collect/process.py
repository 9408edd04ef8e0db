"""Collector processes on one machine (`collect.mode=process`).

Each of `collect.workers` spawned processes owns `collect.envs_per_worker` envs and a CPU copy of
the policy. Chunks of step records travel through one bounded queue per process (a queue that a
killed process may have left half-written is dropped with it), so a collector pauses when its
`collect.queue_chunks` chunks wait unread. Weights go the other way through shared memory
(SharedPolicy): one copy for all collectors, rewritten every `collect.sync_every` updates.

A collector that dies or falls silent for `collect.worker_timeout` seconds is replaced by a fresh
one with fresh episodes; the loop cuts the stored episodes of its streams as truncated. Collectors
die with the learner even when it is killed with SIGKILL (PR_SET_PDEATHSIG, and a parent check).
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from typing import Any

import torch
import torch.multiprocessing  # noqa: F401  (registers the reductions that pass shared tensors to children)

from dreamlab.collect.base import STARTUP, Chunk, CollectorCore, PolicyFactory, WorkerStats, policy_factory
from dreamlab.collect.restarts import RestartingCollector, RestartPolicy
from dreamlab.config.schema import Config

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; elsewhere a thread watches the parent."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: poll the parent instead
        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _flatten(state: dict[str, Any], prefix: str = "") -> dict[str, torch.Tensor]:
    flat = {}
    for key, value in state.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}/"))
        elif isinstance(value, torch.Tensor):
            flat[f"{prefix}{key}"] = value
        else:
            raise TypeError(f"policy_state_dict entry {prefix}{key} is a {type(value).__name__}, not a tensor")
    return flat


def _empty_dicts(state: dict[str, Any], prefix: str = "") -> list[str]:
    """Paths of empty sub-dicts (a module without parameters), which _flatten cannot carry."""
    found = []
    for key, value in state.items():
        if isinstance(value, dict):
            found += _empty_dicts(value, f"{prefix}{key}/") if value else [f"{prefix}{key}"]
    return found


def _unflatten(flat: dict[str, torch.Tensor], empty: list[str]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for path, value in [*flat.items(), *((p, {}) for p in empty)]:
        *parents, leaf = path.split("/")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


class SharedPolicy:
    """The learner's policy weights in shared memory with a version: a seqlock, so no lock is held
    that a killed collector could leave taken. The learner is the only writer."""

    def __init__(self, state: dict[str, Any], ctx: Any):
        self.tensors = {k: v.detach().to("cpu", copy=True).share_memory_() for k, v in _flatten(state).items()}
        self.empty = _empty_dicts(state)
        self.sequence = ctx.RawValue("q", 0)  # odd while the learner writes
        self.version = ctx.RawValue("q", -1)
        self.env_steps = ctx.RawValue("q", 0)

    def publish(self, state: dict[str, Any], version: int, env_steps: int) -> None:
        self.sequence.value += 1
        for key, value in _flatten(state).items():
            self.tensors[key].copy_(value.detach())
        self.version.value, self.env_steps.value = version, env_steps
        self.sequence.value += 1

    def read_if_newer(self, have: int) -> tuple[dict[str, Any], int, int] | None:
        """A consistent copy of the weights when their version differs from `have`, else None."""
        while True:
            before = self.sequence.value
            if before % 2 == 0 and self.version.value == have:
                return None
            if before % 2 == 1:
                time.sleep(0.0005)
                continue
            copy = {k: v.clone() for k, v in self.tensors.items()}
            version, env_steps = self.version.value, self.env_steps.value
            if self.sequence.value == before:
                return _unflatten(copy, self.empty), version, env_steps


def worker_main(cfg: Config, worker: int, incarnation: int, make_policy: PolicyFactory, shared: SharedPolicy,
                chunks: Any, stop: Any, heartbeat: Any, parent_pid: int) -> None:
    """Body of one collector process: refresh weights, make a chunk, put it (paused while the queue is full)."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the learner decides
    core = CollectorCore(cfg, worker, incarnation, make_policy)
    heartbeat.value = time.time()  # started: from now on silence counts
    try:
        while not stop.is_set():
            fresh = shared.read_if_newer(core.version)
            if fresh is not None:
                core.load_policy(*fresh)
            chunk = core.chunk(on_step=lambda: setattr(heartbeat, "value", time.time()))
            while not stop.is_set():
                try:
                    chunks.put(chunk, timeout=0.2)
                    break
                except queue.Full:  # backpressure: the learner is behind
                    heartbeat.value = time.time()
    finally:
        chunks.cancel_join_thread()  # on stop, do not wait to flush chunks nobody will read
        core.close()


class _Worker:
    """Learner-side handle of one collector process incarnation."""

    def __init__(self, index: int, incarnation: int, process: Any, chunks: Any, heartbeat: Any):
        self.index, self.incarnation = index, incarnation
        self.process, self.chunks, self.heartbeat = process, chunks, heartbeat
        self.expected_seq = 1
        self.spawned = time.time()

    @property
    def started(self) -> bool:
        return self.expected_seq > 1


class ProcessCollector(RestartingCollector):
    mode = "process"
    exact_resume = False  # env states live in the collector processes: a resume starts fresh episodes

    def __init__(self, cfg: Config, policy: Any):
        self.cfg = cfg
        self.ctx = mp.get_context("spawn")
        self.num_streams = cfg.collect.workers * cfg.collect.envs_per_worker
        self.make_policy = policy_factory(policy)
        self.shared = SharedPolicy(policy.policy_state_dict(), self.ctx)
        self.stop = self.ctx.Event()
        self.workers: list[_Worker] = []
        self.stats = WorkerStats(cfg.collect.workers)
        self.restart_policy = RestartPolicy(cfg.collect.workers, cfg.collect.max_restarts, self.stats,
                                            hint=" (see its error above)")
        self.published_at: int | None = None
        self.next_worker = 0
        self.last_check = 0.0
        self.pending_cuts: list[Chunk] = []

    def _spawn(self, index: int) -> _Worker:
        chunks = self.ctx.Queue(maxsize=self.cfg.collect.queue_chunks)
        heartbeat = self.ctx.RawValue("d", 0.0)  # 0 until the collector has built its envs and policy
        process = self.ctx.Process(
            target=worker_main, name=f"dreamlab-collector-{index}", daemon=True,
            args=(self.cfg, index, self.incarnations[index], self.make_policy, self.shared, chunks, self.stop,
                  heartbeat, os.getpid()))
        process.start()
        return _Worker(index, self.incarnations[index], process, chunks, heartbeat)

    def sync_policy(self, policy: Any, updates: int, env_steps: int) -> None:
        """Publish the weights when collect.sync_every updates passed since the last publication."""
        if self.published_at is None or updates - self.published_at >= self.cfg.collect.sync_every:
            self.shared.publish(policy.policy_state_dict(), updates, env_steps)
            self.published_at = updates

    def _restart(self, worker: _Worker, why: str) -> None:
        self.restart_policy.restart(worker.index, worker.started, why)  # raises when it gives up
        self._discard(worker)
        self.workers[worker.index] = self._spawn(worker.index)
        self.cut_streams(worker.index)

    def _discard(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)
        worker.chunks.cancel_join_thread()  # its unread chunks go with it: never half-read
        worker.chunks.close()

    def _check_workers(self) -> None:
        now = time.time()
        if now - self.last_check < 0.5:
            return
        self.last_check = now
        for worker in list(self.workers):
            if not worker.process.is_alive():
                self._restart(worker, f"exited with code {worker.process.exitcode}")
            elif worker.heartbeat.value == 0.0 and now - worker.spawned > self.cfg.collect.worker_timeout + STARTUP:
                self._restart(worker, f"did not start within {self.cfg.collect.worker_timeout + STARTUP:g} s")
            elif worker.heartbeat.value > 0.0 and now - worker.heartbeat.value > self.cfg.collect.worker_timeout:
                self._restart(worker, f"was silent for {self.cfg.collect.worker_timeout:g} s")

    def _get_one(self, learner_updates: int) -> Chunk | None:
        for offset in range(len(self.workers)):  # round robin: no collector starves
            worker = self.workers[(self.next_worker + offset) % len(self.workers)]
            try:
                chunk = worker.chunks.get_nowait()
            except queue.Empty:
                continue
            self.next_worker = (worker.index + 1) % len(self.workers)
            if chunk.seq != worker.expected_seq:
                raise RuntimeError(f"collector {worker.index}: chunk {chunk.seq} arrived, expected "
                                   f"{worker.expected_seq}")
            worker.expected_seq += 1
            self.stats.observe(chunk, learner_updates)
            return chunk
        return None

    def collect(self, policy: Any, wait: bool = False, learner_updates: int = 0) -> list[Chunk]:
        """At most one chunk (and any cuts from restarts); with `wait`, block up to 0.1 s for one."""
        if not self.workers:
            self.sync_policy(policy, learner_updates, 0)
            self.workers = [self._spawn(i) for i in range(self.cfg.collect.workers)]
        self._check_workers()
        deadline = time.perf_counter() + (0.1 if wait else 0.0)
        started = time.perf_counter()
        chunk = self._get_one(learner_updates)
        while chunk is None and time.perf_counter() < deadline:
            time.sleep(0.001)
            chunk = self._get_one(learner_updates)
        if wait:
            self.stats.wait_seconds += time.perf_counter() - started
        cuts, self.pending_cuts = self.pending_cuts, []
        return cuts + ([chunk] if chunk is not None else [])

    def queue_depth(self) -> int:
        depth = 0
        for worker in self.workers:
            try:
                depth += worker.chunks.qsize()
            except NotImplementedError:  # macOS
                pass
        return depth

    def metrics(self) -> dict[str, float]:
        return self.stats.metrics(self.queue_depth())

    def close(self) -> None:
        """Stop every collector within a few seconds: ask, then terminate, then kill."""
        self.stop.set()
        deadline = time.time() + 3.0
        for worker in self.workers:
            worker.process.join(timeout=max(deadline - time.time(), 0.05))
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(timeout=1.0)
            self._discard(worker)
        self.workers = []
