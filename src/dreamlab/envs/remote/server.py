"""Serve any Gymnasium env over dreamlab's remote-env protocol (`dreamlab serve-env ENV_ID`).

Each connection gets its own env instance, made by `make_env()` when the client says hello.
Every message is validated; a bad one gets {"op": "error", "message": ...} and the connection
keeps serving. A frame whose prefix is broken (bad magic, a size over the limit) or a wrong token
is answered and closes that connection, since the stream or the peer can no longer be trusted.
Loopback by default; with a token, a client must present it first.

Bounded resources per client (docs/remote_envs.md, "Faults and security"):
- before a successful hello a frame may be at most `max_hello_bytes`, and the hello must be done
  within `read_timeout_s` of connecting: an unauthenticated client cannot make the server buffer
  more than a few KiB, nor hold a thread for long;
- after it, one frame must arrive in full within `read_timeout_s` of its first byte (a slow
  sender is cut), and a connection idle for `idle_timeout_s` is closed (the client reconnects);
- at most `max_connections` connections are served at once; one more is answered "busy" and closed.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import math
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from dreamlab.envs.remote import protocol as wire

DEFAULT_MAX_HELLO_BYTES = 4096  # a hello is about 60 bytes plus the token
DEFAULT_READ_TIMEOUT_S = 10.0
DEFAULT_IDLE_TIMEOUT_S = 600.0  # a trainer pausing longer (a long evaluation) reconnects transparently
DEFAULT_MAX_CONNECTIONS = 64


class Connection:
    """The state of one client: its env, whether it said hello, whether an episode is running."""

    def __init__(self, server: EnvServer):
        self.server = server
        self.env: gym.Env | None = None
        self.running = False

    def respond(self, header: dict[str, Any], tensors: dict[str, np.ndarray]) -> bytes:
        """The encoded reply to one message; a bad message or a failing env becomes an error reply.

        PermissionError (a wrong token) propagates: the caller answers it and closes.
        """
        try:
            reply, out = self.handle(header, tensors)
            return wire.encode(reply, out)
        except PermissionError:
            raise
        except wire.ProtocolError as exc:
            message = str(exc)
        except Exception as exc:  # the env itself failed: report it, the episode is over
            self.running = False
            message = f"env raised {type(exc).__name__}: {str(exc)[:200]}"
        return wire.encode({"op": "error", "message": message})

    def handle(self, header: dict[str, Any], tensors: dict[str, np.ndarray]) -> tuple[dict, dict]:
        op = header["op"]
        if op == "hello":
            return self.hello(header)
        if op == "close":
            return {"op": "bye"}, {}
        env = self.env
        if env is None:
            raise wire.ProtocolError(f"op {op!r} before hello")
        if op == "reset":
            seed = header.get("seed")
            if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
                raise wire.ProtocolError(f"seed must be a non-negative integer or null, got {str(seed)[:40]}")
            obs, info = env.reset(seed=seed)
            self.running = True
            return {"op": "obs", "info": wire.json_info(info)}, wire.obs_to_tensors(obs, env.observation_space)
        if op == "step":
            if not self.running:
                raise wire.ProtocolError("step before reset (or after the episode ended)")
            action = self.check_action(env.action_space, tensors.get("action"))
            obs, reward, terminated, truncated, info = env.step(action)
            self.running = not (terminated or truncated)
            reply = {"op": "obs", "r": float(reward), "term": bool(terminated), "trunc": bool(truncated),
                     "info": wire.json_info(info)}
            return reply, wire.obs_to_tensors(obs, env.observation_space)
        if op == "speed":
            return self.speed(env, header.get("value"))
        raise wire.ProtocolError(f"unknown op {op[:40]!r}")

    def hello(self, header: dict[str, Any]) -> tuple[dict, dict]:
        version = header.get("version")
        if type(version) is not int:  # true, 1.0 and "1" are not version 1
            raise wire.ProtocolError(f"protocol version must be an integer (this server speaks {wire.VERSION}), "
                                     f"got {describe(version)}")
        if version != wire.VERSION:
            raise wire.ProtocolError(f"protocol version {str(version)[:20]} unsupported; "
                                     f"this server speaks {wire.VERSION}")
        token = header.get("token", "")
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.server.token.encode()):
            raise PermissionError("bad token")
        if self.env is None:
            self.env = self.server.make_env()
        return {"op": "spaces", "version": wire.VERSION,
                "observation_space": wire.space_to_json(self.env.observation_space),
                "action_space": wire.space_to_json(self.env.action_space)}, {}

    def check_action(self, space: gym.Space, action: np.ndarray | None) -> Any:
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
        shape = tuple(space.shape or ())
        if action.shape != shape or action.dtype.kind != "f":
            raise wire.ProtocolError(f"action must be float{list(shape)}, got {action.dtype.name}"
                                     f"{list(action.shape)}")
        array = action.astype(space.dtype)
        if not (np.all(np.isfinite(array)) and space.contains(array)):
            raise wire.ProtocolError(f"action {np.array2string(array, threshold=8)} outside the bounds of {space}")
        return array

    def speed(self, env: gym.Env, value: Any) -> tuple[dict, dict]:
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
            raise wire.ProtocolError(f"speed must be a positive number, got {str(value)[:40]}")
        setter = getattr(env.unwrapped, "set_speed", None)
        if setter is None:
            raise wire.ProtocolError(f"{env.spec.id if env.spec else 'this env'} has no set_speed(value)")
        setter(float(value))
        return {"op": "ok"}, {}

    def close(self) -> None:
        if self.env is not None:
            self.env.close()


class _Handler(socketserver.BaseRequestHandler):
    """One connection: read a frame, answer it, until the client leaves, misbehaves or times out."""

    server: _TCPServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.owner = self.server.owner
        self.connection = Connection(self.owner)
        self.reader = wire.FrameReader(sock)
        self.reader.deadline = time.monotonic() + self.owner.read_timeout_s  # the whole hello, from now
        try:
            self.serve(sock)
        except (ConnectionError, OSError):
            return  # the client went away, or timed out (TimeoutError): closed without a reply
        except Exception as exc:  # a bug of ours: answer, say so on the server's stderr, drop the connection
            message = f"internal error {type(exc).__name__}: {str(exc)[:200]}"
            print(f"dreamlab serve-env: {self.client_address[0]}: {message}", file=sys.stderr)
            with contextlib.suppress(OSError):
                self.send(sock, wire.encode({"op": "error", "message": message}))
        finally:
            self.connection.close()

    def serve(self, sock: socket.socket) -> None:
        while True:
            try:
                header, tensors = self.next_message()
            except wire.FramingError as exc:  # the stream is out of step: answer, then drop the connection
                return self.send(sock, wire.encode({"op": "error", "message": str(exc)}))
            except wire.ProtocolError as exc:  # the whole frame was read: answer and go on
                self.send(sock, wire.encode({"op": "error", "message": str(exc)}))
                continue
            try:
                frame = self.connection.respond(header, tensors)
            except PermissionError as exc:
                return self.send(sock, wire.encode({"op": "error", "message": str(exc)}))
            self.send(sock, frame)
            if header["op"] == "close":
                return

    def next_message(self) -> tuple[dict, dict]:
        """The next frame, under this connection's size limit and deadlines."""
        owner, reader = self.owner, self.reader
        if self.connection.env is None:  # before hello: small frames, the deadline set at connect
            return wire.receive(reader, min(owner.max_hello_bytes, owner.max_message_bytes))[:2]
        reader.deadline = time.monotonic() + owner.idle_timeout_s if owner.idle_timeout_s else None
        reader.fill(1)  # idle until the first byte of the next frame
        reader.deadline = time.monotonic() + owner.read_timeout_s
        return wire.receive(reader, owner.max_message_bytes)[:2]

    def send(self, sock: socket.socket, frame: bytes) -> None:
        sock.settimeout(self.owner.read_timeout_s)  # a client that never reads its replies is cut too
        sock.sendall(frame)


