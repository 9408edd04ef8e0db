"""SAC: loss pieces against hand values, the temperature, a learning toy, resume and the CLI."""

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from dreamlab import functional as fn
from dreamlab.agents.sac.agent import SACAgent
from dreamlab.config.load import load
from dreamlab.envs.make import make_env
from dreamlab.nets.ensemble import EnsembleMLP
from dreamlab.replay.buffer import ReplayBuffer

TINY_SAC = [
    "agent=sac",
    "env=pendulum",
    "threads=1",
    "run.steps=400",
    "train.learning_starts=100",
    "train.train_ratio=32",
    "eval.every=200",
    "eval.episodes=1",
    "eval.num_envs=1",
    "checkpoint.every=200",
    "track.every=10",
    "agent.hidden=[32,32]",
    "agent.batch_size=32",
    "replay.capacity=1000",
    "replay.chunk=64",
    "track.tensorboard=false",
    "env.max_episode_steps=50",
]


def make_agent(overrides=(), action_space=None):
    _, cfg = load([*TINY_SAC, *overrides])
    env = make_env(cfg.env)
    return SACAgent(cfg, env.observation_space, action_space or env.action_space, torch.device("cpu")), cfg


def test_squashed_gaussian_log_prob_matches_the_change_of_variables():
    torch.manual_seed(0)
    mean, log_std = torch.randn(64, 3), torch.randn(64, 3) * 0.5
    pre_tanh = mean + log_std.exp() * torch.randn(64, 3)
    u = pre_tanh.double()  # the naive form loses digits in float32 where tanh(u) nears 1
    normal = torch.distributions.Normal(mean.double(), log_std.double().exp())
    brute = (normal.log_prob(u) - torch.log(1 - torch.tanh(u) ** 2)).sum(-1).float()
    torch.testing.assert_close(fn.squashed_gaussian_log_prob(pre_tanh, mean, log_std), brute, rtol=1e-4, atol=1e-4)
    # far in the tail tanh(u) rounds to 1 and the naive form is -inf; the stable one stays finite
    far = torch.tensor([[30.0]])
    assert torch.isfinite(fn.squashed_gaussian_log_prob(far, torch.zeros(1, 1), torch.zeros(1, 1))).all()


def test_soft_q_target_by_hand():
    next_q = torch.tensor([[3.0, 1.0], [2.0, 5.0]])  # [critics, B]: min is 2, 1
    target = fn.soft_q_target(
        torch.tensor([1.0, 1.0]), torch.tensor([0.9, 0.0]), next_q, torch.tensor([-1.0, 4.0]), 0.5
    )
    torch.testing.assert_close(target, torch.tensor([1.0 + 0.9 * (2.0 + 0.5), 1.0]))


def transitions(end: str):
    """Two-record windows whose second record ends an episode by `end`: terminal or time limit."""
    buffer = ReplayBuffer(capacity=10, num_streams=1, seed=0)
    for t in range(2):
        last = t == 1
        buffer.add(
            {
                "state": np.full((1, 3), t, np.float32),
                "reward": np.full(1, 0.0 if t == 0 else 1.0, np.float32),
                "is_first": np.array([t == 0]),
                "is_last": np.array([last]),
                "is_terminal": np.array([last and end == "terminal"]),
                "action": np.zeros((1, 1), np.float32),
            }
        )
    return buffer.sample(4, 2)


@pytest.mark.parametrize("end", ["terminal", "time_limit"])
def test_a_time_limit_bootstraps_and_a_terminal_does_not(end):
    batch = transitions(end)
    flags = {k: torch.from_numpy(batch[k].T) for k in ("reward", "is_first", "is_terminal", "is_last")}
    rewards, discounts, _, valid = fn.n_step_returns(
        flags["reward"], flags["is_first"], flags["is_terminal"], flags["is_last"], 0.99
    )
    assert valid.all()
    target = fn.soft_q_target(rewards, discounts, torch.full((2, 4), 10.0), torch.zeros(4), 0.2)
    expected = 1.0 if end == "terminal" else 1.0 + 0.99 * 10.0
    torch.testing.assert_close(target, torch.full((4,), expected))


