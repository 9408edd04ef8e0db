import numpy as np
import pytest

from dreamlab.replay import persist
from dreamlab.replay.buffer import ReplayBuffer


def fill(buffer: ReplayBuffer, steps: int, episode_length: int = 5) -> None:
    """Stream s, global step t: value = 1000 * s + t; an episode starts every `episode_length` steps."""
    for t in range(steps):
        streams = buffer.num_streams
        buffer.add({
            "state": np.array([[1000.0 * s + t] for s in range(streams)], np.float32),
            "reward": np.full(streams, t, np.float32),
            "is_first": np.full(streams, t % episode_length == 0),
            "is_last": np.full(streams, t % episode_length == episode_length - 1),
            "is_terminal": np.zeros(streams, bool),
            "action": np.zeros(streams, np.int64),
        })


def slow_windows(buffer: ReplayBuffer, stream: np.ndarray, position: np.ndarray) -> dict:
    out = {k: [] for k in buffer.data}
    for b in range(len(stream)):
        for key in buffer.data:
            out[key].append(np.stack([buffer.data[key][stream[b, 0], p] for p in position[b]]))
    return {k: np.stack(v) for k, v in out.items()}


def test_windows_cross_episodes_with_is_first_where_they_begin():
    buffer = ReplayBuffer(capacity=200, num_streams=2, seed=0)
    fill(buffer, 60)
    batch = buffer.sample(64, 12)
    assert batch["state"].shape == (64, 12, 1) and batch["is_first"].shape == (64, 12)
    steps = batch["state"][..., 0] % 1000
    assert np.all(np.diff(steps, axis=1) == 1)  # consecutive steps of one stream, no padding
    assert np.array_equal(batch["is_first"], steps % 5 == 0)  # exactly where episodes begin
    assert batch["is_first"][:, 1:].any()  # windows do cross episode starts


