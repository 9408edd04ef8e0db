"""Atari (env=atari100k) and Crafter (env=crafter): frames per second of dreamlab's envs against the bare ones.

    python benchmarks/atari_crafter_speed.py [--game Pong] [--steps 300] [--rounds 3] [--only atari|crafter|replay]

Every variant steps with uniform random actions and resets at episode ends; rounds are interleaved
(a, b, ..., a, b, ...) so load from other processes hits all alike; each variant reports its
median rate and the median over rounds of its rate divided by (a)'s in the same round. Atari counts
frames (4 per agent step), Crafter env steps.

Atari, the atari100k settings (64x64 RGB, 4 frames per step with the max over the last two, no
sticky actions, minimal action set, up to 30 no-ops at reset):
  (a) bare ALE: `ale_py.ALEInterface`, act 4 times, the last two screens max-pooled and resized
  (b) Gymnasium: `gym.make("ALE/<Game>-v5", frameskip=1, ...)` + `AtariPreprocessing`, no dreamlab
  (c) dreamlab `make_env(env=atari100k)`
  (d) dreamlab collection: `SyncCollector` over (c), the records the replay gets
Crafter, 64x64 frames:
  (a) `crafter.Env(size=(64, 64))` alone
  (c) dreamlab `make_env(env=crafter)`
  (d) dreamlab collection: `SyncCollector` over (c)
Replay (`--only replay`): the bytes dreamlab's replay holds for 100k agent steps of atari100k
records as the collector emits them (64x64x3 frames and every other key), against the raw frame bytes.
Needs the atari and crafter extras.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from dreamlab.collect.sync import SyncCollector
from dreamlab.config.load import load
from dreamlab.envs.make import make_env

Stepper = Callable[[], None]


class Actions:
    """The same uniform random action sequence for every variant: round k of each replays the same
    stretch of an identically seeded episode, so all do the same work (Crafter's cost per step
    depends on the world around the player)."""

    def __init__(self, n: int):
        self.values, self.index = np.random.default_rng(0).integers(0, n, 1_000_000), -1

    def __call__(self) -> int:
        self.index += 1
        return int(self.values[self.index])


class RandomPolicy:
    def __init__(self, n: int):
        self.actions = Actions(n)

    def act(self, obs: dict[str, np.ndarray], state: object, explore: bool) -> tuple[np.ndarray, None]:
        return np.array([self.actions()]), None


def bare_ale(game: str, size: int) -> Stepper:
    import ale_py
    import cv2
    from ale_py import roms

    ale = ale_py.ALEInterface()
    ale.setLoggerMode(ale_py.LoggerMode.Error)
    ale.setInt("random_seed", 0)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.setInt("max_num_frames_per_episode", 108_000)
    ale.loadROM(roms.get_rom_path(game))
    actions = ale.getMinimalActionSet()
    height, width = ale.getScreenDims()
    screens = [np.zeros((height, width, 3), np.uint8) for _ in range(2)]
    rng, actions_taken = np.random.default_rng(0), Actions(len(actions))

    def reset() -> None:
        ale.reset_game()
        for _ in range(int(rng.integers(1, 31))):
            ale.act(actions[0])

    def step() -> None:
        action = actions[actions_taken()]
        for t in range(4):
            ale.act(action)
            if t >= 2:
                ale.getScreenRGB(screens[t - 2])
        cv2.resize(np.maximum(screens[0], screens[1]), (size, size), interpolation=cv2.INTER_AREA)
        if ale.game_over():
            reset()

    reset()
    return step


def gymnasium_atari(game: str, size: int) -> Stepper:
    import ale_py

    gym.register_envs(ale_py)
    env = gym.make(f"ALE/{game}-v5", frameskip=1, repeat_action_probability=0.0, full_action_space=False,
                   max_num_frames_per_episode=108_000)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=size, grayscale_obs=False,
                                          terminal_on_life_loss=False, scale_obs=False)
    return gymnasium_steps(env)


def gymnasium_steps(env: gym.Env) -> Stepper:
    env.reset(seed=0)
    actions = Actions(int(env.action_space.n))

    def step() -> None:
        _, _, terminated, truncated, _ = env.step(actions())
        if terminated or truncated:
            env.reset()

    return step


def dreamlab_env(overrides: list[str]) -> Stepper:
    return gymnasium_steps(make_env(load(overrides)[1].env))


def dreamlab_collector(overrides: list[str]) -> Stepper:
    env = make_env(load(overrides)[1].env)
    collector = SyncCollector([env], [0])
    policy = RandomPolicy(int(env.action_space.n))
    collector.step(policy)  # the first reset

    def step() -> None:
        collector.step(policy)

    return step


def atari_replay(game: str, steps: int = 100_000, collected: int = 500) -> dict:
    """Fill a replay of `steps` capacity with real atari100k records (from `collected` agent steps,
    repeated) and compare its bytes with the raw bytes of `steps` 64x64x3 frames."""
    from dreamlab.replay.buffer import ReplayBuffer

    env = make_env(load(["env=atari100k", f"env.id=ALE/{game}-v5"])[1].env)
    collector, policy = SyncCollector([env], [0]), RandomPolicy(int(env.action_space.n))
    records = [collector.step(policy)[0] for _ in range(collected)]
    buffer = ReplayBuffer(steps, num_streams=1, seed=0)
    for step in range(steps):
        buffer.add(records[step % collected])
    frame = records[0]["image"].shape[1:]
    raw = steps * int(np.prod(frame))
    return {"steps": steps, "frame": list(frame), "keys": sorted(buffer.data), "raw_frame_bytes": raw,
            "replay_bytes": buffer.nbytes, "ratio": round(buffer.nbytes / raw, 4)}


def bare_crafter(size: int) -> Stepper:
    import crafter

    env = crafter.Env(size=(size, size), seed=0)
    env.reset()
    actions = Actions(17)

    def step() -> None:
        _, _, done, _ = env.step(actions())
        if done:
            env.reset()

    return step


def rate(step: Stepper, steps: int, frames_per_step: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * frames_per_step / (time.perf_counter() - start)


def measure(title: str, variants: dict[str, Stepper], steps: int, rounds: int, frames_per_step: int,
            unit: str) -> None:
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for step in variants.values():
        rate(step, 10, 1)  # warm-up
    for _ in range(rounds):
        for name, step in variants.items():
            rates[name].append(rate(step, steps, frames_per_step))
    base = next(iter(rates.values()))
    print(f"\n{title}: {steps} agent steps x {rounds} rounds")
    print(f"| variant | {unit}/s (median) | min - max | vs (a), median of the rounds' ratios |\n|---|---|---|---|")
    for name, values in rates.items():
        ratio = statistics.median(v / b for v, b in zip(values, base, strict=True))
        print(f"| {name} | {statistics.median(values):.0f} | {min(values):.0f} - {max(values):.0f} | {ratio:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="Pong", help="ALE game name, as in ALE/<Game>-v5")
    parser.add_argument("--steps", type=int, default=300, help="agent steps per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["atari", "crafter", "replay"], default=None)
    args = parser.parse_args()
    if args.only in (None, "atari"):
        atari = ["env=atari100k", f"env.id=ALE/{args.game}-v5"]
        rom = "".join(f"_{c.lower()}" if c.isupper() else c for c in args.game).lstrip("_")  # Pong -> pong
        measure(f"ALE/{args.game}-v5, atari100k settings, 64x64 RGB", {
            "(a) bare ALE (ALEInterface, pool + resize)": bare_ale(rom, 64),
            "(b) Gymnasium ALE + AtariPreprocessing": gymnasium_atari(args.game, 64),
            "(c) dreamlab make_env(env=atari100k)": dreamlab_env(atari),
            "(d) dreamlab SyncCollector over (c)": dreamlab_collector(atari),
        }, args.steps, args.rounds, 4, "frames")
    if args.only in (None, "crafter"):
        measure("Crafter, 64x64 frames", {
            "(a) crafter.Env alone": bare_crafter(64),
            "(c) dreamlab make_env(env=crafter)": dreamlab_env(["env=crafter"]),
            "(d) dreamlab SyncCollector over (c)": dreamlab_collector(["env=crafter"]),
        }, args.steps, args.rounds, 1, "env steps")
    if args.only in (None, "replay"):
        print(f"\nReplay of atari100k records, ALE/{args.game}-v5:", atari_replay(args.game))


if __name__ == "__main__":
    main()
