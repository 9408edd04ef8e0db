"""DreamerV3 update speed and model-FLOP utilisation on this machine.

For each size preset: median milliseconds per update (B x T sequences from a CartPole replay);
FLOPs per update counted with torch.utils.flop_counter; achieved GFLOP/s against dense fp32 and bf16
matmuls timed in the same process (the machine's noise shows in them; the bf16 one is the AMX peak).
With --profile: where the time of the update goes instead, by operator (torch.profiler, self CPU
time), grouped into convolutions forward and backward, matmuls, compiled graphs (with
agent.compile=true: the fused elementwise work, norms included) and the rest.

Usage: python benchmarks/dreamer_update_speed.py --sizes xs cpu 1m [--updates 10] [--threads 2] [-- overrides]
       (-- agent.compile=true: the compiled update; its compile is part of the warm-up, reported apart;
        -- device=cuda: on a GPU, timed with torch.cuda.synchronize around each update)
       python benchmarks/dreamer_update_speed.py --sizes cpu --updates 3 --profile -- env.pixels=true ...
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

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


def start(size: str, threads: int, overrides: list[str]) -> tuple:
    """A session with a few sequences of replay, and a function that samples a batch from it."""
    _, cfg = load(["agent=dreamer", f"agent.size={size}", f"threads={threads}", "env.num_envs=1", *overrides])
    session = Session(cfg)
    agent = session.agent
    while len(session.replay) < agent.batch_length * 4:
        records, _, _ = session.collector.step(agent)
        session.replay.add(records)
    return session, cfg, lambda: session.replay.sample(agent.batch_size, agent.batch_length)


def operator_group(name: str) -> str:
    if "conv" in name:
        return "convolution backward" if "backward" in name else "convolution forward"
    if name in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"):
        return "matmul (forward and backward)"
    if "CompiledFxGraph" in name:
        return "compiled graphs (fused elementwise)"
    return "everything else"


def profile(size: str, updates: int, threads: int, overrides: list[str], top: int = 12) -> None:
    """Self CPU time of updates by operator: which part of the update to make cheaper."""
    session, _, sample = start(size, threads, overrides)
    for _ in range(2):  # warm-up (and, with agent.compile, the compile)
        session.agent.update(sample())
    batches = [sample() for _ in range(updates)]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        for batch in batches:
            session.agent.update(batch)
    groups: Counter[str] = Counter()
    for e in prof.key_averages():
        groups[operator_group(e.key)] += e.self_cpu_time_total
    total = sum(groups.values())
    print(f"{updates} updates, {total / 1e3 / updates:.0f} ms of self CPU time each")
    print("| group | ms / update | share |\n|---|---|---|")
    for name, us in groups.most_common():
        print(f"| {name} | {us / 1e3 / updates:.0f} | {us / total:.0%} |")
    print("| operator | input shapes | calls / update | ms / update | share |\n|---|---|---|---|---|")
    by_shape = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: e.self_cpu_time_total, reverse=True)
    for e in by_shape[:top]:
        shapes = ", ".join(str(shape) for shape in e.input_shapes if shape)
        print(f"| {e.key[:60]} | {shapes[:80]} | {e.count // updates} | {e.self_cpu_time_total / 1e3 / updates:.0f} "
              f"| {e.self_cpu_time_total / total:.0%} |")


def measure(size: str, updates: int, threads: int, overrides: list[str]) -> dict:
    session, cfg, sample = start(size, threads, overrides)
    agent = session.agent
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
    parser.add_argument("--profile", action="store_true", help="time by operator instead")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    torch.manual_seed(0)
    np.random.seed(0)
    if args.profile:
        for size in args.sizes:
            profile(size, args.updates, args.threads, args.overrides)
        return
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
