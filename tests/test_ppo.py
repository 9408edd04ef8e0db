"""PPO: the rollout storage, a continuous bandit, CartPole, resume, and what it refuses."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from dreamlab.agents.ppo.agent import PPOAgent
from dreamlab.config.load import load
from dreamlab.replay import persist
from dreamlab.replay.rollout import RolloutBuffer
from dreamlab.train import checkpoint
from dreamlab.train.run import train

TINY_PPO = ["agent=ppo", "env=cartpole", "threads=1", "env.num_envs=2", "agent.n_steps=25", "agent.batch_size=25",
            "agent.n_epochs=2", "run.steps=400", "eval.every=200", "eval.episodes=2", "eval.num_envs=2",
            "checkpoint.every=200", "track.every=2", "track.tensorboard=false"]


def record(step: int, envs: int = 2, last: bool = False) -> dict[str, np.ndarray]:
    return {"state": np.full((envs, 1), step, np.float32), "reward": np.full(envs, step, np.float32),
            "action": np.zeros(envs, np.int64), "is_first": np.full(envs, step == 0),
            "is_last": np.full(envs, last), "is_terminal": np.zeros(envs, bool)}


def test_rollouts_come_in_order_and_share_their_boundary_record():
    buffer = RolloutBuffer(4, num_streams=2)
    taken = []
    for step in range(10):
        buffer.add(record(step))
        if buffer.ready():
            taken.append(buffer.sample(2, 4)["state"][:, :, 0])
    assert [t[0].tolist() for t in taken] == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert all((t[0] == t[1]).all() for t in taken)  # every env's stream in the same order
    with pytest.raises(ValueError, match="not complete"):
        buffer.sample(2, 4)


def test_a_rollout_saved_midway_continues_after_a_load(tmp_path):
    buffer = RolloutBuffer(4, num_streams=2)
    for step in range(6):  # one rollout taken at step 3, then two fresh records
        buffer.add(record(step))
        if buffer.ready():
            buffer.sample(2, 4)
    manifest = persist.save(buffer, tmp_path, None, version=1)
    loaded = RolloutBuffer(4, num_streams=2)
    persist.load(loaded, tmp_path, manifest)
    assert not loaded.ready()
    loaded.add(record(6))
    assert loaded.ready() and loaded.sample(2, 4)["state"][0, :, 0].tolist() == [3, 4, 5, 6]


def make_agent(overrides=(), action_space=None, obs_dim=1):
    _, cfg = load([*TINY_PPO, *overrides])
    obs_space = gym.spaces.Dict({"state": gym.spaces.Box(-1, 1, (obs_dim,), np.float32)})
    return PPOAgent(cfg, obs_space, action_space or gym.spaces.Discrete(2), torch.device("cpu"))


def test_box_actions_learn_the_best_action_of_a_bandit_and_episode_ends_are_masked():
    """One-step episodes, reward -(a - 0.5)^2. Each env's rollout of 2 records per step pair holds the
    real transition (first -> last) and the masked one (last -> the next episode's first)."""
    envs = 64
    agent = make_agent([f"env.num_envs={envs}", "agent.n_steps=2", "agent.batch_size=64", "agent.n_epochs=4",
                        "agent.lr=3e-3", "agent.log_std_init=-0.5", "run.steps=100000"],
                       gym.spaces.Box(-1, 1, (1,), np.float32))
    obs = {"state": np.zeros((envs, 1), np.float32), "is_first": np.ones(envs, bool)}
    for _ in range(150):
        action, _ = agent.act(obs, None, explore=True)
        reward = -((np.clip(action[:, 0], -1, 1) - 0.5) ** 2)
        states = np.zeros((envs, 3, 1), np.float32)
        batch = {"state": states, "reward": np.stack([np.zeros(envs), reward, np.zeros(envs)], 1).astype(np.float32),
                 "action": np.stack([action, np.zeros_like(action), np.zeros_like(action)], 1),
                 "is_first": np.stack([np.ones(envs), np.zeros(envs), np.ones(envs)], 1).astype(bool),
                 "is_last": np.stack([np.zeros(envs), np.ones(envs), np.zeros(envs)], 1).astype(bool)}
        batch["is_terminal"] = batch["is_last"].copy()
        metrics = agent.update(batch)
    mean, _ = agent.act(obs, None, explore=False)
    assert mean[0, 0] == pytest.approx(0.5, abs=0.1)
    assert metrics["perf/nonfinite_updates"] == 0.0 and metrics["ppo/clip_fraction"] < 0.5
    # the masked transitions: one valid transition per env, so the targets hold exactly `envs`
    assert len(agent.rollout_targets(batch)["advantages"]) == envs


def test_ppo_solves_cartpole_with_rl_zoo_settings(tmp_path):
    """rl-zoo's CartPole-v1 settings (experiment=ppo_cartpole), first 30k env steps of its 100k schedule."""
    result = train(["experiment=ppo_cartpole", "threads=1", "run.steps=30000", "run.stop_when=475",
                    "eval.every=5000", "track.tensorboard=false", f"run.dir={tmp_path}"], quiet=True)
    assert result.summary["best_eval"] >= 475


def test_resume_equals_uninterrupted_run(tmp_path):
    aligned = [*TINY_PPO, f"run.dir={tmp_path}"]
    straight = train([*aligned, "run.steps=400"], quiet=True)
    half = train([*aligned, "run.steps=200"], quiet=True)
    resumed = train([f"run.resume={half.run_dir}", "run.steps=400"], quiet=True)
    assert resumed.summary["updates"] == straight.summary["updates"] == 8  # 400 steps / (2 envs x 25)
    a = checkpoint.load(straight.run_dir / "checkpoints" / "latest.pt")["agent"]
    b = checkpoint.load(resumed.run_dir / "checkpoints" / "latest.pt")["agent"]
    for key in a["net"]:
        torch.testing.assert_close(a["net"][key], b["net"][key])


@pytest.mark.parametrize("overrides, message", [
    (["collect.mode=process"], "collect.mode=process: agent=ppo learns on-policy"),
    (["env.pixels=true", "env.frame_stack=4"], "env.frame_stack=4: agent=ppo reads single frames"),
])
def test_what_ppo_cannot_run_is_a_one_line_config_error(tmp_path, overrides, message):
    result = subprocess.run([sys.executable, "-m", "dreamlab.cli", "train", "--quiet", *TINY_PPO, *overrides,
                             f"run.dir={tmp_path}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())
