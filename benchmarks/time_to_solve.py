"""Time to solve: run `dreamlab train` for several seeds and report steps and seconds to a threshold.

For each seed: env steps and training wall seconds (evaluation excluded, reported apart) at the
first evaluation whose mean return is >= the threshold, the evaluations after it (share >= the
threshold, minimum), and the final one. Then median/min/max over seeds. Optional peer results
(JSON files written by benchmarks/peers/sb3_time_to_solve.py --out) go in the same table.

Usage:
  python benchmarks/time_to_solve.py --seeds 0 1 2 3 4 --threshold 475 --name iqn \
      -- agent=iqn env=cartpole run.steps=50000 eval.every=5000
  python benchmarks/time_to_solve.py --peer sb3_dqn=results/dqn_s*.json ...
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dreamlab.config.load import GROUPS


def run_seed(seed: int, overrides: list[str], out_dir: Path, threads: int, resume: bool = False) -> dict:
    run_parent = out_dir / f"seed{seed}"
    previous = sorted(run_parent.iterdir()) if resume and run_parent.is_dir() else []
    if previous:  # go on from this seed's last run: its presets are kept, field overrides still apply
        overrides = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in GROUPS]
        overrides.append(f"run.resume={previous[-1]}")
    command = [sys.executable, "-m", "dreamlab.cli", "train", "--quiet", *overrides, f"seed={seed}",
               f"threads={threads}", f"run.dir={run_parent}"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"seed {seed} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    run_dir = sorted(run_parent.iterdir())[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    return summary


def seed_row(evals: list[list[float]], threshold: float, train_s_total: float, steps_total: int) -> dict:
    """evals: [env_steps, train_seconds, value] in order."""
    first = next((e for e in evals if e[2] >= threshold), None)
    row = {"first_hit_steps": None, "first_hit_train_s": None, "after_share": None, "after_min": None,
           "final": evals[-1][2] if evals else None, "final_steps": evals[-1][0] if evals else None,
           "train_s": train_s_total, "steps": steps_total, "curve": [[e[0], e[2]] for e in evals]}
    if first is not None:
        later = [e[2] for e in evals if e[0] > first[0]]
        row.update(first_hit_steps=first[0], first_hit_train_s=round(first[1], 2))
        if later:
            row.update(after_share=sum(v >= threshold for v in later) / len(later), after_min=min(later))
    return row


def from_peer(path: str, threshold: float) -> dict:
    """A result file of benchmarks/peers/sb3_time_to_solve.py (or benchmarks/peer_until_threshold.py)."""
    data = json.loads(Path(path).read_text())
    evals = [[h["steps"], h["train_s"], h["mean"]] for h in data["history"]]
    return seed_row(evals, threshold, data["train_s"], data["n_timesteps"])


def spread(values: list) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{statistics.median(values):,.4g} ({min(values):,.4g}-{max(values):,.4g})"


def table(groups: dict[str, list[dict]], threshold: float) -> str:
    lines = [f"| run | seeds | first eval >= {threshold:g}: env steps, median (min-max) | training s to it "
             "| solved seeds | later evals >= threshold | min later eval | final eval per seed |",
             "|---|---|---|---|---|---|---|---|"]
    for name, rows in groups.items():
        solved = [r for r in rows if r["first_hit_steps"] is not None]
        shares = [r["after_share"] for r in solved if r["after_share"] is not None]
        later_min = [r["after_min"] for r in solved if r["after_min"] is not None]
        cells = [
            name, str(len(rows)), spread([r["first_hit_steps"] for r in rows]),
            spread([r["first_hit_train_s"] for r in rows]), f"{len(solved)}/{len(rows)}",
            f"{sum(shares) / len(shares):.0%}" if shares else "-",
            f"{min(later_min):g}" if later_min else "-",
            ", ".join(f"{r['final']:g}@{r['final_steps'] // 1000}k" for r in rows),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("--name", default="dreamlab")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per run (0 = all cores)")
    parser.add_argument("--out", default="benchmarks/results/time_to_solve", help="folder for runs and results")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=GLOB",
                        help="peer result files to put in the same table")
    parser.add_argument("--resume", action="store_true",
                        help="go on with each seed's latest run (after a kill or to more steps)")
    parser.add_argument("overrides", nargs="*", help="dreamlab train overrides (after --)")
    args = parser.parse_args()

    out_dir = Path(args.out) / args.name
    groups: dict[str, list[dict]] = {}
    if args.overrides or not args.peer:
        rows = []
        for seed in args.seeds:
            summary = run_seed(seed, args.overrides, out_dir, args.threads, args.resume)
            row = seed_row(summary["evals"], args.threshold, summary["train_seconds"], summary["env_steps"])
            row.update(seed=seed, eval_s=summary["eval_seconds"], updates=summary["updates"])
            print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
            rows.append(row)
        groups[args.name] = rows
    for spec in args.peer:
        name, pattern = spec.split("=", 1)
        groups[name] = [from_peer(p, args.threshold) for p in sorted(glob.glob(pattern))]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "result.json").write_text(json.dumps({"overrides": args.overrides, "groups": groups}, indent=1))
    print(table(groups, args.threshold))


if __name__ == "__main__":
    main()
