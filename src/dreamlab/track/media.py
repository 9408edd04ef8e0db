"""Images and videos written into run directories (PNG grids, animated GIFs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_gif(frames: list[np.ndarray], path: Path, fps: int = 30, max_width: int = 320) -> Path:
    """uint8 [H, W, 3] frames -> an animated GIF, scaled down to `max_width` pixels wide."""
    from PIL import Image

    if not frames:
        raise ValueError("no frames to write")
    images = [Image.fromarray(np.asarray(f, np.uint8).squeeze()) for f in frames]
    width, height = images[0].size
    if width > max_width:
        size = (max_width, max(1, round(height * max_width / width)))
        images = [image.resize(size) for image in images]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    images[0].save(temporary, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps),
                   loop=0)
    temporary.replace(path)  # never a half-written file under the final name
    return path
