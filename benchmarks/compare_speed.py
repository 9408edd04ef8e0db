"""How long `dreamlab compare` takes over many large runs (the target: 100 runs x 10k rows in under 5 s).

Writes synthetic run directories into a temp folder (rows shaped like an IQN run's: training rows with
14 scalars, an evaluation row every 20 rows; every 10th run crashed without a summary.json), then
times `dreamlab compare` as a fresh process, imports included, for several option sets.

    python benchmarks/compare_speed.py [--runs 100] [--rows 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

TRAIN_KEYS = ["loss/td", "rl/avg_q", "rl/epsilon", "rl/lr", "grad/norm_before_clip_max/q", "perf/updates_per_s",
              "perf/transitions_learned_per_s", "perf/learner_train_fraction", "perf/replay_size",
              "perf/replay_bytes", "env/steps_per_s", "env/episode_return", "env/episode_length", "env/steps"]


def write_run(path: Path, seed: int, rows: int, crashed: bool) -> None:
    rng = random.Random(seed)
    path.mkdir(parents=True)
    config = {"seed": seed % 5, "threads": 1, "run": {"name": "", "primary_metric": "eval/return_mean",
                                                      "threshold": 475.0, "expect": "eval/return_mean up"},
              "agent": {"name": "iqn", "lr": [1e-3, 3e-4][seed % 2], "hidden": [256, 256]}}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "run.json").write_text(json.dumps({"expect": "eval/return_mean up", "primary_metric": "eval/return_mean",
                                               "threshold": 475.0, "seed": seed % 5, "resumes": []}))
    stamp, evals, lines = 1.8e9, [], []
    for i in range(rows):
        stamp += 0.5
        step = i * 10
        if i % 20 == 0:
            value = min(500.0, step / 200 + rng.gauss(0, 20))
            evals.append([step, round(stamp - 1.8e9, 3), value])
            row = {"step": step, "time": round(stamp, 3), "eval/return_mean": value, "eval/return_std": 1.0,
                   "eval/length_mean": value, "env/steps": float(step), "monitor/collapse_alarm": 0.0}
        else:
            row = {"step": step, "time": round(stamp, 3), **{k: rng.random() for k in TRAIN_KEYS}}
        lines.append(json.dumps(row))
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if not crashed:
        (path / "summary.json").write_text(json.dumps({"end_state": "completed", "evals": evals}))


def time_command(args: list[str], repeat: int) -> float:
    """Best of `repeat` wall-clock seconds of `dreamlab compare ...` in a fresh process."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dreamlab.cli", "compare", *args], check=True,
                       stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        for i in range(args.runs):
            write_run(root / f"run_{i:03d}", i, args.rows, crashed=i % 10 == 9)
        size = sum(p.stat().st_size for p in root.glob("*/metrics.jsonl")) / 1e6
        cases = [
            ("table (defaults)", [str(root)]),
            ("baseline + verdict, markdown", [str(root), "--baseline", "agent.lr=0.001", "--format", "markdown"]),
            ("--also 3 side metrics", [str(root), "--also", "loss/td,rl/avg_q,perf/learner_train_fraction"]),
            ("--x wall --plot curves.png", [str(root), "--x", "wall", "--plot", str(Path(tmp) / "curves.png")]),
            ("--format json", [str(root), "--format", "json"]),
        ]
        print(f"{args.runs} runs x {args.rows} rows ({size:.0f} MB of metrics.jsonl), best of {args.repeat}\n")
        print("| options | seconds |\n|---|---:|")
        for label, command in cases:
            print(f"| {label} | {time_command(command, args.repeat):.2f} |", flush=True)


if __name__ == "__main__":
    main()
