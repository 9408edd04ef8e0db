"""What DreamerV3's action head costs: the update time with Discrete, Box (REINFORCE) and Box
(dynamics backprop) actions, everything else equal.

The same random replay batch (a 4-dim `state`, B x T windows) trains three agents that differ only
in their action space: Discrete(2), Box(2) with agent.actor_grad=reinforce and with dynamics. Rounds
are interleaved (discrete, box, dynamics, discrete, ...) so the machine's noise hits all three
alike; a 1024x1024 fp32 matmul is timed in the same process beside them.

Usage: python benchmarks/dreamer_action_head_cost.py [--size cpu] [--rounds 5] [--updates 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np
import torch

from dreamlab.agents.dreamer.agent import DreamerAgent
from dreamlab.config.load import load
from dreamlab.device import set_threads

SPACES = {"discrete": (gym.spaces.Discrete(2), "reinforce"),
          "box_reinforce": (gym.spaces.Box(-1, 1, (2,), np.float32), "reinforce"),
          "box_dynamics": (gym.spaces.Box(-1, 1, (2,), np.float32), "dynamics")}


def batch(space: gym.Space, batch_size: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    shape = (batch_size, length)
    action = (rng.integers(0, 2, shape) if isinstance(space, gym.spaces.Discrete)
              else rng.uniform(-1, 1, (*shape, 2)).astype(np.float32))
    is_first = np.zeros(shape, bool)
    is_first[:, 0] = True
    return {"state": rng.normal(size=(*shape, 4)).astype(np.float32), "action": action,
            "reward": rng.normal(size=shape).astype(np.float32), "is_first": is_first,
            "is_last": np.zeros(shape, bool), "is_terminal": np.zeros(shape, bool)}


def matmul_ms(size: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return (time.perf_counter() - started) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="cpu")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--updates", type=int, default=4, help="timed updates per agent and round")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    set_threads(args.threads)
    obs_space = gym.spaces.Dict({"state": gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)})
    agents, batches, times = {}, {}, {name: [] for name in SPACES}
    rng = np.random.default_rng(0)
    for name, (space, actor_grad) in SPACES.items():
        _, cfg = load(["agent=dreamer", f"agent.size={args.size}", f"agent.actor_grad={actor_grad}"])
        torch.manual_seed(0)
        agents[name] = DreamerAgent(cfg, obs_space, space, torch.device("cpu"))
        batches[name] = batch(space, cfg.agent.batch_size, cfg.agent.batch_length, rng)
        agents[name].update(batches[name])  # warm-up
    matmuls = []
    for _ in range(args.rounds):
        matmuls.append(matmul_ms())
        for name, agent in agents.items():
            started = time.perf_counter()
            for _ in range(args.updates):
                agent.update(batches[name])
            times[name].append((time.perf_counter() - started) / args.updates * 1e3)
    base = statistics.median(times["discrete"])
    print(f"size {args.size}, {args.threads} thread(s); 1024^3 fp32 matmul {statistics.median(matmuls):.1f} ms "
          f"(min {min(matmuls):.1f}, max {max(matmuls):.1f})")
    print("| actions | ms / update (median) | per round | vs discrete |")
    print("|---|---|---|---|")
    for name, values in times.items():
        rounds = ", ".join(f"{v:.0f}" for v in values)
        print(f"| {name} | {statistics.median(values):.0f} | {rounds} | {statistics.median(values) / base:.3f}x |")


if __name__ == "__main__":
    main()
