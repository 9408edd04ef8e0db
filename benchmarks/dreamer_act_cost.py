"""DreamerV3's policy step: milliseconds per `act` call for one env, from state and from 64x64 frames,
and the share of a run's training time it takes.

    python benchmarks/dreamer_act_cost.py [--steps 300] [--threads 1] [--run RUN_DIR ...]

For each case, an agent of the preset's size acts on real observations of its env (the encoder,
one RSSM step, the posterior and the actor; explore=True, as collection acts), median over
`--steps` calls after a warm-up. `--run` reads finished run directories (summary.json, config.yaml)
and prints act_ms x agent steps / training seconds: the share of the run's training time spent
acting, with the act time measured here for that run's preset.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from dreamlab.collect.records import STEP_KEYS
from dreamlab.collect.sync import SyncCollector
from dreamlab.config.load import load
from dreamlab.device import set_threads
from dreamlab.envs.make import make_env
from dreamlab.train.session import Session

CASES = {
    "CartPole-v1 from state (experiment=dreamer_cartpole)": ["experiment=dreamer_cartpole"],
    "Atari Boxing 64x64 RGB (experiment=dreamer_atari100k)": ["experiment=dreamer_atari100k"],
}


def act_ms(overrides: list[str], steps: int) -> float:
    """Median ms of `agent.act` on one env's real observations (collected first), carrying the state."""
    _, cfg = load([*overrides, "env.num_envs=1", "agent.compile=false"])
    agent = Session(cfg).agent
    collector = SyncCollector([make_env(cfg.env)], [0])
    observations = []
    for _ in range(steps + 20):
        records, _, _ = collector.step(agent, explore=True)
        observations.append({k: v for k, v in records.items() if k not in STEP_KEYS or k == "is_first"})
    times, state = [], None
    for index, obs in enumerate(observations):
        started = time.perf_counter()
        _, state = agent.act(obs, state, explore=True)
        if index >= 20:  # warm-up
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def run_share(run_dir: Path, steps: int) -> str:
    summary = json.loads((run_dir / "summary.json").read_text())
    cfg = OmegaConf.load(run_dir / "config.yaml")
    overrides = [f"experiment={cfg.run.name}"] if cfg.run.name else []
    ms = act_ms(overrides, steps)
    agent_steps = summary["env_steps"] / cfg.env.action_repeat
    share = ms / 1e3 * agent_steps / summary["train_seconds"]
    return (f"{run_dir.name}: {agent_steps:.0f} agent steps x {ms:.1f} ms = {ms / 1e3 * agent_steps:.0f} s "
            f"of {summary['train_seconds']:.0f} s training ({share:.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--run", nargs="*", default=[], help="finished run directories to put the act time in")
    args = parser.parse_args()
    set_threads(args.threads)
    np.random.seed(0)
    print("| case | ms per act (1 env, median) |\n|---|---|")
    for name, overrides in CASES.items():
        print(f"| {name} | {act_ms(overrides, args.steps):.2f} |", flush=True)
    for run in args.run:
        print(run_share(Path(run), args.steps))


if __name__ == "__main__":
    main()
