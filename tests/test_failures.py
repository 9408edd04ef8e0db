"""Expected failures of a run and its readers: one `dreamlab: error:` line, exit 1 (or 2 for what the
user typed), no traceback, and nothing already on disk lost.

The command line runs in-process (`cli.main`), so that a test can make the disk fail where a real
one would: full (ENOSPC partway through a write) or read-only (chmod; where running as root makes
that ineffective, the writes beneath the folder raise PermissionError as the kernel would).
"""

import builtins
import errno
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from dreamlab import cli
from dreamlab.track import names
from dreamlab.train import checkpoint
from dreamlab.train.run import train
from tests.conftest import TINY
from tests.test_dreamer import TINY_DREAMER
from tests.test_sac import TINY_SAC


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A TINY run of 600 env steps, checkpointed at 300 and 600; tests that change it work on a copy."""
    return train([*TINY, f"run.dir={tmp_path_factory.mktemp('finished')}"], quiet=True).run_dir


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


def error_line(capsys, code: int, result: int, *words: str) -> str:
    """The CLI returned `code` and its stderr ends with one error line holding `words`; every line
    before it is dreamlab's own (the run directory), none a traceback."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert result == code, err
    assert lines and lines[-1].startswith("dreamlab: error: "), err
    assert all(line.startswith("dreamlab: ") for line in lines) and err.count("dreamlab: error:") == 1, err
    for word in words:
        assert word in lines[-1], err
    return lines[-1]


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def only_run(parent: Path) -> Path:
    (run_dir,) = parent.iterdir()
    return run_dir


class DiskFull(io.RawIOBase):
    """Writes through to `file` until `room` bytes are used, then fails as a full disk does."""

    def __init__(self, file, room: int):
        self.file, self.room = file, room

    def writable(self):
        return True

    def write(self, data):
        if len(data) > self.room:
            self.file.write(bytes(data[:self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)


def refuse_writes_beneath(folder: Path, monkeypatch) -> None:
    """Opening for writing, creating a folder or renaming into anything beneath `folder` raises
    PermissionError, as a read-only folder does for a user who is not root."""
    folder = folder.resolve()
    real_open, real_mkdir, real_replace = builtins.open, os.mkdir, os.replace

    def check(path) -> None:
        if not isinstance(path, int) and folder in Path(os.fsdecode(path)).resolve().parents:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))

    def open_(file, mode="r", *args, **kwargs):
        if set(mode) & set("wax+"):
            check(file)
        return real_open(file, mode, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        check(path)
        return real_mkdir(path, *args, **kwargs)

    def replace(src, dst, *args, **kwargs):
        check(dst)
        return real_replace(src, dst, *args, **kwargs)

    for module, name, value in ((builtins, "open", open_), (io, "open", open_), (os, "mkdir", mkdir),
                                (os, "replace", replace)):
        monkeypatch.setattr(module, name, value)


@pytest.fixture
def read_only(monkeypatch):
    """make(folder): chmod it read-only (undone after the test), simulated where root ignores that."""
    folders = []

    def make(folder: Path) -> None:
        folder.chmod(0o555)
        folders.append(folder)
        if os.access(folder, os.W_OK):  # root: permissions are not enforced
            refuse_writes_beneath(folder, monkeypatch)

    yield make
    for folder in folders:
        folder.chmod(0o755)


# ---------------------------------------------------------------- item 4: disk full during a checkpoint
def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tiny, tmp_path, monkeypatch, capsys):
    real_save, latest_saves = torch.save, []

    def save(obj, file, *args, **kwargs):
        if Path(file.name).name == ".latest.pt.tmp":
            latest_saves.append(file.name)
            if len(latest_saves) == 2:  # the checkpoint at 600 env steps runs out of space partway
                file = DiskFull(file, room=4096)
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    result = cli.main(["train", "--quiet", *tiny])
    run_dir = only_run(tmp_path / "runs")
    latest = run_dir / "checkpoints" / "latest.pt"
    error_line(capsys, 1, result, f"cannot write {latest}: No space left on device",
               "latest.pt of env step 300 is kept")
    payload = checkpoint.load(latest)
    assert payload["counters"]["env_steps"] == 300
    assert not list(run_dir.rglob("*.tmp"))
    replay = {p.name for p in (run_dir / "checkpoints" / "replay").iterdir()}
    assert replay == set(payload["replay"]["files"].values())  # the new checkpoint's chunks are gone too
    assert summary_of(run_dir)["end_state"] == "failed_io"


