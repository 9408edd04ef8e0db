"""Crafter: a uniform random policy over the same env steps as a training run, as its baseline.

    python benchmarks/crafter_random.py [--steps 50000] [--seed 0] [--eval-episodes 5]

Steps dreamlab's `env=crafter` with uniform random actions for `--steps` env steps (episodes end
at death or crafter's 10000 steps) and prints, over all those episodes, the mean episode reward,
the success rate of each achievement and the Crafter score (`envs/crafter.py`: the paper's
geometric mean of the success rates in percent); and the same over the first `--eval-episodes`
episodes, the size of a training run's evaluation. Needs the crafter extra.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from dreamlab.config.load import load
from dreamlab.envs.crafter import episode_metrics
from dreamlab.envs.make import make_env
from dreamlab.track import names


def random_episodes(steps: int, seed: int) -> tuple[list[float], list[dict]]:
    env = make_env(load(["env=crafter"])[1].env)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    returns, infos, episode_return = [], [], 0.0
    for _ in range(steps):
        _, reward, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        episode_return += reward
        if terminated or truncated:
            returns.append(episode_return)
            infos.append(info)
            episode_return = 0.0
            env.reset()
    return returns, infos


def summary(returns: list[float], infos: list[dict]) -> dict:
    metrics = episode_metrics(infos)
    unlocked = {key.rsplit("/", 1)[-1]: round(value, 3) for key, value in metrics.items()
                if key != names.CRAFTER_SCORE and value > 0}
    return {"episodes": len(returns), "reward_mean": round(float(np.mean(returns)), 3),
            "score": round(metrics[names.CRAFTER_SCORE], 3), "unlocked_success_rates": unlocked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=5)
    args = parser.parse_args()
    returns, infos = random_episodes(args.steps, args.seed)
    k = args.eval_episodes
    print(json.dumps({"steps": args.steps, "all_episodes": summary(returns, infos),
                      f"first_{k}_episodes": summary(returns[:k], infos[:k])}, indent=1))


if __name__ == "__main__":
    main()
