"""Metric sinks behind one `write(step, metrics)` interface: JSONL always, TensorBoard optional.

Sinks that also show images and videos have `write_media(step, media)` (media files, TensorBoard)
and `write_video(step, key, frames, fps)` (videos/ files, TensorBoard)."""

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


def hparam_value(value: object) -> float | int | str:
    """A config value as TensorBoard's hparams plugin takes it: numbers stay, the rest as text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return str(value)


class TensorBoardSink:
    """Scalars, media, and the run's metadata: the resolved config as text (tag `config`) and its flat
    values as hparams, whose metrics (`best/<primary metric>`, `final/<primary metric>`) are written
    when the sink closes, from summary.json."""

    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = log_dir
        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.primary: str | None = None
        self.last_step = 0
        self._write_config()

    def _write_config(self) -> None:
        import yaml
        from torch.utils.tensorboard.summary import hparams

        from dreamlab.track.run_dir import flatten

        path = self.run_dir / "config.yaml"
        if not path.is_file():
            return
        text = path.read_text()
        config = yaml.safe_load(text) or {}
        # indented: a code block in the text plugin's markdown, so the YAML keeps its layout
        self.writer.add_text("config", "".join(f"    {line}\n" for line in text.splitlines()), global_step=0)
        self.primary = (config.get("run") or {}).get("primary_metric")
        if self.primary:
            flat = {key: hparam_value(value) for key, value in flatten(config).items()}
            experiment, start, _ = hparams(flat, {tag: 0.0 for tag in self._hparam_metrics()})
            for summary in (experiment, start):
                self.writer._get_file_writer().add_summary(summary)

    def _hparam_metrics(self) -> tuple[str, str]:
        return f"best/{self.primary}", f"final/{self.primary}"

    def write(self, step: int, metrics: dict[str, float]) -> None:
        self.last_step = max(self.last_step, step)
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, global_step=step)

    def write_media(self, step: int, media: Media) -> None:
        """The grid as an image; the video as an animated GIF image (TensorBoard plays those, and
        add_video would need moviepy)."""
        for key, (grid, frames) in media.items():
            self.writer.add_image(key, grid, global_step=step, dataformats="HWC")
            self._add_gif(f"{key}_video", gif_bytes(frames, fps=10), step)

    def write_video(self, step: int, key: str, frames: list[np.ndarray], fps: int) -> None:
        """A video as an animated GIF image (at most 320 pixels wide, to stay small in the event file)."""
        self._add_gif(key, gif_bytes(frames, fps=fps, max_width=320), step)

    def _add_gif(self, tag: str, data: bytes, step: int) -> None:
        from PIL import Image
        from tensorboard.compat.proto.summary_pb2 import Summary

        width, height = Image.open(io.BytesIO(data)).size
        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=data)
        self.writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def _write_hparam_metrics(self) -> None:
        """best/final of the primary metric from summary.json (written just before the sinks close)."""
        summary_path = self.run_dir / "summary.json"
        if not self.primary or not summary_path.is_file():
            return
        from torch.utils.tensorboard.summary import hparams

        summary = json.loads(summary_path.read_text())
        step = int(summary.get("env_steps") or self.last_step)
        for tag, value in zip(self._hparam_metrics(), (summary.get("best_eval"), summary.get("final_eval")),
                              strict=True):
            if value is not None:
                self.writer.add_scalar(tag, float(value), global_step=step)
        self.writer._get_file_writer().add_summary(hparams({}, {})[2], step)  # the session ended

    def close(self) -> None:
        try:
            self._write_hparam_metrics()
        finally:
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


class VideoFiles:
    """Videos as files: videos/<name>_<env step>.mp4 (H.264) in the run directory."""

    def __init__(self, folder: Path):
        self.folder = folder

    def write(self, step: int, metrics: dict[str, float]) -> None:
        pass  # scalars go elsewhere

    def write_video(self, step: int, key: str, frames: list[np.ndarray], fps: int) -> None:
        write_video(frames, self.folder / f"{key.split('/', 1)[-1]}_{step:08d}.mp4", fps=fps)

    def close(self) -> None:
        pass


class Tracker:
    """Fans metrics out to the sinks; rejects names missing from the registry."""

    def __init__(self, run_dir: Path, tensorboard: bool = True):
        self.sinks: list = [JsonlSink(run_dir / "metrics.jsonl"), MediaFiles(run_dir / "media"),
                            VideoFiles(run_dir / "videos")]
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

    def write_video(self, step: int, key: str, frames: list[np.ndarray], fps: int) -> None:
        """One video (uint8 [H, W, C] frames at `fps`) to the sinks that show videos (files, TensorBoard)."""
        names.check(key)
        for sink in self.sinks:
            if hasattr(sink, "write_video"):
                sink.write_video(step, key, frames, fps)

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
