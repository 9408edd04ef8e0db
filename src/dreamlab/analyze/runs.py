"""Read runs into one in-memory form: dreamlab run directories and TensorBoard event directories here,
MLflow stores in analyze/mlflow_source.py (on the same `Run` and `Curve`); analyze/sources.py
`load_runs` picks the reader of each source.

A `Run` holds, per metric, a `Curve`: env steps, wall seconds and metric values as numpy arrays
in logging order, with rows superseded by a resume removed. Only the metrics asked for are read:
a metrics.jsonl line is parsed only when it names one of them, which keeps 100 runs of 10k rows
well under a second of parsing.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from dreamlab.track import names
from dreamlab.track.run_dir import flatten

EVENT_FILE_PREFIX = "events.out.tfevents."
MLFLOW_PREFIX = "mlflow:"
UPDATES = names.PERF_UPDATES  # cumulative updates on training rows, read for --x updates


class RunSourceError(ValueError):
    """A path or URI that holds no run, or a run file that cannot be read."""


@dataclasses.dataclass
class Curve:
    """One metric of one run. Arrays have equal length N, in logging order.

    Args:
        steps: float64 [N] env steps of each value.
        wall: float64 [N] training seconds when the value was logged (NaN where unknown).
        updates: float64 [N] gradient updates done by then (NaN where unknown).
        values: float64 [N] the metric (NaN for a non-finite logged value).
    """

    steps: np.ndarray
    wall: np.ndarray
    updates: np.ndarray
    values: np.ndarray

    def x(self, axis: str) -> np.ndarray:
        return {"env_steps": self.steps, "wall": self.wall, "updates": self.updates}[axis]

    def __len__(self) -> int:
        return len(self.values)


@dataclasses.dataclass
class Run:
    """A run from any source: its name, flat config, run.json-like info and metric curves."""

    name: str
    source: str
    config: dict[str, Any]
    info: dict[str, Any]
    curves: dict[str, Curve]
    end_state: str | None = None
    kind: str = "dreamlab"  # where the config comes from: dreamlab | tensorboard (none) | mlflow (foreign params)
    names: list[str] | None = None  # every metric name the source holds, where that is cheap to know

    @property
    def expect(self) -> str:
        return str(self.info.get("expect") or self.config.get("run.expect") or "")

    @property
    def hypothesis(self) -> str:
        return str(self.info.get("hypothesis") or self.config.get("run.hypothesis") or "")


def empty_curve() -> Curve:
    empty = np.zeros(0)
    return Curve(empty, empty, empty, empty)


# ---- dreamlab run directories -------------------------------------------------------------------


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path) as handle:
        return yaml.load(handle, Loader=loader) or {}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _parse_time(text: str) -> float | None:
    """Unix time of run.json's "%Y-%m-%dT%H:%M:%S%z" stamps."""
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except (TypeError, ValueError):
        return None


def _lines_naming(text: bytes, metric: str) -> list[bytes]:
    """The lines of `text` holding the key `metric` (find() jumps between them; no per-line Python work)."""
    needle, lines, position = f'"{metric}":'.encode(), [], 0
    while (hit := text.find(needle, position)) >= 0:
        start = text.rfind(b"\n", 0, hit) + 1
        end = text.find(b"\n", hit)
        end = len(text) if end < 0 else end
        lines.append(text[start:end])
        position = end
    return lines


def _rows_naming(text: bytes, metrics: Iterable[str]) -> dict[str, list[tuple[float, float, float]]]:
    """(step, time, value) of every parsable line that holds each metric, in file order."""
    found: dict[str, list[tuple[float, float, float]]] = {}
    for metric in metrics:
        rows = found[metric] = []
        for line in _lines_naming(text, metric):
            try:
                row = json.loads(line)
            except ValueError:  # a line cut short by a crash
                continue
            value = row.get(metric)
            rows.append((float(row["step"]), float(row.get("time", math.nan)),
                         math.nan if value is None else float(value)))
    return found


Row = tuple[float, float, float]  # (env_step, time, value)


