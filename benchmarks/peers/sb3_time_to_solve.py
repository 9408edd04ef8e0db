"""Stable-Baselines3 on the tasks dreamlab's time-to-solve benchmarks use: PPO and DQN on CartPole-v1,
SAC on Pendulum-v1, with rl-baselines3-zoo's tuned hyperparameters.

A peer, not part of dreamlab: run it in a virtual environment of its own (SB3 pulls its own torch):

    python3 -m venv .venv-sb3
    .venv-sb3/bin/pip install torch==2.13.0 && .venv-sb3/bin/pip install stable-baselines3 gymnasium
    mkdir -p benchmarks/results
    .venv-sb3/bin/python benchmarks/peers/sb3_time_to_solve.py dqn 0 --threads 2 --out benchmarks/results/dqn_s0.json

Protocol, the same as `benchmarks/time_to_solve.py` applies to dreamlab: every `eval_every` env
steps (counted over all vectorised envs) the policy plays `EVAL_EPISODES` deterministic episodes on
an env of its own; the seconds spent evaluating are subtracted, so `train_s` is collection plus
updates. Each evaluation prints one JSON line ({"steps", "train_s", "wall_s", "mean", "std"}; what
benchmarks/peer_until_threshold.py reads), and the end prints `RESULT {...}` and, with --out, writes
the result file that `time_to_solve.py --peer` reads.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

EVAL_EPISODES = 10


def linear_schedule(start: float):  # noqa: ANN201 (SB3 takes any callable of the remaining progress)
    """rl-zoo's `lin_<start>`: decays linearly to 0 as SB3's progress_remaining goes from 1 to 0."""
    return lambda remaining: remaining * start


# algorithm -> env, budget, threshold, evaluation period and the zoo's hyperparameters
TASKS: dict[str, dict[str, Any]] = {
    "ppo": {"env": "CartPole-v1", "envs": 8, "steps": 100_000, "threshold": 475.0, "eval_every": 5000,
            "algo": PPO, "kwargs": {"policy": "MlpPolicy", "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8,
                                    "gamma": 0.98, "n_epochs": 20, "ent_coef": 0.0,
                                    "learning_rate": linear_schedule(1e-3), "clip_range": linear_schedule(0.2)}},
    "dqn": {"env": "CartPole-v1", "envs": 1, "steps": 50_000, "threshold": 475.0, "eval_every": 5000,
            "algo": DQN, "kwargs": {"policy": "MlpPolicy", "learning_rate": 2.3e-3, "batch_size": 64,
                                    "buffer_size": 100_000, "learning_starts": 1000, "gamma": 0.99,
                                    "target_update_interval": 10, "train_freq": 256, "gradient_steps": 128,
                                    "exploration_fraction": 0.16, "exploration_final_eps": 0.04,
                                    "policy_kwargs": {"net_arch": [256, 256]}}},
    "sac": {"env": "Pendulum-v1", "envs": 1, "steps": 20_000, "threshold": -200.0, "eval_every": 1000,
            "algo": SAC, "kwargs": {"policy": "MlpPolicy", "learning_rate": 1e-3}},
}


class PeriodicEval(BaseCallback):
    """Evaluates every `every` env steps, keeps the curve, and books evaluation time apart."""

    def __init__(self, env: Any, every: int, threshold: float):
        super().__init__()
        self.env, self.every, self.threshold = env, every, threshold
        self.due = every
        self.eval_seconds = 0.0
        self.curve: list[dict[str, float]] = []
        self.first_hit: dict[str, float] | None = None
        self.started = 0.0

    def _on_training_start(self) -> None:
        self.started = time.perf_counter()

    def evaluate(self) -> None:
        begin = time.perf_counter()
        mean, std = evaluate_policy(self.model, self.env, n_eval_episodes=EVAL_EPISODES, deterministic=True)
        point = {"steps": int(self.num_timesteps), "train_s": round(begin - self.started - self.eval_seconds, 3),
                 "wall_s": round(begin - self.started, 3), "mean": float(mean), "std": float(std)}
        self.eval_seconds += time.perf_counter() - begin
        self.curve.append(point)
        print(json.dumps(point), flush=True)
        if self.first_hit is None and mean >= self.threshold:
            self.first_hit = point

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.due:
            self.evaluate()
            self.due = (self.num_timesteps // self.every + 1) * self.every
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algo", choices=sorted(TASKS))
    parser.add_argument("seed", type=int)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", default=None, help="write the result and the whole curve here (JSON)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    task = TASKS[args.algo]
    env = make_vec_env(task["env"], n_envs=task["envs"], seed=args.seed)
    eval_env = make_vec_env(task["env"], n_envs=1, seed=args.seed + 10_000)
    model = task["algo"](env=env, seed=args.seed, verbose=0, device="cpu", **task["kwargs"])
    callback = PeriodicEval(eval_env, task["eval_every"], task["threshold"])
    begin = time.perf_counter()
    model.learn(total_timesteps=task["steps"], callback=callback)
    wall = time.perf_counter() - begin
    train_s = wall - callback.eval_seconds
    if not callback.curve or callback.curve[-1]["steps"] < model.num_timesteps:
        callback.evaluate()  # the final policy is always evaluated
    result = {
        "algo": args.algo, "env": task["env"], "seed": args.seed, "torch_threads": torch.get_num_threads(),
        "n_timesteps": int(model.num_timesteps), "threshold": task["threshold"],
        "total_wall_s": round(wall, 2), "train_s": round(train_s, 2),
        "eval_s_incl_final": round(callback.eval_seconds, 2),
        "env_steps_per_s_train": round(model.num_timesteps / train_s, 1),
        "first_hit": callback.first_hit, "final_eval": callback.curve[-1], "history": callback.curve,
        "versions": {"torch": torch.__version__, "gymnasium": gym.__version__, "numpy": np.__version__,
                     "sb3": __import__("stable_baselines3").__version__},
    }
    print("RESULT " + json.dumps({k: v for k, v in result.items() if k != "history"}), flush=True)
    if args.out:
        with open(args.out, "w") as file:
            json.dump(result, file, indent=1)


if __name__ == "__main__":
    main()
