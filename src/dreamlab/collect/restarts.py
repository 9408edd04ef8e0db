"""The restart policy of collectors that run elsewhere (collect.mode=process and collect.mode=ray).

When a collector dies (exits, fails or falls silent), it is replaced by a new incarnation of the
same worker: same env streams, incarnation number one higher, so its envs and its policy copy are
reseeded (CollectorCore adds RESEED per incarnation) and no episode seed is reused. Every restart
counts against `collect.max_restarts` over the whole run; a worker that dies before delivering its
first chunk FAILED_STARTS times in a row stops the run (a broken env or config, not bad luck).

The bookkeeping lives here, once, for both modes; a mode only kills the old worker and spawns the
new one. The restart count is WorkerStats.restarts: it is the `collect/worker_restarts` metric and
is saved in checkpoints with the incarnations (RestartingCollectorState).
"""

from __future__ import annotations

import sys

from dreamlab.collect.base import FAILED_STARTS, Chunk, RestartingCollectorState, WorkerStats, worker_streams
from dreamlab.config.schema import Config


class RestartPolicy:
    """Per worker: incarnation numbers and failed starts in a row; over all workers: restarts.

    label: how messages name a worker ("collector" -> "collector 3"); hint: added to the message of
    a worker that never started (process mode points at the worker's traceback printed above).
    """

    def __init__(self, workers: int, max_restarts: int, stats: WorkerStats, label: str = "collector",
                 hint: str = "", failed_starts: int = FAILED_STARTS):
        self.max_restarts = max_restarts
        self.stats = stats
        self.label, self.hint = label, hint
        self.failed_starts_limit = failed_starts
        self.incarnations = [0] * workers  # restarts (and resumes) so far, per worker
        self.failed_starts = [0] * workers  # deaths before a first chunk, in a row, per worker

    @property
    def restarts(self) -> int:
        return self.stats.restarts

    def restart(self, worker: int, started: bool, why: str) -> int:
        """Worker `worker` died (`why`, e.g. "exited with code 1"); `started`: it had delivered a chunk.

        Raises RuntimeError when collect.max_restarts restarts are used up or the worker died before
        its first chunk FAILED_STARTS times in a row; otherwise counts the restart, prints one line
        and returns the incarnation the replacement starts as.
        """
        name = f"{self.label} {worker}"
        total = self.stats.restarts + 1
        if total > self.max_restarts:
            raise RuntimeError(f"{name} {why}; collect.max_restarts={self.max_restarts} restarts used up")
        self.failed_starts[worker] = 0 if started else self.failed_starts[worker] + 1
        if self.failed_starts[worker] >= self.failed_starts_limit:
            raise RuntimeError(f"{name} {why} before its first chunk, {self.failed_starts_limit} times in a row"
                               f"{self.hint}")
        print(f"dreamlab: {name} {why}; restarting it (restart {total})", file=sys.stderr)
        self.stats.restarts = total
        self.incarnations[worker] += 1
        return self.incarnations[worker]


class RestartingCollector(RestartingCollectorState):
    """Base of the process and Ray collectors: their checkpoint state (collect/base.py) over their
    RestartPolicy `self.restart_policy`, whose incarnations the state saves and a resume sets, and
    the cut of a replaced worker's streams. Subclasses set `cfg`, `stats`, `restart_policy` and
    `pending_cuts` (returned by their next `collect`)."""

    cfg: Config
    restart_policy: RestartPolicy
    pending_cuts: list[Chunk]

    def cut_streams(self, worker: int) -> None:
        """The replacement of `worker` starts fresh episodes: the loop ends the stored episodes of its
        streams as truncated (a cut: a Chunk without records)."""
        self.pending_cuts.append(Chunk(worker_streams(self.cfg, worker), None, worker=worker))

    @property
    def incarnations(self) -> list[int]:
        return self.restart_policy.incarnations

    @incarnations.setter
    def incarnations(self, value: list[int]) -> None:
        self.restart_policy.incarnations = list(value)
