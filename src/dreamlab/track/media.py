"""Images and videos for people to look at: PNG grids, GIF and MP4 videos, open-loop dream layouts.

Every frame here is uint8 [H, W, C] with C = 1 or 3. Files are written under a temporary name and
then renamed, so a crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

Media = dict[str, tuple[np.ndarray, list[np.ndarray]]]  # name -> (grid image, video frames), uint8 [H, W, C]

def _rgb(images: np.ndarray) -> np.ndarray:
    """uint8 [..., C] with 3 channels (grayscale repeated); a bare [H, W] frame counts as grayscale."""
    images = np.asarray(images, np.uint8)
    if images.ndim == 2:
        images = images[..., None]
    return np.repeat(images, 3, -1) if images.shape[-1] == 1 else images


def _scaled(frames: list[np.ndarray], max_width: int) -> list[np.ndarray]:
    """Frames as RGB, scaled (nearest, so pixels stay sharp) to at most `max_width` or at least 256 wide."""
    import cv2

    frames = [_rgb(f) for f in frames]
    height, width = frames[0].shape[:2]
    if width > max_width:
        scale = max_width / width
    elif width < 256:  # small frames (64x64 observations) become visible
        scale = float(256 // width)
    else:
        return frames
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return [cv2.resize(f, size, interpolation=cv2.INTER_NEAREST if scale > 1 else cv2.INTER_AREA) for f in frames]


def gif_bytes(frames: list[np.ndarray], fps: int = 30, max_width: int = 640) -> bytes:
    """An animated GIF of the frames, in memory (TensorBoard shows these as animated images)."""
    from PIL import Image

    if not frames:
        raise ValueError("no frames to write")
    images = [Image.fromarray(f) for f in _scaled(frames, max_width)]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return out.getvalue()


def check_video_path(path: Path) -> str:
    """The video's suffix, .mp4 or .gif; anything else is a ValueError (checked before any work)."""
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"{path}: a video must end in .mp4 or .gif")
    return suffix


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad a frame by repeating its last row/column to even height and width (H.264's 4:2:0 needs them)."""
    height, width = frame.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return frame
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def _write_mp4(frames: list[np.ndarray], path: Path, fps: int) -> None:
    """H.264 (libx264, yuv420p) in an MP4 with the index at the front, so browsers play and stream it.

    The encoder is the ffmpeg binary that the imageio-ffmpeg wheel ships: nothing to install beside it.
    """
    import imageio_ffmpeg

    height, width = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(
        str(path), (width, height), fps=fps, codec="libx264", pix_fmt_in="rgb24", pix_fmt_out="yuv420p",
        macro_block_size=2, quality=None, ffmpeg_log_level="error",
        output_params=["-crf", "20", "-preset", "fast", "-movflags", "+faststart"])
    writer.send(None)  # start ffmpeg
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
    finally:
        writer.close()


def write_video(frames: list[np.ndarray], path: Path, fps: int = 30, max_width: int = 640) -> Path:
    """Frames -> `path`: an H.264 MP4 for `.mp4` (plays in browsers), an animated GIF for `.gif`."""
    if not frames:
        raise ValueError("no frames to write")
    suffix = check_video_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp" + suffix)
    try:
        if suffix == ".gif":
            temporary.write_bytes(gif_bytes(frames, fps, max_width))
        else:
            _write_mp4([_even(f) for f in _scaled(frames, max_width)], temporary, fps)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    temporary.replace(path)
    return path


def write_png(image: np.ndarray, path: Path, max_width: int = 1024) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp.png")
    Image.fromarray(_scaled([image], max_width)[0]).save(temporary)
    temporary.replace(path)
    return path


def _pad(images: np.ndarray, pad: int, value: int = 255) -> np.ndarray:
    """Pad the two spatial axes (-3, -2) of [..., H, W, C] on the bottom and right."""
    widths = [(0, 0)] * images.ndim
    widths[-3] = widths[-2] = (0, pad)
    return np.pad(images, widths, constant_values=value)


def openloop_layout(truth: np.ndarray, model: np.ndarray, context: int, columns: int = 16,
                    pad: int = 2) -> tuple[np.ndarray, list[np.ndarray]]:
    """Lay out an open-loop prediction for people: (grid image, video frames).

    truth, model: uint8 [N, T, H, W, C]; the first `context` model frames are posterior
    reconstructions, the rest are imagined from the prior. Each sequence shows three rows: the real
    frames, the model's, and their absolute error. A red bar separates the last reconstructed
    column from the first imagined one in the grid; each video frame shows one time step of all
    sequences.
    """
    truth, model = _rgb(truth), _rgb(model)
    error = np.abs(truth.astype(np.int16) - model.astype(np.int16)).astype(np.uint8)
    rows = _pad(np.stack([truth, model, error], 1), pad)  # [N, 3, T, H', W', C]
    n, _, steps, height, width, channels = rows.shape
    if pad and 0 < context < steps:  # a red bar right of the last reconstructed column: imagination starts after it
        rows[:, :, context - 1, :, -pad:, :] = (255, 0, 0)
    picked = np.arange(steps)
    if steps > columns > context:
        picked = np.concatenate([picked[:context], np.linspace(context, steps - 1, columns - context).round()])
    picked = picked.astype(int)
    grid = rows[:, :, picked].transpose(0, 1, 3, 2, 4, 5).reshape(n * 3 * height, len(picked) * width, channels)
    frames = [rows[:, :, t].transpose(1, 2, 0, 3, 4).reshape(3 * height, n * width, channels) for t in range(steps)]
    return grid, frames
