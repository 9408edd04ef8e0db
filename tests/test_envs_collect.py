import numpy as np
import pytest

from dreamlab.collect.records import validate
from dreamlab.collect.sync import SyncCollector
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
