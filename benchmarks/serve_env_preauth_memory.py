"""Memory a `dreamlab serve-env` server spends on clients that never authenticate (Linux: reads /proc).

The probe of the hardening issue: N connections with a wrong token, each sending all but the last
byte of a large hello frame (60 MiB by default) and holding on. A server that buffers frames before
checking the token holds N x 60 MiB; one that caps frames before a successful hello refuses each
after its 12-byte prefix. This script starts `dreamlab serve-env CartPole-v1 --token ...` in a
subprocess, reads its resident memory (VmRSS), opens the connections one after another from this
single thread (each sends until the server stops taking bytes: it closed, or 2 s passed), holds
them all open, and reads VmRSS again.

Usage: python benchmarks/serve_env_preauth_memory.py [--connections 4] [--mib 60] [-- SERVE-ENV OPTIONS]
e.g. `-- --max-hello-bytes 67108864` lets frames before hello be as large as any other (no pre-hello cap).
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import subprocess
import sys
import time

PREFIX = struct.Struct("<4sII")  # magic, header length, payload length (docs/remote_envs.md)
CHUNK = memoryview(bytes(1 << 20))


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, options: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "dreamlab.cli", "serve-env", "CartPole-v1", "--port", str(port),
               "--token", "the-real-token", *options]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    if not line.startswith("serving"):
        server.kill()
        raise SystemExit(f"serve-env did not start: {line.strip() or 'no output'}")
    return server


def send_most_of_a_hello(port: int, mib: int) -> tuple[socket.socket, int, bool]:
    """Open a connection and send all but the last byte of a `mib` MiB wrong-token hello frame.

    Returns the socket (held open), the bytes the kernel took, and whether the server cut it short.
    """
    head = json.dumps({"op": "hello", "version": 1, "token": "a-wrong-token"}).encode()
    payload_len = (mib << 20) - PREFIX.size - len(head)
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    sent = 0
    try:
        sock.sendall(PREFIX.pack(b"DLE1", len(head), payload_len) + head)
        sent, remaining = PREFIX.size + len(head), payload_len - 1
        while remaining:
            size = min(remaining, len(CHUNK))
            sock.sendall(CHUNK[:size])
            sent, remaining = sent + size, remaining - size
    except OSError:  # closed by the server (reset, broken pipe) or no longer read (timeout)
        return sock, sent, True
    return sock, sent, False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--mib", type=int, default=60, help="size of each announced hello frame")
    parser.add_argument("options", nargs="*", help="serve-env options, after --")
    args = parser.parse_args()

    port = free_port()
    server = start_server(port, args.options)
    held = []
    try:
        time.sleep(0.5)
        before = rss_mib(server.pid)
        results = [send_most_of_a_hello(port, args.mib) for _ in range(args.connections)]
        held = [sock for sock, _, _ in results]
        time.sleep(1.0)  # let the server's threads take what they will
        after = rss_mib(server.pid)
    finally:
        for sock in held:
            sock.close()
        server.terminate()
        server.wait()
    cut = sum(refused for _, _, refused in results)
    sent = [f"{sent / (1 << 20):.2f}" for _, sent, _ in results]
    print(f"{args.connections} wrong-token connections, each announcing a {args.mib} MiB hello: "
          f"server RSS {before:.1f} -> {after:.1f} MiB; cut short: {cut}/{args.connections}; "
          f"MiB the kernel took from each: {', '.join(sent)}")


if __name__ == "__main__":
    main()
