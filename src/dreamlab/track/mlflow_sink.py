"""MLflow sink (`track.mlflow=true`, the `mlflow` extra): params, metrics and the run directory's files.

The store is `track.mlflow_uri`, or by default a sqlite store inside the runs folder
(`<run.dir>/mlruns/mlflow.db`, artifacts in `<run.dir>/mlruns/artifacts/`): MLflow 3 refuses its
plain file store unless told otherwise, and its default would write `mlflow.db` into the working
directory. A resumed run continues the MLflow run tagged with its run directory.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

EXPERIMENT = "dreamlab"
RUN_DIR_TAG = "dreamlab.run_dir"
ARTIFACTS = ("config.yaml", "run.json", "summary.json", "metrics.jsonl", "curves.png", "profile.txt")
BATCH = 1000  # MLflow's log_batch limit on metrics per call


def default_uri(runs_parent: str | Path) -> str:
    return f"sqlite:///{(Path(runs_parent) / 'mlruns' / 'mlflow.db').resolve()}"


def store_uri(text: str) -> str:
    """A tracking URI, or a folder holding mlflow.db (as `compare mlflow:runs/mlruns` may name it)."""
    path = Path(text)
    if "://" not in text and (path / "mlflow.db").is_file():
        return f"sqlite:///{(path / 'mlflow.db').resolve()}"
    return text


def flat_params(run_dir: Path) -> dict[str, str]:
    import yaml

    from dreamlab.track.run_dir import flatten

    config = yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").exists() else {}
    return {key: str(value)[:6000] for key, value in flatten(config or {}).items()}


def source_tags(git: dict[str, Any]) -> dict[str, str]:
    """MLflow's own source tags (the UI shows them beside each run) from run.json's git state."""
    tags = {"mlflow.source.type": "LOCAL", "mlflow.source.name": git.get("root") or "dreamlab"}
    if git.get("commit"):
        tags["mlflow.source.git.commit"] = git["commit"]
        tags["dreamlab.git.dirty"] = str(git.get("dirty"))
    if git.get("branch"):
        tags["mlflow.source.git.branch"] = git["branch"]
    return tags


class MlflowSink:
    """Buffers metrics and sends them with log_batch; on close uploads the run directory's small files."""

    def __init__(self, run_dir: Path, uri: str = "", runs_parent: str | Path = "runs"):
        from mlflow.tracking import MlflowClient

        self.run_dir = run_dir
        self.uri = store_uri(uri) if uri else default_uri(runs_parent)
        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.run_id = self._open_run()
        self.pending: list[Any] = []

    def _experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if self.uri.startswith("sqlite:///"):
            location = (Path(self.uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
        return self.client.create_experiment(EXPERIMENT, artifact_location=location)

    def _open_run(self) -> str:
        from mlflow.entities import Param

        experiment_id = self._experiment_id()
        run_dir = str(self.run_dir.resolve())
        found = self.client.search_runs([experiment_id], filter_string=f"tags.`{RUN_DIR_TAG}` = '{run_dir}'")
        if found:  # a resume: continue the same MLflow run
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        info = json.loads((self.run_dir / "run.json").read_text()) if (self.run_dir / "run.json").exists() else {}
        tags = {RUN_DIR_TAG: run_dir, **{f"dreamlab.{k}": str(info[k]) for k in
                                        ("hypothesis", "expect", "primary_metric", "threshold") if k in info},
                **source_tags(info.get("git") or {})}
        run = self.client.create_run(experiment_id, run_name=self.run_dir.name, tags=tags)
        params = [Param(k, v) for k, v in flat_params(self.run_dir).items()]
        for start in range(0, len(params), 100):
            self.client.log_batch(run.info.run_id, params=params[start:start + 100])
        return run.info.run_id

    def write(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self.pending += [Metric(k, v, stamp, step) for k, v in metrics.items() if v == v and abs(v) != float("inf")]
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        while self.pending:
            self.client.log_batch(self.run_id, metrics=self.pending[:BATCH])
            self.pending = self.pending[BATCH:]

    def close(self) -> None:
        self.flush()
        for name in ARTIFACTS:
            if (self.run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(self.run_dir / name))
        best = self.run_dir / "checkpoints" / "best.pt"
        if best.is_file():
            self.client.log_artifact(self.run_id, str(best), artifact_path="checkpoints")
        summary = self.run_dir / "summary.json"
        end_state = json.loads(summary.read_text()).get("end_state") if summary.is_file() else None
        if end_state:
            self.client.set_tag(self.run_id, "dreamlab.end_state", end_state)
        self.client.set_terminated(self.run_id, status="FINISHED" if end_state else "FAILED")