def resolve_resumes(rows: list[Row], resume_times: list[float]) -> list[Row]:
    """Drop rows a resume superseded and remove the pause before each resume from the time column.

    A resume restarts from the last checkpoint, so rows logged after it by the first attempt are
    logged again. A segment starts where a row's time passes a resume's time, or where the step goes
    back; rows kept so far at or after the segment's first step are dropped.

    Args:
        rows: (env_step, unix_time, value) in file order.
        resume_times: unix times at which the run was resumed (from run.json).
    Returns:
        (env_step, seconds since the first row with pauses removed, value) rows.
    """
    kept: list[tuple[float, float, float]] = []
    pending = sorted(resume_times)
    offset = 0.0
    for step, stamp, value in rows:
        segment_start = stamp if kept and step < kept[-1][0] else None
        while pending and stamp >= pending[0]:
            resumed_at = pending.pop(0)  # always consumed: a resume before the first row must not stall here
            segment_start = resumed_at if kept else segment_start
        if segment_start is not None:
            kept = [r for r in kept if r[0] < step]
            last_wall = kept[-1][1] if kept else rows[0][1]
            offset = segment_start - last_wall
        kept.append((step, stamp - offset, value))
    return kept


def _wall_from_summary(summary: dict[str, Any] | None, last_step: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps, train seconds) from summary.json's evals, when they cover the curve."""
    if not summary or not summary.get("evals"):
        return None
    evals = np.asarray([[e[0], e[1]] for e in summary["evals"]], dtype=float)
    if evals[-1, 0] < last_step:  # a stale summary: the run went on (resumed) after it
        return None
    return np.concatenate([[0.0], evals[:, 0]]), np.concatenate([[0.0], evals[:, 1]])


def _last_rows(text: bytes, metrics: Iterable[str]) -> dict[str, list[Row]]:
    """The last finite (step, time, value) of each metric, searching from the end of the file."""
    found: dict[str, list[Row]] = {}
    for metric in metrics:
        found[metric] = []
        needle, end = f'"{metric}":'.encode(), len(text)
        while (hit := text.rfind(needle, 0, end)) >= 0:
            start, end = text.rfind(b"\n", 0, hit) + 1, text.find(b"\n", hit)
            end = len(text) if end < 0 else end
            try:
                row = json.loads(text[start:end])
            except ValueError:
                end = start
                continue
            if row.get(metric) is not None:
                found[metric] = [(float(row["step"]), float(row.get("time", math.nan)), float(row[metric]))]
                break
            end = start
    return found


def read_metrics_jsonl(path: Path, metrics: Iterable[str], resume_times: list[float] | None = None,
                       summary: dict[str, Any] | None = None, need_updates: bool = False,
                       last_only: Iterable[str] = ()) -> dict[str, Curve]:
    """Curves of `metrics` from a metrics.jsonl (a crashed run's cut last line is skipped).

    `last_only` metrics get a one-point curve, their last finite value, found by reading the file
    backwards (side metrics need no more, and a training metric is on every row).
    Wall time is the training seconds of summary.json's evaluations (evaluation excluded),
    interpolated in env steps, when the summary covers the run; otherwise seconds since the first
    row of the file, with pauses before resumes removed.
    """
    metrics = list(dict.fromkeys(metrics))
    with open(path, "rb") as handle:  # bytes: no decoding of the rows that are never parsed
        text = handle.read()
    first_time = math.nan
    for line in text[:4096].splitlines()[:5]:
        try:
            first_time = float(json.loads(line)["time"])
            break
        except (ValueError, KeyError, TypeError):
            continue
    wanted = [*metrics, UPDATES] if need_updates else metrics
    found = _rows_naming(text, wanted)
    resolved = {m: resolve_resumes(rows, list(resume_times or [])) for m, rows in found.items()}
    last_only = [m for m in dict.fromkeys(last_only) if m not in found]
    resolved.update(_last_rows(text, last_only))
    metrics += last_only
    updates = np.asarray(resolved.get(UPDATES, []), dtype=float).reshape(-1, 3)
    curves = {}
    for metric in metrics:
        rows = np.asarray(resolved[metric], dtype=float).reshape(-1, 3)
        steps, values = rows[:, 0], rows[:, 2]
        wall = rows[:, 1] - first_time
        mapping = _wall_from_summary(summary, steps[-1] if len(steps) else 0.0)
        if mapping is not None:
            wall = np.interp(steps, *mapping)
        upd = np.full(len(steps), np.nan)
        if len(updates):  # a fresh run has done 0 updates at step 0
            upd = np.interp(steps, np.r_[0.0, updates[:, 0]], np.r_[0.0, updates[:, 2]])
        curves[metric] = Curve(steps, wall, upd, values)
    return curves


