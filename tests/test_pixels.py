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


# ------------------------------------------------------------- envs whose own observation is a frame
class Frames(gym.Env):
    """uint8 (50, 40, C) frames (non-square, like Atari's 210x160), alone or in a Dict beside a vector;
    `space` swaps in an observation space no agent reads."""

    def __init__(self, dict_obs: bool = False, channels: int = 3, actions: str = "discrete", space: str = ""):
        frame = gym.spaces.Box(0, 255, (50, 40, channels), np.uint8)
        self.observation_space = {
            "": gym.spaces.Dict({"camera": frame, "position": gym.spaces.Box(-1, 1, (2,), np.float32)})
            if dict_obs else frame,
            "text": gym.spaces.Text(8),
            "graph": gym.spaces.Graph(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(3)),
            "stack": gym.spaces.Box(0, 255, (4, 50, 40, 3), np.uint8),
            "dict_text": gym.spaces.Dict({"camera": frame, "mission": gym.spaces.Text(8)}),
        }[space]
        self.action_space = gym.spaces.Discrete(2) if actions == "discrete" else gym.spaces.Box(-1, 1, (1,))
        self.dict_obs, self.channels = dict_obs, channels
        self.rng = np.random.default_rng(0)
        self.frame = None

    def _obs(self):
        self.frame = self.rng.integers(0, 256, (50, 40, self.channels), dtype=np.uint8)
        return {"camera": self.frame, "position": np.array([0.5, -0.5], np.float32)} if self.dict_obs else self.frame

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        return self._obs(), 0.0, False, False, {}


FRAMES = "dreamlab_test/Frames-v0"
gym.register(FRAMES, entry_point=Frames)


def frames_env(*overrides):
    _, cfg = load([f"env.id={FRAMES}", *overrides])
    return make_env(cfg.env)


@pytest.mark.parametrize("overrides, shape", [([], (64, 64, 3)), (["env.grayscale=true"], (64, 64, 1)),
                                              (["env.image_size=32"], (32, 32, 3)),
                                              (["+env.kwargs.channels=4", "env.grayscale=true"], (64, 64, 1)),
                                              (["+env.kwargs.channels=1"], (64, 64, 1))])
def test_a_frame_observation_becomes_a_square_image_resized_in_the_env(overrides, shape):
    import cv2

    env = frames_env(*overrides)
    assert env.observation_space == gym.spaces.Dict({"image": gym.spaces.Box(0, 255, shape, np.uint8)})
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"image"} and obs["image"].shape == shape and obs["image"].dtype == np.uint8
    if not overrides:  # the frame the env emitted, resized by env.pixels' code path, never flattened
        np.testing.assert_array_equal(obs["image"], cv2.resize(env.unwrapped.frame, (64, 64),
                                                               interpolation=cv2.INTER_AREA))
    assert env.observation_space.contains(env.step(0)[0])


def test_a_dict_keeps_its_frame_and_vector_and_resizes_the_frame_on_request():
    native = frames_env("+env.kwargs.dict_obs=true")
    assert native.observation_space["camera"].shape == (50, 40, 3)  # by default a Dict's frames keep their size
    resized = frames_env("+env.kwargs.dict_obs=true", "env.resize_dict_images=true", "env.grayscale=true")
    space = resized.observation_space
    assert set(space.spaces) == {"camera", "position"}
    assert space["camera"] == gym.spaces.Box(0, 255, (64, 64, 1), np.uint8)
    assert space["position"].shape == (2,) and space["position"].dtype == np.float32
    obs, _ = resized.reset(seed=0)
    assert obs["camera"].shape == (64, 64, 1) and obs["position"].tolist() == [0.5, -0.5]
    assert space.contains(obs)


@pytest.mark.parametrize("agent, overrides", [
    ("iqn", ["agent.cnn=nature"]),
    ("sac", ["agent.cnn=dreamer", "+env.kwargs.actions=box", "env.image_size=32"]),
    ("dreamer", ["agent.deter=32", "agent.hidden=16", "agent.groups=4", "agent.classes=4", "agent.blocks=4",
                 "agent.units=16", "agent.cnn_depth=2", "env.image_size=32"]),
])
def test_every_agent_reads_the_frames_through_its_cnn(agent, overrides):
    import torch

    from dreamlab.agents import make_agent

    _, cfg = load([f"agent={agent}", f"env.id={FRAMES}", "threads=1", *overrides])
    env = make_env(cfg.env)
    policy = make_agent(cfg, env.observation_space, env.action_space, torch.device("cpu"))
    nets = [v for v in vars(policy).values() if isinstance(v, torch.nn.Module)]
    assert any(isinstance(m, torch.nn.Conv2d) for net in nets for m in net.modules())
    obs, _ = env.reset(seed=0)
    action, _ = policy.act({k: v[None] for k, v in obs.items()} | {"is_first": np.array([True])}, None, explore=False)
    assert env.action_space.contains(np.asarray(action)[0])


@pytest.mark.parametrize("space, words", [
    ("text", "observation space: no agent reads Text("),
    ("graph", "observation space: no agent reads Graph("),
    ("stack", "observation space: Box(0, 255, (4, 50, 40, 3), uint8) is no image"),
    ("dict_text", "observation key 'mission': no agent reads Text("),
])
def test_an_observation_space_no_agent_reads_is_a_config_error_naming_it(space, words):
    from dreamlab.config.load import ConfigError

    with pytest.raises(ConfigError) as info:
        frames_env(f"+env.kwargs.space={space}")
    assert str(info.value).startswith(f"env.id={FRAMES}: {words}") and "\n" not in str(info.value)


def test_keep_state_of_an_env_whose_observation_is_a_frame_is_refused():
    from dreamlab.envs.pixels import _state_spaces

    with pytest.raises(ValueError, match="own observation is a frame"):
        _state_spaces(Frames().observation_space)
