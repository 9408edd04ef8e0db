"""Where trials run: local subprocesses (a thread pool of `parallel`), or Ray Tune trials on a Ray instance."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dreamlab.sweep.grid import Trial
from dreamlab.sweep.trial import run_trial

Record = dict[str, Any]


def run_local(trials: list[Trial], sweep_dir: Path, parallel: int, done: Callable[[Record], None]) -> None:
    """Each trial a `dreamlab train` subprocess, `parallel` at a time; `done` sees each record as it ends."""
    def one(trial: Trial) -> None:
        done(run_trial(trial.id, list(trial.overrides), sweep_dir))

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for future in [pool.submit(one, trial) for trial in trials]:
            future.result()


def dreamlab_trial(config: dict[str, Any]) -> None:
    """The Tune trainable: one `dreamlab train` subprocess, reported once at its end."""
    from ray import tune

    trial = config["trial"]
    record = run_trial(trial["id"], trial["overrides"], Path(trial["sweep_dir"]))
    tune.report({"record": record, "completed": record["status"] == "completed"})


def run_ray(trials: list[Trial], sweep_dir: Path, parallel: int, done: Callable[[Record], None],
            address: str | None = None) -> None:
    """Ray Tune trials (a grid search over the trial list) on a local Ray instance or the cluster at `address`.

    Each Tune trial runs the same `dreamlab train` subprocess as the local backend, on whichever Ray
    node Tune places it; on a cluster, `run.dir` must be a filesystem every node shares.
    """
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray import tune

    started_here = not ray.is_initialized()
    if started_here:
        # Ray's socket paths must stay short: its temp folder goes under /tmp, not the sweep directory
        temp = None if address else tempfile.mkdtemp(prefix="dlray")
        ray.init(address=address, include_dashboard=False, log_to_driver=False, _temp_dir=temp,
                 configure_logging=False)
    try:
        space = {"trial": tune.grid_search([{"id": t.id, "overrides": list(t.overrides), "sweep_dir": str(sweep_dir)}
                                            for t in trials])}
        tuner = tune.Tuner(
            dreamlab_trial,
            param_space=space,
            tune_config=tune.TuneConfig(max_concurrent_trials=parallel),
            run_config=tune.RunConfig(storage_path=str((sweep_dir / "ray").resolve()), name="tune", verbose=0),
        )
        results = tuner.fit()
        for index in range(len(results)):  # a ResultGrid is indexed, not iterable (to the type checker)
            result = results[index]
            record = (result.metrics or {}).get("record")
            if record is None:  # the trainable itself failed (a lost node, a Ray error)
                trial = result.config["trial"] if result.config else {"id": "?", "overrides": []}
                record = {"id": trial["id"], "overrides": trial["overrides"], "status": "failed",
                          "run_dir": None, "error": str(result.error)[:500]}
            done(record)
    finally:
        if started_here:
            ray.shutdown()
