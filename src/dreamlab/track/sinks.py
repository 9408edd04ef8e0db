"""Metric sinks behind one `write(step, metrics)` interface: JSONL always, TensorBoard optional.

Sinks that also show images and videos have `write_media(step, media)` (media files, TensorBoard)."""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path

import numpy as np

from dreamlab.track import names
from dreamlab.track.media import gif_bytes, write_png, write_video

Media = dict[str, tuple[np.ndarray, list[np.ndarray]]]  # name -> (grid image, video frames), uint8 [H, W, C]


class JsonlSink:
    """Appends {"step", "time", name: value, ...} lines to metrics.jsonl (append keeps resumed curves)."""

    def __init__(self, path: Path):
        self.file = open(path, "a", buffering=1)

    def write(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": step, "time": round(time.time(), 3)}
        row.update({k: (v if math.isfinite(v) else None) for k, v in metrics.items()})
        self.file.write(json.dumps(row) + "\n")

    def close(self) -> None:
        self.file.close()


class TensorBoardSink:
    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def write(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, global_step=step)

    def write_media(self, step: int, media: Media) -> None:
        """The grid as an image; the video as an animated GIF image (TensorBoard plays those, and
        add_video would need moviepy)."""
        from PIL import Image
        from tensorboard.compat.proto.summary_pb2 import Summary

        for key, (grid, frames) in media.items():
            self.writer.add_image(key, grid, global_step=step, dataformats="HWC")
            data = gif_bytes(frames, fps=10)
            width, height = Image.open(io.BytesIO(data)).size
            video = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=data)
            summary = Summary(value=[Summary.Value(tag=f"{key}_video", image=video)])
            self.writer._get_file_writer().add_summary(summary, step)

    def close(self) -> None:
        self.writer.close()


class MediaFiles:
    """Media as files: media/<name>_<env step>.png (grid) and .gif (video) in the run directory."""

    def __init__(self, folder: Path):
        self.folder = folder

    def write(self, step: int, metrics: dict[str, float]) -> None:
        pass  # scalars go elsewhere

    def write_media(self, step: int, media: Media) -> None:
        for key, (grid, frames) in media.items():
            stem = base = f"{key.split('/', 1)[-1]}_{step:08d}"
            copies = 1
            while (self.folder / f"{stem}.png").exists():  # media twice at one env step (collector processes)
                copies += 1
                stem = f"{base}_{copies}"
            write_png(grid, self.folder / f"{stem}.png")
            write_video(frames, self.folder / f"{stem}.gif", fps=10)

    def close(self) -> None:
        pass


class Tracker:
    """Fans metrics out to the sinks; rejects names missing from the registry."""

    def __init__(self, run_dir: Path, tensorboard: bool = True):
        self.sinks: list = [JsonlSink(run_dir / "metrics.jsonl"), MediaFiles(run_dir / "media")]
        if tensorboard:
            self.sinks.append(TensorBoardSink(run_dir))

    def add(self, sink: object) -> None:
        """Another sink with write(step, metrics) and close() (the MLflow sink is added this way)."""
        self.sinks.append(sink)

    def write(self, step: int, metrics: dict[str, float]) -> None:
        for key in metrics:
            names.check(key)
        clean = {k: float(v) for k, v in metrics.items()}
        for sink in self.sinks:
            sink.write(step, clean)

    def write_media(self, step: int, media: Media) -> None:
        """{name: (grid image, video frames)} to the sinks that show media (files, TensorBoard)."""
        for key in media:
            names.check(key)
        for sink in self.sinks:
            if hasattr(sink, "write_media"):
                sink.write_media(step, media)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class MeanAccumulator:
    """Averages per-update metrics until they are written every `track.every` updates."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            if key.startswith("grad/norm_before_clip_max/"):  # a max, not a mean
                self.sums[key] = max(self.sums.get(key, -math.inf), value)
                self.counts[key] = 1
            else:
                self.sums[key] = self.sums.get(key, 0.0) + value
                self.counts[key] = self.counts.get(key, 0) + 1

    def pop(self) -> dict[str, float]:
        means = {k: self.sums[k] / self.counts[k] for k in self.sums}
        self.sums, self.counts = {}, {}
        return means
