"""Remote env transport: steps/s and bytes per step over loopback, against in-process and HTTP+base64-JSON.

Two envs: CartPole-v1 (4 float32 of state) and a synthetic 84x84x3 uint8 image env whose step
costs nothing, so the figure is the transport alone. Each server runs in its own process:
- dreamlab: `EnvServer` (dreamlab's binary protocol over TCP, one request/reply per step);
- http_b64: an HTTP/1.1 server (http.server, keep-alive) whose replies are JSON with the
  observation base64-encoded, the format a game served in one of dreamlab's research logs used;
  tuned: TCP_NODELAY on both ends (without it, the reply's headers and body wait on delayed ACKs);
- http_b64_plain: the same as written without that tuning (the library defaults).
Bytes per step counts both directions of a step exchange, against the raw observation bytes.

Usage: python benchmarks/remote_env_speed.py [--steps 3000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing as mp
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gymnasium as gym
import numpy as np

from dreamlab.envs.remote import EnvServer, RemoteEnv


class ImageEnv(gym.Env):
    """84x84x3 uint8 observations cycled from 8 random frames; episodes of 1000 steps."""

    observation_space = gym.spaces.Box(0, 255, (84, 84, 3), np.uint8)
    action_space = gym.spaces.Discrete(4)

    def __init__(self):
        self.frames = np.random.default_rng(0).integers(0, 256, (8, 84, 84, 3), dtype=np.uint8)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.frames[0], {}

    def step(self, action):
        self.t += 1
        return self.frames[self.t % 8], 1.0, False, self.t >= 1000, {}


def make(name: str) -> gym.Env:
    return ImageEnv() if name == "image" else gym.make("CartPole-v1")


def serve_dreamlab(name: str, port: int) -> None:
    EnvServer(lambda: make(name), port=port).serve_forever()


def serve_http(name: str, port: int, tuned: bool = True) -> None:
    env = make(name)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = tuned  # else headers and body wait on delayed ACKs: 40 ms a step

        def log_message(self, *args):
            pass

        def do_POST(self):
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if request["op"] == "reset":
                obs, _ = env.reset(seed=request.get("seed"))
                reply = {"obs": base64.b64encode(np.asarray(obs).tobytes()).decode(), "shape": list(np.shape(obs)),
                         "dtype": str(np.asarray(obs).dtype)}
            else:
                obs, reward, terminated, truncated, _ = env.step(int(request["action"]))
                reply = {"obs": base64.b64encode(np.asarray(obs).tobytes()).decode(), "shape": list(np.shape(obs)),
                         "dtype": str(np.asarray(obs).dtype), "reward": float(reward), "terminated": terminated,
                         "truncated": truncated}
            body = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


class HttpClient:
    """The baseline's client: one keep-alive connection, JSON requests, base64 observations."""

    def __init__(self, port: int, tuned: bool = True):
        self.connection = http.client.HTTPConnection("127.0.0.1", port)
        self.connection.connect()
        if tuned:
            self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.bytes = 0

    def call(self, request: dict) -> dict:
        body = json.dumps(request).encode()
        self.connection.request("POST", "/", body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        head = sum(len(k) + len(v) + 4 for k, v in response.getheaders()) + 17  # status line + headers
        self.bytes += len(body) + 80 + head + len(data)  # 80: the request line and headers we send
        reply = json.loads(data)
        reply["obs"] = np.frombuffer(base64.b64decode(reply["obs"]), reply["dtype"]).reshape(reply["shape"])
        return reply


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on {port} did not start")


def measure_inprocess(name: str, steps: int) -> dict:
    env = make(name)
    env.reset(seed=0)
    started = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(0)
        if terminated or truncated:
            env.reset()
    return {"steps_per_s": steps / (time.perf_counter() - started), "bytes_per_step": 0}


def measure_dreamlab(name: str, steps: int) -> dict:
    port = free_port()
    server = mp.Process(target=serve_dreamlab, args=(name, port), daemon=True)
    server.start()
    wait_port(port)
    env = RemoteEnv(f"127.0.0.1:{port}")
    env.reset(seed=0)
    env.bytes_sent = env.bytes_received = 0
    started = time.perf_counter()
    resets = 0
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(0)
        if terminated or truncated:
            env.reset()
            resets += 1
    elapsed = time.perf_counter() - started
    exchanged = env.bytes_sent + env.bytes_received
    result = {"steps_per_s": steps / elapsed, "bytes_per_step": exchanged / (steps + resets)}
    env.close()
    server.terminate()
    return result


def measure_http(name: str, steps: int, tuned: bool = True) -> dict:
    port = free_port()
    server = mp.Process(target=serve_http, args=(name, port, tuned), daemon=True)
    server.start()
    wait_port(port)
    client = HttpClient(port, tuned)
    client.call({"op": "reset", "seed": 0})
    client.bytes = 0
    started = time.perf_counter()
    resets = 0
    for _ in range(steps):
        reply = client.call({"op": "step", "action": 0})
        if reply["terminated"] or reply["truncated"]:
            client.call({"op": "reset"})
            resets += 1
    elapsed = time.perf_counter() - started
    server.terminate()
    return {"steps_per_s": steps / elapsed, "bytes_per_step": client.bytes / (steps + resets)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3, help="median over this many measurements")
    args = parser.parse_args()

    def median_of(measure, name):
        runs = sorted((measure(name, args.steps) for _ in range(args.repeats)), key=lambda r: r["steps_per_s"])
        return runs[len(runs) // 2]

    raw = {"cartpole": 16, "image": 84 * 84 * 3}
    print("| env | transport | steps/s | bytes per step (both ways) | bytes / raw obs bytes |")
    print("|---|---|---|---|---|")
    for name in ("cartpole", "image"):
        results = {"in-process": median_of(measure_inprocess, name), "dreamlab": median_of(measure_dreamlab, name),
                   "http+base64 json": median_of(measure_http, name),
                   "http+base64 json, untuned": measure_http(name, 200, tuned=False)}
        for transport, r in results.items():
            ratio = f"{r['bytes_per_step'] / raw[name]:.2f}x" if r["bytes_per_step"] else "-"
            bytes_text = f"{r['bytes_per_step']:,.0f}" if r["bytes_per_step"] else "-"
            print(f"| {name} | {transport} | {r['steps_per_s']:,.0f} | {bytes_text} | {ratio} |")
        for baseline in ("http+base64 json", "http+base64 json, untuned"):
            speedup = results["dreamlab"]["steps_per_s"] / results[baseline]["steps_per_s"]
            print(f"| {name} | dreamlab / {baseline} | {speedup:.1f}x | | |")


if __name__ == "__main__":
    main()
