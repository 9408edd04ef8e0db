"""Envs for the parallel-collection tests, made by id in collector processes:
`env.id=tests.collect_envs:Counting-v0` (gymnasium imports this module first)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import gymnasium as gym
import numpy as np


class Counting(gym.Env):
    """obs = [t, 0, 0, 0] with t the step within the episode; episodes end (terminal) after `length` steps.

    delay: seconds slept per step (a slow game). kill_file: the first env (of any process) to reach
    step `kill_at` of its process creates this file and SIGKILLs its own process (with `hang`: sleeps
    for an hour instead). fail_in_collector: the constructor raises in a child process. raise_every:
    step raises RuntimeError every this many steps of the env's life.
    """

    observation_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, length: int = 20, delay: float = 0.0, kill_file: str = "", kill_at: int = 0,
                 raise_every: int = 0, hang: bool = False, fail_in_collector: bool = False):
        if fail_in_collector and multiprocessing.parent_process() is not None:
            raise RuntimeError("this env cannot be built in a collector process")
        self.length, self.delay = length, delay
        self.kill_file, self.kill_at, self.raise_every, self.hang = kill_file, kill_at, raise_every, hang
        self.t = 0
        self.life = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.t, 0, 0, 0], np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        if self.delay:
            time.sleep(self.delay)
        self.life += 1
        if self.kill_file and self.life == self.kill_at and not Path(self.kill_file).exists():
            Path(self.kill_file).touch()
            if self.hang:
                time.sleep(3600)
            os.kill(os.getpid(), signal.SIGKILL)
        if self.raise_every and self.life % self.raise_every == 0:
            raise RuntimeError("the game crashed")
        self.t += 1
        return self._obs(), 1.0, self.t >= self.length, False, {}


gym.register("Counting-v0", entry_point=Counting)
