"""Remote environments: protocol round trips, gymnasium's checker, bad input, faults, a training run."""

import json
import socket
import struct
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dreamlab.envs.remote import EnvServer, RemoteEnv
from dreamlab.envs.remote import protocol as wire


@pytest.fixture
def cartpole_server():
    server = EnvServer(lambda: gym.make("CartPole-v1")).start()
    yield server
    server.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_frame_round_trip_keeps_dtypes_shapes_and_scalars():
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.array(7, np.int64),
               "img": np.zeros((84, 84, 3), np.uint8), "empty": np.zeros((0, 2), np.float64)}
    frame = wire.encode({"op": "x"}, tensors)
    left, right = socket.socketpair()
    left.sendall(frame)
    header, out, size = wire.receive(wire.FrameReader(right))
    assert header == {"op": "x"} and size == len(frame)
    for key, value in tensors.items():
        assert out[key].dtype == value.dtype and out[key].shape == value.shape
        np.testing.assert_array_equal(out[key], value)
    # raw binary: an 84x84x3 frame costs its bytes plus a small header, no base64
    image_frame = wire.encode({"op": "obs", "r": 0.0, "term": False, "trunc": False, "info": {}},
                              {"obs": np.zeros((84, 84, 3), np.uint8)})
    assert len(image_frame) <= 1.05 * 84 * 84 * 3


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_remote_env_passes_gymnasiums_checker(env_id):
    server = EnvServer(lambda: gym.make(env_id)).start()
    env = RemoteEnv(server.address)
    try:
        local = gym.make(env_id)
        assert env.observation_space == local.observation_space and env.action_space == local.action_space
        check_env(env, skip_render_check=True)
        # same seed, same actions: the remote trajectory equals the local one
        obs, _ = env.reset(seed=3)
        local_obs, _ = local.reset(seed=3)
        np.testing.assert_array_equal(obs, local_obs)
        for _ in range(5):
            action = local.action_space.sample()
            np.testing.assert_array_equal(env.step(action)[0], local.step(action)[0])
    finally:
        env.close()
        server.close()


def test_bad_actions_get_error_replies_and_the_connection_keeps_working(cartpole_server):
    env = RemoteEnv(cartpole_server.address)
    with pytest.raises(ValueError, match="step before reset"):
        env.step(0)
    env.reset(seed=0)
    for bad, message in [(np.array([0, 1]), "integer scalar"), (np.array(0.5), "integer scalar"),
                         (np.array(5), "outside")]:
        with pytest.raises(ValueError, match=message):
            env._request({"op": "step"}, {"action": bad})
    with pytest.raises(ValueError, match="needs an 'action'"):
        env._request({"op": "step"})
    with pytest.raises(ValueError, match="unknown op"):
        env._request({"op": "teleport"})
    with pytest.raises(ValueError, match="no set_speed"):
        env.set_speed(2.0)
    assert env.step(1)[0].shape == (4,)  # still serving this connection
    env.close()


def test_oversized_message_is_refused(cartpole_server):
    server = EnvServer(lambda: gym.make("CartPole-v1"), max_message_bytes=1000).start()
    env = RemoteEnv(server.address)
    env.reset(seed=0)
    with pytest.raises((ValueError, ConnectionError), match="exceeds the limit"):
        env._request({"op": "step"}, {"action": np.zeros(2000, np.uint8)})
    server.close()