def test_ensemble_equals_separate_mlps_and_detach_cuts_only_the_weights():
    torch.manual_seed(0)
    net = EnsembleMLP(2, 5, [8, 8], 1)
    x = torch.randn(7, 5, requires_grad=True)
    out = net(x)
    for m in range(2):
        h = x
        for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
            h = h @ w[m] + b[m, 0]
            h = torch.relu(h) if i < 2 else h
        torch.testing.assert_close(out[m], h)
    net(x, detach=True).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def bandit_batch(rng, size=128):
    """One-step episodes from a fixed state; reward -(a - 0.5)^2, then a terminal record."""
    actions = rng.uniform(-1, 1, size=(size, 1)).astype(np.float32)
    state = np.zeros((size, 2, 3), np.float32)
    reward = np.stack([np.zeros(size), -((actions[:, 0] - 0.5) ** 2)], 1).astype(np.float32)
    is_first = np.stack([np.ones(size, bool), np.zeros(size, bool)], 1)
    is_last = np.stack([np.zeros(size, bool), np.ones(size, bool)], 1)
    action = np.stack([actions, np.zeros_like(actions)], 1)
    return {
        "state": state,
        "reward": reward,
        "is_first": is_first,
        "is_last": is_last,
        "is_terminal": is_last.copy(),
        "action": action,
    }


@pytest.mark.parametrize("sequential", [False, True])
def test_actor_learns_the_best_action_of_a_bandit_and_alpha_falls(sequential):
    agent, _ = make_agent(["agent.lr=3e-3", "agent.hidden=[64,64]", f"agent.sequential={sequential}"])
    rng = np.random.default_rng(0)
    for _ in range(400):
        metrics = agent.update(bandit_batch(rng))
    assert metrics["sac/alpha"] < 0.5  # entropy above the -1 target pushes the temperature down
    action, _ = agent.act({"state": np.zeros((1, 3), np.float32), "is_first": np.ones(1, bool)}, None, explore=False)
    assert action[0, 0] == pytest.approx(0.5, abs=0.1)
    assert {
        "sac/q_loss",
        "sac/policy_loss",
        "sac/alpha",
        "rl/avg_q",
        "grad/norm_before_clip_max/actor",
        "grad/norm_before_clip_max/critic",
    } <= set(metrics)


def test_temperature_rises_when_entropy_is_below_its_target():
    agent, _ = make_agent(["agent.target_entropy=5.0", "agent.lr=1e-2"])
    rng = np.random.default_rng(0)
    alphas = [agent.update(bandit_batch(rng, 32))["sac/alpha"] for _ in range(30)]
    assert alphas[-1] > alphas[0] > 0.99  # a 1-d squashed Gaussian cannot reach entropy 5


@pytest.mark.parametrize("sequential", [False, True])
def test_policy_loss_trains_only_the_actor(sequential):
    agent, _ = make_agent([f"agent.sequential={sequential}"])
    batch = bandit_batch(np.random.default_rng(0), 16)
    batch["is_first"][:] = True  # every window starts at an episode end: no valid critic sample
    batch["is_last"][:, 0] = True
    before = [p.detach().clone() for p in agent.critic.parameters()]
    agent.update(batch)
    assert all(torch.equal(a, b) for a, b in zip(before, agent.critic.parameters(), strict=True))


def test_random_actions_before_learning_starts_then_deterministic_mean():
    agent, _ = make_agent(["train.learning_starts=10"])
    obs = {"state": np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32), "is_first": np.ones(5, bool)}
    a1, _ = agent.act(obs, None, explore=True)
    assert a1.shape == (5, 1) and a1.dtype == np.float32 and np.all(np.abs(a1) <= 1)
    assert agent.env_steps == 5
    e1, _ = agent.act(obs, None, explore=False)
    e2, _ = agent.act(obs, None, explore=False)
    assert np.array_equal(e1, e2) and agent.env_steps == 5


