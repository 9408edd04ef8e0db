"""End-to-end runs of the loop: run directory, resume equivalence, determinism, signals, checkpoints."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dreamlab.track import names
from dreamlab.train import checkpoint
from dreamlab.train.run import train


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def without_timing(row: dict) -> dict:
    timing = {"time", names.ENV_STEPS_PER_S, names.PERF_UPDATES_PER_S, names.PERF_TRANSITIONS_LEARNED_PER_S,
              names.PERF_LEARNER_TRAIN_FRACTION}
    return {k: v for k, v in row.items() if k not in timing}


def test_subprocess_run_writes_the_run_directory(tiny, tmp_path):
    result = subprocess.run([sys.executable, "-m", "dreamlab.cli", "train", "--quiet", *tiny,
                             "run.hypothesis=tiny run -> files exist", "track.tensorboard=true"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert "_iqn_cartpole" in run_dir.name
    for name in ("config.yaml", "run.json", "metrics.jsonl", "summary.json", "checkpoints/latest.pt",
                 "checkpoints/best.pt"):
        assert (run_dir / name).exists(), name
    assert list(run_dir.glob("events.out.tfevents.*"))
    info = json.loads((run_dir / "run.json").read_text())
    assert info["hypothesis"] == "tiny run -> files exist" and info["primary_metric"] == "eval/return_mean"
    assert {"commit", "dirty"} <= set(info["git"]) and info["versions"]["torch"] and info["seed"] == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["end_state"] == "completed" and summary["env_steps"] >= 600
    assert summary["updates"] > 0 and summary["best_eval"] is not None
    logged = rows(run_dir)
    assert any(names.LOSS_TD in r for r in logged) and any(names.EVAL_RETURN_MEAN in r for r in logged)
    for row in logged:  # every logged key is registered
        for key in row:
            assert key in ("step", "time") or names.is_registered(key), key

    evaluated = subprocess.run([sys.executable, "-m", "dreamlab.cli", "eval", str(run_dir), "--checkpoint", "best",
                                "--episodes", "2"], capture_output=True, text=True, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "2 episodes: return" in evaluated.stdout


def test_unregistered_metric_name_fails(tmp_path):
    from dreamlab.track.sinks import Tracker

    tracker = Tracker(tmp_path, tensorboard=False)
    tracker.write(1, {names.LOSS_TD: 1.0, names.grad_norm("q"): 2.0})
    with pytest.raises(KeyError, match="not in dreamlab/track/names.py"):
        tracker.write(2, {"loss/made_up": 1.0})


def test_same_seed_gives_identical_metrics(tiny):
    a, b = train(tiny, quiet=True), train(tiny, quiet=True)
    assert a.run_dir != b.run_dir
    assert [without_timing(r) for r in rows(a.run_dir)] == [without_timing(r) for r in rows(b.run_dir)]


def test_resume_equals_uninterrupted_run(tiny, tmp_path):
    aligned = [*tiny, "checkpoint.every=400", "eval.every=400"]
    straight = train([*aligned, "run.steps=800"], quiet=True)
    half = train([*aligned, "run.steps=400"], quiet=True)
    resumed = train([f"run.resume={half.run_dir}", "run.steps=800"], quiet=True)
    assert resumed.run_dir == half.run_dir
    assert resumed.summary["env_steps"] == straight.summary["env_steps"]
    assert resumed.summary["updates"] == straight.summary["updates"]
    a = checkpoint.load(straight.run_dir / "checkpoints" / "latest.pt")["agent"]
    b = checkpoint.load(resumed.run_dir / "checkpoints" / "latest.pt")["agent"]
    for key in a["online"]:
        torch.testing.assert_close(a["online"][key], b["online"][key], rtol=1e-5, atol=1e-6)
    # one continuous metrics.jsonl with the same rows (timings aside)
    steps = [r["step"] for r in rows(resumed.run_dir)]
    assert steps == sorted(steps)
    half_rows = [without_timing(r) for r in rows(resumed.run_dir)]
    assert half_rows == [without_timing(r) for r in rows(straight.run_dir)]
    info = json.loads((half.run_dir / "run.json").read_text())
    assert info["resumes"][0]["overrides"] == ["run.steps=800"]  # recorded, not dropped


def test_pickled_object_checkpoint_is_refused(tmp_path):
    class Sneaky:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "latest.pt"
    torch.save({"format": 1, "agent": Sneaky()}, path)
    with pytest.raises(checkpoint.CheckpointError, match="refusing"):
        checkpoint.load(path)


def test_resume_of_a_corrupt_checkpoint_is_a_clear_error(tiny):
    run = train(tiny, quiet=True)
    latest = run.run_dir / "checkpoints" / "latest.pt"
    original = latest.read_bytes()
    latest.write_bytes(original[:100])
    result = subprocess.run([sys.executable, "-m", "dreamlab.cli", "train", "--quiet", f"run.resume={run.run_dir}"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "cannot read checkpoint" in result.stderr and result.stderr.count("\n") == 1
    assert latest.read_bytes() == original[:100]  # nothing overwritten


def test_sigterm_mid_run_leaves_a_loadable_checkpoint(tiny, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "dreamlab.cli", "train", "--quiet", *tiny, "run.steps=1000000",
                             "checkpoint.every=1000000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    metrics = None
    while time.time() < deadline:
        found = list((tmp_path / "runs").glob("*/metrics.jsonl"))
        if found and found[0].stat().st_size > 0:
            metrics = found[0]
            break
        time.sleep(0.2)
    assert metrics is not None, "the run never started logging"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    run_dir = metrics.parent
    payload = checkpoint.load(run_dir / "checkpoints" / "latest.pt")
    assert payload["counters"]["env_steps"] > 0
    assert json.loads((run_dir / "summary.json").read_text())["end_state"] == "interrupted"


def test_repeated_nonfinite_updates_stop_the_run(tiny, monkeypatch):
    from dreamlab.agents.iqn.agent import IQNAgent
    from dreamlab.train.loop import NonFiniteError

    monkeypatch.setattr(IQNAgent, "update", lambda self, batch: {names.PERF_NONFINITE_UPDATES: 1.0})
    with pytest.raises(NonFiniteError, match="non-finite"):
        train([*tiny, "train.max_nonfinite=3"], quiet=True)


def test_profile_writes_a_table_of_update_ops(tiny):
    run = train([*tiny, "run.profile=true"], quiet=True)
    table = (run.run_dir / "profile.txt").read_text()
    assert "aten::" in table and (run.run_dir / "profile_trace.json").exists()


def test_eval_video_writes_mp4_or_gif_and_bad_input_is_one_line(tiny):
    import cv2
    from PIL import Image

    run = train(tiny, quiet=True)

    def evaluate(*video: str) -> float:
        result = subprocess.run([sys.executable, "-m", "dreamlab.cli", "eval", str(run.run_dir), "--episodes", "1",
                                 "--video", *video], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return float(result.stdout.split("return ")[1].split()[0])  # CartPole: one point per step

    episode_return = evaluate()
    capture = cv2.VideoCapture(str(run.run_dir / "videos" / "eval_latest.mp4"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert capture.get(cv2.CAP_PROP_FPS) == 50 and frames == int(episode_return) + 1  # reset frame + one per step

    gif = run.run_dir / "clip.gif"
    assert evaluate(str(gif)) == episode_return
    with Image.open(gif) as image:
        assert image.size[0] == 600 and image.n_frames > 1
        total_ms = 0
        for index in range(image.n_frames):  # Pillow merges repeated frames into longer ones
            image.seek(index)
            total_ms += image.info["duration"]
    assert total_ms == (int(episode_return) + 1) * round(1000 / 50)  # CartPole renders at 50 fps

    def fails(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "dreamlab.cli", "eval", str(run.run_dir), *args],
                                capture_output=True, text=True)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        return result.stderr

    assert ".mp4 or .gif" in fails("--video", str(run.run_dir / "clip.avi"))
    config = run.run_dir / "config.yaml"
    config.write_text(config.read_text().replace("- 32\n", "- 48\n"))  # agent.hidden no longer fits the weights
    assert "does not fit the run's config" in fails()


def test_eval_records_the_first_episodes_of_the_first_env():
    from dreamlab.config.load import load
    from dreamlab.train.evaluate import Evaluator

    class Push:
        def act(self, obs, state, explore):
            return np.zeros(len(obs["is_first"]), np.int64), state

    _, cfg = load(["env=cartpole"])
    evaluator = Evaluator(cfg.env, seed=0, num_envs=1, record=2)
    _, returns = evaluator.run(Push(), episodes=3)
    evaluator.close()
    assert len(evaluator.frames) == sum(int(r) + 1 for r in returns[:2])  # each episode: reset frame + one per step
    assert evaluator.frames[0].shape == (400, 600, 3)


def test_action_repeat_does_not_multiply_the_updates(tiny):
    """train_ratio counts replayed steps per agent step (env steps / action_repeat), as the official DreamerV3.

    TINY replays 16 steps per update (batch 16, one learned step): train_ratio 10 earns 10/16 of an
    update per agent step from the agent step that reaches train.learning_starts env steps on.
    """
    common = [*tiny, "train.train_ratio=10", "eval.every=600", "checkpoint.every=600"]
    once = train([*common, "run.steps=600", "train.learning_starts=100"], quiet=True).summary
    twice_args = [*common, "env.action_repeat=2", "train.learning_starts=200"]
    twice = train([*twice_args, "run.steps=1200"], quiet=True).summary
    for summary, repeat in ((once, 1), (twice, 2)):
        agent_steps = summary["env_steps"] // repeat
        assert summary["updates"] == (agent_steps - 100 + 1) * 10 // 16, (repeat, summary)
    assert twice["env_steps"] >= 1200 and twice["env_steps"] % 2 == 0  # env/steps still counts env steps
    assert abs(twice["updates"] - once["updates"]) <= 1  # the last chunk may step one env more or less

    half = train([*twice_args, "run.steps=600"], quiet=True)
    resumed = train([f"run.resume={half.run_dir}", "run.steps=1200"], quiet=True).summary
    assert (resumed["env_steps"], resumed["updates"]) == (twice["env_steps"], twice["updates"])


def test_eta_ignores_the_steps_before_learning_and_waits_for_a_pace():
    from dreamlab.train.progress import eta_seconds, format_duration

    # learning started at 1,000 steps (t=10 s); 100 steps in the next 10 s: 10 steps/s, 900 left
    assert eta_seconds(1100, 2000, anchor=(1000, 10.0), now=20.0) == pytest.approx(90.0)
    # the old estimate took the whole run's pace (1,100 steps in 20 s) and promised 16 s
    assert eta_seconds(1100, 2000, anchor=(1000, 10.0), now=20.0) > (2000 - 1100) / (1100 / 20.0)
    assert eta_seconds(500, 2000, anchor=None, now=5.0) is None  # learning has not started: no pace yet
    assert eta_seconds(1010, 2000, anchor=(1000, 10.0), now=11.0) is None  # under 2 s of learning
    assert eta_seconds(1000, 2000, anchor=(1000, 10.0), now=30.0) is None  # no step since the anchor
    assert eta_seconds(2000, 2000, anchor=None, now=1.0) == 0.0
    assert format_duration(90.0) == "0:01:30" and format_duration(3725.4) == "1:02:05"
    assert format_duration(None) == "?"


def test_summary_says_not_reached_or_no_threshold(capsys):
    from dreamlab.train.progress import print_summary

    summary = {"run_dir": "runs/x", "end_state": "completed", "env_steps": 600, "updates": 50, "best_eval": 9.0,
               "best_step": 300, "final_eval": 9.0, "threshold": 475.0, "threshold_step": None,
               "threshold_seconds": None, "train_seconds": 1.0, "eval_seconds": 0.5}
    print_summary(summary, quiet=True)
    print_summary({**summary, "threshold": None}, quiet=True)
    print_summary({**summary, "threshold_step": 300, "threshold_seconds": 1.25}, quiet=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("steps / train s")]
    assert lines == ["steps / train s to threshold: not reached", "steps / train s to threshold: no threshold",
                     "steps / train s to threshold: 300 / 1.2"]


def test_without_a_terminal_progress_prints_plain_lines(tiny, capsys):
    run = train([*tiny, "track.print_every_s=0.05"], quiet=False)  # capsys: stderr is not a TTY
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"dreamlab: run directory {run.run_dir}"
    lines = [line for line in err if line.startswith("train ")]
    assert len(lines) >= 2, err
    for line in lines:
        assert re.fullmatch(r"train [\d,]+/600 env steps \| [\d,]+ steps/s [\d.,]+ upd/s \| eval \S+ \| "
                            r"ETA (\?|\d+:\d\d:\d\d)", line), line
    assert any("eval nan" not in line for line in lines)  # the evaluation at 300 steps shows up
