"""One checkpoint, two evaluation protocols: the policy's mode against sampled actions.

    python benchmarks/eval_mode_vs_sample.py RUN_DIR [RUN_DIR ...] [--episodes 10] [--checkpoint latest]

For each finished run, the same checkpoint plays `--episodes` episodes with the policy's mode
(`eval.sample=false`, dreamlab's default) and as many with sampled actions (`eval.sample=true`, as
the official DreamerV3 evaluates), on the same env seeds, through the public API (`dreamlab.load`,
`dreamlab.make_env`, `Policy.predict`). Prints the mean and the per-episode returns of each.
"""

from __future__ import annotations

import argparse
import statistics

import dreamlab
from dreamlab.device import set_threads


def episode_returns(run_dir: str, checkpoint: str, episodes: int, deterministic: bool) -> list[float]:
    policy = dreamlab.load(run_dir, checkpoint=checkpoint)
    env = dreamlab.make_env(run_dir)
    returns = []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=1000 + episode)
            state, total, done = None, 0.0, False
            while not done:
                action, state = policy.predict(obs, state, deterministic=deterministic)
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--checkpoint", choices=("latest", "best"), default="latest")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    set_threads(args.threads)
    print("| run | checkpoint | mode: mean | sampled: mean | mode, per episode | sampled, per episode |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        mode = episode_returns(run, args.checkpoint, args.episodes, deterministic=True)
        sampled = episode_returns(run, args.checkpoint, args.episodes, deterministic=False)
        print(f"| {run} | {args.checkpoint} | {statistics.fmean(mode):.1f} | {statistics.fmean(sampled):.1f} | "
              f"{', '.join(f'{x:.0f}' for x in mode)} | {', '.join(f'{x:.0f}' for x in sampled)} |", flush=True)


if __name__ == "__main__":
    main()
