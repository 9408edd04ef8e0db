"""Atari through ale-py (the atari extra): one test per rule of env=atari100k and env=atari."""

import json

import gymnasium as gym
import numpy as np
import pytest

from dreamlab.config.load import load
from dreamlab.config.schema import EnvConfig
from dreamlab.envs.make import make_env
from dreamlab.track import names

pytest.importorskip("ale_py")
cv2 = pytest.importorskip("cv2")

PONG = "ALE/Pong-v5"


def preset(name: str, *overrides: str) -> EnvConfig:
    return load([f"env={name}", *overrides])[1].env


def atari(env_id: str = PONG, **kwargs) -> gym.Env:
    """An atari100k env (no sticky actions, minimal actions, 64x64 RGB) with ALE options changed by `kwargs`."""
    cfg = preset("atari100k")
    cfg.id, cfg.kwargs = env_id, {**cfg.kwargs, **kwargs}
    return make_env(cfg)


def bare(env_id: str = PONG, **kwargs) -> gym.Env:
    import ale_py

    gym.register_envs(ale_py)
    return gym.make(env_id, frameskip=1, repeat_action_probability=0.0, full_action_space=False, **kwargs)


def frames(env: gym.Env, seed: int, actions: np.ndarray) -> np.ndarray:
    env.reset(seed=seed)
    return np.stack([env.step(int(a))[0]["image"] for a in actions])


def test_presets_emit_uint8_image_keys_never_flattened():
    small = make_env(preset("atari100k"))
    assert small.observation_space == gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)})
    assert small.action_space == gym.spaces.Discrete(6)  # Pong's minimal action set
    obs, _ = small.reset(seed=0)
    assert set(obs) == {"image"} and obs["image"].dtype == np.uint8 and obs["image"].shape == (64, 64, 3)
    ale = small.unwrapped.ale
    assert ale.getFloat("repeat_action_probability") == 0.0 and ale.getInt("max_num_frames_per_episode") == 108_000
    large = make_env(preset("atari"))
    assert large.observation_space["image"] == gym.spaces.Box(0, 255, (96, 96, 1), np.uint8)
    assert large.action_space == gym.spaces.Discrete(18)  # the full action set
    obs, _ = large.reset(seed=0)
    assert obs["image"].shape == (96, 96, 1) and large.observation_space.contains(obs)
    ale = large.unwrapped.ale
    assert ale.getFloat("repeat_action_probability") == 0.25 and ale.getInt("max_num_frames_per_episode") == 108_000
    small.close()
    large.close()


def test_sticky_actions_make_seeds_diverge_and_without_them_seeds_never_matter():
    # ALE is deterministic given its inputs: with p=0 the seed (of ALE's RNG) changes nothing; with
    # p=0.25 the RNG repeats the previous action instead of the requested one now and then, so two
    # seeds playing the same actions diverge, while one seed replays exactly
    actions = np.random.default_rng(0).integers(0, 6, 150)
    plain = atari(noop_max=0)
    np.testing.assert_array_equal(frames(plain, 1, actions), frames(plain, 2, actions))
    sticky = atari(noop_max=0, repeat_action_probability=0.25)
    assert sticky.unwrapped.ale.getFloat("repeat_action_probability") == 0.25
    first = frames(sticky, 1, actions)
    np.testing.assert_array_equal(first, frames(sticky, 1, actions))
    assert not np.array_equal(first, frames(sticky, 2, actions))


def test_noop_starts_take_1_to_30_frames_varying_with_the_seed():
    env = make_env(preset("atari100k"))
    noops = [env.reset(seed=seed)[1]["episode_frame_number"] for seed in range(12)]
    assert all(1 <= n <= 30 for n in noops) and len(set(noops)) > 3  # no-op frames played before the first obs
    env.reset(seed=0)
    assert env.reset()[1]["episode_frame_number"] in range(1, 31)  # every reset, not only seeded ones
    none = atari(noop_max=0)
    assert [none.reset(seed=seed)[1]["episode_frame_number"] for seed in range(3)] == [0, 0, 0]


