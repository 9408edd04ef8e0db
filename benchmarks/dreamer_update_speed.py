"""DreamerV3 update speed and model-FLOP utilisation on this machine.

For each size preset: median milliseconds per update (B x T sequences from a CartPole replay),
split into world model (observe + losses), imagination + actor-critic, and backward + optimizer;
FLOPs per update counted with torch.utils.flop_counter; achieved GFLOP/s against dense fp32 and bf16
matmuls timed in the same process (the machine's noise shows in them; the bf16 one is the AMX peak).

Usage: python benchmarks/dreamer_update_speed.py --sizes xs cpu 1m [--updates 10] [--threads 2] [-- overrides]
       (-- agent.compile=true: the compiled update; its compile is part of the warm-up, reported apart;
        -- device=cuda: on a GPU, timed with torch.cuda.synchronize around each update)
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from dreamlab.config.load import load
from dreamlab.device import resolve_device, set_threads
from dreamlab.train.session import Session


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock timings cover it (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(size: int = 1024, repeats: int = 20, device: str = "cpu",
                  dtype: torch.dtype = torch.float32) -> float:
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    synchronize(a.device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(a.device)
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def measure(size: str, updates: int, threads: int, overrides: list[str]) -> dict:
    _, cfg = load(["agent=dreamer", f"agent.size={size}", f"threads={threads}", "env.num_envs=1", *overrides])
    session = Session(cfg)
    agent = session.agent
    while len(session.replay) < agent.batch_length * 4:
        records, _, _ = session.collector.step(agent)
        session.replay.add(records)
    sample = lambda: session.replay.sample(agent.batch_size, agent.batch_length)  # noqa: E731
    started = time.perf_counter()
    for _ in range(2):  # warm-up (and, with agent.compile, the compile)
        agent.update(sample())
    synchronize(session.device)
    warmup_s = time.perf_counter() - started
    compiled = agent._losses, agent._observe_step, agent._imagine_step
    # count FLOPs on the eager ops (a compiled update runs the same math)
    agent._losses, agent._observe_step, agent._imagine_step = (agent._forward_losses, agent.wm.rssm.observe_step,
                                                                agent._imagine_one)
    with FlopCounterMode(display=False) as counter:
        agent.update(sample())
    flops = counter.get_total_flops()
    agent._losses, agent._observe_step, agent._imagine_step = compiled
    times = []
    for _ in range(updates):
        batch = sample()
        synchronize(session.device)
        started = time.perf_counter()
        agent.update(batch)
        synchronize(session.device)
        times.append(time.perf_counter() - started)
    ms = statistics.median(times) * 1e3
    params = sum(p.numel() for m in (agent.wm, agent.actor, agent.critic.net) for p in m.parameters())
    return {"size": size, "params_m": params / 1e6, "ms": ms, "gflop": flops / 1e9,
            "gflops_per_s": flops / 1e9 / (ms / 1e3), "B": agent.batch_size, "T": agent.batch_length,
            "starts": cfg.agent.imag_starts or agent.batch_size * agent.batch_length, "bf16": cfg.agent.bf16,
            "compile": cfg.agent.compile, "warmup_s": warmup_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", default=["xs", "cpu", "1m"])
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    torch.manual_seed(0)
    np.random.seed(0)
    device = str(resolve_device(load(["agent=dreamer", *args.overrides])[1].device))
    side = 2048 if device.startswith("cuda") else 1024
    reference = matmul_gflops(side, device=device)
    reference_bf16 = matmul_gflops(side, device=device, dtype=torch.bfloat16)
    print(f"device {device}; threads {threads}; {side}x{side} matmul: fp32 {reference:.0f} GFLOP/s, "
          f"bf16 {reference_bf16:.0f} GFLOP/s")
    print("| size | params (M) | B x T | imagination starts | bf16 | compile (warm-up s) | ms / update "
          "| GFLOP / update | GFLOP/s | MFU vs fp32 matmul | MFU vs bf16 matmul |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        r = measure(size, args.updates, args.threads, args.overrides)
        print(f"| {r['size']} | {r['params_m']:.2f} | {r['B']} x {r['T']} | {r['starts']} | {r['bf16']} "
              f"| {r['compile']} ({r['warmup_s']:.1f}) | {r['ms']:.0f} | {r['gflop']:.2f} | {r['gflops_per_s']:.1f} "
              f"| {r['gflops_per_s'] / reference:.1%} | {r['gflops_per_s'] / reference_bf16:.1%} |",
              flush=True)


if __name__ == "__main__":
    main()
