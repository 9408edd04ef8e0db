"""Hardening of the served env and its client (docs/reliability.md).

A bounded fuzz of `EnvServer` over loopback: every case is answered or closed as docs/remote_envs.md
says, nothing escapes a connection's handler, and a well-behaved client is served afterwards. Then
one test per limit: the pre-hello size cap, read and idle timeouts, the connection cap, errors that
used to escape (nested JSON, huge integers, 100-dimension shapes), version types; and `RemoteEnv`
against a broken or hostile server. Short timeouts keep the file to a few seconds.
"""

import contextlib
import json
import socket
import sys
import threading
import time

import gymnasium as gym
import numpy as np
import pytest

from dreamlab.envs.remote import EnvServer, RemoteEnv
from dreamlab.envs.remote import protocol as wire

TOKEN = "tok"
READ_TIMEOUT = 0.4
IDLE_TIMEOUT = 0.8


def start_server(**limits) -> EnvServer:
    """A CartPole server with short timeouts that records whatever escapes a connection's handler."""
    options = {"token": TOKEN, "read_timeout_s": READ_TIMEOUT, "idle_timeout_s": IDLE_TIMEOUT, **limits}
    server = EnvServer(lambda: gym.make("CartPole-v1"), **options)
    server.escaped = []
    server.tcp.handle_error = lambda request, address: server.escaped.append(repr(sys.exc_info()[1]))
    return server.start()


@pytest.fixture
def server():
    server = start_server(max_connections=8)
    yield server
    server.close()


def connect(server: EnvServer) -> socket.socket:
    host, port = server.address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=3)


def raw(head: bytes, payload: bytes = b"") -> bytes:
    return wire.PREFIX.pack(wire.MAGIC, len(head), len(payload)) + head + payload


def message(header: dict, payload: bytes = b"") -> bytes:
    return raw(json.dumps(header).encode(), payload)


HELLO = message({"op": "hello", "version": 1, "token": TOKEN})
RESET = message({"op": "reset", "seed": 0})


def read_reply(sock: socket.socket, reader: wire.FrameReader) -> dict | None:
    """The next reply's header, or None when the server closed (or reset) the connection."""
    try:
        return wire.receive(reader)[0]
    except (ConnectionError, OSError):
        return None


def outcome(server: EnvServer, data: bytes, after_hello: bool) -> tuple[list[dict], bool]:
    """Send `data` (after a hello if asked), then a probe; the replies, and whether the connection closed."""
    with connect(server) as sock:
        reader = wire.FrameReader(sock)
        if after_hello:
            sock.sendall(HELLO)
            assert read_reply(sock, reader)["op"] == "spaces"
        sock.sendall(data)
        first = read_reply(sock, reader)
        if first is None:
            return [], True
        with contextlib.suppress(OSError):  # the server may be gone already
            sock.sendall(RESET if after_hello else HELLO)
        second = read_reply(sock, reader)
        return [first] + ([second] if second else []), second is None


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def bad_step(table, payload: bytes = b"") -> bytes:
    return message({"op": "step", "t": table}, payload)


