"""`dreamlab train`: config -> session -> loop -> checkpoint and summary, with resume and signals."""

from __future__ import annotations

import dataclasses
import importlib.util
import signal
import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from dreamlab.config.load import ConfigError, load
from dreamlab.track.run_dir import new_run_dir, record_resume, write_run_files
from dreamlab.train.checkpoint import CheckpointError
from dreamlab.train.loop import NonFiniteError, train_loop
from dreamlab.train.progress import announce_run_dir, print_summary
from dreamlab.train.session import Session


@dataclasses.dataclass
class RunResult:
    """What a finished `train` call returns.

    run_dir: the run directory (load its policy with `dreamlab.load(run_dir)`).
    summary: summary.json's content (end_state, env_steps, updates, best_eval, best_step,
        final_eval, threshold, threshold_step, threshold_seconds, train/eval seconds, evals as
        [env_steps, train_seconds, value] rows), plus `stop_signal` (None, or the signal that
        stopped the run).
    """

    run_dir: Path
    summary: dict[str, Any]

    @property
    def end_state(self) -> str:
        """completed, stopped_by_rule or interrupted."""
        return self.summary["end_state"]


def _resume_dir(overrides: list[str]) -> tuple[Path | None, list[str]]:
    """Split `run.resume=<dir>` from the other overrides."""
    rest, resume = [], None
    for text in overrides:
        if text.startswith("run.resume="):
            resume = Path(text.split("=", 1)[1])
        else:
            rest.append(text)
    return (resume if resume and str(resume) else None), rest


def _resolve(overrides: list[str]) -> tuple[Any, Any, Path | None, list[str]]:
    resume, rest = _resume_dir(overrides)
    if resume is None:
        cfg_dict, cfg = load(rest)
        return cfg_dict, cfg, None, rest
    if not (resume / "config.yaml").exists():
        raise ConfigError(f"run.resume={resume}: not a run directory (no config.yaml)")
    if not (resume / "checkpoints" / "latest.pt").exists():
        raise ConfigError(f"run.resume={resume}: no checkpoint to resume from (checkpoints/latest.pt)")
    base = OmegaConf.load(resume / "config.yaml")
    cfg_dict, cfg = load(rest, base=base)
    return cfg_dict, cfg, resume, rest


def write_curves(run_dir: Path, cfg: Any) -> None:
    """curves.png of the primary metric; a plotting failure is reported and never fails the run."""
    try:
        from dreamlab.analyze.plot import plot_run_dir

        plot_run_dir(run_dir, cfg.run.primary_metric, cfg.run.threshold)
    except Exception as exc:  # noqa: BLE001 - a figure is not worth a failed run
        print(f"dreamlab: warning: {run_dir / 'curves.png'} not written: {exc}", file=sys.stderr)


def train(overrides: list[str], quiet: bool = False) -> RunResult:
    """Validate everything, then create (or reopen) the run directory and train.

    overrides: what `dreamlab train` takes, e.g. ["agent=iqn", "env=cartpole", "run.steps=20000"]
        (`run.resume=<run dir>` continues a run). quiet: no progress display (the run directory
        line and the summary still print). Raises ConfigError (a bad config, before any run
        directory exists), CheckpointError, NonFiniteError or ValueError, each with a one-line message.
    """
    cfg_dict, cfg, resume, rest = _resolve(overrides)
    if cfg.track.mlflow and importlib.util.find_spec("mlflow") is None:
        raise ConfigError("track.mlflow=true needs the mlflow extra: pip install 'dreamlab[mlflow]'")
    session = Session(cfg)  # builds envs and agent: fails before any run directory exists
    if resume is not None:
        session.run_dir = resume
        session.restore()
        record_resume(resume, rest, cfg_dict)
        run_dir = resume
    else:
        run_dir = new_run_dir(cfg.run.dir, cfg.agent.name, cfg.env.id, cfg.run.name)
        write_run_files(run_dir, cfg_dict, cfg.seed, cfg.run)
    announce_run_dir(run_dir)
    session.attach(run_dir, quiet)
    if cfg.track.mlflow:
        from dreamlab.track.mlflow_sink import MlflowSink

        session.tracker.add(MlflowSink(run_dir, cfg.track.mlflow_uri, cfg.run.dir))

    previous = {}

    def request_stop(signum: int, _frame: Any) -> None:
        session.stop_signal = signum
        signal.signal(signum, previous.get(signum, signal.SIG_DFL))  # a second signal is not polite

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, request_stop)
        except ValueError:  # not the main thread: no signal handling
            pass
    try:
        end_state = train_loop(session)
        session.save_latest()
        summary = session.write_summary(end_state)
        write_curves(run_dir, cfg)  # before the sinks close, so an MLflow sink uploads it too
    except NonFiniteError:
        session.write_summary("failed_nonfinite")
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        session.close()
    print_summary(summary, quiet)
    summary["stop_signal"] = session.stop_signal
    return RunResult(run_dir, summary)


__all__ = ["RunResult", "train", "ConfigError", "CheckpointError"]
