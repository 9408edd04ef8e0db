"""Where `dreamlab compare` reads runs from: paths (run directories, TensorBoard event directories
found under them) and MLflow stores (`mlflow:<tracking uri>`), each read by its own module.

It sits above both readers (analyze/runs.py, analyze/mlflow_source.py), so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from dreamlab.analyze.mlflow_source import load_mlflow
from dreamlab.analyze.runs import (
    MLFLOW_PREFIX,
    Run,
    RunSourceError,
    find_runs,
    is_run_dir,
    load_run_dir,
    load_tensorboard,
)


def load_runs(sources: list[str], metrics: Iterable[str], mapping: dict[str, str] | None = None,
              need_updates: bool = False, last_only: Iterable[str] = ()) -> list[Run]:
    """Every run under `sources` (paths, or `mlflow:<tracking uri>`), each once, in the order given.

    `metrics` are read as whole curves; `last_only` metrics (side metrics) as their last value where
    the source allows it cheaply.
    """
    metrics, last_only = list(dict.fromkeys(metrics)), [m for m in dict.fromkeys(last_only) if m not in metrics]
    runs: list[Run] = []
    seen: set[str] = set()
    for source in sources:
        if source.startswith(MLFLOW_PREFIX):
            runs.extend(load_mlflow(source[len(MLFLOW_PREFIX):], [*metrics, *last_only], mapping or {}))
            continue
        paths = find_runs(Path(source))
        if not paths:
            raise RunSourceError(f"{source}: holds no run (no metrics.jsonl or TensorBoard event files)")
        for path in paths:
            key = str(path.resolve())
            if key in seen:
                continue
            seen.add(key)
            try:
                if is_run_dir(path):
                    runs.append(load_run_dir(path, metrics, need_updates, last_only))
                else:
                    runs.append(load_tensorboard(path, [*metrics, *last_only], mapping or {}))
            except OSError as exc:
                raise RunSourceError(f"{path}: {exc.strerror or exc}") from None
    return runs