def test_random_phase_counts_env_steps_with_the_action_repeat():
    """learning_starts is in env steps (agent steps x repeat), as the update schedule counts them."""
    agent, _ = make_agent(["train.learning_starts=10", "env.action_repeat=2"])
    obs = {"state": np.zeros((1, 3), np.float32), "is_first": np.ones(1, bool)}
    for _ in range(5):
        agent.act(obs, None, explore=True)
    assert agent.env_steps == 10 and agent.env_steps >= agent.random_steps


def test_discrete_action_space_is_rejected_with_a_pointer():
    with pytest.raises(ValueError, match="agent=iqn or agent=dreamer"):
        make_agent(action_space=gym.spaces.Discrete(3))


def test_box_actions_are_rescaled_to_the_env_bounds_in_make_env():
    _, cfg = load(TINY_SAC)
    env = make_env(cfg.env)
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    env.reset(seed=0)
    assert env.unwrapped.action_space.high[0] == 2.0
    rescaled = env.get_wrapper_attr("action")  # the RescaleAction wrapper's mapping
    assert rescaled(np.array([1.0], np.float32))[0] == pytest.approx(2.0)
    assert rescaled(np.array([-0.5], np.float32))[0] == pytest.approx(-1.0)


def test_sac_resume_equals_uninterrupted_run_and_eval_reads_best(tmp_path):
    from dreamlab.train import checkpoint
    from dreamlab.train.run import train

    common = [*TINY_SAC, f"run.dir={tmp_path}"]
    straight = train([*common, "run.steps=400"], quiet=True)
    half = train([*common, "run.steps=200"], quiet=True)
    resumed = train([f"run.resume={half.run_dir}", "run.steps=400"], quiet=True)
    assert resumed.summary["updates"] == straight.summary["updates"] > 0
    a = checkpoint.load(straight.run_dir / "checkpoints" / "latest.pt")["agent"]
    b = checkpoint.load(resumed.run_dir / "checkpoints" / "latest.pt")["agent"]
    for part in ("actor", "critic", "target_critic"):
        for key in a[part]:
            torch.testing.assert_close(a[part][key], b[part][key], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a["log_alpha"], b["log_alpha"])
    assert (straight.run_dir / "checkpoints" / "best.pt").exists()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dreamlab.cli",
            "eval",
            str(straight.run_dir),
            "--checkpoint",
            "best",
            "--episodes",
            "2",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "return" in result.stdout


