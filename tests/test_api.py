"""The Python API: dreamlab.train -> RunResult, dreamlab.load -> Policy.predict, dreamlab.make_env."""

import numpy as np
import pytest
import torch

import dreamlab
from dreamlab.config.load import ConfigError
from dreamlab.envs.make import env_seed
from dreamlab.train.checkpoint import CheckpointError
from dreamlab.train.evaluate import evaluate_run
from tests.test_dreamer import TINY_DREAMER

EPISODES = 3


def play(policy: dreamlab.Policy, env, seed: int) -> float:
    """One deterministic episode, predict's actions straight into env.step; returns its return."""
    obs, _ = env.reset(seed=seed)
    state, total, done = None, 0.0, False
    while not done:
        action, state = policy.predict(obs, state)
        obs, reward, terminated, truncated, _ = env.step(action)
        total, done = total + float(reward), terminated or truncated
    return total


def test_public_names():
    assert set(dreamlab.__all__) == {"train", "load", "make_env", "Policy", "RunResult", "__version__"}
    for name in dreamlab.__all__:
        assert getattr(dreamlab, name) is not None


@pytest.fixture(scope="module")
def iqn_run(tmp_path_factory):
    from tests.conftest import TINY

    return dreamlab.train([*TINY, f"run.dir={tmp_path_factory.mktemp('runs')}", "run.steps=300"])


@pytest.mark.parametrize("which", ["best", "latest"])
def test_loaded_policy_plays_the_episodes_dreamlab_eval_plays(iqn_run, which):
    assert isinstance(iqn_run, dreamlab.RunResult) and iqn_run.end_state == "completed"
    policy = dreamlab.load(iqn_run.run_dir, checkpoint=which)
    env = dreamlab.make_env(iqn_run.run_dir)
    returns = [play(policy, env, env_seed(policy.cfg.seed, i, "eval")) for i in range(EPISODES)]
    env.close()
    _, expected = evaluate_run(iqn_run.run_dir, which, episodes=EPISODES)
    assert returns == expected


def test_single_and_batched_predict_agree(iqn_run):
    policy = dreamlab.load(iqn_run.run_dir)
    envs = [dreamlab.make_env(iqn_run.run_dir) for _ in range(4)]
    observations = [env.reset(seed=10 + i)[0] for i, env in enumerate(envs)]
    batch = {key: np.stack([obs[key] for obs in observations]) for key in observations[0]}
    actions, _ = policy.predict(batch)
    assert actions.shape == (4,)
    for obs, action in zip(observations, actions, strict=True):
        single, _ = policy.predict(obs)
        assert np.shape(single) == () and single == action and policy.action_space.contains(int(single))


def test_bad_inputs_are_one_line_errors(iqn_run, tmp_path):
    policy = dreamlab.load(iqn_run.run_dir)
    with pytest.raises(ValueError, match="missing"):
        policy.predict({"nope": np.zeros(4)})
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        policy.predict({"state": np.zeros(3)})
    with pytest.raises(ValueError, match="episode_start has 1 entries for 2"):
        policy.predict({"state": np.zeros((2, 4))}, episode_start=[True])
    with pytest.raises(ValueError, match="checkpoint='final'"):
        dreamlab.load(iqn_run.run_dir, checkpoint="final")
    with pytest.raises(ConfigError, match="not a run directory"):
        dreamlab.load(tmp_path)
    (tmp_path / "config.yaml").write_text((iqn_run.run_dir / "config.yaml").read_text())
    with pytest.raises(CheckpointError, match="no checkpoint"):
        dreamlab.load(tmp_path)


def test_train_prints_the_run_directory_and_no_progress_when_quiet(iqn_run, capsys, tmp_path):
    from tests.conftest import TINY

    run = dreamlab.train([*TINY, f"run.dir={tmp_path}", "run.steps=100", "track.print_every_s=0.01"])
    err = capsys.readouterr().err.splitlines()
    assert err == [f"dreamlab: run directory {run.run_dir}"]


def test_dreamer_policy_carries_its_state_and_resets_one_env(tmp_path):
    run = dreamlab.train([*TINY_DREAMER, f"run.dir={tmp_path}", "run.steps=40", "train.learning_starts=32",
                          "eval.every=40", "eval.episodes=1", "eval.num_envs=1", "checkpoint.every=40",
                          "track.tensorboard=false"])
    policy = dreamlab.load(run.run_dir, checkpoint="latest")
    env = dreamlab.make_env(run.run_dir)
    first, _ = env.reset(seed=0)
    action, state = policy.predict(first)
    second, *_ = env.step(action)
    _, carried = policy.predict(second, state)
    _, fresh = policy.predict(second)
    _, reset = policy.predict(second, state, episode_start=True)
    deter = lambda s: s[0]  # noqa: E731 - the RSSM's deterministic state, computed before any sampling
    assert not torch.allclose(deter(carried), deter(fresh))  # the memory of the first step is used
    assert torch.equal(deter(reset), deter(fresh))  # episode_start forgets it

    both = {key: np.stack([second[key], second[key]]) for key in second}
    _, two = policy.predict(both)
    _, two = policy.predict(both, two)  # both envs remember one step ...
    _, mixed = policy.predict(both, two, episode_start=[True, False])  # ... env 0 starts over
    _, restarted = policy.predict(both, None)
    _, kept = policy.predict(both, two)
    assert torch.allclose(deter(mixed)[0], deter(restarted)[0]) and torch.allclose(deter(mixed)[1], deter(kept)[1])
    env.close()
