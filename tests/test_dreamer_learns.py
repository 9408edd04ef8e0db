"""A tiny DreamerV3 learns a trivial deterministic task within a CI budget (fixed seed)."""

import gymnasium as gym
import numpy as np
import torch

from dreamlab.collect.sync import SyncCollector
from dreamlab.replay.buffer import ReplayBuffer
from dreamlab.train.evaluate import Evaluator
from tests.test_dreamer import make_agent


class SignEnv(gym.Env):
    """Observation: a random sign. Reward 1 for the action that names it (0 for -, 1 for +); 8 steps."""

    observation_space = gym.spaces.Dict({"state": gym.spaces.Box(-1, 1, (1,), np.float32)})
    action_space = gym.spaces.Discrete(2)

    def _obs(self):
        self.sign = 1.0 if self.np_random.random() < 0.5 else -1.0
        return {"state": np.array([self.sign], np.float32)}

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        reward = float((action == 1) == (self.sign > 0))
        self.t += 1
        return self._obs(), reward, False, self.t >= 8, {}


gym.register("dreamlab-test/Sign-v0", entry_point=SignEnv)


def test_tiny_dreamer_learns_to_name_the_sign():
    torch.manual_seed(0)
    agent, cfg = make_agent(["env.id=dreamlab-test/Sign-v0", "agent.lr=3e-3", "agent.warmup=0",
                             "agent.batch_size=8", "agent.batch_length=8", "agent.actor_entropy=1e-3"])
    envs = [gym.make("dreamlab-test/Sign-v0") for _ in range(2)]
    collector = SyncCollector(envs, [0, 1])
    replay = ReplayBuffer(capacity=4000, num_streams=2, seed=0)
    evaluator = Evaluator(cfg.env, seed=0, num_envs=2)
    before, _ = evaluator.run(agent, 8)
    for step in range(400):
        records, _, _ = collector.step(agent)
        replay.add(records)
        if step >= 20:
            agent.update(replay.sample(8, 8))
    after, _ = evaluator.run(agent, 8)
    assert before["eval/return_mean"] < 6  # about 4 of 8 by chance
    assert after["eval/return_mean"] >= 7.5, after
