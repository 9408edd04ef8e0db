"""MLflow sink against a real local store (no mocks), and `compare` reading the runs back."""

import json

import pytest

pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient  # noqa: E402

from dreamlab import train  # noqa: E402  (the API's train: curves.png included, as the command line's)
from dreamlab.analyze.command import compare  # noqa: E402
from dreamlab.analyze.summarize import Options  # noqa: E402


def test_mlflow_sink_and_compare_from_the_store(tiny, tmp_path):
    result = train([*tiny, "track.mlflow=true", "run.expect=eval/return_mean up"], quiet=True)
    store = tmp_path / "runs" / "mlruns"
    assert (store / "mlflow.db").is_file()  # the default: a sqlite store inside run.dir
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("dreamlab").experiment_id])
    assert run.info.run_name == result.run_dir.name and run.info.status == "FINISHED"
    assert run.data.params["agent.hidden"] == "[32, 32]" and run.data.params["seed"] == "0"
    assert run.data.tags["dreamlab.expect"] == "eval/return_mean up"
    git = json.loads((result.run_dir / "run.json").read_text())["git"]  # MLflow's source tags, from run.json
    assert run.data.tags["mlflow.source.type"] == "LOCAL" and run.data.tags["mlflow.source.name"]
    if git["commit"]:
        assert run.data.tags["mlflow.source.git.commit"] == git["commit"]
        assert run.data.tags["dreamlab.git.dirty"] == str(git["dirty"])
    history = client.get_metric_history(run.info.run_id, "eval/return_mean")
    evals = result.summary["evals"]
    assert [(m.step, m.value) for m in history] == [(s, v) for s, _, v in evals]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "run.json", "summary.json", "metrics.jsonl", "curves.png", "checkpoints"} <= artifacts

    _, from_dir = compare([str(result.run_dir)], Options(threshold=20.0), {})
    _, from_store = compare([f"mlflow:{store}"], Options(threshold=20.0), {})
    (a,), (b,) = from_dir.runs, from_store.runs
    for key in ("best", "best_step", "final", "threshold_step", "evals"):
        assert a[key] == b[key], key
    assert b["end_state"] == result.end_state


def test_explicit_uri(tiny, tmp_path):
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    train([*tiny, "track.mlflow=true", f"track.mlflow_uri={uri}", "run.steps=300"], quiet=True)
    assert not (tmp_path / "runs" / "mlruns").exists()
    client = MlflowClient(tracking_uri=uri)
    assert len(client.search_runs([client.get_experiment_by_name("dreamlab").experiment_id])) == 1
