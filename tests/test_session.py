"""The parts a session is split into: the checkpoint's sections (train/snapshot.py), the throughput
bookkeeping (train/throughput.py) and the run's outputs (train/outputs.py)."""

import dataclasses

import numpy as np
import pytest
import torch

from dreamlab.config.load import load
from dreamlab.track import names
from dreamlab.train import checkpoint
from dreamlab.train.counters import Counters
from dreamlab.train.loop import train_loop
from dreamlab.train.run import train
from dreamlab.train.session import Session
from dreamlab.train.snapshot import pack, unpack
from dreamlab.train.throughput import Throughput
from tests.conftest import TINY

# the sections of checkpoints/latest.pt as the session wrote them before it was split: old checkpoints hold these
LATEST_SECTIONS = ["format", "agent", "replay", "collector", "counters", "schedule", "clocks", "monitors", "rng"]


# gymnasium's note of the seed of an env's np_random: a fresh session's envs were never reset, so the restore's
# first use of np_random seeds it anew and rewrites the note; the generator's state itself is restored
NOT_STATE = {"_np_random_seed"}


def assert_same(a, b, where="payload"):
    """Equal nested state: dicts (same keys, same order), sequences, tensors, arrays and plain values."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for key in a.keys() - NOT_STATE:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and np.array_equal(a, b), where
    else:
        assert a == b, where


@pytest.fixture
def trained(tmp_path):
    """A session that has trained 300 env steps of the tiny run (updates, episodes, an evaluation)."""
    _, cfg = load([*TINY, "run.steps=300", f"run.dir={tmp_path / 'runs'}"])
    session = Session(cfg)
    (tmp_path / "run").mkdir()
    session.attach(tmp_path / "run", quiet=True)
    try:
        assert train_loop(session) == "completed"
        yield session
    finally:
        session.close()


def test_pack_then_unpack_restores_equal_state(trained):
    packed = pack(trained.checkpoints.parts, trained.counters, None)
    assert list(packed) == LATEST_SECTIONS
    assert trained.counters.updates > 0 and trained.counters.episodes > 0 and trained.counters.evals
    fresh = Session(trained.cfg)
    try:
        assert packed["replay"] is None  # packed without a replay manifest: no chunk files to load
        counters = unpack(fresh.checkpoints.parts, packed, load_replay=lambda manifest: None)
        assert counters == trained.counters
        assert_same(pack(fresh.checkpoints.parts, counters, None), packed)
    finally:
        fresh.close()


def test_throughput_rates_match_hand_computed_values():
    t = Throughput()
    start = Counters(env_steps=100, updates=10, train_seconds=4.0, update_seconds=1.0)
    t.mark(start)
    assert not t.due(start)
    c = dataclasses.replace(start, env_steps=300, updates=30, train_seconds=8.0, update_seconds=3.0)
    assert t.due(c)
    t.accumulator.add({"loss/x": 1.0})
    t.accumulator.add({"loss/x": 3.0})
    t.episode_stats.extend([(10.0, 20), (20.0, 40)])
    row = t.row(c, transitions_per_update=32)
    assert row == {
        "loss/x": 2.0,
        names.ENV_EPISODE_RETURN: 15.0,
        names.ENV_EPISODE_LENGTH: 30.0,
        names.PERF_LEARNER_TRAIN_FRACTION: 2.0 / 4.0,  # update seconds / training seconds in the window
        names.ENV_STEPS_PER_S: 200 / 4.0,
        names.PERF_UPDATES_PER_S: 20 / 4.0,
        names.PERF_TRANSITIONS_LEARNED_PER_S: 20 * 32 / 4.0,
        names.PERF_UPDATES: 30.0,
    }
    assert list(row)[:3] == ["loss/x", names.ENV_EPISODE_RETURN, names.ENV_EPISODE_LENGTH]
    assert t.episode_stats == [] and t.accumulator.pop() == {}
    assert t.last_updates == 10  # the window moves only when the row is written (mark)
    t.mark(c)
    assert (t.last_updates, t.last_env_steps, t.last_train_seconds, t.last_update_seconds) == (30, 300, 8.0, 3.0)
    assert not t.due(c)
    # no training time in the window (a row right after a resume): no rates, the update count still
    assert t.row(dataclasses.replace(c, updates=31), transitions_per_update=32) == {names.PERF_UPDATES: 31.0}


def test_outputs_refuse_to_write_before_attach_and_videos_follow_video_every(tmp_path):
    _, cfg = load([*TINY, "track.video_every=3", f"run.dir={tmp_path / 'runs'}"])
    session = Session(cfg)
    try:
        for name in ("sinks", "display", "attached_dir"):
            with pytest.raises(RuntimeError):
                getattr(session.out, name)
        assert [session.out.video_due(n) for n in range(7)] == [True, False, False, True, False, False, True]
    finally:
        session.close()


def test_a_checkpoint_in_the_old_section_layout_still_loads(tiny, tmp_path):
    run = train([*tiny, "run.steps=300"], quiet=True)
    latest = checkpoint.load(run.run_dir / "checkpoints" / "latest.pt")
    assert list(latest) == LATEST_SECTIONS
    assert set(latest["counters"]) == {f.name for f in dataclasses.fields(Counters)}

    # latest.pt written exactly as the session wrote it before the split, then resumed by a fresh session
    _, cfg = load([*tiny, "run.steps=300"])
    old = Session(cfg)
    old.counters = Counters(env_steps=123, updates=45, episodes=6, best_eval=7.5, evals=[[100, 1.5, 7.5]])
    old.eval_clock.next_at, old.checkpoint_clock.next_at = 400, 500
    payload = {
        "format": checkpoint.FORMAT,
        "agent": old.agent.state_dict(),
        "replay": None,
        "collector": old.collector.state_dict(),
        "counters": dataclasses.asdict(old.counters),
        "schedule": old.schedule.state_dict(),
        "clocks": {"eval": old.eval_clock.next_at, "checkpoint": old.checkpoint_clock.next_at},
        "monitors": {"collapse": old.collapse_alarm.state_dict()},
        "rng": checkpoint.rng_state(),
    }
    run_dir = tmp_path / "old_run"
    checkpoint.save(run_dir / "checkpoints" / "latest.pt", payload)
    fresh = Session(cfg)
    try:
        fresh.restore(run_dir)
        assert fresh.counters == old.counters
        assert (fresh.eval_clock.next_at, fresh.checkpoint_clock.next_at) == (400, 500)
        assert fresh.checkpoints.restored_step == fresh.checkpoints.saved_step == 123
        assert fresh.kept_checkpoint() == "checkpoints/latest.pt of env step 123 is kept"
        assert_same(fresh.agent.state_dict(), payload["agent"])
    finally:
        old.close()
        fresh.close()