def raw_exchange(address: str, data: bytes) -> list[dict]:
    """Send raw bytes on a fresh connection; collect the error replies until the server answers or closes."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)  # no more bytes: a short frame makes the server see the end
        replies, reader = [], wire.FrameReader(sock)
        try:
            while True:
                header, _, _ = wire.receive(reader)
                replies.append(header)
        except (ConnectionError, OSError, struct.error):
            pass
    return replies


def hello() -> bytes:
    return wire.encode({"op": "hello", "version": wire.VERSION, "token": ""})


frames = st.one_of(
    st.binary(max_size=64),  # garbage
    st.builds(lambda h, p: wire.PREFIX.pack(wire.MAGIC, len(h), len(p)) + h + p,
              st.binary(max_size=64), st.binary(max_size=64)),  # valid prefix, junk header
    st.builds(lambda obj, p: (lambda h: wire.PREFIX.pack(wire.MAGIC, len(h), len(p)) + h + p)(
        json.dumps(obj).encode()), st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
            max_leaves=8), st.binary(max_size=32)),  # JSON of any shape
    st.builds(lambda op, table, p: (lambda h: wire.PREFIX.pack(wire.MAGIC, len(h), len(p)) + h + p)(
        json.dumps({"op": op, "t": table}).encode()),
        st.sampled_from(["hello", "reset", "step", "speed", "close", "x"]),
        st.lists(st.lists(st.one_of(st.text(max_size=4), st.sampled_from(list(wire.DTYPES)),
                                    st.lists(st.integers(-2, 5), max_size=3)), min_size=0, max_size=4), max_size=3),
        st.binary(max_size=64)),  # plausible ops with broken tensor tables
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=frames, after_hello=st.booleans())
def test_fuzzed_messages_get_errors_and_the_server_survives(cartpole_server, frame, after_hello):
    replies = raw_exchange(cartpole_server.address, (hello() if after_hello else b"") + frame)
    if after_hello:
        assert replies and replies[0]["op"] == "spaces"
        replies = replies[1:]
    for reply in replies:
        assert reply["op"] in ("error", "spaces", "obs", "bye", "ok")
    # a well-formed client is still served afterwards
    env = RemoteEnv(cartpole_server.address, retries=0)
    env.reset(seed=0)
    env.close()


def test_fuzz_cases_that_must_be_errors(cartpole_server):
    address = cartpole_server.address
    assert raw_exchange(address, b"XXXX" + bytes(8))[0]["op"] == "error"  # bad magic
    assert raw_exchange(address, wire.PREFIX.pack(wire.MAGIC, 3, 0) + b"{{{")[0]["message"].startswith("header")
    assert "before hello" in raw_exchange(address, wire.encode({"op": "reset"}))[0]["message"]
    huge = wire.PREFIX.pack(wire.MAGIC, 10, 1 << 31)
    assert "exceeds the limit" in raw_exchange(address, huge)[0]["message"]


def test_token_is_required_and_checked():
    server = EnvServer(lambda: gym.make("CartPole-v1"), token="s3cret").start()
    with pytest.raises(ValueError, match="bad token"):
        RemoteEnv(server.address)
    with pytest.raises(ValueError, match="bad token"):
        RemoteEnv(server.address, token="guess")
    RemoteEnv(server.address, token="s3cret").close()
    server.close()
    with pytest.raises(ValueError, match="give a token"):
        EnvServer(lambda: gym.make("CartPole-v1"), host="0.0.0.0")


def serve_subprocess(port: int, *options: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "dreamlab.cli", "serve-env", "CartPole-v1", "--port", str(port),
                                *options], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith("serving CartPole-v1")
    return process


def test_killed_server_cuts_the_episode_as_truncated_and_a_dead_one_is_a_clear_error():
    port = free_port()
    server = serve_subprocess(port)
    env = RemoteEnv(f"127.0.0.1:{port}", timeout_s=2, retries=6, backoff_s=0.05)
    env.reset(seed=0)
    env.step(0)
    server.kill()
    server.wait()
    server = serve_subprocess(port)  # back within the backoff window
    obs, reward, terminated, truncated, info = env.step(1)
    assert truncated and not terminated and info == {"disconnected": True} and reward == 0.0
    assert env.reconnects == 1
    env.reset(seed=1)
    env.step(0)
    server.kill()
    server.wait()
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        env.step(1)
    assert time.monotonic() - started < 30  # bounded by the backoff, never a hang
    with pytest.raises(ConnectionError, match="unreachable"):
        RemoteEnv(f"127.0.0.1:{free_port()}", retries=1, backoff_s=0.01)


def test_served_pixels_are_resized_by_the_server():
    port = free_port()
    server = serve_subprocess(port, "--pixels", "--image-size", "36", "--keep-state")
    try:
        env = RemoteEnv(f"127.0.0.1:{port}")
        assert env.observation_space["image"].shape == (36, 36, 3)
        obs, _ = env.reset(seed=0)
        obs, *_ = env.step(1)
        assert obs["image"].shape == (36, 36, 3) and obs["image"].dtype == np.uint8 and obs["state"].shape == (4,)
        env.close()
    finally:
        server.kill()
        server.wait()


@pytest.mark.parametrize("options, words", [
    (["--grayscale"], "need --pixels"),
    (["--pixels", "--image-size", "0"], "expected a positive size"),
    (["--max-connections", "0"], "--max-connections 0: expected at least 1"),
    (["--read-timeout", "0"], "--read-timeout 0.0: expected a positive number of seconds"),
    (["--max-hello-bytes", "10"], "--max-hello-bytes 10: expected at least 128 bytes"),
])
def test_serve_env_options_are_checked_at_start(options, words):
    result = subprocess.run([sys.executable, "-m", "dreamlab.cli", "serve-env", "CartPole-v1", "--port", "0", *options],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and words in result.stderr and result.stderr.count("\n") == 1


def test_serve_env_option_defaults_are_the_servers():
    from dreamlab.cli import build_parser
    from dreamlab.envs.remote import server

    args = build_parser().parse_args(["serve-env", "CartPole-v1"])
    assert (args.max_bytes, args.max_hello_bytes, args.read_timeout, args.idle_timeout, args.max_connections) == (
        wire.DEFAULT_MAX_MESSAGE_BYTES, server.DEFAULT_MAX_HELLO_BYTES, server.DEFAULT_READ_TIMEOUT_S,
        server.DEFAULT_IDLE_TIMEOUT_S, server.DEFAULT_MAX_CONNECTIONS)


def test_training_run_against_a_served_env(tiny, cartpole_server):
    from dreamlab.train.run import train

    result = train([*tiny, "env=remote", f"env.address={cartpole_server.address}", "run.steps=300"], quiet=True)
    assert result.summary["env_steps"] == 300 and result.summary["updates"] > 0
    assert result.summary["best_eval"] is not None


def test_remote_config_errors_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dreamlab.cli", "train", "--quiet", "env=remote",
                             f"run.dir={tmp_path}"], capture_output=True, text=True)
    assert result.returncode != 0 and "env.address" in result.stderr and result.stderr.count("\n") == 1
