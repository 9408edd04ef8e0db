import numpy as np
import pytest
import torch

from dreamlab.agents.iqn.agent import IQNAgent
from dreamlab.config.load import load
from dreamlab.envs.make import make_env
from dreamlab.replay.buffer import ReplayBuffer
from tests.conftest import TINY


def make_agent(overrides=()):
    _, cfg = load([*TINY, *overrides])
    env = make_env(cfg.env)
    return IQNAgent(cfg, env.observation_space, env.action_space, torch.device("cpu")), cfg


def chain_batch(batch=32, n=3):
    """A two-state toy: reward 1 each step, never terminal."""
    buffer = ReplayBuffer(capacity=200, num_streams=1, seed=0)
    rng = np.random.default_rng(0)
    for t in range(100):
        buffer.add({"state": rng.normal(size=(1, 4)).astype(np.float32), "reward": np.ones(1, np.float32),
                    "is_first": np.array([t == 0]), "is_last": np.zeros(1, bool),
                    "is_terminal": np.zeros(1, bool), "action": rng.integers(0, 2, size=1)})
    return buffer.sample(batch, n + 1)


def test_update_returns_registered_metrics_and_moves_weights():
    agent, _ = make_agent()
    before = [p.detach().clone() for p in agent.online.parameters()]
    metrics = agent.update(chain_batch(n=agent.cfg.n_step))
    assert {"loss/td", "rl/avg_q", "grad/norm_before_clip_max/q"} <= set(metrics)
    assert all(np.isfinite(v) for v in metrics.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.online.parameters(), strict=True))


def test_q_values_approach_discounted_sum_of_rewards():
    agent, _ = make_agent(["agent.gamma=0.5", "agent.lr=3e-3", "agent.target_tau=0.1"])
    batch = chain_batch(batch=64, n=agent.cfg.n_step)
    for _ in range(600):
        agent.update(batch)
    q = agent._q_values(agent.online, {"state": torch.as_tensor(batch["state"][:, 0])}, agent.eval_taus.unsqueeze(0))
    assert abs(q.mean().item() - 2.0) < 0.3  # sum of 0.5^k over k >= 0


def test_nonfinite_loss_skips_the_step():
    agent, _ = make_agent()
    batch = chain_batch(n=agent.cfg.n_step)
    batch["reward"][:] = np.nan
    before = [p.detach().clone() for p in agent.online.parameters()]
    metrics = agent.update(batch)
    assert metrics["perf/nonfinite_updates"] == 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, agent.online.parameters(), strict=True))


def test_greedy_evaluation_is_deterministic_and_epsilon_decays():
    agent, cfg = make_agent()
    obs = {"state": np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32), "is_first": np.ones(5, bool)}
    a1, _ = agent.act(obs, None, explore=False)
    a2, _ = agent.act(obs, None, explore=False)
    assert np.array_equal(a1, a2)
    assert agent.epsilon() == cfg.agent.eps_start
    for _ in range(100):
        agent.act(obs, None, explore=True)
    assert agent.epsilon() == pytest.approx(cfg.agent.eps_end)  # 500 steps > eps_decay_steps=300


def test_box_action_space_is_rejected():
    import gymnasium as gym
    import pytest

    _, cfg = load(TINY)
    env = make_env(cfg.env)
    with pytest.raises(ValueError, match="discrete action space"):
        IQNAgent(cfg, env.observation_space, gym.spaces.Box(-1, 1, (2,)), torch.device("cpu"))
