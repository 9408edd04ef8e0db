"""Parallel collection (collect.mode=process|ray): train ratio under backpressure, faults, signals, Ray."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from dreamlab.collect.process import SharedPolicy
from dreamlab.collect.sync import SyncCollector
from dreamlab.config.load import load
from dreamlab.config.schema import EnvConfig
from dreamlab.envs.make import make_env
from dreamlab.track import names
from dreamlab.train import checkpoint
from dreamlab.train.loop import train_loop
from dreamlab.train.run import train
from dreamlab.train.session import Session

ROOT = Path(__file__).resolve().parents[1]
COUNTING = "env.id=tests.collect_envs:Counting-v0"
PROCESS = ["collect.mode=process", "collect.workers=2", "collect.envs_per_worker=2", "collect.chunk_steps=8",
           "collect.sync_every=5"]


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def stream_records(replay, stream: int) -> dict[str, np.ndarray]:
    """One stream's stored records, oldest first (the test replays never wrap)."""
    filled = int(replay.filled[stream])
    assert filled < replay.stream_capacity, "test replay wrapped"
    return {k: v[stream, :filled] for k, v in replay.data.items()}


def assert_consistent_counting_stream(records: dict[str, np.ndarray]) -> None:
    """Counting-env records: t climbs by one within an episode, episodes start only after an end."""
    t = records["state"][:, 0]
    first, last = records["is_first"], records["is_last"]
    assert first[0] and t[0] == 0
    for i in range(1, len(t)):
        if first[i]:
            assert last[i - 1] and t[i] == 0, f"record {i}: a new episode without an end before it"
        else:
            assert not last[i - 1], f"record {i}: continues an ended episode"
            assert t[i] == t[i - 1] + 1, f"record {i}: t {t[i - 1]} -> {t[i]} (a lost or duplicate step)"


class Constant:
    def act(self, obs, state, explore):
        return np.zeros(len(obs["is_first"]), np.int64), None


def test_shared_policy_publishes_a_consistent_copy():
    import multiprocessing as mp

    state = {"online": {"w": torch.zeros(3), "b": torch.ones(2)}, "encoder": {}}  # a module without parameters
    shared = SharedPolicy(state, mp.get_context("spawn"))
    assert shared.read_if_newer(-1) is None  # nothing published yet
    shared.publish({"online": {"w": torch.full((3,), 2.0), "b": torch.zeros(2)}, "encoder": {}}, version=7,
                   env_steps=99)
    copy, version, env_steps = shared.read_if_newer(-1)
    assert version == 7 and env_steps == 99 and torch.equal(copy["online"]["w"], torch.full((3,), 2.0))
    assert copy["encoder"] == {}
    assert shared.read_if_newer(7) is None


def test_env_exception_cuts_the_episode_as_truncated_and_resets():
    cfg = EnvConfig(id="tests.collect_envs:Counting-v0", kwargs={"raise_every": 5})
    collector = SyncCollector([make_env(cfg)], [0], catch_env_errors=True)
    got = [collector.step(Constant())[0] for _ in range(8)]
    t = [float(r["state"][0, 0]) for r in got]
    first = [bool(r["is_first"][0]) for r in got]
    last = [bool(r["is_last"][0]) for r in got]
    terminal = [bool(r["is_terminal"][0]) for r in got]
    # steps 1-4 fine, the 5th raises: the 6th record repeats t=4 as a truncation, then a fresh episode
    assert t == [0, 1, 2, 3, 4, 4, 0, 1]
    assert last == [False] * 5 + [True, False, False] and not any(terminal)
    assert first == [True] + [False] * 5 + [True, False]
    assert collector.env_errors == 1
    with pytest.raises(RuntimeError, match="crashed"):  # without catch_env_errors the error propagates
        strict = SyncCollector([make_env(cfg)], [0])
        for _ in range(8):
            strict.step(Constant())


def expected_updates(steps: int, learning_starts: int) -> int:
    return steps - learning_starts + 1  # TINY: train_ratio 16 = batch 16 -> one update per env step