KEPT, CLOSED = "answered, kept", "answered, closed"
# (name, bytes, sent after a hello?, documented outcome)
CASES = [
    ("wrong magic", b"XXXX" + bytes(8), False, CLOSED),
    ("wrong magic after hello", b"DLE2" + bytes(8), True, CLOSED),
    ("huge length", wire.PREFIX.pack(wire.MAGIC, 10, 1 << 31), False, CLOSED),
    ("huge length after hello", wire.PREFIX.pack(wire.MAGIC, 10, 1 << 31), True, CLOSED),
    ("header over 1 MiB", wire.PREFIX.pack(wire.MAGIC, (1 << 20) + 1, 0), True, CLOSED),
    ("hello over the pre-hello cap", message({"op": "hello", "version": 1, "token": "x" * 5000}), False, CLOSED),
    ("non-JSON header", raw(b"{{{"), False, KEPT),
    ("non-UTF-8 header", raw(b"\xff\xfe\x00"), True, KEPT),
    ("JSON array header", raw(b"[1, 2]"), False, KEPT),
    ("JSON number header", raw(b"3"), True, KEPT),
    ("JSON string header", raw(b'"op"'), False, KEPT),
    ("JSON null header", raw(b"null"), True, KEPT),
    ("no op", message({"x": 1}), False, KEPT),
    ("integer op", message({"op": 3}), True, KEPT),
    ("unknown op before hello", message({"op": "teleport"}), False, KEPT),
    ("unknown op", message({"op": "teleport"}), True, KEPT),
    ("reset before hello", RESET, False, KEPT),
    ("step before hello", message({"op": "step"}), False, KEPT),
    ("step before reset", bad_step([["action", "int64", []]], bytes(8)), True, KEPT),
    ("version 2", message({"op": "hello", "version": 2, "token": TOKEN}), False, KEPT),
    ("version '1'", message({"op": "hello", "version": "1", "token": TOKEN}), False, KEPT),
    ("version true", message({"op": "hello", "version": True, "token": TOKEN}), False, KEPT),
    ("version 1.0", message({"op": "hello", "version": 1.0, "token": TOKEN}), False, KEPT),
    ("no version", message({"op": "hello", "token": TOKEN}), False, KEPT),
    ("wrong token", message({"op": "hello", "version": 1, "token": "guess"}), False, CLOSED),
    ("no token", message({"op": "hello", "version": 1}), False, CLOSED),
    ("integer token", message({"op": "hello", "version": 1, "token": 5}), False, CLOSED),
    ("nested JSON before hello", raw(nested(2000)), False, KEPT),
    ("nested JSON", raw(nested(100_000)), True, KEPT),
    ("5000-digit integer", raw(b'{"op": "reset", "seed": ' + b"7" * 5000 + b"}"), True, KEPT),
    ("string seed", message({"op": "reset", "seed": "3"}), True, KEPT),
    ("NaN speed", raw(b'{"op": "speed", "value": NaN}'), True, KEPT),
    ("100-dimension shape", bad_step([["action", "int64", [1] * 100]], bytes(8)), True, KEPT),
    ("unknown dtype", bad_step([["action", "complex64", []]], bytes(8)), True, KEPT),
    ("dtype not a string", bad_step([["action", ["int64"], []]], bytes(8)), True, KEPT),
    ("negative size", bad_step([["action", "int64", [-1]]]), True, KEPT),
    ("boolean size", bad_step([["action", "int64", [True]]], bytes(8)), True, KEPT),
    ("float size", bad_step([["action", "int64", [1.5]]], bytes(8)), True, KEPT),
    ("size 2**31", bad_step([["action", "uint8", [1 << 31]]]), True, KEPT),
    ("sizes of 2**93 bytes", bad_step([["action", "int64", [(1 << 30) - 1] * 3]]), True, KEPT),
    ("payload too short", bad_step([["action", "int64", [4]]], bytes(8)), True, KEPT),
    ("payload too long", bad_step([["action", "int64", []]], bytes(9)), True, KEPT),
    ("table not a list", bad_step({"action": 1}), True, KEPT),
    ("entry not a list", bad_step(["action"]), True, KEPT),
]


def test_fuzzed_frames_are_answered_or_closed_as_documented_and_the_server_survives(server):
    rng = np.random.default_rng(0)
    for name, data, after_hello, expected in CASES:
        replies, closed = outcome(server, data, after_hello)
        assert replies and replies[0]["op"] == "error", name
        assert (CLOSED if closed else KEPT) == expected, (name, replies)
        if expected == KEPT:  # and the probe after it was served
            assert replies[1]["op"] == ("obs" if after_hello else "spaces"), (name, replies)
    # a frame cut short, the client's side shut: closed at once, without a reply to the cut frame
    for data, expected in [(raw(b'{"op": "reset"}')[:-3], []), (HELLO + RESET[:5], ["spaces"])]:
        with connect(server) as sock:
            started = time.monotonic()
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            reader, replies = wire.FrameReader(sock), []
            while (reply := read_reply(sock, reader)) is not None:
                replies.append(reply["op"])
            assert replies == expected and time.monotonic() - started < 1.0
    # random bytes, before and after a hello: one error reply (bad magic), then the connection closes
    for size in rng.integers(wire.PREFIX.size, 3000, 20):
        replies, closed = outcome(server, rng.bytes(int(size)), bool(size % 2))
        assert closed and [reply["op"] for reply in replies] == ["error"]
    assert_still_serves(server)


def assert_still_serves(server: EnvServer) -> None:
    env = RemoteEnv(server.address, token=TOKEN, timeout_s=2, retries=0)
    env.reset(seed=0)
    assert env.step(1)[0].shape == (4,)
    env.close()
    assert server.thread.is_alive() and server.escaped == []


def wait_for_no_connections(server: EnvServer, within_s: float = 2.0) -> None:
    deadline = time.monotonic() + within_s
    while server.tcp.open_connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.tcp.open_connections == 0


def seconds_until_closed(sock: socket.socket, trickle: bytes = b"", every_s: float = 0.05) -> float:
    """Send `trickle` a byte at a time (or nothing) until the server closes; the seconds that took."""
    started = time.monotonic()
    sock.settimeout(every_s)
    for byte in [*trickle, *[None] * 200]:
        try:
            if byte is not None:
                sock.sendall(bytes([byte]))
            if sock.recv(1 << 16) == b"":
                break
        except TimeoutError:
            continue
        except OSError:  # reset, or a broken pipe
            break
    return time.monotonic() - started


