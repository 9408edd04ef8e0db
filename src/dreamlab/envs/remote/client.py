"""RemoteEnv: a gymnasium.Env whose steps run in a dreamlab env server (`dreamlab serve-env`).

Every call has a timeout; a lost connection is re-established with exponential backoff. An
episode cut by a disconnect ends as truncated (its last observation repeated, info
{"disconnected": True}), so the replay never bootstraps across it as if it had terminated; the
next reset() runs on the new connection. A server that stays unreachable raises ConnectionError
naming the address after `retries` attempts, never a hang.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import gymnasium as gym
import numpy as np

from dreamlab.envs.remote import protocol as wire


def parse_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"remote env address {address!r} is not host:port")
    return host.strip("[]"), int(port)


class RemoteEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, address: str, token: str = "", timeout_s: float = 10.0, retries: int = 5,
                 backoff_s: float = 0.1, max_message_bytes: int = wire.DEFAULT_MAX_MESSAGE_BYTES):
        self.address, self.token = address, token
        self.host, self.port = parse_address(address)
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.max_message_bytes = max_message_bytes
        self.sock: socket.socket | None = None
        self.last_obs: Any = None
        self.bytes_sent = self.bytes_received = 0
        self.reconnects = 0
        spaces = self._connect()
        self.observation_space = wire.space_from_json(spaces["observation_space"])
        self.action_space = wire.space_from_json(spaces["action_space"])

    # ------------------------------------------------------------------ connection
    def _connect(self) -> dict[str, Any]:
        """Open a connection and say hello, retrying with backoff; returns the spaces reply."""
        delay, last_error = self.backoff_s, None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            except OSError as exc:
                last_error = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock, self.reader = sock, wire.FrameReader(sock)
            try:
                reply, _ = self._request({"op": "hello", "version": wire.VERSION, "token": self.token})
                return reply
            except ConnectionError as exc:
                last_error = exc
                self._drop()
        raise ConnectionError(f"remote env at {self.address}: unreachable after {self.retries + 1} attempts "
                              f"({last_error})")

    def _drop(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _request(self, header: dict[str, Any], tensors: dict[str, np.ndarray] | None = None) -> tuple[dict, dict]:
        """One request and its reply. Server-side errors raise ValueError; a dead link ConnectionError."""
        if self.sock is None:
            raise ConnectionError("not connected")
        try:
            self.bytes_sent += wire.send(self.sock, header, tensors)
            reply, out, received = wire.receive(self.reader, self.max_message_bytes)
        except (TimeoutError, OSError) as exc:
            self._drop()
            raise ConnectionError(f"remote env at {self.address}: {exc or type(exc).__name__}") from None
        self.bytes_received += received
        if reply["op"] == "error":
            raise ValueError(f"remote env at {self.address}: {reply.get('message', 'error')}")
        return reply, out

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        if self.sock is None:
            self._reconnect()
        try:
            reply, out = self._request({"op": "reset", "seed": seed})
        except ConnectionError:
            self._reconnect()
            reply, out = self._request({"op": "reset", "seed": seed})
        self.last_obs = wire.obs_from_tensors(out, self.observation_space)
        return self.last_obs, reply.get("info", {})

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        action = np.asarray(action)
        if isinstance(self.action_space, gym.spaces.Discrete):
            action = action.astype(np.int64).reshape(())
        try:
            reply, out = self._request({"op": "step"}, {"action": action})
        except ConnectionError:
            self._reconnect()
            return self.last_obs, 0.0, False, True, {"disconnected": True}
        self.last_obs = wire.obs_from_tensors(out, self.observation_space)
        return self.last_obs, float(reply["r"]), bool(reply["term"]), bool(reply["trunc"]), reply.get("info", {})

    def set_speed(self, value: float) -> None:
        """The served simulation's running speed (only for envs that implement set_speed)."""
        self._request({"op": "speed", "value": float(value)})

    def _reconnect(self) -> None:
        self._drop()
        self.reconnects += 1
        spaces = self._connect()
        if wire.space_from_json(spaces["observation_space"]) != self.observation_space:
            raise ConnectionError(f"remote env at {self.address}: reconnected to an env with other spaces")

    def close(self) -> None:
        if self.sock is not None:
            try:
                self._request({"op": "close"})
            except (ConnectionError, ValueError):
                pass
            self._drop()
