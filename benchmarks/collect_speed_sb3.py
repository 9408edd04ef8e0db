"""Stable-Baselines3's SubprocVecEnv stepping the slow CartPole (5 ms per step) with N processes.

Run with the SB3 interpreter (it has stable-baselines3 and gymnasium, not dreamlab):
    .venv-sb3/bin/python benchmarks/collect_speed_sb3.py --workers 1 2 4 8 --seconds 8
Prints one JSON line per worker count: {"workers": N, "steps_per_s": ...}.
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import SubprocVecEnv


class SlowCartPole(gym.Wrapper):
    """CartPole-v1 with a fixed sleep per step: a stand-in for a slow game (same as collect_speed.py)."""

    def __init__(self, delay: float = 0.005):
        super().__init__(gym.make("CartPole-v1"))
        self.delay = delay

    def step(self, action):
        time.sleep(self.delay)
        return self.env.step(action)


def measure(workers: int, seconds: float, delay: float) -> float:
    envs = SubprocVecEnv([lambda: SlowCartPole(delay) for _ in range(workers)])
    try:
        envs.reset()
        rng = np.random.default_rng(0)
        for _ in range(20):  # warm up
            envs.step(rng.integers(0, 2, size=workers))
        steps, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            envs.step(rng.integers(0, 2, size=workers))
            steps += workers
        return steps / (time.perf_counter() - started)
    finally:
        envs.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--delay", type=float, default=0.005)
    args = parser.parse_args()
    for n in args.workers:
        print(json.dumps({"workers": n, "steps_per_s": measure(n, args.seconds, args.delay)}), flush=True)
