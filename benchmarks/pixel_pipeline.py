"""The pixel pipeline's numbers: collection frames/s, resize quality, replay memory and sampling time.

collect: CartPole-v1 frames at 64x64 through dreamlab's pixel env (`make_env`, env.pixels=true)
    against bare `env.step` + `env.render()` + `cv2.resize` in the same process, for each
    interpolation. The two loops alternate in rounds and the median round counts, so a busy
    machine slows both alike. Quality: PSNR of each interpolation against an antialiased Lanczos
    downscale (Pillow) of the same frames, and the share of frames where the pole (the thin part
    the agent must see) still has a pole-coloured pixel.
replay: 100k 64x64x3 frames in dreamlab's replay: bytes against the raw frame bytes, and the
    median time to sample a 16 x 64 batch.

Usage: python benchmarks/pixel_pipeline.py [--parts collect replay] [--frames 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import cv2
import gymnasium as gym
import numpy as np

from dreamlab.config.load import load
from dreamlab.envs.make import make_env
from dreamlab.envs.pixels import INTERPOLATIONS
from dreamlab.replay.buffer import ReplayBuffer

FLAGS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}
SIZE = 64


def frames_per_s(env: gym.Env, frames: int, seed: int, after_step=None) -> float:  # noqa: ANN001
    """Frames/s of stepping `env` with random actions (resets at episode ends), then `after_step(env)`."""
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for _ in range(frames):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
        if terminated or truncated:
            env.reset()
        if after_step is not None:
            after_step(env)
    rate = frames / (time.perf_counter() - started)
    env.close()
    return rate


def bare_loop(frames: int, interpolation: str, seed: int) -> float:
    """env.step + env.render + cv2.resize."""
    resize = lambda env: cv2.resize(env.render(), (SIZE, SIZE), interpolation=FLAGS[interpolation])  # noqa: E731
    return frames_per_s(gym.make("CartPole-v1", render_mode="rgb_array"), frames, seed, resize)


def wrapper_loop(frames: int, interpolation: str, seed: int) -> float:
    """dreamlab's pixel env (the collectors' env): it renders and resizes inside step."""
    _, cfg = load(["env=cartpole", "env.pixels=true", f"env.image_size={SIZE}", f"env.interpolation={interpolation}"])
    return frames_per_s(make_env(cfg.env), frames, seed)


def quality(frames: int, seed: int) -> dict[str, dict[str, float]]:
    """PSNR against an antialiased Lanczos downscale, and how often the pole stays visible."""
    from PIL import Image

    env = gym.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    psnr: dict[str, list[float]] = {k: [] for k in INTERPOLATIONS}
    pole: dict[str, list[bool]] = {k: [] for k in INTERPOLATIONS}
    for _ in range(frames):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
        if terminated or truncated:
            env.reset()
        frame = env.render()
        reference = np.asarray(Image.fromarray(frame).resize((SIZE, SIZE), Image.LANCZOS), np.float64)
        for name in INTERPOLATIONS:
            small = cv2.resize(frame, (SIZE, SIZE), interpolation=FLAGS[name])
            mse = float(np.mean((small.astype(np.float64) - reference) ** 2))
            psnr[name].append(10 * np.log10(255.0**2 / max(mse, 1e-12)))
            # the pole is drawn in (202, 152, 101); count pixels clearly tinted toward it
            r, g, b = (small[..., i].astype(int) for i in range(3))
            pole[name].append(bool(np.any((r - b > 40) & (r > 150))))
    env.close()
    return {k: {"psnr_db": round(statistics.mean(psnr[k]), 2), "pole_visible": round(float(np.mean(pole[k])), 3)}
            for k in INTERPOLATIONS}


def collect(frames: int, rounds: int) -> dict:
    result = {}
    for name in INTERPOLATIONS:
        bare, wrapped = [], []
        for round_index in range(rounds):
            bare.append(bare_loop(frames, name, round_index))
            wrapped.append(wrapper_loop(frames, name, round_index))
        ratios = [w / b for w, b in zip(wrapped, bare, strict=True)]
        result[name] = {"bare_fps": round(statistics.median(bare), 1),
                        "wrapper_fps": round(statistics.median(wrapped), 1),
                        "ratio": round(statistics.median(ratios), 3), "resize_ms": round(resize_ms(name), 3)}
    for name, scores in quality(min(frames, 500), 0).items():
        result[name].update(scores)
    return result


def resize_ms(interpolation: str, repeats: int = 500) -> float:
    frame = np.random.default_rng(0).integers(0, 256, (400, 600, 3), dtype=np.uint8)
    started = time.perf_counter()
    for _ in range(repeats):
        cv2.resize(frame, (SIZE, SIZE), interpolation=FLAGS[interpolation])
    return (time.perf_counter() - started) / repeats * 1e3


def replay(steps: int = 100_000, batch: int = 16, length: int = 64, samples: int = 200) -> dict:
    buffer = ReplayBuffer(steps, num_streams=1, seed=0)
    rng = np.random.default_rng(0)
    record = {"image": rng.integers(0, 256, (1, SIZE, SIZE, 3), dtype=np.uint8),
              "action": np.zeros(1, np.int64), "reward": np.zeros(1, np.float32), "is_first": np.zeros(1, bool),
              "is_last": np.zeros(1, bool), "is_terminal": np.zeros(1, bool)}
    for step in range(steps):
        record["is_first"][0] = step % 500 == 0
        buffer.add(record)
    raw = steps * SIZE * SIZE * 3
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        out = buffer.sample(batch, length)
        times.append(time.perf_counter() - started)
    assert out["image"].shape == (batch, length, SIZE, SIZE, 3)
    return {"steps": steps, "raw_frame_bytes": raw, "replay_bytes": buffer.nbytes,
            "ratio": round(buffer.nbytes / raw, 4), "image_bytes": buffer.data["image"].nbytes,
            f"sample_{batch}x{length}_median_ms": round(statistics.median(times) * 1e3, 3),
            "sample_p90_ms": round(float(np.percentile(times, 90)) * 1e3, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="*", default=["collect", "replay"], choices=["collect", "replay"])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if "collect" in args.parts:
        print(json.dumps({"collect": collect(args.frames, args.rounds)}, indent=1), flush=True)
    if "replay" in args.parts:
        print(json.dumps({"replay": replay()}, indent=1), flush=True)


if __name__ == "__main__":
    main()
