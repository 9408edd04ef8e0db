"""DMC from pixels: step + render rate of bare dm_control, Shimmy, and dreamlab's make_env.

    python benchmarks/dmc_pixels_speed.py [--task walker-walk] [--size 64] [--steps 300] [--rounds 3] [--profile]

Variants, each stepping with uniform random actions and rendering one frame per step, reset at
episode ends; rounds are interleaved (a, b, ..., a, b, ...) so load from other processes hits all
alike, and each variant reports its median frames per second over the rounds:

  (a) bare dm_control: `suite.load`, `physics.render(size, size, camera_id=...)` after each step
  (b) Shimmy: `gymnasium.make("dm_control/...", render_mode="rgb_array", render_kwargs=...)`, step + render()
  (b0) Shimmy at its default 240x320 render, resized to size x size (dreamlab before it passed render_kwargs)
  (c) dreamlab: `make_env(env.pixels=true)`: the frame is part of each step's observation

`--profile` prints where (c)'s time goes (cProfile, by own time). Needs the dmc extra.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from collections.abc import Callable

import numpy as np

from dreamlab.config.schema import EnvConfig
from dreamlab.envs import dmc
from dreamlab.envs.make import make_env
from dreamlab.envs.pixels import resize

Stepper = Callable[[], None]


def bare_dm_control(domain: str, task: str, size: int, camera: int, rng: np.random.Generator) -> Stepper:
    from dm_control import suite

    env = suite.load(domain, task, task_kwargs={"random": 0})
    spec = env.action_spec()
    env.reset()

    def step() -> None:
        time_step = env.step(rng.uniform(spec.minimum, spec.maximum, spec.shape))
        env.physics.render(size, size, camera_id=camera)
        if time_step.last():
            env.reset()

    return step


def shimmy_env(env_id: str, size: int | None, rng: np.random.Generator) -> Stepper:
    """size None: Shimmy's default render size, resized to 64 x 64 afterwards."""
    import gymnasium as gym

    kwargs = {"render_kwargs": dmc.render_kwargs(env_id, size)} if size else {}
    env = gym.make(env_id, render_mode="rgb_array", **kwargs)
    env.reset(seed=0)
    low, high = env.action_space.low, env.action_space.high

    def step() -> None:
        _, _, terminated, truncated, _ = env.step(rng.uniform(low, high))
        frame = env.render()
        if size is None:
            resize(frame, 64, "area")
        if terminated or truncated:
            env.reset()

    return step


def dreamlab_env(env_id: str, size: int, rng: np.random.Generator) -> Stepper:
    env = make_env(EnvConfig(id=env_id, num_envs=1, pixels=True, image_size=size))
    env.reset(seed=0)
    shape = env.action_space.shape

    def step() -> None:
        obs, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, shape))
        assert obs["image"].shape == (size, size, 3)
        if terminated or truncated:
            env.reset()

    return step


def frames_per_s(step: Stepper, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="walker-walk", help="<domain>-<task> of the DM Control Suite")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=300, help="steps per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile dreamlab's make_env steps")
    args = parser.parse_args()
    env_id = f"{dmc.PREFIX}{args.task}-v0"
    dmc.import_dmc(env_id)
    domain, task = args.task.split("-", 1)
    rng = np.random.default_rng(0)
    variants = {
        "(a) bare dm_control, physics.render": bare_dm_control(domain, task, args.size, dmc.camera_id(env_id), rng),
        "(b) Shimmy, render_kwargs at size": shimmy_env(env_id, args.size, rng),
        "(b0) Shimmy, default 240x320 + resize": shimmy_env(env_id, None, rng),
        "(c) dreamlab make_env(env.pixels=true)": dreamlab_env(env_id, args.size, rng),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for step in variants.values():
        frames_per_s(step, 10)  # warm-up: GL contexts, first frames
    for _ in range(args.rounds):
        for name, step in variants.items():
            rates[name].append(frames_per_s(step, args.steps))
    base = statistics.median(rates["(a) bare dm_control, physics.render"])
    print(f"dm_control/{args.task}-v0, {args.size}x{args.size} frames, {args.steps} steps x {args.rounds} rounds")
    print("| variant | steps/s (median) | rounds | vs (a) |\n|---|---|---|---|")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {', '.join(f'{v:.1f}' for v in values)} | {median / base:.2f}x |")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(frames_per_s, variants["(c) dreamlab make_env(env.pixels=true)"], args.steps)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
