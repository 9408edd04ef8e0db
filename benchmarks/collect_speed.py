"""Collection speed on a slow env: CartPole-v1 with a fixed 5 ms sleep per step (a stand-in for a game).

Env steps per second delivered to the learner by collect.mode=process and collect.mode=ray with
1, 2, 4 and 8 collectors (one env each, the IQN CartPole preset's policy acting in every collector),
drained as fast as they arrive (no updates: this measures collection, not the learner), and by
Stable-Baselines3's SubprocVecEnv with the same number of processes (random actions), run with the
SB3 interpreter by benchmarks/collect_speed_sb3.py.

    python benchmarks/collect_speed.py --workers 1 2 4 8 --seconds 8 --warmup 5 [--sb3-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch

from dreamlab.agents import make_agent
from dreamlab.collect.base import spaces
from dreamlab.config.load import load


class SlowCartPole(gym.Wrapper):
    """CartPole-v1 with a fixed sleep per step."""

    def __init__(self, delay: float = 0.005):
        super().__init__(gym.make("CartPole-v1"))
        self.delay = delay

    def step(self, action):
        time.sleep(self.delay)
        return self.env.step(action)


if "SlowCartPole-v0" not in gym.registry:  # collectors import this file twice (__mp_main__ and by name)
    gym.register("SlowCartPole-v0", entry_point=SlowCartPole)
ENV_ID = "collect_speed:SlowCartPole-v0"  # collectors import this module by name (benchmarks/ is on sys.path)


def measure(mode: str, workers: int, seconds: float, warmup: float) -> float:
    """Steps per second over `seconds`, after every collector delivered its first chunk and `warmup` more
    seconds (Ray's own processes are busy for a while after ray.init)."""
    _, cfg = load(["agent=iqn", "env=cartpole", f"env.id={ENV_ID}", f"collect.mode={mode}",
                   f"collect.workers={workers}", "collect.envs_per_worker=1", "threads=1"])
    torch.set_num_threads(1)
    agent = make_agent(cfg, *spaces(cfg), torch.device("cpu"))
    if mode == "ray":
        from dreamlab.collect.ray_actors import RayCollector

        collector = RayCollector(cfg, agent)
    else:
        from dreamlab.collect.process import ProcessCollector

        collector = ProcessCollector(cfg, agent)
    try:
        seen: set[int] = set()
        while len(seen) < workers:  # start-up (process spawn, Ray start) is not counted
            seen.update(chunk.worker for chunk in collector.collect(agent, wait=True) if chunk.records is not None)
        started = time.perf_counter()
        while time.perf_counter() - started < warmup:
            collector.collect(agent, wait=True)
        steps, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            steps += sum(chunk.stepped for chunk in collector.collect(agent, wait=True))
        return steps / (time.perf_counter() - started)
    finally:
        collector.close()


def sb3(python: str, workers: list[int], seconds: float) -> dict[int, float]:
    script = Path(__file__).with_name("collect_speed_sb3.py")
    out = subprocess.run([python, str(script), "--workers", *map(str, workers), "--seconds", str(seconds)],
                         capture_output=True, text=True, check=True).stdout
    return {row["workers"]: row["steps_per_s"] for row in map(json.loads, out.splitlines())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--modes", nargs="+", default=["process", "ray"], choices=["process", "ray"])
    parser.add_argument("--sb3-python", default=".venv-sb3/bin/python",
                        help="python of a venv with SB3 (benchmarks/peers/README.md); '' skips SB3")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    print(f"load before: {os.getloadavg()}", flush=True)
    table = {mode: {n: measure(mode, n, args.seconds, args.warmup) for n in args.workers} for mode in args.modes}
    if args.sb3_python and not os.path.exists(args.sb3_python):
        print(f"no {args.sb3_python}: the SB3 column is skipped (benchmarks/peers/README.md sets it up)", flush=True)
    elif args.sb3_python:
        table["sb3_subproc"] = sb3(args.sb3_python, args.workers, args.seconds)
    print(f"load after: {os.getloadavg()}", flush=True)
    print("| workers | " + " | ".join(table) + " |")
    print("|---|" + "---|" * len(table))
    for n in args.workers:
        print(f"| {n} | " + " | ".join(f"{table[m][n]:.0f}" for m in table) + " |")
    print(json.dumps({m: {str(n): round(v, 1) for n, v in row.items()} for m, row in table.items()}))


if __name__ == "__main__":
    sys.exit(main())