def test_ring_wraps_and_keeps_newest_steps_only():
    buffer = ReplayBuffer(capacity=40, num_streams=2, seed=1)  # 20 per stream
    fill(buffer, 53)
    assert len(buffer) == 40
    batch = buffer.sample(500, 6)
    steps = batch["state"][..., 0] % 1000
    assert steps.min() >= 33 and steps.max() <= 52  # the oldest 33 were overwritten
    assert np.all(np.diff(steps, axis=1) == 1)  # no window crosses the write head
    assert set(np.unique(batch["state"][..., 0] // 1000)) == {0, 1}


def test_vectorized_sample_equals_slow_reference():
    buffer = ReplayBuffer(capacity=64, num_streams=4, seed=2)
    fill(buffer, 37)
    stream, position = buffer.window_indices(32, 7)
    fast = {k: v[stream, position] for k, v in buffer.data.items()}
    slow = slow_windows(buffer, stream, position)
    for key in fast:
        assert np.array_equal(fast[key], slow[key])


def test_uneven_streams_sample_only_valid_windows():
    buffer = ReplayBuffer(capacity=100, num_streams=2, seed=3)
    for t in range(10):  # only stream 1 receives data
        buffer.add({"state": np.array([[float(t)]], np.float32), "reward": np.zeros(1, np.float32),
                    "is_first": np.array([t == 0]), "is_last": np.zeros(1, bool),
                    "is_terminal": np.zeros(1, bool), "action": np.zeros(1, np.int64)}, streams=np.array([1]))
    stream, position = buffer.window_indices(100, 4)
    assert np.all(stream == 1) and position.max() <= 9
    with pytest.raises(ValueError, match="no window of length 11"):
        buffer.sample(1, 11)


def test_length_one_windows_and_size_reports():
    buffer = ReplayBuffer(capacity=100, num_streams=2, seed=4)
    fill(buffer, 10)
    assert buffer.sample(8, 1)["state"].shape == (8, 1, 1)
    assert len(buffer) == 20
    assert buffer.nbytes == sum(v.nbytes for v in buffer.data.values()) > 0


def test_save_load_roundtrip_and_incremental_chunks(tmp_path):
    buffer = ReplayBuffer(capacity=64, num_streams=2, seed=5, chunk=8)
    fill(buffer, 20)
    manifest = persist.save(buffer, tmp_path, None, version=1)
    first_files = dict(manifest["files"])
    fill(buffer, 3)  # touches chunk 2 only (positions 20..22)
    manifest = persist.save(buffer, tmp_path, manifest, version=2)
    changed = {k for k in manifest["files"] if manifest["files"][k] != first_files[k]}
    assert changed == {"2"}
    persist.prune(tmp_path, manifest)
    assert len(list(tmp_path.glob("chunk_*.npz"))) == len(manifest["files"])

    restored = ReplayBuffer(capacity=64, num_streams=2, seed=99, chunk=8)
    persist.load(restored, tmp_path, manifest)
    for key in buffer.data:
        assert np.array_equal(buffer.data[key], restored.data[key])
    assert np.array_equal(buffer.sample(16, 4)["state"], restored.sample(16, 4)["state"])  # same RNG


def test_corrupt_chunk_is_a_clear_error(tmp_path):
    buffer = ReplayBuffer(capacity=16, num_streams=1, seed=0, chunk=8)
    fill(buffer, 10)
    manifest = persist.save(buffer, tmp_path, None, version=1)
    (tmp_path / manifest["files"]["0"]).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="unreadable"):
        persist.load(ReplayBuffer(capacity=16, num_streams=1, chunk=8), tmp_path, manifest)


def fill_frames(buffer: ReplayBuffer, steps: int, episode_length: int) -> None:
    """Frames whose every pixel holds (stream, global step): frame value = 10 * s + t (mod 256)."""
    for t in range(steps):
        streams = buffer.num_streams
        frames = np.stack([np.full((2, 2, 1), (10 * s + t) % 256, np.uint8) for s in range(streams)])
        buffer.add({"image": frames, "reward": np.zeros(streams, np.float32),
                    "is_first": np.full(streams, t % episode_length == 0),
                    "is_last": np.full(streams, t % episode_length == episode_length - 1),
                    "is_terminal": np.zeros(streams, bool), "action": np.zeros(streams, np.int64)})


@pytest.mark.parametrize("steps", [30, 47])  # 47 wraps the 20-step rings: the oldest frame sits mid-episode
def test_frame_stacks_at_sample_time_equal_stacking_by_hand(steps):
    buffer = ReplayBuffer(capacity=40, num_streams=2, seed=6)
    fill_frames(buffer, steps, episode_length=7)
    stack = 4
    buffer.rng = np.random.default_rng(123)
    batch = buffer.sample(64, 5, stack=stack)
    assert batch["image"].shape == (64, 5, 2, 2, stack) and batch["image"].dtype == np.uint8
    buffer.rng = np.random.default_rng(123)  # the same windows again, to stack by hand
    stream, position = buffer.window_indices(64, 5)
    oldest_step = steps - 20  # global step of the oldest frame still stored
    for b in range(64):
        s = stream[b, 0]
        for t in range(5):
            value = int(buffer.data["image"][s, position[b, t], 0, 0, 0])
            step = (value - 10 * s) % 256
            first_of_episode = max(step - step % 7, oldest_step)  # the episode start, or the oldest stored
            expected = [(10 * s + max(step - lag, first_of_episode)) % 256 for lag in reversed(range(stack))]
            assert batch["image"][b, t, 0, 0].tolist() == expected, (b, t, step)


def test_max_bytes_caps_the_capacity_and_survives_a_reload(tmp_path):
    buffer = ReplayBuffer(capacity=1000, num_streams=2, seed=0, chunk=8, max_bytes=2 * 16 * (4 + 4 + 3 + 8))
    fill_frames(buffer, 40, episode_length=7)  # image 4 bytes + reward 4 + flags 3 + action 8 = 19 bytes a step
    assert buffer.stream_capacity == 16 and len(buffer) == 32
    assert buffer.nbytes <= 2 * 16 * 19
    manifest = persist.save(buffer, tmp_path, None, version=1)
    restored = ReplayBuffer(capacity=1000, num_streams=2, seed=0, chunk=8, max_bytes=2 * 16 * 19)
    persist.load(restored, tmp_path, manifest)
    np.testing.assert_array_equal(restored.data["image"], buffer.data["image"])
    with pytest.raises(ValueError, match="max_bytes"):
        ReplayBuffer(capacity=100, num_streams=2, max_bytes=10).add(
            {"image": np.zeros((2, 2, 2, 1), np.uint8), "reward": np.zeros(2, np.float32)})


def test_max_bytes_alone_sets_the_capacity_in_bytes():
    """replay.max_bytes without replay.capacity: as many steps as fit, above the 100k-step default too."""
    step_bytes = 4 + 4 + 3 + 8
    buffer = ReplayBuffer(capacity=None, num_streams=2, max_bytes=2 * 300_000 * step_bytes)
    fill_frames(buffer, 1, episode_length=7)
    assert buffer.stream_capacity == 300_000 and buffer.nbytes == 2 * 300_000 * step_bytes
    assert ReplayBuffer(capacity=None, num_streams=2).stream_capacity == 50_000  # neither: 100k steps


def test_first_save_writes_only_chunks_that_hold_data(tmp_path):
    buffer = ReplayBuffer(capacity=2000, num_streams=2, seed=1, chunk=8)
    fill(buffer, 20)  # positions 0..19 of a 1000-step ring: chunks 0, 1, 2
    buffer.dirty_chunks = set()  # as after a resume: the first save of a new run must still write the data
    manifest = persist.save(buffer, tmp_path, None, version=1)
    assert sorted(manifest["files"], key=int) == ["0", "1", "2"]
    restored = ReplayBuffer(capacity=2000, num_streams=2, seed=1, chunk=8)
    persist.load(restored, tmp_path, manifest)
    for key in buffer.data:
        np.testing.assert_array_equal(restored.data[key], buffer.data[key])


def test_parse_bytes():
    from dreamlab.replay.buffer import parse_bytes

    assert parse_bytes("8GB") == 8 << 30 and parse_bytes("512mb") == 512 << 20 and parse_bytes("1.5KiB") == 1536
    assert parse_bytes("1000") == 1000 and parse_bytes("") is None
    for bad in ("lots", "8XB", "-1GB", "0", "inf", "nan"):
        with pytest.raises(ValueError, match="replay.max_bytes"):
            parse_bytes(bad)
