"""DreamerV3 beyond one discrete action and one state vector: Box and MultiDiscrete actions, the
dynamics-backprop actor, dict observations of many vector and image keys, the DMC suite."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from dreamlab.agents.dreamer.actions import ActionSpace, BoundedNormal, MultiCategorical
from dreamlab.agents.dreamer.agent import DreamerAgent
from dreamlab.agents.dreamer.behavior import ReturnNormalizer
from dreamlab.agents.dreamer.world_model import select_keys
from dreamlab.config.load import load
from dreamlab.envs.make import make_env
from dreamlab.track import names
from dreamlab.train.evaluate import Evaluator
from tests.test_dreamer import TINY_DREAMER

SMALL_RUN = ["run.steps=120", "train.learning_starts=60", "train.train_ratio=64", "eval.every=1000",
             "eval.episodes=1", "eval.num_envs=1", "track.tensorboard=false", "replay.capacity=500",
             "env.num_envs=1", "track.every=1"]


class DictEnv(gym.Env):
    """Observations as robotics and DMC envs emit them: vectors of several shapes and dtypes (a
    float64 scalar included) and a non-square image; the action space is chosen by `actions`."""

    def __init__(self, actions: str = "box", images: int = 1):
        spaces = {"position": gym.spaces.Box(-1, 1, (2,), np.float64),
                  "velocity": gym.spaces.Box(-np.inf, np.inf, (), np.float64),
                  "touch": gym.spaces.Box(0, 1, (2, 2), np.float32)}
        for i in range(images):
            spaces[f"camera{i}"] = gym.spaces.Box(0, 255, (16, 32 * (i + 1), 3), np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = {"box": gym.spaces.Box(-2.0, 2.0, (3,), np.float32),
                             "multidiscrete": gym.spaces.MultiDiscrete([3, 2])}[actions]
        self.t = 0

    def _obs(self):
        return {k: (np.full(s.shape, self.t % 255, np.uint8) if s.dtype == np.uint8
                    else np.full(s.shape, 0.1 * self.t, s.dtype)) for k, s in self.observation_space.spaces.items()}

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), float(np.sum(action)), False, self.t >= 12, {}


gym.register("DreamlabDict-v0", entry_point=DictEnv)


def tiny_agent(overrides=(), env_id="Pendulum-v1"):
    _, cfg = load([*TINY_DREAMER, f"env.id={env_id}", *overrides])
    env = make_env(cfg.env)
    torch.manual_seed(0)
    return DreamerAgent(cfg, env.observation_space, env.action_space, torch.device("cpu")), cfg, env


def rollout_batch(env, agent, cfg, steps=60):
    """Records of `steps` env steps acted by the agent, as a replay batch [B, T, ...]."""
    from dreamlab.collect.sync import SyncCollector
    from dreamlab.replay.buffer import ReplayBuffer

    collector = SyncCollector([env], [0])
    buffer = ReplayBuffer(capacity=500, num_streams=1)
    for _ in range(steps):
        records, _, _ = collector.step(agent, explore=True)
        buffer.add(records)
    return buffer.sample(cfg.agent.batch_size, cfg.agent.batch_length)


# ---------------------------------------------------------------------------------------- actions
def test_bounded_normal_matches_torch_distributions_and_its_std_bounds():
    raw = torch.randn(5, 6) * 3
    dist = BoundedNormal(raw)
    mean, std_raw = raw.chunk(2, -1)
    std = 0.9 * torch.sigmoid(std_raw + 2) + 0.1
    reference = torch.distributions.Independent(torch.distributions.Normal(torch.tanh(mean), std), 1)
    action = torch.randn(5, 3) * 2  # unclipped samples beyond [-1, 1] included
    torch.testing.assert_close(dist.log_prob(action), reference.log_prob(action))
    torch.testing.assert_close(dist.entropy(), reference.entropy())
    extreme = BoundedNormal(torch.tensor([[0.0, -1e4], [0.0, 1e4], [0.0, 0.0]]))
    torch.testing.assert_close(extreme.dist.scale.flatten(), torch.tensor([0.1, 1.0, 0.9 * torch.sigmoid(
        torch.tensor(2.0)).item() + 0.1]))
    assert extreme.dist.scale[2].item() == pytest.approx(0.893, abs=1e-3)


def test_multi_categorical_sums_independent_categoricals():
    logits = torch.randn(4, 5)
    dist = MultiCategorical(logits, [3, 2])
    parts = [torch.distributions.Categorical(logits=part) for part in (logits[:, :3], logits[:, 3:])]
    action = torch.tensor([[0, 1], [2, 0], [1, 1], [2, 1]])
    torch.testing.assert_close(dist.log_prob(action), parts[0].log_prob(action[:, 0]) + parts[1].log_prob(action[:, 1]))
    torch.testing.assert_close(dist.entropy(), parts[0].entropy() + parts[1].entropy())
    sample = dist.sample()
    assert sample.shape == (4, 2) and sample[:, 0].max() < 3 and sample[:, 1].max() < 2


def test_action_space_inputs_for_the_rssm():
    multi = ActionSpace(gym.spaces.MultiDiscrete([3, 2]))
    assert multi.input_dim == 5 and multi.head_dim == 5
    torch.testing.assert_close(multi.encode(torch.tensor([[2, 0]])), torch.tensor([[0.0, 0, 1, 1, 0]]))
    box = ActionSpace(gym.spaces.Box(-1, 1, (3,)))
    assert box.input_dim == 3 and box.head_dim == 6
    discrete = ActionSpace(gym.spaces.Discrete(4))
    assert discrete.to_env(torch.tensor([[3]])).shape == (1,)
    with pytest.raises(ValueError, match="Discrete, MultiDiscrete or Box"):
        ActionSpace(gym.spaces.MultiBinary(3))


@pytest.mark.parametrize("actor_grad", ["reinforce", "dynamics"])
def test_box_dreamer_acts_in_the_space_and_updates(actor_grad):
    agent, cfg, env = tiny_agent([f"agent.actor_grad={actor_grad}"])
    obs, _ = env.reset(seed=0)
    batch_obs = {k: v[None] for k, v in obs.items()} | {"is_first": np.array([True])}
    action, state = agent.act(batch_obs, None, explore=True)
    assert action.shape == (1, 1) and action.dtype == np.float32
    mode, _ = agent.act(batch_obs, None, explore=False)
    assert np.all(np.abs(mode) <= 1)  # the mode is tanh(mean)
    metrics = agent.update(rollout_batch(env, agent, cfg))
    assert metrics[names.PERF_NONFINITE_UPDATES] == 0 and np.isfinite(metrics[names.ACTOR_LOSS])
    assert metrics[names.ACTOR_ENTROPY] > 0  # a normal with std ~0.89 per dim: entropy ~1.3


def test_dynamics_gradient_flows_through_imagined_states_reinforce_does_not_and_never_into_the_model():
    for actor_grad in ("reinforce", "dynamics"):
        agent, cfg, env = tiny_agent([f"agent.actor_grad={actor_grad}", "agent.repval_scale=0"])
        batch = rollout_batch(env, agent, cfg)
        seq = {k: torch.as_tensor(np.swapaxes(v, 0, 1)) for k, v in batch.items()}
        actions = agent.actions.encode(agent.actions.from_env(seq["action"]))
        is_first = seq["is_first"].clone()
        is_first[0] = True
        carry = (*agent.wm.rssm.initial(cfg.agent.batch_size, torch.device("cpu")), torch.zeros_like(actions[0]))
        deters, stochs, _, _ = agent.wm.rssm.observe(agent.wm.encode(seq), actions, is_first, carry)
        start = deters.detach().reshape(-1, cfg.agent.deter), stochs.detach().reshape(-1, stochs.shape[-1])
        if actor_grad == "dynamics":
            img_deter, _, _, _ = agent._imagine_dynamics(*start)
            grads = torch.autograd.grad(img_deter[-1].sum(), list(agent.actor.parameters()), allow_unused=True)
            assert any(g is not None and g.abs().sum() > 0 for g in grads)  # later states depend on the actor
        else:
            img_deter, _, _, _ = agent._imagine(start[0], start[1].view(-1, 4, 4).argmax(-1))
            assert not img_deter.requires_grad
        loss = agent._behavior_loss(deters, stochs, seq, {})
        loss.backward()
        assert all(p.grad is None or torch.all(p.grad == 0) for p in agent.wm.parameters()), actor_grad
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.actor.parameters())


def test_dynamics_needs_box_actions():
    with pytest.raises(ValueError, match="actor_grad=dynamics needs Box actions"):
        tiny_agent(["agent.actor_grad=dynamics"], env_id="CartPole-v1")


def test_multidiscrete_dreamer_acts_and_updates():
    agent, cfg, env = tiny_agent(["+env.kwargs.actions=multidiscrete"], env_id="DreamlabDict-v0")
    batch = rollout_batch(env, agent, cfg)
    assert batch["action"].shape[2:] == (2,) and batch["action"].max() <= 2
    assert agent.update(batch)[names.PERF_NONFINITE_UPDATES] == 0


# ---------------------------------------------------------------------------------------- observations
def test_every_key_encoded_and_decoded_with_its_own_loss():
    agent, cfg, env = tiny_agent(env_id="DreamlabDict-v0", overrides=["agent.cnn_depth=2"])
    assert agent.wm.vector_dims == {"position": 2, "touch": 4, "velocity": 1}
    assert agent.wm.image_channels == {"camera0": 3}
    deter, stoch = torch.zeros(2, 5, cfg.agent.deter), torch.zeros(2, 5, cfg.agent.groups * cfg.agent.classes)
    shapes = {k: tuple(v.shape) for k, v in {**agent.wm.decode_vectors(deter, stoch),
                                             **agent.wm.decode_images(deter, stoch)}.items()}
    assert shapes == {"position": (2, 5, 2), "touch": (2, 5, 4), "velocity": (2, 5, 1), "camera0": (2, 5, 16, 32, 3)}
    metrics = agent.update(rollout_batch(env, agent, cfg))
    for key in ("position", "touch", "velocity", "camera0"):
        assert np.isfinite(metrics[names.wm_loss(key)]) and names.is_registered(names.wm_loss(key))
        assert np.isfinite(metrics[names.surprise(key)] if names.surprise(key) in metrics else 0.0)


def test_key_regexes_choose_what_the_world_model_reads():
    env = make_env(load(["env.id=DreamlabDict-v0"])[1].env)
    space = env.observation_space
    assert select_keys(space, ".*", ".*") == ({"position": 2, "touch": 4, "velocity": 1}, {"camera0": (16, 32, 3)})
    assert select_keys(space, "pos.*|velocity", "$^") == ({"position": 2, "velocity": 1}, {})
    with pytest.raises(ValueError, match="no observation key matches"):
        select_keys(space, "nothing", "nothing")
    with pytest.raises(ValueError, match="agent.mlp_keys='\\(': not a regular expression"):
        select_keys(space, "(", ".*")
    total = gym.spaces.Dict({"total": gym.spaces.Box(-1, 1, (2,), np.float32)})
    with pytest.raises(ValueError, match="'total': its loss would be logged as wm/loss_total"):
        select_keys(total, ".*", ".*")
    two = make_env(load(["env.id=DreamlabDict-v0", "+env.kwargs.images=2"])[1].env).observation_space
    with pytest.raises(ValueError, match="camera0 16x32, camera1 16x64"):
        select_keys(two, ".*", ".*")


def test_return_normalizer_ignores_a_non_finite_batch():
    norm = ReturnNormalizer()
    norm.update(torch.arange(100.0))
    low, high = norm.low.clone(), norm.high.clone()
    for bad in (torch.full((100,), float("nan")), torch.cat([torch.randn(999), torch.tensor([float("inf")])])):
        scale = norm.update(bad)  # all NaN, or one infinite return among finite ones
        assert torch.equal(norm.low, low) and torch.equal(norm.high, high) and torch.isfinite(scale)


def test_eval_sample_acts_with_exploration():
    class Recorder:
        def __init__(self):
            self.explore = []

        def act(self, obs, state, explore):
            self.explore.append(explore)
            return np.zeros(len(obs["is_first"]), np.int64), state

    _, cfg = load(["env=cartpole"])
    for sample in (False, True):
        agent = Recorder()
        Evaluator(cfg.env, 0, 1, sample=sample).run(agent, 1)
        assert set(agent.explore) == {sample}


# ---------------------------------------------------------------------------------------- DMC
def test_short_dreamer_run_on_dmc_logs_every_proprio_key(tmp_path):
    pytest.importorskip("dm_control")
    pytest.importorskip("shimmy")
    from dreamlab.train.run import train

    run = train([*TINY_DREAMER, "env=dmc", "env.id=dm_control/cartpole-swingup-v0", f"run.dir={tmp_path}",
                 *SMALL_RUN, "run.steps=200", "train.learning_starts=100"], quiet=True)
    rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    for key in ("position", "velocity"):
        values = [r[names.wm_loss(key)] for r in rows if names.wm_loss(key) in r]
        assert values and all(np.isfinite(values))
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["end_state"] == "completed"
    # an episode of cartpole-swingup is 1000 env steps, truncated: the eval saw a full one
    evals = [r for r in rows if names.EVAL_LENGTH_MEAN in r]
    assert evals[-1][names.EVAL_LENGTH_MEAN] == 1000