def test_each_agent_step_is_4_frames_pooled_by_max_over_the_last_two_with_rewards_summed_unclipped():
    game = "ALE/SpaceInvaders-v5"  # sprites flicker between frames: the pooling shows; rewards 5 to 30
    env, reference = atari(game, noop_max=0), bare(game)
    env.reset(seed=3)
    reference.reset(seed=3)
    actions = np.random.default_rng(1).integers(0, env.action_space.n, 300)
    pooled_differs, rewards = 0, []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(int(action))
        raw = [reference.step(int(action)) for _ in range(4)]
        if terminated:  # the game ended within the 4 frames (AtariPreprocessing then stops repeating)
            assert any(r[2] for r in raw)
            break
        expected = cv2.resize(np.maximum(raw[2][0], raw[3][0]), (64, 64), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(obs["image"], expected)
        pooled_differs += not np.array_equal(expected, cv2.resize(raw[3][0], (64, 64), interpolation=cv2.INTER_AREA))
        assert reward == sum(r[1] for r in raw)
        rewards.append(reward)
    assert len(rewards) > 100 and pooled_differs > 0  # the max over two frames matters
    assert max(rewards) > 1  # rewards are not clipped


def test_a_lost_life_is_not_a_terminal():
    env = atari("ALE/Breakout-v5")
    env.action_space.seed(0)
    _, info = env.reset(seed=0)
    lives = info["lives"]
    assert lives == 5
    for _ in range(3000):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        assert not (terminated or truncated)
        if info["lives"] < lives:
            break
    assert info["lives"] == lives - 1  # a life lost, the episode goes on
    for _ in range(20):
        assert not any(env.step(env.action_space.sample())[2:4])


def test_the_frame_cap_truncates_through_ales_own_option():
    env = atari(noop_max=0, max_num_frames_per_episode=40)
    env.reset(seed=0)
    flags = [env.step(0)[2:4] for _ in range(10)]
    assert flags == [(False, False)] * 9 + [(False, True)]  # 40 frames = 10 agent steps, truncated not terminal
    assert env.unwrapped.ale.getEpisodeFrameNumber() == 40


def test_env_steps_count_frames_not_agent_steps(tmp_path):
    from dreamlab.train.run import train

    result = train(["agent=iqn", "env=atari100k", "threads=1", "run.steps=400", "train.learning_starts=360",
                    "agent.batch_size=4", "train.train_ratio=4", "eval.every=100000", "eval.episodes=1",
                    "env.kwargs.max_num_frames_per_episode=800", "agent.hidden=[32]", "replay.capacity=1000",
                    "track.tensorboard=false", f"run.dir={tmp_path}"], quiet=True)
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    training = [r for r in rows if names.PERF_REPLAY_SIZE in r][-1]
    assert training[names.ENV_STEPS] == 400 and training[names.PERF_REPLAY_SIZE] == 100  # 100 agent steps x 4
    assert result.summary["env_steps"] == 400
    assert 10 <= result.summary["updates"] <= 11  # train_ratio 4 / batch 4: one update per agent step after 90 of them
    evaluation = [r for r in rows if names.EVAL_LENGTH_MEAN in r][-1]
    assert 4 * evaluation[names.EVAL_LENGTH_MEAN] <= 800  # episode lengths are agent steps


def test_misuse_and_the_missing_extra_are_one_line_config_errors(monkeypatch):
    from dreamlab.config.load import ConfigError

    for cfg, key in ((EnvConfig(id=PONG, kwargs={"frameskip": 4}), "env.kwargs.frameskip"),
                     (EnvConfig(id=PONG, pixels=True), "env.pixels"),
                     (EnvConfig(id=PONG, kwargs={"noop_max": -1}), "env.kwargs.noop_max")):
        with pytest.raises(ConfigError, match=key):
            make_env(cfg)
    import builtins

    real_import = builtins.__import__

    def no_ale(name, *args, **kwargs):
        if name == "ale_py":
            raise ImportError("No module named 'ale_py'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ale)
    with pytest.raises(ConfigError, match=r"needs the atari extra: pip install -e '\.\[atari\]'"):
        make_env(EnvConfig(id=PONG))


@pytest.mark.parametrize("grayscale", [False, True])
def test_frames_equal_plain_atari_preprocessing_without_the_per_frame_screen_copy(grayscale):
    cfg = preset("atari100k", f"env.grayscale={str(grayscale).lower()}")
    env = make_env(cfg)
    plain = gym.wrappers.AtariPreprocessing(
        bare(obs_type="grayscale" if grayscale else "rgb"), noop_max=30, frame_skip=4, screen_size=64,
        terminal_on_life_loss=False, grayscale_obs=grayscale, grayscale_newaxis=True, scale_obs=False)
    assert env.unwrapped._obs_type == "ram"  # the inner env no longer copies screens nobody reads
    actions = np.random.default_rng(0).integers(0, env.action_space.n, 400)
    for seed in (0, 1):  # two resets: the no-op starts read the same screens too
        obs, _ = env.reset(seed=seed)
        expected, _ = plain.reset(seed=seed)
        np.testing.assert_array_equal(obs["image"], expected)
        for action in actions:
            obs, reward, *_ = env.step(int(action))
            expected, expected_reward, *_ = plain.step(int(action))
            np.testing.assert_array_equal(obs["image"], expected)
            assert reward == expected_reward
