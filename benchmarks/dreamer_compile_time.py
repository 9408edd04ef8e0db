"""How long `agent.compile=true` takes to pay: cold compile, warm start, and the update it buys.

For each size and compile scope, runs benchmarks/dreamer_update_speed.py twice in fresh processes that
share one new inductor cache directory: the first compiles cold (an empty cache), the second is the
warm start (a cache hit, as a second run on the same machine gets). "compile s" is the warm-up of two
updates (the compile happens there) less two compiled updates. An eager row gives the reference.

Usage: python benchmarks/dreamer_compile_time.py --sizes cpu xs --scopes steps update [--threads 2]
       [--updates 5] [-- overrides, e.g. agent.bf16=true]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

SPEED = Path(__file__).with_name("dreamer_update_speed.py")
ROW = re.compile(r"^\| (\S+) \|.*\| (True|False) \(([\d.]+)\) \| (\d+) \| ([\d.]+) \| ([\d.]+) \|")


def run(size: str, overrides: list[str], threads: int, updates: int, cache: str) -> tuple[float, float, str]:
    """(warm-up s, ms per update, the matmul reference line) of one dreamer_update_speed.py process."""
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
    out = subprocess.run([sys.executable, str(SPEED), "--sizes", size, "--updates", str(updates),
                          "--threads", str(threads), "--", *overrides],
                         env=env, capture_output=True, text=True, check=True).stdout
    reference = next(line for line in out.splitlines() if line.startswith("device"))
    match = next(m for m in map(ROW.match, out.splitlines()) if m)
    return float(match.group(3)), float(match.group(4)), reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", default=["cpu", "xs"])
    parser.add_argument("--scopes", nargs="*", default=["steps", "update"], choices=["steps", "update"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    print("| size | scope | cold compile s | warm start s | ms / update | eager ms / update | matmul in that process |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as cache:
            _, eager_ms, _ = run(size, args.overrides, args.threads, args.updates, cache)
        for scope in args.scopes:
            flags = [*args.overrides, "agent.compile=true", f"agent.compile_scope={scope}"]
            with tempfile.TemporaryDirectory() as cache:
                cold, ms, reference = run(size, flags, args.threads, args.updates, cache)
                warm, _, _ = run(size, flags, args.threads, args.updates, cache)
            spent = 2 * ms / 1e3
            print(f"| {size} | {scope} | {max(cold - spent, 0):.0f} | {max(warm - spent, 0):.0f} | {ms:.0f} "
                  f"| {eager_ms:.0f} | {reference.split(';', 2)[-1].strip()} |", flush=True)


if __name__ == "__main__":
    main()