@pytest.mark.parametrize("delay", [0.0, 0.004], ids=["fast_env", "slow_env"])
def test_train_ratio_held_within_tolerance(tiny, delay):
    run = train([*tiny, *PROCESS, COUNTING, f"+env.kwargs.delay={delay}", "run.steps=500",
                 "collect.ratio_tolerance=0.1"], quiet=True)
    summary = run.summary
    assert summary["end_state"] == "completed"
    assert summary["updates"] == expected_updates(summary["env_steps"], 100)  # met exactly at the end
    chunk_updates = 2 * 2 * 8  # one chunk: envs x chunk_steps env steps, one update each
    logged = [r for r in rows(run.run_dir) if names.COLLECT_UPDATES_OWED in r]
    assert logged
    for row in logged:  # during the run: never further behind than the tolerance plus one chunk
        earned = max(row["step"] - 100 + 1, 0)
        assert row[names.COLLECT_UPDATES_OWED] <= 0.1 * earned + chunk_updates + 1, row
    assert any(row.get(names.worker_steps_per_s(0), 0) + row.get(names.worker_steps_per_s(1), 0) > 0 for row in logged)
    assert all(names.COLLECT_QUEUE_DEPTH in row and names.COLLECT_WORKER_RESTARTS in row for row in logged)
    assert any(names.COLLECT_POLICY_LAG in row for row in logged)


@pytest.mark.parametrize("fault", ["killed", "hung", "ray_actor_killed"])
def test_failed_worker_restarts_without_lost_or_duplicate_steps(tiny, tmp_path, fault, monkeypatch):
    kill_file = tmp_path / "killed"
    # a hung collector is noticed after worker_timeout: the run must outlast it
    steps, delay = (2000, 0.005) if fault == "hung" else (700, 0.001)
    mode = ["collect.mode=ray"] if fault.startswith("ray") else []
    if mode:
        pytest.importorskip("ray")
        monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    _, cfg = load([*tiny, *PROCESS, *mode, COUNTING, f"+env.kwargs.kill_file={kill_file}", "+env.kwargs.kill_at=60",
                   f"+env.kwargs.delay={delay}", f"run.steps={steps}", "replay.capacity=4000",
                   f"+env.kwargs.hang={fault == 'hung'}", "collect.worker_timeout=2"])
    session = Session(cfg)
    (tmp_path / "run").mkdir()
    session.attach(tmp_path / "run", quiet=True)
    try:
        assert train_loop(session) == "completed"
        session.write_training_scalars()
        replay, counters = session.replay, session.counters
        assert kill_file.exists() and session.collector.stats.restarts == 1
        non_first = 0
        for stream in range(session.collector.num_streams):
            records = stream_records(replay, stream)
            assert_consistent_counting_stream(records)
            non_first += int(np.count_nonzero(~records["is_first"]))
        assert counters.env_steps == non_first  # every counted step is in the replay exactly once
        assert counters.updates == expected_updates(counters.env_steps, 100)
        logged = rows(tmp_path / "run")
        assert max(r.get(names.COLLECT_WORKER_RESTARTS, 0) for r in logged) == 1
    finally:
        session.close()
    left = [p for p in psutil.Process().children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())]
    assert_all_gone(left, within=15)  # collector processes, or the local Ray instance with its actors


def test_a_collector_that_cannot_start_stops_the_run(tiny):
    with pytest.raises(RuntimeError, match="before its first chunk, 3 times in a row"):
        train([*tiny, *PROCESS, COUNTING, "+env.kwargs.fail_in_collector=true"], quiet=True)


def test_env_exceptions_in_collectors_are_counted_and_the_run_goes_on(tiny):
    run = train([*tiny, *PROCESS, COUNTING, "+env.kwargs.raise_every=37", "run.steps=300"], quiet=True)
    assert run.summary["end_state"] == "completed"
    errors = max(r.get(names.COLLECT_ENV_ERRORS, 0) for r in rows(run.run_dir))
    assert errors >= 4 and max(r.get(names.COLLECT_WORKER_RESTARTS, 0) for r in rows(run.run_dir)) == 0


def test_collectors_act_with_the_published_weights(tiny):
    from dreamlab.agents import make_agent
    from dreamlab.collect.base import spaces
    from dreamlab.collect.process import ProcessCollector

    _, cfg = load([*tiny, *PROCESS])
    agent = make_agent(cfg, *spaces(cfg), torch.device("cpu"))
    collector = ProcessCollector(cfg, agent)
    try:
        versions, deadline = set(), time.time() + 120
        while len(versions) < 2 and time.time() < deadline:
            for chunk in collector.collect(agent, wait=True):
                versions.add(chunk.policy_version)
                if chunk.policy_version == 0 and collector.published_at == 0:
                    collector.sync_policy(agent, updates=100, env_steps=5000)  # a newer policy
        assert versions == {0, 100}  # chunks made after the publication carry its version
    finally:
        collector.close()


