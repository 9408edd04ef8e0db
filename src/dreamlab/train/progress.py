"""Progress display: a rich bar on a terminal, nothing in quiet mode or without a TTY."""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    def __init__(self, total_steps: int, quiet: bool, start_steps: int = 0):
        self.enabled = not quiet and sys.stderr.isatty()
        self.last_eval = float("nan")
        self.started = time.perf_counter()
        self.start_steps = start_steps
        self.last_refresh = 0.0
        if not self.enabled:
            return
        from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(
            TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed:,.0f}/{task.total:,.0f} env steps"),
            TextColumn("{task.fields[rates]}"), TextColumn("eval {task.fields[eval]}"), TimeRemainingColumn(),
            transient=False)
        self.task = self.bar.add_task("train", total=total_steps, completed=start_steps, rates="", eval="-")
        self.bar.start()

    def set_eval(self, value: float) -> None:
        self.last_eval = value

    def update(self, counters: Any) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last_refresh < 0.25:
            return
        self.last_refresh = now
        elapsed = max(now - self.started, 1e-9)
        steps_per_s = (counters.env_steps - self.start_steps) / elapsed
        rates = f"{steps_per_s:,.0f} steps/s {counters.updates / elapsed:,.1f} upd/s"
        self.bar.update(self.task, completed=counters.env_steps, rates=rates, eval=f"{self.last_eval:.1f}")

    def close(self) -> None:
        if self.enabled:
            self.bar.stop()


def print_summary(summary: dict[str, Any], quiet: bool) -> None:
    """The end-of-run table: best eval and its step, steps and seconds to threshold, end state."""
    rows = [
        ("run", summary["run_dir"]),
        ("end state", summary["end_state"]),
        ("env steps / updates", f"{summary['env_steps']:,} / {summary['updates']:,}"),
        ("best eval (step)", f"{summary['best_eval']} ({summary['best_step']})"),
        ("final eval", summary["final_eval"]),
        ("threshold", summary["threshold"]),
        ("steps / train s to threshold", f"{summary['threshold_step']} / {summary['threshold_seconds']}"),
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