# ---------------------------------------------------------------- item 5: read-only run directories
def test_a_read_only_run_directory_is_one_line(finished_run, tmp_path, read_only, capsys):
    parent = tmp_path / "read_only"
    parent.mkdir()
    run = copy_run(finished_run, tmp_path)
    before = {name: (run / name).read_bytes() for name in ("run.json", "config.yaml", "metrics.jsonl")}
    read_only(parent)
    read_only(run)

    result = cli.main(["train", "--quiet", *TINY, f"run.dir={parent / 'runs'}"])  # at start
    error_line(capsys, 1, result, f"cannot create the run directory {parent / 'runs'}", "Permission denied")
    assert not list(parent.iterdir())

    result = cli.main(["train", "--quiet", f"run.resume={run}", "run.steps=900"])  # at resume
    error_line(capsys, 1, result, f"cannot write {run / 'run.json'}", "Permission denied")
    assert {name: (run / name).read_bytes() for name in before} == before

    result = cli.main(["compare", str(run), "--plot", str(parent / "curves.png")])
    error_line(capsys, 1, result, f"--plot: cannot write {parent / 'curves.png'}", "Permission denied")
    assert not list(parent.iterdir())


# ---------------------------------------------------------------- item 6: damaged checkpoint files
@pytest.mark.parametrize("damage", ["empty latest.pt", "truncated replay chunk"])
def test_a_damaged_checkpoint_is_the_one_line_checkpoint_error(finished_run, tmp_path, capsys, damage):
    run = copy_run(finished_run, tmp_path)
    if damage == "empty latest.pt":
        damaged = run / "checkpoints" / "latest.pt"
        damaged.write_bytes(b"")
    else:
        damaged = sorted((run / "checkpoints" / "replay").glob("chunk_*.npz"))[0]
        damaged.write_bytes(damaged.read_bytes()[:200])
    left = damaged.read_bytes()
    result = cli.main(["train", "--quiet", f"run.resume={run}"])
    line = error_line(capsys, 1, result, str(damaged))
    assert line.startswith("dreamlab: error: cannot read checkpoint ")  # as for any damaged checkpoint
    assert damaged.read_bytes() == left  # nothing overwritten


# ---------------------------------------------------------------- item 7: run.resume= and run.steps on resume
def test_an_empty_resume_is_a_new_run_and_fewer_steps_are_refused(finished_run, tmp_path, monkeypatch, capsys):
    run = copy_run(finished_run, tmp_path)
    before = {name: (run / name).read_bytes() for name in ("run.json", "config.yaml")}
    monkeypatch.chdir(run)  # `run.resume=` resumed the current directory (Path("") is ".")
    assert cli.main(["train", "--quiet", *TINY, f"run.dir={tmp_path / 'runs'}", "run.steps=100",
                     "run.resume="]) == 0
    assert summary_of(only_run(tmp_path / "runs"))["end_state"] == "completed"

    result = cli.main(["train", "--quiet", f"run.resume={run}", "run.steps=300"])
    error_line(capsys, 2, result, "run.steps=300", "600 env steps", "run.steps is 600")
    assert {name: (run / name).read_bytes() for name in before} == before