def start_trainer(tiny: list[str], tmp_path: Path) -> tuple[subprocess.Popen, Path, list[psutil.Process]]:
    """A long process-mode run in a subprocess; returns it once it logs, with its collector processes."""
    proc = subprocess.Popen([sys.executable, "-m", "dreamlab.cli", "train", "--quiet", *tiny, *PROCESS,
                             "run.steps=10000000", "checkpoint.every=1000000", "eval.every=1000000"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        found = list((tmp_path / "runs").glob("*/metrics.jsonl"))
        children = psutil.Process(proc.pid).children(recursive=True)
        collectors = [p for p in children if "spawn_main" in " ".join(p.cmdline())]
        if found and found[0].stat().st_size > 0 and len(collectors) >= 2:
            return proc, found[0].parent, children
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1])
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the run never started logging")


def assert_all_gone(processes: list[psutil.Process], within: float) -> None:
    _, alive = psutil.wait_procs(processes, timeout=within)
    assert not alive, f"left behind: {[p.cmdline() for p in alive]}"


def test_sigterm_stops_everything_within_10s_with_a_checkpoint_and_no_children(tiny, tmp_path):
    proc, run_dir, children = start_trainer(tiny, tmp_path)
    asked = time.time()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert time.time() - asked < 10, "stopping took over 10 s"
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert_all_gone(children, within=5)
    payload = checkpoint.load(run_dir / "checkpoints" / "latest.pt")
    assert payload["counters"]["env_steps"] > 0 and payload["collector"]["mode"] == "process"
    assert json.loads((run_dir / "summary.json").read_text())["end_state"] == "interrupted"


def test_sigint_stops_too(tiny, tmp_path):
    proc, _, children = start_trainer(tiny, tmp_path)
    asked = time.time()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert time.time() - asked < 10 and proc.returncode == 128 + signal.SIGINT
    assert_all_gone(children, within=5)


def test_collectors_die_with_a_sigkilled_trainer(tiny, tmp_path):
    proc, _, children = start_trainer(tiny, tmp_path)
    proc.kill()
    proc.communicate(timeout=30)
    assert_all_gone(children, within=10)


def test_resume_in_process_mode_continues_the_counters(tiny):
    half = train([*tiny, *PROCESS, "run.steps=300"], quiet=True)
    resumed = train([f"run.resume={half.run_dir}", "run.steps=600"], quiet=True)
    assert resumed.summary["env_steps"] >= 600 and resumed.summary["updates"] > half.summary["updates"]
    payload = checkpoint.load(resumed.run_dir / "checkpoints" / "latest.pt")
    assert payload["collector"]["incarnations"] == [1, 1]  # fresh collectors, fresh seeds


def test_ray_mode_end_to_end_on_a_local_instance(tiny, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    run = train([*tiny, "collect.mode=ray", "collect.workers=2", "collect.envs_per_worker=2",
                 "collect.chunk_steps=8", COUNTING, "run.steps=400"], quiet=True)
    assert run.summary["end_state"] == "completed"
    assert run.summary["updates"] == expected_updates(run.summary["env_steps"], 100)
    logged = rows(run.run_dir)
    # (one actor may deliver the whole short run while the other one still starts)
    assert any(r.get(names.worker_steps_per_s(0), 0) + r.get(names.worker_steps_per_s(1), 0) > 0 for r in logged)
    assert any(names.COLLECT_POLICY_LAG in r for r in logged)
    import ray

    assert not ray.is_initialized()  # the collector shut down the instance it started, and its processes
    assert_all_gone([p for p in psutil.Process().children(recursive=True)
                     if "resource_tracker" not in " ".join(p.cmdline())], within=15)


def test_local_ray_collectors_run_at_the_learners_priority(tiny, monkeypatch):
    """Ray's default nice 15 starved actors beside busy processes on 2 cores (76 s to construct one)."""
    ray = pytest.importorskip("ray")
    from dreamlab.collect.ray_actors import RayCollector

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("RAY_worker_niceness", raising=False)
    _, cfg = load([*tiny, "collect.mode=ray", COUNTING])
    collector = RayCollector(cfg, policy=None)
    collector._ensure_ray()
    try:
        assert ray.get(ray.remote(num_cpus=1)(lambda: os.nice(0)).remote()) == os.nice(0)
    finally:
        collector.close()
