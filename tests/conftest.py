import os

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

# A run small enough for CI: a few hundred env steps of IQN on CartPole.
TINY = [
    "agent=iqn", "env=cartpole", "threads=1", "run.steps=600", "train.learning_starts=100",
    "train.train_ratio=16", "eval.every=300", "eval.episodes=2", "eval.num_envs=2",
    "checkpoint.every=300", "track.every=10", "agent.hidden=[32,32]", "agent.batch_size=16",
    "agent.taus_online=8", "agent.taus_target=8", "agent.taus_act=4", "agent.cosines=16",
    "replay.capacity=2000", "replay.chunk=64", "env.num_envs=2", "agent.eps_decay_steps=300",
    "track.tensorboard=false",
]


@pytest.fixture
def tiny(tmp_path):
    return [*TINY, f"run.dir={tmp_path / 'runs'}"]
