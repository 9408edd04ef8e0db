"""Run a peer benchmark script (benchmarks/peers/sb3_time_to_solve.py) until its first evaluation at
or above a threshold, then stop it and write a result file that time_to_solve.py --peer reads.

The peer prints one JSON line per evaluation ({"steps", "train_s", "mean", ...}); its own result
file appears only after its full budget (20k steps for SAC on Pendulum, minutes on 2 cores). For
time-to-threshold the evaluations up to the first hit are all that is needed.

Usage:
  python benchmarks/peer_until_threshold.py --threshold -200 --out benchmarks/results/sb3_sac_s0.json -- \
      .venv-sb3/bin/python benchmarks/peers/sb3_time_to_solve.py sac 0 --threads 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threshold", type=float, required=True)
    parser.add_argument("--extra-evals", type=int, default=0, help="evaluations to keep after the first hit")
    parser.add_argument("--out", required=True)
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()
    history, after = [], None
    process = subprocess.Popen(args.command, stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        history.append(record)
        if after is None and record["mean"] >= args.threshold:
            after = 0
        elif after is not None:
            after += 1
        if after is not None and after >= args.extra_evals:
            break
    process.kill()
    process.wait()
    last = history[-1]
    Path(args.out).write_text(json.dumps({"history": history, "train_s": last["train_s"], "n_timesteps": last["steps"],
                                          "command": args.command, "stopped_at_threshold": after is not None}))
    print(json.dumps(last))


if __name__ == "__main__":
    main()
