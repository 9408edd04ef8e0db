import sys

import gymnasium as gym
import numpy as np
import pytest

from dreamlab.collect.records import action_spec, is_image, obs_keys, validate
from dreamlab.collect.sync import SyncCollector
from dreamlab.config.load import load
from dreamlab.config.schema import EnvConfig
from dreamlab.envs.make import env_seed, make_env


class Constant:
    """A policy that always pushes right (CartPole falls quickly)."""

    def act(self, obs, state, explore):
        return np.ones(len(obs["is_first"]), np.int64), None


def test_make_env_dict_obs_and_action_repeat():
    env = make_env(EnvConfig(id="CartPole-v1", action_repeat=3))
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"state"} and obs["state"].dtype == np.float32 and obs["state"].shape == (4,)
    _, reward, *_ = env.step(1)
    assert reward == 3.0


def test_unknown_env_id_is_a_clear_error():
    with pytest.raises(ValueError, match="env.id='NoSuchEnv-v0'"):
        make_env(EnvConfig(id="NoSuchEnv-v0"))


def test_records_with_float_or_flat_images_are_rejected():
    records = {"reward": np.zeros(2, np.float32), "action": np.zeros(2, np.int64),
               **{flag: np.zeros(2, bool) for flag in ("is_first", "is_last", "is_terminal")}}
    validate({**records, "image": np.zeros((2, 8, 8, 3), np.uint8)}, 2)
    for bad in (np.zeros((2, 8, 8, 3), np.float32), np.zeros((2, 64), np.uint8)):
        with pytest.raises(ValueError, match="expected uint8 \\[H, W, C\\]"):
            validate({**records, "image": bad}, 2)


def test_records_follow_first_last_terminal_convention():
    envs = [make_env(EnvConfig(id="CartPole-v1")) for _ in range(2)]
    collector = SyncCollector(envs, [env_seed(0, i) for i in range(2)])
    rows = []
    for _ in range(40):
        records, _, _ = collector.step(Constant())
        validate(records, 2)
        rows.append(records)
    first = np.stack([r["is_first"] for r in rows])
    last = np.stack([r["is_last"] for r in rows])
    terminal = np.stack([r["is_terminal"] for r in rows])
    reward = np.stack([r["reward"] for r in rows])
    assert first[0].all() and not last[0].any()
    assert np.array_equal(first[1:], last[:-1])  # after every last record comes a first one
    assert np.array_equal(terminal, last)  # pushing right ends by falling, not by the time limit
    assert np.all(reward[first] == 0) and np.all(reward[~first] == 1)
    actions = np.stack([r["action"] for r in rows])
    assert np.all(actions[last] == 0) and np.all(actions[~last] == 1)  # dummy action on last records


def test_time_limit_is_last_without_terminal():
    envs = [make_env(EnvConfig(id="CartPole-v1", max_episode_steps=5))]
    collector = SyncCollector(envs, [0])
    flags = [collector.step(Constant())[0] for _ in range(6)]
    assert [bool(f["is_last"][0]) for f in flags] == [False] * 5 + [True]
    assert not flags[-1]["is_terminal"][0]


def test_collector_state_roundtrip_continues_identically():
    def run(collector, steps):
        return [collector.step(Constant())[0]["state"].copy() for _ in range(steps)]

    make = lambda: SyncCollector([make_env(EnvConfig(id="CartPole-v1")) for _ in range(2)], [3, 4])  # noqa: E731
    a = make()
    run(a, 13)
    b = make()
    b.load_state_dict(a.state_dict())
    assert all(np.array_equal(x, y) for x, y in zip(run(a, 30), run(b, 30), strict=True))


# ---------------------------------------------------------------- the env contract: observations and actions
class Recorder(gym.Env):
    """A tiny env that returns a fixed observation and records every action env.step receives."""

    def __init__(self, action_space=None, observation_space=None, obs=None):
        self.action_space = action_space or gym.spaces.Discrete(2)
        self.observation_space = observation_space or gym.spaces.Box(-1, 1, (2,), np.float32)
        self.obs = obs if obs is not None else np.zeros(2, np.float32)
        self.received = []

    def _obs(self):
        if isinstance(self.obs, dict):
            return {k: np.array(v) for k, v in self.obs.items()}
        return np.array(self.obs)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        self.received.append(np.array(action))
        return self._obs(), 0.0, False, False, {}


RECORDER = "dreamlab_test/Recorder-v0"
gym.register(RECORDER, entry_point=Recorder)


def recorder(**kwargs):
    return make_env(EnvConfig(id=RECORDER, num_envs=1, kwargs=kwargs))


def dict_recorder(spaces, values):
    return recorder(observation_space=gym.spaces.Dict(spaces), obs=values)


def test_dict_observations_become_float32_vectors_and_uint8_images():
    image = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3)  # non-square, kept as is
    spaces = {"height": gym.spaces.Box(-np.inf, np.inf, (), np.float64),
              "grid": gym.spaces.Box(-10, 10, (2, 3), np.float64),
              "count": gym.spaces.Box(0, 100, (2,), np.int32),
              "pixels": gym.spaces.Box(0, 255, (8, 6, 3), np.uint8)}
    values = {"height": np.array(2.5), "grid": np.arange(6.0).reshape(2, 3), "count": np.array([3, 4], np.int32),
              "pixels": image}
    env = dict_recorder(spaces, values)
    space = env.observation_space
    assert {k: (space[k].dtype, space[k].shape) for k in space.spaces} == {
        "height": (np.float32, (1,)), "grid": (np.float32, (6,)), "count": (np.float32, (2,)),
        "pixels": (np.uint8, (8, 6, 3))}
    assert space["grid"].high.tolist() == [10.0] * 6
    obs, _ = env.reset(seed=0)
    assert obs["height"].dtype == np.float32 and obs["height"].tolist() == [2.5]
    assert obs["grid"].tolist() == [0, 1, 2, 3, 4, 5]  # row-major flattening
    assert obs["count"].dtype == np.float32 and obs["count"].tolist() == [3, 4]
    assert obs["pixels"].dtype == np.uint8 and np.array_equal(obs["pixels"], image)
    assert space.contains(obs)