class _TCPServer(socketserver.ThreadingTCPServer):
    """A thread per connection, at most `owner.max_connections` of them."""

    daemon_threads = True
    allow_reuse_address = True
    owner: EnvServer

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()
        self.open_connections = 0

    def process_request(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        with self.lock:
            busy = self.open_connections >= self.owner.max_connections
            if not busy:
                self.open_connections += 1
        if busy:
            return self.refuse(request)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.release()
            raise

    def process_request_thread(self, request: socket.socket | tuple[bytes, socket.socket],
                               client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.release()

    def release(self) -> None:
        with self.lock:
            self.open_connections -= 1

    def refuse(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        message = f"server busy: {self.owner.max_connections} connections open (serve-env --max-connections)"
        sock = request if isinstance(request, socket.socket) else request[1]  # a TCP server's is a socket
        try:
            sock.settimeout(1.0)
            wire.send(sock, {"op": "error", "message": message})
        except OSError:
            pass
        self.shutdown_request(request)


class EnvServer:
    """Serves `make_env()` instances on host:port (port 0 picks a free one; see `.address`).

    Limits (module docstring): `max_message_bytes` per frame after hello, `max_hello_bytes` (or
    `max_message_bytes` if smaller) before it; `read_timeout_s` for the hello and for each frame;
    `idle_timeout_s` between frames (0: no limit); `max_connections` served at once.
    """

    def __init__(self, make_env: Callable[[], gym.Env], host: str = "127.0.0.1", port: int = 0,
                 token: str = "", max_message_bytes: int = wire.DEFAULT_MAX_MESSAGE_BYTES, *,
                 max_hello_bytes: int = DEFAULT_MAX_HELLO_BYTES, read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
                 idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S, max_connections: int = DEFAULT_MAX_CONNECTIONS):
        if not token and not _is_loopback(host):
            raise ValueError(f"serving on {host} exposes the env beyond this machine: give a token")
        _check_limits(max_message_bytes, max_hello_bytes, read_timeout_s, idle_timeout_s, max_connections)
        self.make_env, self.token, self.max_message_bytes = make_env, token, max_message_bytes
        self.max_hello_bytes, self.max_connections = max_hello_bytes, max_connections
        self.read_timeout_s, self.idle_timeout_s = read_timeout_s, idle_timeout_s
        self.tcp = _TCPServer((host, port), _Handler)
        self.tcp.owner = self
        self.thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        host, port = self.tcp.socket.getsockname()[:2]
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


def _check_limits(max_message_bytes: int, max_hello_bytes: int, read_timeout_s: float, idle_timeout_s: float,
                  max_connections: int) -> None:
    """One-line ValueErrors for limits that cannot work (the CLI's option names, which map one to one)."""
    for name, value in (("--max-bytes", max_message_bytes), ("--max-hello-bytes", max_hello_bytes)):
        if not value >= 128:
            raise ValueError(f"{name} {value}: expected at least 128 bytes (a hello takes about 60)")
    if not 0 < read_timeout_s < math.inf:
        raise ValueError(f"--read-timeout {read_timeout_s}: expected a positive number of seconds")
    if not 0 <= idle_timeout_s < math.inf:
        raise ValueError(f"--idle-timeout {idle_timeout_s}: expected seconds, or 0 for no limit")
    if not max_connections >= 1:
        raise ValueError(f"--max-connections {max_connections}: expected at least 1")


def describe(value: Any) -> str:
    """A parsed JSON value for an error message: its JSON type, and the value itself when it is short."""
    if value is None:
        return "null"
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}
    if isinstance(value, list | dict):
        return f"an {names[type(value)]}"
    shown = json.dumps(value) if isinstance(value, bool | str) else str(value)
    return f"{names[type(value)]} {shown[:20]}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