def is_run_dir(path: Path) -> bool:
    return (path / "metrics.jsonl").is_file()


def load_run_dir(path: Path, metrics: Iterable[str], need_updates: bool = False, last_only: Iterable[str] = ()) -> Run:
    """A dreamlab run directory: config.yaml, run.json, summary.json (if it finished) and metrics.jsonl."""
    config = flatten(_read_yaml(path / "config.yaml")) if (path / "config.yaml").is_file() else {}
    info = _read_json(path / "run.json") or {}
    summary = _read_json(path / "summary.json")
    resume_times = [t for t in (_parse_time(r.get("time", "")) for r in info.get("resumes", [])) if t is not None]
    curves = read_metrics_jsonl(path / "metrics.jsonl", metrics, resume_times, summary, need_updates, last_only)
    end_state = summary.get("end_state") if summary else "no summary (crashed or running)"
    return Run(name=path.name, source=str(path), config=config, info=info, curves=curves, end_state=end_state)


# ---- TensorBoard ----------------------------------------------------------------------------------


def has_event_files(path: Path) -> bool:
    return any(p.name.startswith(EVENT_FILE_PREFIX) for p in path.iterdir() if p.is_file())


def load_tensorboard(path: Path, metrics: Iterable[str], mapping: dict[str, str]) -> Run:
    """An event directory of any framework (Stable-Baselines3, CleanRL, ...); `mapping` renames tags.

    Steps are the writer's global steps (env steps for SB3 and CleanRL); wall time is seconds since
    the first event of the directory.
    """
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    accumulator = EventAccumulator(str(path), size_guidance={SCALARS: 0})
    accumulator.Reload()
    tags = accumulator.Tags().get("scalars", [])
    renamed = {mapping.get(tag, tag): tag for tag in tags}
    events = {ours: accumulator.Scalars(tag) for ours, tag in renamed.items()}
    starts = [ev[0].wall_time for ev in events.values() if ev]
    first = min(starts) if starts else 0.0
    curves = {}
    for metric in metrics:
        scalars = events.get(metric, [])
        rows = resolve_resumes([(float(e.step), e.wall_time, float(e.value)) for e in scalars], [])
        data = np.asarray(rows, dtype=float).reshape(-1, 3)
        curves[metric] = Curve(data[:, 0], data[:, 1] - first, np.full(len(data), np.nan), data[:, 2])
    return Run(name=path.name, source=str(path), config={}, info={}, curves=curves, end_state=None,
               kind="tensorboard", names=sorted(renamed))


def logged_names(run: Run) -> list[str]:
    """Every metric name `run` logged, sorted (a run directory's metrics.jsonl is read for it: error paths only)."""
    if run.names is not None:
        return sorted(run.names)
    path = Path(run.source) / "metrics.jsonl"
    found: set[str] = set()
    try:
        with open(path, "rb") as handle:
            for line in handle:
                try:
                    found.update(json.loads(line))
                except ValueError:
                    continue
    except OSError:
        return []
    return sorted(found - {"step", "time"})


# ---- discovery --------------------------------------------------------------------------------------


def find_runs(path: Path) -> list[Path]:
    """Run directories at or under `path`: dreamlab runs first, else TensorBoard event directories."""
    if not path.exists():
        raise RunSourceError(f"{path}: no such file or directory")
    if not path.is_dir():
        raise RunSourceError(f"{path}: not a directory")
    if is_run_dir(path) or has_event_files(path):
        return [path]
    found = []
    for root, dirs, _files in os.walk(path):
        dirs.sort()
        here = Path(root)
        if here != path and (is_run_dir(here) or has_event_files(here)):
            found.append(here)
            dirs[:] = []  # a run's own subfolders (checkpoints/) are not runs
        else:
            dirs[:] = [d for d in dirs if d not in ("mlruns", "checkpoints", "ray")]
    return found