@pytest.mark.parametrize("key", ["reward", "action", "is_first", "is_last", "is_terminal", ""])
def test_observation_keys_that_collide_with_record_fields_are_rejected(key):
    with pytest.raises(ValueError, match=f"observation key '{key}'") as info:
        dict_recorder({key: gym.spaces.Box(-1, 1, (2,))}, {key: np.zeros(2, np.float32)})
    assert "\n" not in str(info.value)


def test_nested_dict_observations_are_rejected_naming_the_key():
    inner = gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (2,))})
    with pytest.raises(ValueError, match="observation key 'arm': nested Dict"):
        dict_recorder({"arm": inner}, {"arm": {"x": np.zeros(2, np.float32)}})


def test_discrete_start_is_added_where_actions_meet_the_env():
    env = recorder(action_space=gym.spaces.Discrete(3, start=-1))
    assert env.action_space == gym.spaces.Discrete(3)  # agents act in 0..n-1
    env.reset(seed=0)
    for action in (0, 1, 2):
        env.step(action)
    assert [int(a) for a in env.unwrapped.received] == [-1, 0, 1]


def test_multidiscrete_start_is_added_and_collected_as_int64_vectors():
    env = recorder(action_space=gym.spaces.MultiDiscrete([3, 2], start=[1, -1]))
    assert env.action_space == gym.spaces.MultiDiscrete([3, 2])
    assert action_spec(env.action_space) == ((2,), np.dtype(np.int64))

    class Corner:
        def act(self, obs, state, explore):
            return np.array([[2, 1]]), None

    collector = SyncCollector([env], [0])
    records = [collector.step(Corner())[0] for _ in range(2)]
    for record in records:
        validate(record, 1)
        assert record["action"].dtype == np.int64 and record["action"].tolist() == [[2, 1]]
    assert [a.tolist() for a in env.unwrapped.received] == [[3, 0], [3, 0]]


def test_box_actions_are_clipped_to_unit_then_rescaled_to_the_env_bounds():
    env = recorder(action_space=gym.spaces.Box(np.array([0, -2], np.float32), np.array([10, 2], np.float32)))
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    env.reset(seed=0)
    for action in ([2.0, -5.0], [0.0, 0.5], [-1.0, 1.0]):
        env.step(np.array(action, np.float32))
    received = env.unwrapped.received
    assert [a.tolist() for a in received] == [[10, -2], [5, 1], [0, 2]]
    assert all(a.dtype == np.float32 for a in received)


def test_unit_box_actions_are_clipped_too():
    env = recorder(action_space=gym.spaces.Box(-1, 1, (2,), np.float64))
    env.reset(seed=0)
    env.step(np.array([3.0, -0.25], np.float32))
    assert env.unwrapped.received[0].tolist() == [1.0, -0.25] and env.unwrapped.received[0].dtype == np.float64


def test_records_take_any_observation_keys_and_4d_uint8_is_an_image():
    records = {"reward": np.zeros(2, np.float32), "action": np.zeros(2, np.int64),
               **{flag: np.zeros(2, bool) for flag in ("is_first", "is_last", "is_terminal")}}
    validate({**records, "orientations": np.zeros((2, 14), np.float32), "camera": np.zeros((2, 8, 6, 3), np.uint8)}, 2)
    assert is_image(np.zeros((2, 8, 6, 3), np.uint8)) and not is_image(np.zeros((2, 14), np.float32))
    assert obs_keys({**records, "velocity": np.zeros((2, 9), np.float32)}) == ["velocity"]
    with pytest.raises(ValueError, match="no observation key"):
        validate(records, 2)
    with pytest.raises(ValueError, match="lacks keys \\['reward'\\]"):
        validate({k: v for k, v in records.items() if k != "reward"} | {"state": np.zeros((2, 4), np.float32)}, 2)


def test_dm_control_ids_without_the_extra_are_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dm_control.suite", None)  # import fails as if not installed
    with pytest.raises(ValueError) as info:
        make_env(EnvConfig(id="dm_control/walker-walk-v0"))
    message = str(info.value)
    assert message.startswith("env.id=dm_control/walker-walk-v0: needs the dmc extra: pip install -e '.[dmc]'")
    assert "\n" not in message


def test_dmc_preset_follows_the_dreamerv3_protocol():
    _, cfg = load(["agent=sac", "env=dmc"])
    assert cfg.env.id == "dm_control/walker-walk-v0" and cfg.env.num_envs == 1 and cfg.env.action_repeat == 1
    assert (cfg.eval.every, cfg.eval.episodes, cfg.run.steps) == (10_000, 10, 100_000)


def test_a_discrete_observation_is_a_one_value_state_and_channels_first_frames_are_refused():
    from dreamlab.config.load import ConfigError

    env = make_env(EnvConfig(id="FrozenLake-v1"))  # Discrete(16): the agent's cell
    assert env.observation_space["state"] == gym.spaces.Box(0, 15, (1,), np.float32)
    assert env.reset(seed=0)[0]["state"].tolist() == [0.0]
    channels_first = gym.spaces.Box(0, 255, (3, 8, 8), np.uint8)
    with pytest.raises(ConfigError, match=r"observation key 'pixels': Box\(0, 255, \(3, 8, 8\), uint8\) is no image"):
        dict_recorder({"pixels": channels_first}, {"pixels": np.zeros((3, 8, 8), np.uint8)})
