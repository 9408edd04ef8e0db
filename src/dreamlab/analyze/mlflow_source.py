"""Read runs back from an MLflow store (`dreamlab compare mlflow:<tracking uri or mlruns folder>`).

Params become the flat config, `dreamlab.*` tags the run.json fields, metric histories the curves.
Wall time is seconds since the run's start, with a step going back (a resume) handled as in
metrics.jsonl. `mapping` renames another framework's metric keys to ours.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from dreamlab.analyze.runs import Curve, Run, RunSourceError, resolve_resumes

INFO_TAGS = ("hypothesis", "expect", "primary_metric", "threshold")


def _value(text: str) -> object:
    """MLflow stores params as strings; numbers come back as numbers so groups match run directories."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def load_mlflow(uri: str, metrics: Iterable[str], mapping: dict[str, str]) -> list[Run]:
    """Every run of every experiment in the store at `uri`."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise RunSourceError("reading mlflow: runs needs the mlflow extra: pip install 'dreamlab[mlflow]'") from None
    from dreamlab.track.mlflow_sink import store_uri

    client = MlflowClient(tracking_uri=store_uri(uri))
    theirs = {ours: tag for tag, ours in mapping.items()}
    try:
        experiments = [e.experiment_id for e in client.search_experiments()]
        found = client.search_runs(experiments, max_results=50_000) if experiments else []
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds for a bad store
        raise RunSourceError(f"mlflow:{uri}: {str(exc).splitlines()[0]}") from None
    runs = []
    for mlrun in found:
        start = mlrun.info.start_time / 1000.0
        curves = {}
        for metric in metrics:
            history = client.get_metric_history(mlrun.info.run_id, theirs.get(metric, metric))
            history = sorted(history, key=lambda m: m.timestamp)
            rows = resolve_resumes([(float(m.step), m.timestamp / 1000.0, float(m.value)) for m in history], [])
            data = np.asarray(rows, dtype=float).reshape(-1, 3)
            curves[metric] = Curve(data[:, 0], data[:, 1] - start, np.full(len(data), np.nan), data[:, 2])
        tags = mlrun.data.tags
        info = {k: _value(tags[f"dreamlab.{k}"]) for k in INFO_TAGS if f"dreamlab.{k}" in tags}
        info["expect"] = tags.get("dreamlab.expect", "")
        info["hypothesis"] = tags.get("dreamlab.hypothesis", "")
        config = {k: _value(v) for k, v in mlrun.data.params.items()}
        kind = "dreamlab" if any(tag.startswith("dreamlab.") for tag in tags) else "mlflow"
        names = sorted(mapping.get(key, key) for key in mlrun.data.metrics)
        runs.append(Run(name=mlrun.info.run_name or mlrun.info.run_id, source=f"mlflow:{uri}#{mlrun.info.run_id}",
                        config=config, info=info, curves=curves, end_state=tags.get("dreamlab.end_state"),
                        kind=kind, names=names))
    return runs
