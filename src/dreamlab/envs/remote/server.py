"""Serve any Gymnasium env over dreamlab's remote-env protocol (`dreamlab serve-env ENV_ID`).

Each connection gets its own env instance, made by `make_env()` when the client says hello.
Every message is validated; a bad one gets {"op": "error", "message": ...} and the server keeps
serving (a frame whose prefix is broken also closes that connection, since the byte stream can
no longer be trusted). Loopback by default; with a token, a client must present it first.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from dreamlab.envs.remote import protocol as wire


class Connection:
    """The state of one client: its env, whether it said hello, whether an episode is running."""

    def __init__(self, server: EnvServer):
        self.server = server
        self.env: gym.Env | None = None
        self.running = False

    def handle(self, header: dict[str, Any], tensors: dict[str, np.ndarray]) -> tuple[dict, dict]:
        op = header["op"]
        if op == "hello":
            return self.hello(header)
        if self.env is None:
            raise wire.ProtocolError(f"op {op!r} before hello")
        if op == "reset":
            seed = header.get("seed")
            if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
                raise wire.ProtocolError(f"seed must be a non-negative integer or null, got {str(seed)[:40]}")
            obs, info = self.env.reset(seed=seed)
            self.running = True
            return {"op": "obs", "info": wire.json_info(info)}, wire.obs_to_tensors(obs, self.env.observation_space)
        if op == "step":
            if not self.running:
                raise wire.ProtocolError("step before reset (or after the episode ended)")
            action = self.check_action(tensors.get("action"))
            obs, reward, terminated, truncated, info = self.env.step(action)
            self.running = not (terminated or truncated)
            reply = {"op": "obs", "r": float(reward), "term": bool(terminated), "trunc": bool(truncated),
                     "info": wire.json_info(info)}
            return reply, wire.obs_to_tensors(obs, self.env.observation_space)
        if op == "speed":
            return self.speed(header.get("value"))
        if op == "close":
            return {"op": "bye"}, {}
        raise wire.ProtocolError(f"unknown op {op[:40]!r}")

    def hello(self, header: dict[str, Any]) -> tuple[dict, dict]:
        if header.get("version") != wire.VERSION:
            raise wire.ProtocolError(f"protocol version {str(header.get('version'))[:20]} unsupported; "
                                     f"this server speaks {wire.VERSION}")
        token = header.get("token", "")
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.server.token.encode()):
            raise PermissionError("bad token")
        if self.env is None:
            self.env = self.server.make_env()
        return {"op": "spaces", "version": wire.VERSION,
                "observation_space": wire.space_to_json(self.env.observation_space),
                "action_space": wire.space_to_json(self.env.action_space)}, {}

    def check_action(self, action: np.ndarray | None) -> Any:
        space = self.env.action_space
        if action is None:
            raise wire.ProtocolError("step needs an 'action' tensor")
        if isinstance(space, gym.spaces.Discrete):
            if action.shape != () or action.dtype.kind not in "iu":
                got = f"{action.dtype.name}{list(action.shape)}"
                raise wire.ProtocolError(f"action must be an integer scalar, got {got}")
            value = int(action)
            if not space.contains(value):
                raise wire.ProtocolError(f"action {value} outside {space}")
            return value
        if action.shape != space.shape or action.dtype.kind != "f":
            raise wire.ProtocolError(f"action must be float{list(space.shape)}, got {action.dtype.name}"
                                     f"{list(action.shape)}")
        value = action.astype(space.dtype)
        if not (np.all(np.isfinite(value)) and space.contains(value)):
            raise wire.ProtocolError(f"action {np.array2string(value, threshold=8)} outside the bounds of {space}")
        return value

    def speed(self, value: Any) -> tuple[dict, dict]:
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
            raise wire.ProtocolError(f"speed must be a positive number, got {str(value)[:40]}")
        setter = getattr(self.env.unwrapped, "set_speed", None)
        if setter is None:
            raise wire.ProtocolError(f"{self.env.spec.id if self.env.spec else 'this env'} has no set_speed(value)")
        setter(float(value))
        return {"op": "ok"}, {}

    def close(self) -> None:
        if self.env is not None:
            self.env.close()


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        owner = self.server.owner
        connection = Connection(owner)
        reader = wire.FrameReader(sock)
        try:
            while True:
                try:
                    header, tensors, _ = wire.receive(reader, owner.max_message_bytes)
                except wire.ProtocolError as exc:  # framing broken: answer, then drop the connection
                    wire.send(sock, {"op": "error", "message": str(exc)})
                    return
                try:
                    reply, out = connection.handle(header, tensors)
                except PermissionError as exc:
                    wire.send(sock, {"op": "error", "message": str(exc)})
                    return
                except wire.ProtocolError as exc:
                    reply, out = {"op": "error", "message": str(exc)}, {}
                except Exception as exc:  # the env itself failed: report it, the episode is over
                    connection.running = False
                    reply, out = {"op": "error", "message": f"env raised {type(exc).__name__}: {exc}"}, {}
                wire.send(sock, reply, out)
                if reply["op"] == "bye":
                    return
        except (ConnectionError, OSError):
            return  # the client went away
        finally:
            connection.close()


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: EnvServer


class EnvServer:
    """Serves `make_env()` instances on host:port (port 0 picks a free one; see `.address`)."""

    def __init__(self, make_env: Callable[[], gym.Env], host: str = "127.0.0.1", port: int = 0,
                 token: str = "", max_message_bytes: int = wire.DEFAULT_MAX_MESSAGE_BYTES):
        if not token and not _is_loopback(host):
            raise ValueError(f"serving on {host} exposes the env beyond this machine: give a token")
        self.make_env, self.token, self.max_message_bytes = make_env, token, max_message_bytes
        self.tcp = _TCPServer((host, port), _Handler)
        self.tcp.owner = self
        self.thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        host, port = self.tcp.server_address[:2]
        return f"{host}:{port}"

    def serve_forever(self) -> None:
        self.tcp.serve_forever(poll_interval=0.2)

    def start(self) -> EnvServer:
        """Serve from a background thread (tests, benchmarks)."""
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()
        return self

    def close(self) -> None:
        self.tcp.shutdown() if self.thread is not None else None
        self.tcp.server_close()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
