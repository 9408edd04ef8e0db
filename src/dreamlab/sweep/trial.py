"""Run one trial: `dreamlab train` in a subprocess, so a crash or a bad value fails that trial only."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DONE_STATES = ("completed", "stopped_by_rule")


def trial_dirs(sweep_dir: Path, trial_id: str) -> set[Path]:
    """Run directories named after this trial (`..._t003`, or `..._t003-1` when the name was taken)."""
    return {p for p in sweep_dir.glob(f"*_{trial_id}*") if p.is_dir() and
            (p.name.endswith(f"_{trial_id}") or f"_{trial_id}-" in p.name)}


def last_error(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("dreamlab: error:")]
    return (errors or lines or ["no output"])[-1][:500]


def run_trial(trial_id: str, overrides: list[str], sweep_dir: Path) -> dict[str, Any]:
    """Train one trial into `sweep_dir`; returns its sweep.json record (status completed or failed)."""
    logs = sweep_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    before = trial_dirs(sweep_dir, trial_id)
    args = [*overrides, f"run.dir={sweep_dir}", f"run.name={trial_id}"]
    started = time.time()
    with open(logs / f"{trial_id}.log", "w") as log:
        process = subprocess.run([sys.executable, "-m", "dreamlab.cli", "train", "--quiet", *args],
                                 stdout=log, stderr=subprocess.PIPE, text=True, check=False)
        log.write(process.stderr)
    created = sorted(trial_dirs(sweep_dir, trial_id) - before, key=lambda p: p.stat().st_mtime)
    run_dir = created[-1] if created else None
    record: dict[str, Any] = {"id": trial_id, "overrides": list(overrides),
                              "run_dir": str(run_dir) if run_dir else None,
                              "seconds": round(time.time() - started, 1), "exit_code": process.returncode}
    end_state = _end_state(run_dir)
    if process.returncode == 0 and end_state in DONE_STATES:
        record.update(status="completed", end_state=end_state)
    else:
        record.update(status="failed", end_state=end_state, error=last_error(process.stderr))
    return record


def _end_state(run_dir: Path | None) -> str | None:
    if run_dir is None:
        return None
    try:
        return json.loads((run_dir / "summary.json").read_text()).get("end_state")
    except (OSError, ValueError):
        return None
