"""Wire format of dreamlab's remote environments (docs/remote_envs.md has the full description).

Every message is one frame:

    magic  b"DLE1"            4 bytes
    header_len  uint32 LE     4 bytes
    payload_len uint32 LE     4 bytes
    header  UTF-8 JSON        header_len bytes
    payload raw tensors       payload_len bytes

The header is a JSON object with an "op" and, when tensors travel, "t": [[name, dtype, shape], ...]
in payload order. Each tensor is its C-order little-endian bytes, with no padding: an 84x84x3
uint8 frame costs exactly 21,168 payload bytes. No pickle and nothing executable: the header is
plain JSON and dtypes come from a fixed list.

Two kinds of bad input: a FramingError (bad magic, a size over the limit) leaves the byte stream
out of step, so the connection must close; any other ProtocolError is raised after the whole
frame was read, so the peer can be answered and the connection kept. Reads can carry a deadline
(FrameReader.deadline): a frame that does not arrive in full by then raises TimeoutError, however
slowly its bytes trickle in.
"""

from __future__ import annotations

import json
import math
import socket
import struct
import time
from typing import Any

import gymnasium as gym
import numpy as np

MAGIC = b"DLE1"
VERSION = 1
PREFIX = struct.Struct("<4sII")
DTYPES = {name: np.dtype(name).newbyteorder("<") for name in
          ("bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "float16", "float32", "float64")}
NAMES = {dtype.newbyteorder("="): name for name, dtype in DTYPES.items()}  # numpy's dtype.name is slow
MAX_HEADER_BYTES = 1 << 20
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20
MAX_DIMS = 32  # dimensions of one tensor (numpy's own limit is 64)


class ProtocolError(ValueError):
    """A malformed frame or message: the peer gets an error reply (server) or an exception (client)."""


class FramingError(ProtocolError):
    """A broken frame prefix (bad magic, a size over the limit): the rest of the stream cannot be trusted."""


def encode(header: dict[str, Any], tensors: dict[str, np.ndarray] | None = None) -> bytes:
    """One frame: the header (plus a tensor table) and the tensors' raw bytes."""
    tensors = tensors or {}
    table, chunks = [], []
    for name, value in tensors.items():
        array = np.asarray(value)
        dtype_name = NAMES.get(array.dtype)
        if dtype_name is None:
            raise ProtocolError(f"tensor {name!r}: dtype {array.dtype} cannot travel (allowed: {', '.join(DTYPES)})")
        array = np.asarray(array, dtype=DTYPES[dtype_name], order="C")  # keeps 0-d shapes
        table.append([name, dtype_name, list(array.shape)])
        chunks.append(array.tobytes())
    if table:
        header = {**header, "t": table}
    head = json.dumps(header, separators=(",", ":")).encode()
    payload = b"".join(chunks)
    return PREFIX.pack(MAGIC, len(head), len(payload)) + head + payload


class FrameReader:
    """Buffered reads from a socket: a small message usually arrives in one recv() call.

    `deadline` (a time.monotonic() value, or None for no limit) bounds every read until it is
    changed: past it, TimeoutError, even if bytes keep arriving one at a time.
    """

    def __init__(self, sock: socket.socket, chunk: int = 1 << 16):
        self.sock, self.chunk = sock, chunk
        self.buffer = bytearray()
        self.deadline: float | None = None

    def fill(self, size: int) -> None:
        """Wait until `size` bytes are buffered."""
        while len(self.buffer) < size:
            self.sock.settimeout(self._remaining())
            data = self.sock.recv(max(self.chunk, size - len(self.buffer)))
            if not data:
                raise ConnectionError("peer closed the connection")
            self.buffer += data

    def read_exact(self, size: int) -> bytearray:
        self.fill(size)
        out = self.buffer[:size]
        del self.buffer[:size]
        return out

    def _remaining(self) -> float | None:
        if self.deadline is None:
            return None
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        return remaining


def receive(reader: FrameReader, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> tuple[dict, dict, int]:
    """Read one frame: (header, tensors, frame bytes).

    Raises FramingError for a broken prefix (nothing more is read: the stream is out of step, the
    caller closes the connection), ProtocolError for a bad header or tensor table (the whole frame
    was read: the caller may answer and go on), ConnectionError when the peer is gone and
    TimeoutError past the reader's deadline.
    """
    magic, head_len, payload_len = PREFIX.unpack(bytes(reader.read_exact(PREFIX.size)))
    if magic != MAGIC:
        raise FramingError(f"bad magic {magic!r}, expected {MAGIC!r}")
    if head_len > MAX_HEADER_BYTES or head_len + payload_len > max_bytes:
        raise FramingError(f"message of {head_len + payload_len} bytes exceeds the limit of {max_bytes} bytes")
    head = reader.read_exact(head_len)
    payload = reader.read_exact(payload_len)
    header = _header(head)
    return header, _tensors(header.pop("t", []), payload), PREFIX.size + head_len + payload_len


def _header(head: bytearray) -> dict[str, Any]:
    try:
        header = json.loads(head)
    except RecursionError:
        raise ProtocolError("header is not JSON: nested too deeply") from None
    except ValueError as exc:  # also UnicodeDecodeError, and integers of more than 4300 digits
        raise ProtocolError(f"header is not JSON: {str(exc)[:120]}") from None
    if not isinstance(header, dict) or not isinstance(header.get("op"), str):
        raise ProtocolError("header must be a JSON object with a string 'op'")
    return header


def _tensors(table: Any, payload: bytearray) -> dict[str, np.ndarray]:
    if not isinstance(table, list):
        raise ProtocolError("tensor table 't' must be a list")
    tensors, offset = {}, 0
    for entry in table:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                and isinstance(entry[1], str) and entry[1] in DTYPES and _is_shape(entry[2])):
            raise ProtocolError(f"bad tensor entry {str(entry)[:80]}; expected [name, dtype, shape] "
                                f"with at most {MAX_DIMS} dimensions")
        name, dtype, shape = entry[0], DTYPES[entry[1]], tuple(entry[2])
        size = dtype.itemsize * math.prod(shape)
        if offset + size > len(payload):
            raise ProtocolError(f"tensor {name!r} runs past the payload ({offset + size} > {len(payload)} bytes)")
        tensors[name] = np.frombuffer(payload, dtype, count=size // dtype.itemsize, offset=offset).reshape(shape)
        offset += size
    if offset != len(payload):
        raise ProtocolError(f"payload has {len(payload) - offset} bytes no tensor describes")
    return tensors


def _is_shape(shape: Any) -> bool:
    """A list of at most MAX_DIMS non-negative integers below 2**31 (bool is not an integer here)."""
    return (isinstance(shape, list) and len(shape) <= MAX_DIMS
            and all(type(d) is int and 0 <= d < 1 << 31 for d in shape))


def send(sock: socket.socket, header: dict[str, Any], tensors: dict[str, np.ndarray] | None = None) -> int:
    frame = encode(header, tensors)
    sock.sendall(frame)
    return len(frame)


# ---------------------------------------------------------------- spaces and observations as messages
def space_to_json(space: gym.Space) -> dict[str, Any]:
    if isinstance(space, gym.spaces.Box):
        out: dict[str, Any] = {"type": "box", "dtype": space.dtype.name, "shape": list(space.shape)}
        for key, bound in (("low", space.low), ("high", space.high)):
            flat = np.asarray(bound).reshape(-1)
            uniform = flat.size == 0 or np.all(flat == flat[0])
            value = flat[0].item() if flat.size else 0
            out[key] = _json_number(value) if uniform else [_json_number(v) for v in flat.tolist()]
        return out
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "dict", "spaces": {k: space_to_json(v) for k, v in space.spaces.items()}}
    raise ProtocolError(f"space {space} cannot be served (Box, Discrete or Dict of them)")


def _json_number(value: float) -> float | str:
    if isinstance(value, float) and not np.isfinite(value):
        return "inf" if value > 0 else "-inf"
    return value


def space_from_json(spec: Any, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> gym.Space:
    """The space a peer described; a Box whose observation could not fit a `max_bytes` frame is refused."""
    try:
        kind = spec["type"]
        if kind == "box":
            if not _is_shape(spec["shape"]) or math.prod(spec["shape"]) > max_bytes:
                raise ValueError(f"shape must be at most {MAX_DIMS} sizes of at most {max_bytes} elements in all")
            shape = tuple(spec["shape"])
            dtype = DTYPES[spec["dtype"]]
            low, high = (np.asarray(spec[k], dtype=np.float64) for k in ("low", "high"))
            cast = np.dtype(dtype.name)
            return gym.spaces.Box(np.broadcast_to(low, shape).reshape(shape).astype(cast),
                                  np.broadcast_to(high, shape).reshape(shape).astype(cast), shape, cast)
        if kind == "discrete":
            return gym.spaces.Discrete(int(spec["n"]), start=int(spec.get("start", 0)))
        if kind == "dict":
            return gym.spaces.Dict({k: space_from_json(v, max_bytes) for k, v in spec["spaces"].items()})
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError, RecursionError) as exc:
        raise ProtocolError(f"bad space description {str(spec)[:80]}: {str(exc)[:120]}") from None
    raise ProtocolError(f"unknown space type {str(kind)[:40]!r}")


def max_obs_bytes(space: gym.Space) -> int:
    """The most bytes one observation of `space` may take: every element at 8 bytes (float64, int64)."""
    if isinstance(space, gym.spaces.Dict):
        return sum(max_obs_bytes(sub) for sub in space.spaces.values())
    return 8 * math.prod(space.shape or ())


def obs_to_tensors(obs: Any, space: gym.Space) -> dict[str, np.ndarray]:
    if isinstance(space, gym.spaces.Dict):
        return {f"obs/{k}": np.asarray(obs[k]) for k in space.spaces}
    return {"obs": np.asarray(obs)}


def obs_from_tensors(tensors: dict[str, np.ndarray], space: gym.Space) -> Any:
    """The observation in a reply, checked against the space: its shape, and a dtype of the space's kind."""
    if isinstance(space, gym.spaces.Dict):
        return {k: _cast(tensors, f"obs/{k}", sub) for k, sub in space.spaces.items()}
    return _cast(tensors, "obs", space)


def _cast(tensors: dict[str, np.ndarray], name: str, space: gym.Space) -> Any:
    value = tensors.get(name)
    if value is None:
        raise ProtocolError(f"reply lacks observation tensor {name!r}")
    got = f"{NAMES.get(value.dtype.newbyteorder('='), value.dtype.name)}{list(value.shape)}"
    if isinstance(space, gym.spaces.Discrete):
        if value.shape != () or value.dtype.kind not in "iu":
            raise ProtocolError(f"observation {name!r} must be an integer scalar, got {got}")
        return np.int64(value)
    dtype, shape = space.dtype, tuple(space.shape or ())
    if dtype is None:
        raise ProtocolError(f"observation {name!r}: its space {space} has no dtype")
    if value.shape != shape or not _fits_kind(value.dtype, dtype):
        raise ProtocolError(f"observation {name!r} must be {dtype.name}{list(shape)}, got {got}")
    return np.array(value, dtype=dtype)  # a writable copy out of the receive buffer


def _fits_kind(dtype: np.dtype, target: np.dtype) -> bool:
    """bool fits anything, an integer any integer or float, a float only a float."""
    return dtype.kind == "b" or (dtype.kind in "iu" and target.kind in "iuf") or dtype.kind == target.kind


def json_info(info: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe scalars of an info dict (arrays and objects stay on the server)."""
    out = {}
    for key, value in info.items():
        if isinstance(value, bool | int | str) or (isinstance(value, float) and np.isfinite(value)):
            out[str(key)] = value
        elif isinstance(value, np.generic) and np.isfinite(value):
            out[str(key)] = value.item()
    return out