# ---------------------------------------------------------------- item 8: the non-finite stop
@pytest.mark.parametrize("agent", ["sac", "dreamer"])
def test_nonfinite_updates_stop_with_flushed_metrics_and_what_is_kept(agent, tmp_path, monkeypatch, capsys):
    """NaN rewards in every replayed batch: the agent's own guard skips each step, the loop stops."""
    from dreamlab.replay.buffer import ReplayBuffer

    real_sample = ReplayBuffer.sample

    def poisoned(self, *args, **kwargs):
        batch = real_sample(self, *args, **kwargs)
        batch["reward"] = np.full_like(batch["reward"], np.nan)
        return batch

    monkeypatch.setattr(ReplayBuffer, "sample", poisoned)
    common = [f"run.dir={tmp_path / 'runs'}", "train.max_nonfinite=3", "track.every=100"]
    if agent == "sac":  # learning starts at the first checkpoint
        overrides = [*TINY_SAC, *common, "checkpoint.every=100"]
        kept = "checkpoints/latest.pt of env step 100 is kept"
    else:
        overrides = [*TINY_DREAMER, *common, "run.steps=300", "train.learning_starts=64", "train.train_ratio=32",
                     "eval.every=1000", "eval.episodes=1", "eval.num_envs=1", "checkpoint.every=1000",
                     "track.tensorboard=false", "replay.capacity=1000"]
        kept = "no checkpoint was written yet"
    result = cli.main(["train", "--quiet", *overrides])
    error_line(capsys, 1, result, "3 updates in a row had a non-finite loss", kept)
    run_dir = only_run(tmp_path / "runs")
    summary = summary_of(run_dir)
    assert summary["end_state"] == "failed_nonfinite" and summary["nonfinite_updates"] == 3
    assert rows(run_dir)[-1][names.PERF_NONFINITE_UPDATES] == 1.0  # flushed before the stop
    assert (run_dir / "checkpoints" / "latest.pt").exists() == (agent == "sac")


# ---------------------------------------------------------------- item 9: eval checks what it loads
def test_eval_refuses_another_format_and_warns_on_nonfinite_weights(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path)
    latest = run / "checkpoints" / "latest.pt"
    payload = checkpoint.load(latest)
    weights = payload["agent"]["online"]
    first = next(iter(weights))
    weights[first] = torch.full_like(weights[first], float("nan"))
    checkpoint.save(latest, payload)
    assert cli.main(["eval", str(run), "--episodes", "1"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("dreamlab: warning: ") and err.count("\n") == 1, err
    assert f"{latest} holds non-finite policy weights" in err and first in err

    payload["format"] = 2
    checkpoint.save(latest, payload)
    error_line(capsys, 1, cli.main(["eval", str(run), "--episodes", "1"]), "unknown checkpoint format 2")


# ---------------------------------------------------------------- item 10: replay files stay in the checkpoint
@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_replay_manifest_names_outside_the_checkpoint_are_refused(finished_run, tmp_path, capsys, where):
    run = copy_run(finished_run, tmp_path)
    latest, replay = run / "checkpoints" / "latest.pt", run / "checkpoints" / "replay"
    payload = checkpoint.load(latest)
    stray = tmp_path / "stray.npz"  # a whole chunk: read, it would load without complaint
    shutil.copy(replay / payload["replay"]["files"]["0"], stray)
    payload["replay"]["files"]["0"] = str(stray) if where == "absolute" else os.path.relpath(stray, replay)
    checkpoint.save(latest, payload)
    result = cli.main(["train", "--quiet", f"run.resume={run}"])
    line = error_line(capsys, 1, result, "replay manifest names", "stray.npz")
    assert line.startswith(f"dreamlab: error: cannot read checkpoint {latest}: ")


# ---------------------------------------------------------------- item 11: one row per step after kill -9
def test_resume_after_a_kill_logs_each_step_once(tiny, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.compat.proto.event_pb2 import SessionLog

    common = [*tiny, "track.tensorboard=true"]
    run_dir = train([*common, "run.steps=300"], quiet=True).run_dir
    saved = shutil.copytree(run_dir / "checkpoints", tmp_path / "checkpoint_at_300")
    train([f"run.resume={run_dir}", "run.steps=600"], quiet=True)
    shutil.rmtree(run_dir / "checkpoints")  # killed after logging up to 600, last checkpoint at 300
    shutil.copytree(saved, run_dir / "checkpoints")
    assert max(row["step"] for row in rows(run_dir)) == 600
    train([f"run.resume={run_dir}", "run.steps=600"], quiet=True)

    logged = [(row["step"], tuple(sorted(row))) for row in rows(run_dir)]
    assert len(logged) == len(set(logged)), "a row appears twice"
    assert [step for step, _ in logged] == sorted(step for step, _ in logged)
    events = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0})
    events.Reload()
    steps = [event.step for event in events.Scalars(names.LOSS_TD)]
    assert steps == sorted(set(steps)) and steps[-1] >= 590
    restarts = [event.step for path in sorted(run_dir.glob("events.out.tfevents.*"))
                for event in EventFileLoader(str(path)).Load()
                if event.HasField("session_log") and event.session_log.status == SessionLog.START]
    assert restarts == [301, 301]  # each resume hides what was logged past its checkpoint
