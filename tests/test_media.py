import numpy as np
import pytest

from dreamlab.track.media import openloop_layout, write_video


def test_openloop_layout_rows_are_truth_model_and_error_with_a_bar_where_dreams_start():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (2, 6, 4, 4, 1), dtype=np.uint8)  # grayscale: shown as RGB
    model = rng.integers(0, 256, (2, 6, 4, 4, 1), dtype=np.uint8)
    grid, frames = openloop_layout(truth, model, context=2, columns=4, pad=1)
    cell = 5  # 4 pixels + 1 padding
    assert grid.shape == (2 * 3 * cell, 4 * cell, 3) and len(frames) == 6
    assert frames[0].shape == (3 * cell, 2 * cell, 3)
    # grid columns: the 2 context steps, then 2 imagined steps spread over steps 2..5 (2 and 5)
    second_sequence = 3 * cell
    np.testing.assert_array_equal(grid[second_sequence:second_sequence + 4, 3 * cell:3 * cell + 4, 0],
                                  truth[1, 5, :, :, 0])
    error = np.abs(truth[0, 2].astype(int) - model[0, 2].astype(int))[..., 0]
    np.testing.assert_array_equal(grid[2 * cell:2 * cell + 4, 2 * cell:2 * cell + 4, 1], error)
    bar = grid[:, 2 * cell - 1]  # right padding of the last context column
    assert (bar == [255, 0, 0]).all()
    assert (grid[:, cell - 1] == 255).all()  # other padding stays white


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_write_video_by_suffix_and_never_a_partial_file(tmp_path, suffix):
    frames = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(12)]
    path = write_video(frames, tmp_path / f"clip{suffix}", fps=12)
    assert path.stat().st_size > 0 and [p.name for p in tmp_path.iterdir()] == [path.name]
    with pytest.raises(ValueError, match="mp4 or .gif"):
        write_video(frames, tmp_path / "clip.avi")
    with pytest.raises(ValueError, match="no frames"):
        write_video([], tmp_path / f"empty{suffix}")


def test_media_twice_at_one_env_step_keeps_both(tmp_path):
    from dreamlab.track.sinks import MediaFiles

    sink = MediaFiles(tmp_path)
    frames = [np.full((8, 8, 3), 40 * i, np.uint8) for i in range(3)]
    for value in (0, 200):
        sink.write_media(500, {"media/openloop": (np.full((8, 8, 3), value, np.uint8), frames)})
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["openloop_00000500.png", "openloop_00000500_2.png"]
    assert len(list(tmp_path.glob("*.gif"))) == 2


def mp4_codec(path) -> dict:
    """The first video stream's codec and pixel format, as the ffmpeg of imageio-ffmpeg reads them."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frames = sum(1 for _ in reader)
    return {**meta, "frames": frames}


def test_mp4_is_h264_in_yuv420p_with_the_index_first(tmp_path):
    """Browsers play H.264 in yuv420p; OpenCV's mp4v (MPEG-4 part 2) they do not. Odd sizes are padded."""
    frames = [np.full((45, 85, 3), (7 * i, 255 - 7 * i, 128), np.uint8) for i in range(20)]
    path = write_video(frames, tmp_path / "clip.mp4", fps=20)
    data = path.read_bytes()
    assert data[4:8] == b"ftyp" and b"avc1" in data[:4096]  # the H.264 sample entry
    assert data.find(b"moov") < data.find(b"mdat")  # faststart: a browser can play before the end arrives
    meta = mp4_codec(path)
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert meta["fps"] == 20 and meta["frames"] == 20
    assert meta["size"] == (256, 136)  # 85x45 scaled 3x for viewing (255x135), then padded to even sides
