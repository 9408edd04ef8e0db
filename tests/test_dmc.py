"""The DeepMind Control Suite through Shimmy (the dmc extra): observations, time limit, action repeat, pixels."""

import gymnasium as gym
import numpy as np
import pytest

from dreamlab.collect.records import validate
from dreamlab.collect.sync import SyncCollector
from dreamlab.config.schema import EnvConfig
from dreamlab.envs.make import make_env  # first: it picks headless EGL before dm_control is imported

pytest.importorskip("dm_control")
pytest.importorskip("shimmy")

WALKER = "dm_control/walker-walk-v0"


def walker(**overrides):
    return make_env(EnvConfig(id=WALKER, num_envs=1, **overrides))


class Zero:
    def act(self, obs, state, explore):
        return np.zeros((len(obs["is_first"]), 6), np.float32), None


def test_proprio_keys_are_float32_vectors_and_scalars_become_length_one():
    env = walker()
    expected = {"height": (np.float32, (1,)), "orientations": (np.float32, (14,)), "velocity": (np.float32, (9,))}
    space = env.observation_space
    assert {k: (space[k].dtype, space[k].shape) for k in space.spaces} == expected
    assert env.action_space.shape == (6,) and np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    obs, _ = env.reset(seed=0)
    assert {k: (v.dtype, v.shape) for k, v in obs.items()} == expected
    raw, _ = env.unwrapped.reset(seed=0)  # Shimmy's own float64 dict, same seed
    for key, value in raw.items():
        np.testing.assert_allclose(obs[key], np.asarray(value, np.float32).reshape(-1))
    env.close()


def test_the_1000_step_episode_end_is_a_truncation_never_a_terminal():
    env = walker()
    env.reset(seed=0)
    flags = [env.step(np.zeros(6, np.float32))[2:4] for _ in range(1000)]
    assert not any(terminated for terminated, _ in flags)
    assert [truncated for _, truncated in flags] == [False] * 999 + [True]
    collector = SyncCollector([walker()], [0])
    records = [collector.step(Zero())[0] for _ in range(1001)]
    for record in records[::250]:
        validate(record, 1)
    last = [bool(r["is_last"][0]) for r in records]
    assert last == [False] * 1000 + [True] and not any(r["is_terminal"][0] for r in records)


def test_action_repeat_2_sums_rewards_and_ends_after_500_agent_steps():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (1000, 6)).astype(np.float32)
    single, repeated = walker(), walker(action_repeat=2)
    single.reset(seed=3)
    repeated.reset(seed=3)
    agent_steps, truncated = 0, False
    while not truncated:
        action = actions[agent_steps]
        _, reward, terminated, truncated, _ = repeated.step(action)
        expected = single.step(action)[1] + single.step(action)[1]
        assert reward == pytest.approx(expected, rel=1e-6, abs=1e-9) and not terminated
        agent_steps += 1
    assert agent_steps == 500


def test_pixels_are_rendered_by_mujoco_at_the_image_size_without_resize(monkeypatch):
    import dreamlab.envs.pixels as pixels

    resized = []
    monkeypatch.setattr(pixels, "resize", lambda frame, *a: resized.append(frame.shape) or frame)
    env = walker(pixels=True)
    assert env.unwrapped.render_kwargs == {"width": 64, "height": 64, "camera_id": 0}  # Shimmy is asked for 64x64
    assert env.observation_space["image"] == gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    first, _ = env.reset(seed=0)
    for _ in range(5):
        obs, *_ = env.step(np.ones(6, np.float32))
    assert set(obs) == {"image"} and obs["image"].dtype == np.uint8 and obs["image"].shape == (64, 64, 3)
    assert all(shape == (64, 64, 3) for shape in resized)  # frames arrive at the size: the resize is a no-op
    physics = env.unwrapped.physics
    np.testing.assert_array_equal(obs["image"], physics.render(64, 64, camera_id=0))  # MuJoCo's own 64x64 frame
    assert 0 < obs["image"].mean() < 255 and not np.array_equal(first["image"], obs["image"])
    obs, _ = env.reset(seed=1)  # still the current physics after a reset
    np.testing.assert_array_equal(obs["image"], physics.render(64, 64, camera_id=0))
    env.close()


def test_pixel_size_keep_state_and_the_quadruped_camera():
    env = walker(pixels=True, image_size=32, keep_state=True)
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (32, 32, 3) and obs["velocity"].dtype == np.float32 and obs["height"].shape == (1,)
    assert env.observation_space.contains(obs)
    env.close()
    quadruped = make_env(EnvConfig(id="dm_control/quadruped-walk-v0", pixels=True))
    assert quadruped.unwrapped.render_kwargs["camera_id"] == 2
    obs, _ = quadruped.reset(seed=0)
    np.testing.assert_array_equal(obs["image"], quadruped.unwrapped.physics.render(64, 64, camera_id=2))
    quadruped.close()


def test_gymnasium_mujoco_envs_work_with_the_mujoco_extra():
    env = make_env(EnvConfig(id="Hopper-v5", num_envs=1))
    obs, _ = env.reset(seed=0)
    assert obs["state"].shape == (11,) and obs["state"].dtype == np.float32 and env.action_space.shape == (3,)
    env.step(np.full(3, 5.0, np.float32))  # beyond [-1, 1]: clipped where it meets the env
    env.close()
