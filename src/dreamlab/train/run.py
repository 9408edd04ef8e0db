"""`dreamlab train`: config -> session -> loop -> checkpoint and summary, with resume and signals."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dreamlab.config.load import ConfigError, load
from dreamlab.track.run_dir import StorageError, new_run_dir, record_resume, write_run_files
from dreamlab.train.checkpoint import CheckpointError
from dreamlab.train.loop import NonFiniteError, train_loop
from dreamlab.train.progress import announce_run_dir, print_summary
from dreamlab.train.session import Session

Finish = Callable[[Path, Any], None]  # finish(run_dir, cfg): a last step of a run that ended, before its sinks close
SignalHandler = Callable[[int, FrameType | None], Any] | int | None  # what signal.signal takes and returns


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
        """completed, stopped_by_rule or interrupted (a run that fails raises instead; its summary.json
        says failed_nonfinite or failed_io)."""
        return self.summary["end_state"]


@dataclasses.dataclass
class Plan:
    """The resolved config of a new or resumed run."""

    cfg_dict: Any
    cfg: Any
    overrides: list[str]  # without run.resume
    resume: Path | None = None
    steps_before: int | None = None  # a resumed run's run.steps in its config.yaml


def _resume_dir(overrides: list[str]) -> tuple[Path | None, list[str]]:
    """Split `run.resume=<dir>` from the other overrides (an empty value: no resume)."""
    rest, resume = [], None
    for text in overrides:
        if text.startswith("run.resume="):
            value = text.split("=", 1)[1]
            resume = Path(value) if value else None
        else:
            rest.append(text)
    return resume, rest


def _resolve(overrides: list[str]) -> Plan:
    resume, rest = _resume_dir(overrides)
    if resume is None:
        cfg_dict, cfg = load(rest)
        return Plan(cfg_dict, cfg, rest)
    if not (resume / "config.yaml").exists():
        raise ConfigError(f"run.resume={resume}: not a run directory (no config.yaml)")
    if not (resume / "checkpoints" / "latest.pt").exists():
        raise ConfigError(f"run.resume={resume}: no checkpoint to resume from (checkpoints/latest.pt)")
    base = OmegaConf.load(resume / "config.yaml")
    if not isinstance(base, DictConfig):
        raise ConfigError(f"run.resume={resume}: config.yaml does not hold a mapping")
    cfg_dict, cfg = load(rest, base=base)
    return Plan(cfg_dict, cfg, rest, resume, base.run.steps)


def _check_steps(plan: Plan, env_steps: int) -> None:
    """A resume that lowers run.steps below the env steps already trained is refused (ConfigError):
    there is nothing to train, and config.yaml would contradict the run. Raising run.steps, or lowering
    it to a count still ahead of the checkpoint, continues the run (run.json records the override)."""
    steps = plan.cfg.run.steps
    if steps < plan.steps_before and steps < env_steps:
        raise ConfigError(f"run.steps={steps}: {plan.resume} has trained {env_steps} env steps already "
                          f"(its run.steps is {plan.steps_before}); pass run.steps above {env_steps} to train on")


def _open_run_dir(session: Session, plan: Plan) -> Path:
    """Restore a resumed run and record the resume, or create a new run directory."""
    cfg = plan.cfg
    if plan.resume is not None:
        session.restore(plan.resume)
        _check_steps(plan, session.counters.env_steps)
        record_resume(plan.resume, plan.overrides, plan.cfg_dict)
        return plan.resume
    run_dir = new_run_dir(cfg.run.dir, cfg.agent.name, cfg.env.id, cfg.run.name)
    try:
        write_run_files(run_dir, plan.cfg_dict, cfg.seed, cfg.run)
    except StorageError:
        shutil.rmtree(run_dir, ignore_errors=True)  # just created: nothing of the user's is in it
        raise
    return run_dir


def _record_failure(session: Session, end_state: str) -> None:
    """Flush the scalars logged so far and write summary.json; a write that fails here too (a full
    disk) is skipped, so that the first error is the one reported."""
    for write in (session.write_training_scalars, lambda: session.write_summary(end_state)):
        with contextlib.suppress(StorageError):
            write()


def _handle_signals(session: Session) -> dict[int, SignalHandler]:
    """SIGINT and SIGTERM ask the loop to stop after the current step; returns the previous handlers."""
    previous: dict[int, SignalHandler] = {}

    def request_stop(signum: int, _frame: Any) -> None:
        session.stop_signal = signum
        signal.signal(signum, previous.get(signum, signal.SIG_DFL))  # a second signal is not polite

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, request_stop)
        except ValueError:  # not the main thread: no signal handling
            pass
    return previous


def _run(session: Session, cfg: Any, run_dir: Path, finish: Finish | None) -> dict[str, Any]:
    """The loop, the last checkpoint, summary.json and `finish`; a failure records its end state and
    is raised again, one line that says which checkpoint is left."""
    previous = _handle_signals(session)
    try:
        end_state = train_loop(session)
        session.save_latest()
        summary = session.write_summary(end_state)
        if finish is not None:
            finish(run_dir, cfg)  # before the sinks close, so an MLflow sink uploads what it writes too
        return summary
    except (NonFiniteError, StorageError) as exc:
        _record_failure(session, "failed_nonfinite" if isinstance(exc, NonFiniteError) else "failed_io")
        raise type(exc)(f"{exc}; {session.kept_checkpoint()}") from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def train(overrides: list[str], quiet: bool = False, finish: Finish | None = None) -> RunResult:
    """Validate everything, then create (or reopen) the run directory and train.

    overrides: what `dreamlab train` takes, e.g. ["agent=iqn", "env=cartpole", "run.steps=20000"]
        (`run.resume=<run dir>` continues a run; an empty `run.resume=` is a new run). quiet: no
        progress display (the run directory line and the summary still print). finish: called as
        finish(run_dir, cfg) once the run has ended (completed, stopped or interrupted) and
        summary.json is written, before the sinks close; `dreamlab train` and `dreamlab.train` pass
        analyze/plot.py's write_curves (curves.png), a layer above this one (docs/architecture.md).
        Raises ConfigError (a bad config, before anything is written; also a resume with run.steps
        below the env steps it has trained), CheckpointError, NonFiniteError, StorageError (the disk
        refused a write: full, read-only, no permission) or ValueError, each with a one-line message.
    """
    plan = _resolve(overrides)
    cfg = plan.cfg
    if cfg.track.mlflow and importlib.util.find_spec("mlflow") is None:
        raise ConfigError("track.mlflow=true needs the mlflow extra: pip install 'dreamlab[mlflow]'")
    session = Session(cfg)  # builds envs and agent: fails before any run directory exists
    try:
        run_dir = _open_run_dir(session, plan)
        announce_run_dir(run_dir)
        session.attach(run_dir, quiet)
        if cfg.track.mlflow:
            from dreamlab.track.mlflow_sink import MlflowSink

            session.out.sinks.add(MlflowSink(run_dir, cfg.track.mlflow_uri, cfg.run.dir))
        summary = _run(session, cfg, run_dir, finish)
    finally:
        session.close()
    print_summary(summary, quiet)
    summary["stop_signal"] = session.stop_signal
    return RunResult(run_dir, summary)


__all__ = ["RunResult", "train", "ConfigError", "CheckpointError", "NonFiniteError", "StorageError"]
