"""Crafter (the crafter extra): the score, the Gymnasium env, achievements in evaluation and compare."""

import json
import math

import gymnasium as gym
import numpy as np
import pytest

from dreamlab.config.load import ConfigError, load
from dreamlab.envs import crafter
from dreamlab.envs.make import make_env
from dreamlab.track import names


def test_score_is_the_geometric_mean_of_1_plus_success_rates_in_percent_minus_1():
    assert crafter.score([0.0] * 22) == 0.0
    assert crafter.score([100.0] * 22) == pytest.approx(100.0)
    assert crafter.score([100.0] + [0.0] * 21) == pytest.approx(math.exp(math.log(101) / 22) - 1)  # 0.2339
    assert crafter.score([50.0] * 11 + [0.0] * 11) == pytest.approx(math.sqrt(51) - 1)
    assert crafter.score([1.0] * 22) == pytest.approx(1.0)
    rates = [90.0, 10.0, 3.0] + [0.0] * 19
    assert crafter.score(rates) == pytest.approx(math.exp((math.log(91) + math.log(11) + math.log(4)) / 22) - 1)


def test_episode_metrics_are_success_rates_over_episodes_and_their_score():
    counts = dict.fromkeys(crafter.ACHIEVEMENTS, 0)
    infos = [{"achievements": {**counts, "wake_up": 2, "collect_wood": 5}}, {"achievements": {**counts, "wake_up": 1}}]
    metrics = crafter.episode_metrics(infos)
    assert len(metrics) == 23 and all(names.is_registered(name) for name in metrics)
    assert metrics["crafter/achievement/wake_up"] == 1.0 and metrics["crafter/achievement/collect_wood"] == 0.5
    assert metrics["crafter/achievement/collect_diamond"] == 0.0
    assert metrics[names.CRAFTER_SCORE] == pytest.approx(math.exp((math.log(101) + math.log(51)) / 22) - 1)
    assert crafter.episode_metrics([{}, {"lives": 3}]) == {}


def preset(*overrides: str):
    pytest.importorskip("crafter")
    return load(["env=crafter", *overrides])[1].env


def test_the_env_emits_64x64_frames_seeded_worlds_and_achievements_in_info():
    from crafter import constants

    assert crafter.ACHIEVEMENTS == tuple(constants.achievements) and crafter.ACTIONS == len(constants.actions)
    env = make_env(preset())
    assert env.observation_space == gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)})
    assert env.action_space == gym.spaces.Discrete(17)
    first, _ = env.reset(seed=0)
    assert first["image"].dtype == np.uint8 and first["image"].shape == (64, 64, 3)
    obs, reward, terminated, truncated, info = env.step(0)
    assert env.observation_space.contains(obs) and isinstance(reward, float) and not (terminated or truncated)
    assert set(info["achievements"]) == set(crafter.ACHIEVEMENTS)
    np.testing.assert_array_equal(env.reset(seed=0)[0]["image"], first["image"])  # a seed gives its world again
    assert not np.array_equal(env.reset(seed=1)[0]["image"], first["image"])
    assert env.unwrapped._env._length == 10000  # crafter's own episode length
    env.close()


def test_death_is_the_terminal_and_the_length_a_truncation():
    env = make_env(preset("+env.kwargs.length=5"))
    env.reset(seed=0)
    assert [env.step(0)[2:4] for _ in range(5)] == [(False, False)] * 4 + [(False, True)]
    env.reset(seed=0)
    env.unwrapped._env._player.health = 0  # the player dies at the next step
    assert env.step(0)[2:4] == (True, False)


def test_a_tiny_run_logs_achievements_and_the_score_and_compare_lists_it(tmp_path):
    from dreamlab.analyze.command import compare
    from dreamlab.analyze.summarize import Options
    from dreamlab.train.run import train

    pytest.importorskip("crafter")
    result = train(["agent=iqn", "env=crafter", "threads=1", "run.steps=40", "train.learning_starts=100000",
                    "+env.kwargs.length=20", "eval.every=100000", "eval.episodes=2", "agent.hidden=[32]",
                    "replay.capacity=1000", "track.tensorboard=false", f"run.dir={tmp_path}"], quiet=True)
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    (evaluation,) = [r for r in rows if names.CRAFTER_SCORE in r]
    rates = [evaluation[names.crafter_achievement(name)] for name in crafter.ACHIEVEMENTS]
    assert all(rate in (0.0, 0.5, 1.0) for rate in rates)  # two episodes
    assert evaluation[names.CRAFTER_SCORE] == pytest.approx(crafter.score([100 * rate for rate in rates]))
    text, _ = compare([str(result.run_dir)], Options(also=["crafter/score"]), {}, "json")
    (run,) = json.loads(text)["runs"]
    assert run["crafter/score"] == pytest.approx(evaluation[names.CRAFTER_SCORE])


def test_the_missing_extra_is_one_config_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_crafter(name, *args, **kwargs):
        if name == "crafter":
            raise ImportError("No module named 'crafter'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_crafter)
    with pytest.raises(ConfigError, match=r"needs the crafter extra: pip install -e '\.\[crafter\]'"):
        make_env(load(["env=crafter"])[1].env)
