"""Pixel observations: shapes, dtypes, resizing inside the env, options."""

import gymnasium as gym
import numpy as np
import pytest

from dreamlab.config.load import load
from dreamlab.envs.make import make_env
from dreamlab.envs.pixels import PixelObservation


def pixel_env(*overrides):
    _, cfg = load(["env=cartpole", "env.pixels=true", *overrides])
    return make_env(cfg.env)


def test_pixel_env_emits_small_uint8_frames_from_the_env_itself():
    env = pixel_env()
    assert env.observation_space["image"].shape == (64, 64, 3)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"image"} and obs["image"].dtype == np.uint8 and obs["image"].shape == (64, 64, 3)
    obs, *_ = env.step(0)
    assert obs["image"].shape == (64, 64, 3) and obs["image"].flags["C_CONTIGUOUS"]
    # resized where it was rendered: the wrapper's frame equals resizing the env's own render
    inner = env.unwrapped.render()
    assert inner.shape == (400, 600, 3)
    import cv2

    np.testing.assert_array_equal(obs["image"], cv2.resize(inner, (64, 64), interpolation=cv2.INTER_AREA))
    assert 0 < obs["image"].mean() < 255  # a picture, not a blank frame


def test_grayscale_keep_state_and_size_options():
    env = pixel_env("env.grayscale=true", "env.keep_state=true", "env.image_size=32", "agent.cnn=dreamer")
    obs, _ = env.reset(seed=1)
    assert obs["image"].shape == (32, 32, 1) and obs["image"].dtype == np.uint8
    assert obs["state"].shape == (4,) and obs["state"].dtype == np.float32
    assert env.observation_space.contains(obs)


def test_action_repeat_renders_once_per_agent_step(monkeypatch):
    env = pixel_env("env.action_repeat=3")
    env.reset(seed=0)
    calls = []
    render = env.unwrapped.render
    monkeypatch.setattr(env.unwrapped, "render", lambda: calls.append(1) or render())
    env.step(0)
    assert len(calls) == 1


@pytest.mark.parametrize("frame", [None, np.zeros((40, 60, 4), np.uint8), np.zeros((40, 60, 3), np.float32)])
def test_a_render_that_is_not_an_rgb_frame_is_a_clear_error(monkeypatch, frame):
    env = PixelObservation(gym.make("CartPole-v1", render_mode="rgb_array"), size=16)
    monkeypatch.setattr(env.env, "render", lambda: frame)
    with pytest.raises(ValueError, match="render\\(\\) must return uint8 \\[H, W, 3\\]"):
        env.reset(seed=0)


def test_pixels_need_an_rgb_array_render_mode():
    with pytest.raises(ValueError, match="rgb_array"):
        PixelObservation(gym.make("CartPole-v1"))


def test_collector_processes_send_resized_uint8_frames(tiny):
    """Resizing happens in the collector process: what crosses to the learner is already 36x36 uint8."""
    import torch

    from dreamlab.agents import make_agent
    from dreamlab.collect.base import spaces
    from dreamlab.collect.process import ProcessCollector

    _, cfg = load([*tiny, "env.pixels=true", "env.image_size=36", "collect.mode=process", "collect.workers=1",
                   "collect.envs_per_worker=2", "collect.chunk_steps=4"])
    agent = make_agent(cfg, *spaces(cfg), torch.device("cpu"))
    collector = ProcessCollector(cfg, agent)
    try:
        chunks = []
        while not chunks:
            chunks = [c for c in collector.collect(agent, wait=True) if c.records is not None]
        image = chunks[0].records["image"]
        assert image.shape == (4, 2, 36, 36, 3) and image.dtype == np.uint8
        assert 0 < image.mean() < 255
    finally:
        collector.close()


def test_replay_max_bytes_from_the_config_bounds_the_logged_replay_bytes(tiny):
    import json

    from dreamlab.train.run import train

    run = train([*tiny, "env.pixels=true", "env.image_size=36", "env.grayscale=true", "run.steps=200",
                 "replay.capacity=null", "replay.max_bytes=100KB", "eval.every=1000", "eval.episodes=1",
                 "eval.num_envs=1"], quiet=True)
    logged = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    sizes = [row["perf/replay_bytes"] for row in logged if "perf/replay_bytes" in row]
    step_bytes = 36 * 36 + 4 + 3 + 8  # grayscale frame, reward, three flags, action
    assert sizes and 100 * 1024 - 2 * step_bytes < sizes[-1] <= 100 * 1024  # the steps that fit, no more


def test_nature_cnn_refuses_frames_it_would_shrink_to_nothing():
    from dreamlab.nets.encoders import NatureCNN

    assert NatureCNN(3, 36).out_dim == 512
    with pytest.raises(ValueError, match="needs >= 36"):
        NatureCNN(3, 32)  # e.g. frames served by `serve-env --pixels --image-size 32`, unseen by the config check
