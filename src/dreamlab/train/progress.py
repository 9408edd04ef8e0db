"""Progress display: a rich bar on a terminal, plain lines without one, nothing in quiet mode.

Whatever the mode, `announce_run_dir` prints the run directory once when the run starts.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

MIN_ETA_SECONDS = 2.0  # learning must have run this long before its pace predicts the rest
BAR_REFRESH_S = 0.25


def eta_seconds(steps: int, total: int, anchor: tuple[int, float] | None, now: float,
                min_seconds: float = MIN_ETA_SECONDS) -> float | None:
    """Seconds left until `total` env steps, or None while the pace is unknown.

    The pace is measured from `anchor` = (env steps, time) of the first progress update once
    learning had started (env steps >= learning_starts), so the fast random-acting steps before
    the first update do not count: extrapolating from them promised 0:00:01 with 13 s left. It
    includes evaluation time, as the remaining steps will. None before the anchor, until
    `min_seconds` have passed since it, or while no step has been taken since it.
    """
    if steps >= total:
        return 0.0
    if anchor is None:
        return None
    anchor_steps, anchor_time = anchor
    elapsed = now - anchor_time
    if elapsed < min_seconds or steps <= anchor_steps:
        return None
    return (total - steps) * elapsed / (steps - anchor_steps)


def format_duration(seconds: float | None) -> str:
    """H:MM:SS, or '?' for an unknown duration."""
    if seconds is None:
        return "?"
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def announce_run_dir(run_dir: Any) -> None:
    """The one line every run prints when it starts (quiet or not, terminal or not), on stderr."""
    print(f"dreamlab: run directory {run_dir}", file=sys.stderr, flush=True)


class Progress:
    """Training progress on stderr.

    - stderr is a terminal: a rich bar (env steps of total, rates, last evaluation, ETA);
    - stderr is not a terminal (a pipe, a file, a job log): one plain line every `print_every_s`
      seconds with the same fields;
    - quiet: nothing.

    Rates are per second of wall clock since this process started the run (a resumed run counts
    only its own steps and updates).
    """

    def __init__(self, total_steps: int, quiet: bool, start_steps: int = 0, start_updates: int = 0,
                 learning_starts: int = 0, print_every_s: float = 30.0):
        terminal = sys.stderr.isatty()
        self.bar_enabled = not quiet and terminal
        self.lines_enabled = not quiet and not terminal
        self.total = total_steps
        self.last_eval = float("nan")
        self.started = time.perf_counter()
        self.start_steps, self.start_updates = start_steps, start_updates
        self.learning_starts = learning_starts
        self.print_every_s = print_every_s
        self.anchor: tuple[int, float] | None = None
        self.last_refresh = 0.0
        self.last_line = self.started
        if self.bar_enabled:
            self._start_bar(start_steps)

    @property
    def enabled(self) -> bool:
        return self.bar_enabled or self.lines_enabled

    def _start_bar(self, start_steps: int) -> None:
        from rich.progress import BarColumn, TextColumn
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(
            TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed:,.0f}/{task.total:,.0f} env steps"),
            TextColumn("{task.fields[rates]}"), TextColumn("eval {task.fields[eval]}"),
            TextColumn("ETA {task.fields[eta]}"), transient=False)
        self.task = self.bar.add_task("train", total=self.total, completed=start_steps, rates="", eval="-", eta="?")
        self.bar.start()

    def set_eval(self, value: float) -> None:
        self.last_eval = value

    def fields(self, counters: Any, now: float) -> dict[str, str]:
        """The displayed fields: steps, rates (env steps/s, updates/s), eval, ETA."""
        elapsed = max(now - self.started, 1e-9)
        steps_per_s = (counters.env_steps - self.start_steps) / elapsed
        updates_per_s = (counters.updates - self.start_updates) / elapsed
        eta = eta_seconds(counters.env_steps, self.total, self.anchor, now)
        return {"steps": f"{counters.env_steps:,}/{self.total:,} env steps",
                "rates": f"{steps_per_s:,.0f} steps/s {updates_per_s:,.1f} upd/s",
                "eval": "-" if math.isnan(self.last_eval) else f"{self.last_eval:.1f}", "eta": format_duration(eta)}

    def update(self, counters: Any) -> None:
        """Called once per loop iteration; cheap when nothing is due."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.anchor is None and counters.env_steps >= self.learning_starts:
            self.anchor = (counters.env_steps, now)
        if self.bar_enabled and now - self.last_refresh >= BAR_REFRESH_S:
            self.last_refresh = now
            fields = self.fields(counters, now)
            self.bar.update(self.task, completed=counters.env_steps, rates=fields["rates"], eval=fields["eval"],
                            eta=fields["eta"])
        if self.lines_enabled and now - self.last_line >= self.print_every_s:
            self.last_line = now
            print(self.line(counters, now), file=sys.stderr, flush=True)

    def line(self, counters: Any, now: float) -> str:
        """One plain progress line, e.g.
        `train 1,200/50,000 env steps | 410 steps/s 12.3 upd/s | eval 21.5 | ETA 0:01:59`."""
        f = self.fields(counters, now)
        return f"train {f['steps']} | {f['rates']} | eval {f['eval']} | ETA {f['eta']}"

    def close(self) -> None:
        if self.bar_enabled:
            self.bar.stop()


def progress_for(cfg: Any, counters: Any, quiet: bool) -> Progress:
    """The display of a run from its config (run.steps, train.learning_starts, track.print_every_s)
    and its counters (a resumed run starts from them)."""
    return Progress(cfg.run.steps, quiet, start_steps=counters.env_steps, start_updates=counters.updates,
                    learning_starts=cfg.train.learning_starts, print_every_s=cfg.track.print_every_s)


def threshold_text(summary: dict[str, Any]) -> str:
    """`steps / train s` to the threshold, 'not reached', or 'no threshold'."""
    if summary.get("threshold") is None:
        return "no threshold"
    if summary.get("threshold_step") is None:
        return "not reached"
    return f"{summary['threshold_step']:,} / {summary['threshold_seconds']:.1f}"


def print_summary(summary: dict[str, Any], quiet: bool) -> None:
    """The end-of-run table: best eval and its step, steps and seconds to threshold, end state."""
    rows = [
        ("run", summary["run_dir"]),
        ("end state", summary["end_state"]),
        ("env steps / updates", f"{summary['env_steps']:,} / {summary['updates']:,}"),
        ("best eval (step)", f"{summary['best_eval']} ({summary['best_step']})"),
        ("final eval", summary["final_eval"]),
        ("threshold", "none" if summary["threshold"] is None else summary["threshold"]),
        ("steps / train s to threshold", threshold_text(summary)),
        ("train s / eval s", f"{summary['train_seconds']:.1f} / {summary['eval_seconds']:.1f}"),
    ]
    if quiet or not sys.stdout.isatty():
        for key, value in rows:
            print(f"{key}: {value}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dreamlab run summary", show_header=False)
    for key, value in rows:
        table.add_row(key, str(value))
    Console().print(table)