def test_read_timeout_closes_an_idle_connection_and_a_slow_sender(server):
    with connect(server) as idle:  # never says hello
        assert seconds_until_closed(idle) < READ_TIMEOUT + 0.5
    with connect(server) as slow:  # a hello at 20 bytes a second: 2.5 s for the frame, cut at 0.4 s
        assert seconds_until_closed(slow, HELLO) < READ_TIMEOUT + 0.5
    with connect(server) as slow:  # after hello, one frame must arrive within the read timeout once begun
        slow.sendall(HELLO)
        wire.receive(wire.FrameReader(slow))
        assert seconds_until_closed(slow, RESET) < READ_TIMEOUT + 0.5
    with connect(server) as quiet:  # after hello, an idle connection lasts the idle timeout
        quiet.sendall(HELLO)
        wire.receive(wire.FrameReader(quiet))
        assert IDLE_TIMEOUT - 0.1 < seconds_until_closed(quiet) < IDLE_TIMEOUT + 0.5
    assert_still_serves(server)


def test_a_client_closed_for_idling_reconnects_and_its_episode_ends_truncated(server):
    env = RemoteEnv(server.address, token=TOKEN, timeout_s=2, retries=2, backoff_s=0.05)
    env.reset(seed=0)
    time.sleep(IDLE_TIMEOUT + 0.2)
    *_, terminated, truncated, info = env.step(0)
    assert truncated and not terminated and info == {"disconnected": True} and env.reconnects == 1
    env.reset(seed=1)
    assert env.step(0)[0].shape == (4,)
    env.close()


def test_connection_cap_refuses_the_extra_connection_and_idle_ones_free_their_slots():
    server = start_server(max_connections=3)
    try:
        held = [connect(server) for _ in range(3)]
        time.sleep(0.05)
        with connect(server) as extra:
            reader = wire.FrameReader(extra)
            reply = read_reply(extra, reader)
            assert reply["op"] == "error" and "server busy: 3 connections" in reply["message"]
            assert read_reply(extra, reader) is None
        for sock in held:  # idle before hello: closed after the read timeout, and their slots are free
            assert seconds_until_closed(sock) < READ_TIMEOUT + 0.5
            sock.close()
        wait_for_no_connections(server)
        assert_still_serves(server)
    finally:
        server.close()


def test_a_large_frame_before_hello_is_refused_without_being_read(server):
    """The issue's probe: a wrong-token hello announcing 60 MiB is refused after its 12-byte prefix."""
    head = b'{"op": "hello", "version": 1, "token": "guess"}'
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(wire.PREFIX.pack(wire.MAGIC, len(head), 60 << 20) + head + bytes(1000))
        reader = wire.FrameReader(sock)
        reply = read_reply(sock, reader)
        assert reply["op"] == "error" and "exceeds the limit of 4096 bytes" in reply["message"]
        assert read_reply(sock, reader) is None and time.monotonic() - started < 1.0
        with pytest.raises(OSError):  # the rest of the 60 MiB has nowhere to go
            sock.sendall(bytes(60 << 20))
    wait_for_no_connections(server)
    assert_still_serves(server)


def test_nested_json_huge_integers_and_100_dim_shapes_get_errors_and_the_connection_keeps_serving(server):
    with connect(server) as sock:
        reader = wire.FrameReader(sock)
        sock.sendall(HELLO + RESET)
        assert [read_reply(sock, reader)["op"] for _ in range(2)] == ["spaces", "obs"]
        for data, words in [(raw(nested(100_000)), "nested too deeply"),
                            (raw(b'{"op": "step", "n": ' + b"9" * 5000 + b"}"), "4300 digits"),
                            (bad_step([["action", "int64", [1] * 100]], bytes(8)), "at most 32 dimensions")]:
            sock.sendall(data)
            reply = read_reply(sock, reader)
            assert reply["op"] == "error" and words in reply["message"]
            sock.sendall(message({"op": "step", "t": [["action", "int64", []]]}, bytes(8)))
            assert read_reply(sock, reader)["op"] == "obs"
    assert server.escaped == []


def test_hello_versions_must_be_the_integer_1(server):
    with connect(server) as sock:
        reader = wire.FrameReader(sock)
        for version, words in [(True, "must be an integer (this server speaks 1), got boolean true"),
                               ("1", 'must be an integer (this server speaks 1), got string "1"'),
                               (1.0, "got number 1.0"), (None, "got null"), ([1], "got an array"),
                               (2, "protocol version 2 unsupported; this server speaks 1")]:
            sock.sendall(message({"op": "hello", "version": version, "token": TOKEN}))
            reply = read_reply(sock, reader)
            assert reply["op"] == "error" and words in reply["message"], (version, reply)
        sock.sendall(HELLO)  # still open, and still waiting for a hello
        assert read_reply(sock, reader)["op"] == "spaces"


