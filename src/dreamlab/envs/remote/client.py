"""RemoteEnv: a gymnasium.Env whose steps run in a dreamlab env server (`dreamlab serve-env`).

Every request, its whole reply included, has `timeout_s`; a lost connection is re-established with
exponential backoff. An episode cut by a disconnect ends as truncated (its last observation
repeated, info {"disconnected": True}), so the replay never bootstraps across it as if it had
terminated; the next reset() runs on the new connection. A server that stays unreachable raises
ConnectionError naming the address after `retries` attempts, never a hang.

A broken or hostile server cannot make the client buffer more than one reply's worth: replies are
refused before they are read when they announce more than a header plus the largest observation
the spaces allow (`wire.max_obs_bytes`), and a reply whose observation has the wrong shape or
dtype, or whose fields have the wrong types, raises ProtocolError (a ValueError) naming the
address and drops the connection.
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
        self.reply_limit = min(wire.MAX_HEADER_BYTES, max_message_bytes)  # the spaces reply has no payload
        spaces = self._connect()
        self.observation_space = self._space(spaces, "observation_space")
        self.action_space = self._space(spaces, "action_space")
        self.reply_limit = min(max_message_bytes, wire.MAX_HEADER_BYTES + wire.max_obs_bytes(self.observation_space))

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
                reply, _ = self._request({"op": "hello", "version": wire.VERSION, "token": self.token}, expect="spaces")
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

    def _space(self, spaces: dict[str, Any], key: str) -> gym.Space:
        try:
            return wire.space_from_json(spaces.get(key), self.max_message_bytes)
        except wire.ProtocolError as exc:
            self._drop()
            raise wire.ProtocolError(f"remote env at {self.address}: {key}: {exc}") from None

    def _request(self, header: dict[str, Any], tensors: dict[str, np.ndarray] | None = None,
                 expect: str = "obs") -> tuple[dict, dict]:
        """One request and its reply (op `expect`), within timeout_s in all.

        Server-side errors raise ValueError; a malformed reply ProtocolError (a ValueError, the
        connection dropped); a dead or silent link ConnectionError.
        """
        if self.sock is None:
            raise ConnectionError("not connected")
        self.reader.deadline = time.monotonic() + self.timeout_s
        try:
            self.sock.settimeout(self.timeout_s)
            self.bytes_sent += wire.send(self.sock, header, tensors)
            reply, out, received = wire.receive(self.reader, self.reply_limit)
        except wire.ProtocolError as exc:
            self._drop()
            raise wire.ProtocolError(f"remote env at {self.address}: bad reply: {exc}") from None
        except (TimeoutError, OSError) as exc:
            self._drop()
            raise ConnectionError(f"remote env at {self.address}: {exc or type(exc).__name__}") from None
        self.bytes_received += received
        if reply["op"] == "error":
            raise ValueError(f"remote env at {self.address}: {str(reply.get('message', 'error'))[:300]}")
        if reply["op"] != expect:
            self._drop()
            raise wire.ProtocolError(f"remote env at {self.address}: bad reply: op {reply['op'][:40]!r} "
                                     f"to {header['op']!r}, expected {expect!r}")
        return reply, out

    def _observation(self, out: dict[str, np.ndarray]) -> Any:
        try:
            return wire.obs_from_tensors(out, self.observation_space)
        except wire.ProtocolError as exc:
            self._drop()
            raise wire.ProtocolError(f"remote env at {self.address}: bad reply: {exc}") from None

    def _step_fields(self, reply: dict[str, Any]) -> tuple[float, bool, bool, dict]:
        reward, term, trunc, info = reply.get("r"), reply.get("term"), reply.get("trunc"), reply.get("info", {})
        if (isinstance(reward, bool) or not isinstance(reward, int | float) or type(term) is not bool
                or type(trunc) is not bool or not isinstance(info, dict)):
            self._drop()
            raise wire.ProtocolError(f"remote env at {self.address}: bad reply: step needs a number 'r', booleans "
                                     f"'term' and 'trunc' and an object 'info', got {str(reply)[:80]}")
        return float(reward), term, trunc, info

    def _info(self, reply: dict[str, Any]) -> dict:
        info = reply.get("info", {})
        if not isinstance(info, dict):
            self._drop()
            raise wire.ProtocolError(f"remote env at {self.address}: bad reply: 'info' must be an object, "
                                     f"got {str(info)[:40]}")
        return info

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
        self.last_obs = self._observation(out)
        return self.last_obs, self._info(reply)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        action = np.asarray(action)
        if isinstance(self.action_space, gym.spaces.Discrete):
            action = action.astype(np.int64).reshape(())
        try:
            reply, out = self._request({"op": "step"}, {"action": action})
        except ConnectionError:
            self._reconnect()
            return self.last_obs, 0.0, False, True, {"disconnected": True}
        reward, terminated, truncated, info = self._step_fields(reply)
        self.last_obs = self._observation(out)
        return self.last_obs, reward, terminated, truncated, info

    def set_speed(self, value: float) -> None:
        """The served simulation's running speed (only for envs that implement set_speed)."""
        self._request({"op": "speed", "value": float(value)}, expect="ok")

    def _reconnect(self) -> None:
        self._drop()
        self.reconnects += 1
        spaces = self._connect()
        if self._space(spaces, "observation_space") != self.observation_space:
            raise ConnectionError(f"remote env at {self.address}: reconnected to an env with other spaces")

    def close(self) -> None:
        if self.sock is not None:
            try:
                self._request({"op": "close"}, expect="bye")
            except (ConnectionError, ValueError):
                pass
            self._drop()
