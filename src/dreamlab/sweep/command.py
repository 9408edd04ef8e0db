"""`dreamlab sweep`: plan the trials, skip the finished ones, run the rest, record sweep.json, print compare."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from dreamlab.sweep.grid import SweepError, Trial, default_name, trials

__all__ = ["SweepError", "sweep", "plan"]


def sweep_parent(overrides: list[str]) -> Path:
    """run.dir of the sweep (the last fixed `run.dir=` override, else `runs`)."""
    parent = "runs"
    for text in overrides:
        if text.startswith("run.dir="):
            parent = text.split("=", 1)[1]
    return Path(parent)


def plan(overrides: list[str], name: str | None, parallel: int) -> tuple[Path, list[Trial], list[str]]:
    """The sweep directory, every trial and the swept keys; nothing is written yet."""
    if parallel < 1:
        raise SweepError(f"--parallel {parallel}: expected a value >= 1")
    for text in overrides:
        if text.startswith(("run.dir=", "run.name=", "run.resume=")) and "," in text.split("=", 1)[1]:
            raise SweepError(f"{text}: run.dir, run.name and run.resume cannot be swept")
    rest = [o for o in overrides if not o.startswith("run.dir=")]
    found, keys = trials(rest)
    if parallel > 1 and not any(o.startswith("threads=") for o in rest):
        threads = max(1, (os.cpu_count() or 1) // parallel)
        found = [Trial(t.id, (f"threads={threads}", *t.overrides)) for t in found]
    sweep_dir = sweep_parent(overrides) / (name or default_name(overrides))
    return sweep_dir, found, keys


def load_records(sweep_dir: Path, overrides: list[str]) -> dict[str, dict[str, Any]]:
    """Records of an earlier run of the same sweep (none for a new sweep)."""
    path = sweep_dir / "sweep.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise SweepError(f"{path}: not valid JSON ({exc})") from None
    if data.get("overrides") != overrides:
        raise SweepError(f"{sweep_dir} holds another sweep ({' '.join(data.get('overrides', []))}); "
                         "give --name for a new one")
    return {r["id"]: r for r in data.get("trials", [])}


class SweepFile:
    """sweep.json, rewritten atomically as each trial ends (trials may end on several threads)."""

    def __init__(self, sweep_dir: Path, overrides: list[str], keys: list[str], records: dict[str, dict[str, Any]]):
        self.path = sweep_dir / "sweep.json"
        self.data: dict[str, Any] = {"overrides": overrides, "swept": keys,
                                     "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "trials": records}
        self.lock = threading.Lock()

    def update(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.data["trials"][record["id"]] = record
            state = "ok" if record["status"] == "completed" else f"FAILED: {record.get('error', '')}"
            print(f"trial {record['id']} {' '.join(record['overrides'])}: {state}", flush=True)
            self.write()

    def write(self) -> None:
        data = {**self.data, "trials": sorted(self.data["trials"].values(), key=lambda r: r["id"])}
        tmp = self.path.with_name(".sweep.json.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.path)


def sweep(overrides: list[str], parallel: int = 1, backend: str = "local", address: str | None = None,
          name: str | None = None) -> int:
    """Run every unfinished trial, then print the compare table grouped by the swept keys (seed aside).

    Returns 0 when every trial completed, 1 when any failed.
    """
    sweep_dir, planned, keys = plan(overrides, name, parallel)
    records = load_records(sweep_dir, overrides)
    todo = [t for t in planned if records.get(t.id, {}).get("status") != "completed"
            or records[t.id].get("overrides") != list(t.overrides)]
    skipped = len(planned) - len(todo)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    file = SweepFile(sweep_dir, overrides, keys, {t.id: records[t.id] for t in planned if t.id in records})
    for trial in todo:
        file.data["trials"][trial.id] = {"id": trial.id, "overrides": list(trial.overrides), "status": "pending"}
    file.write()
    print(f"sweep {sweep_dir}: {len(planned)} trials, {skipped} already finished, {len(todo)} to run", flush=True)
    if todo:
        if backend == "ray":
            from dreamlab.sweep.backends import run_ray

            run_ray(todo, sweep_dir, parallel, file.update, address)
        else:
            from dreamlab.sweep.backends import run_local

            run_local(todo, sweep_dir, parallel, file.update)
    return report(sweep_dir, file, keys)


def report(sweep_dir: Path, file: SweepFile, keys: list[str]) -> int:
    from dreamlab.analyze.command import compare, recorded_primary_metric
    from dreamlab.analyze.summarize import CompareError, Options

    records = sorted(file.data["trials"].values(), key=lambda r: r["id"])
    finished = [r["run_dir"] for r in records if r["status"] == "completed" and r.get("run_dir")]
    failed = [r for r in records if r["status"] != "completed"]
    if finished:
        group_by = [k for k in keys if k != "seed"]
        try:
            text, _ = compare(finished, Options(metric=recorded_primary_metric(finished), group_by=group_by), {})
            print(text, end="")
        except CompareError as exc:
            print(f"dreamlab: compare: {exc}")
    for record in failed:
        print(f"failed trial {record['id']} ({' '.join(record['overrides'])}): {record.get('error', '')}")
    print(f"{len(finished)}/{len(records)} trials completed; sweep.json in {sweep_dir}")
    return 1 if failed else 0