def test_cli_rejects_sac_on_a_discrete_env(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dreamlab.cli",
            "train",
            "--quiet",
            *TINY_SAC,
            "env=cartpole",
            "env.max_episode_steps=50",
            f"run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "agent=iqn or agent=dreamer" in result.stderr and result.stderr.count("\n") == 1
    assert not list(tmp_path.iterdir())  # no run directory left behind


def test_pixel_sac_and_iqn_train_with_frame_stacks(tmp_path):
    """SAC (Pendulum frames) and IQN (CartPole frames) from 36x36 images with 3 stacked frames, end to end."""
    from dreamlab.train import checkpoint
    from dreamlab.train.run import train

    pixels = ["env.pixels=true", "env.image_size=36", "env.frame_stack=3", "env.grayscale=true"]
    sac = train([*TINY_SAC, f"run.dir={tmp_path}", *pixels, "run.steps=160", "train.learning_starts=100",
                 "agent.batch_size=8"], quiet=True)
    iqn = train(["agent=iqn", "env=cartpole", "threads=1", f"run.dir={tmp_path}", *pixels, "run.steps=160",
                 "train.learning_starts=100", "train.train_ratio=16", "agent.batch_size=8", "agent.hidden=[32]",
                 "eval.every=1000", "eval.episodes=1", "eval.num_envs=1", "track.tensorboard=false"], quiet=True)
    for run in (sac, iqn):
        assert run.summary["updates"] > 0 and run.summary["nonfinite_updates"] == 0
    state = checkpoint.load(sac.run_dir / "checkpoints" / "latest.pt")["agent"]
    assert state["encoder"]["cnn.convs.0.weight"].shape[1] == 3  # 3 stacked grayscale frames


def test_frame_stacker_repeats_the_first_frame_and_shifts():
    from dreamlab.nets.encoders import FrameStacker

    stacker = FrameStacker(3)
    frame = lambda v: torch.full((2, 1, 1, 1), v, dtype=torch.uint8)  # noqa: E731
    stack = stacker(frame(1), torch.tensor([True, True]), None)
    assert stack[0, 0, 0].tolist() == [1, 1, 1]
    stack = stacker(frame(2), torch.tensor([False, True]), stack)
    assert stack[0, 0, 0].tolist() == [1, 1, 2] and stack[1, 0, 0].tolist() == [2, 2, 2]


def test_sequential_mode_trains_the_actor_against_the_updated_critics():
    """Same batch, same start: the joint and the sequential update move the critics identically and the
    actor differently (the sequential actor's gradient comes from the critics after their step)."""
    batch = bandit_batch(np.random.default_rng(3), 64)
    agents = []
    for sequential in (False, True):
        torch.manual_seed(0)  # the same initial weights
        agent, _ = make_agent([f"agent.sequential={sequential}", "train.learning_starts=0"])
        agent.update(batch)
        agents.append(agent)
    joint, seq = agents
    for a, b in zip(joint.critic.parameters(), seq.critic.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert any(not torch.allclose(a, b) for a, b in zip(joint.actor.parameters(), seq.actor.parameters(), strict=True))


def image_batch(size: int) -> dict:
    rng = np.random.default_rng(0)
    batch = bandit_batch(rng, 8)
    del batch["state"]
    batch["image"] = rng.integers(0, 256, (8, 2, size, size, 3), dtype=np.uint8)
    return batch


def first_step_encoder_grads(overrides: list[str], size: int) -> list[torch.Tensor]:
    """The encoder's gradients at the update's first optimizer step, from fixed initial weights."""
    torch.manual_seed(0)
    agent, _ = make_agent(["env.pixels=true", f"env.image_size={size}", *overrides])
    grads = []
    step = agent.optimizer.step
    agent.optimizer.step = lambda: (grads or grads.extend(p.grad.clone() for p in agent.encoder.parameters()), step())
    torch.manual_seed(1)
    agent.update(image_batch(size))
    return grads


@pytest.mark.parametrize("cnn, size", [("nature", 36), ("dreamer", 32)])
def test_joint_update_trains_the_encoder_with_the_critic_loss_alone(cnn, size):
    """One joint backward of critic + actor + temperature losses gives the encoder exactly the gradient the
    sequential mode's critic-only step gives it: the actor's loss never reaches the encoder."""
    joint = first_step_encoder_grads([f"agent.cnn={cnn}"], size)
    critic_only = first_step_encoder_grads([f"agent.cnn={cnn}", "agent.sequential=true"], size)
    assert len(joint) == len(critic_only) > 0 and any(g.abs().sum() > 0 for g in joint)
    for a, b in zip(joint, critic_only, strict=True):
        torch.testing.assert_close(a, b)


def test_pixel_encoder_learns_from_the_critic_only():
    """The shared CNN gets gradients from the critic loss and none from the actor or temperature loss."""
    agent, _ = make_agent(["env.pixels=true", "env.image_size=36", "agent.sequential=true"])
    batch = image_batch(36)
    losses = []
    original = agent._step
    agent._step = lambda loss, groups: (losses.append((loss, groups)), original(loss, groups))[1]
    before = [p.detach().clone() for p in agent.encoder.parameters()]
    agent.update(batch)
    (critic_loss, critic_groups), (actor_loss, actor_groups) = losses
    assert critic_groups == ("critic",) and actor_groups == ("actor",)
    encoder = list(agent.encoder.parameters())
    assert all(g is None for g in torch.autograd.grad(actor_loss, encoder, allow_unused=True))
    assert any(not torch.equal(a, b) for a, b in zip(before, encoder, strict=True))  # the critic step moved it


def test_model_free_encoder_concatenates_every_vector_key_in_name_order():
    from dreamlab.nets.encoders import ObservationEncoder

    space = gym.spaces.Dict({"velocity": gym.spaces.Box(-1, 1, (1,), np.float32),
                             "position": gym.spaces.Box(-1, 1, (2,), np.float32)})
    encoder = ObservationEncoder(space)
    assert encoder.out_dim == 3 and encoder.vector_keys == ["position", "velocity"]
    obs = {"position": np.array([[1.0, 2.0]], np.float32), "velocity": np.array([[3.0]], np.float32),
           "is_first": np.array([True])}
    inputs, _ = encoder.acting_inputs(obs, None, torch.device("cpu"))
    torch.testing.assert_close(encoder(inputs), torch.tensor([[1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match="one image, named 'image'"):
        ObservationEncoder(gym.spaces.Dict({"camera": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)}))


def test_sac_trains_on_the_dmc_suite(tmp_path):
    pytest.importorskip("dm_control")
    pytest.importorskip("shimmy")
    from dreamlab.train.run import train

    run = train(["agent=sac", "env=dmc", "env.id=dm_control/reacher-easy-v0", f"run.dir={tmp_path}", "threads=1",
                 "run.steps=300", "train.learning_starts=200", "agent.batch_size=32", "agent.hidden=[32,32]",
                 "eval.every=1000", "eval.episodes=1", "eval.num_envs=1", "track.tensorboard=false",
                 "track.every=10"], quiet=True)
    rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["sac/q_loss"] for r in rows if "sac/q_loss" in r]
    assert [r for r in rows if "eval/return_mean" in r][-1]["eval/length_mean"] == 1000


def test_pixel_sac_keeps_a_polyak_target_encoder_for_the_target_critics():
    """The target critics read the next observations through a copy of the encoder that follows the
    online one by target' = (1 - tau) target + tau online at every target update; it is saved and loaded."""
    pixels = ["env.pixels=true", "env.image_size=36", "agent.tau=0.1", "train.learning_starts=0"]
    torch.manual_seed(0)
    agent, _ = make_agent(pixels)
    online, target = list(agent.encoder.parameters()), list(agent.target_encoder.parameters())
    assert len(online) == len(target) > 0 and all(torch.equal(o, t) for o, t in zip(online, target, strict=True))
    assert not any(t.requires_grad for t in target)
    batch = image_batch(36)
    for _ in range(3):
        agent.update(batch)
    assert any(not torch.equal(o, t) for o, t in zip(online, target, strict=True))  # it lags behind
    before = [t.detach().clone() for t in target]
    calls = []
    forward = agent.target_encoder.forward
    agent.target_encoder.forward = lambda obs: (calls.append(obs["image"].shape), forward(obs))[1]
    agent.update(batch)
    assert calls == [(8, 36, 36, 3)]  # once per update, on the next observations
    for t0, t1, o in zip(before, target, online, strict=True):  # one Polyak step toward the stepped encoder
        torch.testing.assert_close(t1, 0.9 * t0 + 0.1 * o.detach(), rtol=1e-5, atol=1e-7)
    del agent.target_encoder.forward
    state = agent.state_dict()
    torch.manual_seed(1)
    fresh, _ = make_agent(pixels)
    fresh.load_state_dict(state)
    for a, b in zip(fresh.target_encoder.parameters(), target, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert make_agent()[0].target_encoder is None  # from a state vector the encoder has no weights to copy