# ---------------------------------------------------------------- RemoteEnv against broken servers
BOX4 = {"observation_space": wire.space_to_json(gym.spaces.Box(-1, 1, (4,), np.float32)),
        "action_space": wire.space_to_json(gym.spaces.Discrete(2))}
IMAGE = {"observation_space": wire.space_to_json(gym.spaces.Box(0, 255, (2, 2, 3), np.uint8)),
         "action_space": wire.space_to_json(gym.spaces.Discrete(2))}
HUGE = {"observation_space": {"type": "box", "dtype": "float32", "shape": [1 << 20, 1 << 20], "low": 0, "high": 1},
        "action_space": wire.space_to_json(gym.spaces.Discrete(2))}


def obs_reply(obs: np.ndarray, **fields) -> bytes:
    return wire.encode({"op": "obs", "info": {}, **fields}, {"obs": obs})


@contextlib.contextmanager
def broken_server(spaces: dict, replies: list[bytes], trickle: bool = False, close: bool = False):
    """One connection: answers hello with `spaces`, then each request with the next of `replies`
    (the last one a byte per 50 ms if `trickle`), then holds the connection (or closes it). It
    accepts nothing more, so the client's reconnection is refused at once."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def run():
        with contextlib.suppress(OSError), listener.accept()[0] as sock:
            listener.close()
            reader = wire.FrameReader(sock)
            wire.receive(reader)
            wire.send(sock, {"op": "spaces", "version": 1, **spaces})
            for index, data in enumerate(replies):
                wire.receive(reader)
                if trickle and index == len(replies) - 1:
                    for byte in data:
                        sock.sendall(bytes([byte]))
                        if stop.wait(0.05):
                            break
                else:
                    sock.sendall(data)
            if not close:
                stop.wait(5)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        thread.join(5)


TIMEOUT = 0.5
CLIENT_CASES = [  # (name, spaces, replies, trickle, close, error type, words)
    ("oversized frame", BOX4, [wire.PREFIX.pack(wire.MAGIC, 100, 32 << 20)], False, False, ValueError,
     "exceeds the limit of 1048608 bytes"),
    ("wrong dtype", IMAGE, [obs_reply(np.zeros((2, 2, 3), np.float32))], False, False, ValueError,
     "observation 'obs' must be uint8[2, 2, 3], got float32[2, 2, 3]"),
    ("wrong shape", BOX4, [obs_reply(np.zeros(5, np.float32))], False, False, ValueError,
     "observation 'obs' must be float32[4], got float32[5]"),
    ("no observation", BOX4, [wire.encode({"op": "obs", "info": {}})], False, False, ValueError,
     "lacks observation tensor 'obs'"),
    ("wrong op", BOX4, [wire.encode({"op": "spaces"})], False, False, ValueError, "op 'spaces' to 'reset'"),
    ("bad reward", BOX4, [obs_reply(np.zeros(4, np.float32)), obs_reply(np.zeros(4, np.float32), r="1")],
     False, False, ValueError, "step needs a number 'r'"),
    ("bad tensor table", BOX4, [raw(b'{"op": "obs", "t": [["obs", "float32", [4]]]}', bytes(3))], False, False,
     ValueError, "runs past the payload"),
    ("server stalls mid-frame", BOX4, [obs_reply(np.zeros(4, np.float32))], True, False, ConnectionError,
     "unreachable after 1 attempts"),
    ("server closes mid-frame", BOX4, [obs_reply(np.zeros(4, np.float32))[:20]], False, True, ConnectionError,
     "unreachable after 1 attempts"),
]


@pytest.mark.parametrize("name, spaces, replies, trickle, close, error, words", CLIENT_CASES,
                         ids=[case[0] for case in CLIENT_CASES])
def test_remote_env_against_a_broken_server_raises_one_line_within_its_timeout(name, spaces, replies, trickle,
                                                                                close, error, words):
    with broken_server(spaces, replies, trickle, close) as address:
        env = RemoteEnv(address, timeout_s=TIMEOUT, retries=0)
        started = time.monotonic()
        with pytest.raises(error) as raised:
            env.reset(seed=0)
            env.step(0)
        elapsed = time.monotonic() - started
        env.close()
    message = str(raised.value)
    assert words in message and address in message and "\n" not in message, message
    assert elapsed < TIMEOUT + 0.5


def test_remote_env_refuses_a_space_too_large_to_travel():
    with broken_server(HUGE, []) as address, pytest.raises(ValueError) as raised:
        RemoteEnv(address, timeout_s=TIMEOUT, retries=0)
    assert "observation_space: bad space description" in str(raised.value) and "\n" not in str(raised.value)
