"""What a run records beside its scalars: TensorBoard config text and hparams, training-time
evaluation videos, MLflow source tags, and throughput rows that stay honest to the last one."""

import json
from pathlib import Path

import pytest

from dreamlab.track import names
from dreamlab.train.run import train
from tests.conftest import TINY


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny IQN run on CartPole shared by the tests below: TensorBoard on, a video every second
    evaluation; 610 steps end on a short window after a final evaluation (evaluations at 300, 600, 610)."""
    runs = tmp_path_factory.mktemp("tracking") / "runs"
    return train([*TINY, f"run.dir={runs}", "track.tensorboard=true", "track.video_every=2", "run.steps=610"],
                 quiet=True)


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def events(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"tensors": 0, "scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def test_tensorboard_holds_the_config_as_text_and_hparams(run):
    board = events(run.run_dir)
    (text,) = board.Tensors("config/text_summary")
    shown = text.tensor_proto.string_val[0].decode()
    assert "primary_metric: eval/return_mean" in shown and "    agent:" in shown  # indented: a code block
    plugin = board.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(plugin)
    from tensorboard.plugins.hparams import plugin_data_pb2

    start = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["agent.name"].string_value == "iqn" and hparams["agent.batch_size"].number_value == 16
    assert hparams["agent.hidden"].string_value == "[32, 32]"
    best = [e.value for e in board.Scalars("best/eval/return_mean")]
    final = [e.value for e in board.Scalars("final/eval/return_mean")]
    assert best == [pytest.approx(run.summary["best_eval"])] and final == [pytest.approx(run.summary["final_eval"])]


def test_video_every_writes_an_evaluation_episode_to_the_run_directory(run):
    from tests.test_media import mp4_codec

    assert [e[0] for e in run.summary["evals"]] == [300, 600, 610]
    videos = sorted(p.name for p in (run.run_dir / "videos").iterdir())
    assert videos == ["eval_00000300.mp4", "eval_00000610.mp4"]  # the 1st and 3rd evaluations
    meta = mp4_codec(run.run_dir / "videos" / videos[0])
    assert meta["codec"] == "h264" and meta["fps"] == 50 and meta["frames"] >= 2  # CartPole renders at 50 fps
    assert meta["size"] == (600, 400)
    board = events(run.run_dir)
    assert [e.step for e in board.Images(names.VIDEO_EVAL)] == [300, 610]


def test_the_last_row_reports_the_runs_throughput(run):
    rates = [(r["step"], r[names.ENV_STEPS_PER_S]) for r in rows(run.run_dir) if names.ENV_STEPS_PER_S in r]
    overall = run.summary["env_steps"] / run.summary["train_seconds"]
    last_step, last_rate = rates[-1]
    assert last_step == 610
    # the last window is a few steps long and follows the final evaluation (with a video to encode):
    # divided by wall time it read near zero; per training second it reads like the rest of the run
    assert last_rate > 0.25 * overall, (rates[-3:], overall)


def test_video_every_refuses_a_remote_env(tmp_path):
    with pytest.raises(ValueError, match="cannot be recorded"):
        train([*TINY, f"run.dir={tmp_path}", "env=remote", "env.address=127.0.0.1:1", "track.video_every=1",
               "env.retries=0", "env.timeout_s=0.5"], quiet=True)
