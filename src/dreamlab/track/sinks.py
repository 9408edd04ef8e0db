"""Metric sinks behind one `write(step, metrics)` interface: JSONL always, TensorBoard optional.

Sinks that also show images and videos have `write_media(step, media)` (media files, TensorBoard)
and `write_video(step, key, frames, fps)` (videos/ files, TensorBoard).

A resumed run logs again every step after its checkpoint: its tracker opens with `resume_step`, the
checkpoint's env step, and the rows a killed run logged past it are dropped from metrics.jsonl and
hidden in TensorBoard, so that every reader sees one row per step."""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path

import numpy as np

from dreamlab.track import names
from dreamlab.track.media import Media, gif_bytes, write_png, write_video
from dreamlab.track.run_dir import storage_error, write_text_atomic


def row_step(line: str) -> float | None:
    """The step of a metrics.jsonl line; None for a line that is not a row with a step."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    step = row.get("step") if isinstance(row, dict) else None
    return step if isinstance(step, int | float) else None


def trim_rows(path: Path, last_step: int) -> None:
    """Drop the rows of metrics.jsonl logged past `last_step` (and a last line cut short by a kill);
    every other line stays. The file is replaced atomically, and only when a line goes."""
    if not path.is_file():
        return
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    whole = lines if text.endswith("\n") else lines[:-1]
    kept = [line for line in whole if (step := row_step(line)) is None or step <= last_step]
    if len(kept) < len(lines):
        write_text_atomic(path, "".join(kept))


class JsonlSink:
    """Appends {"step", "time", name: value, ...} lines to metrics.jsonl (append keeps resumed curves).

    keep_through: a resumed run's checkpoint step; rows past it are dropped first (`trim_rows`)."""

    def __init__(self, path: Path, keep_through: int | None = None):
        self.path = path
        if keep_through is not None:
            trim_rows(path, keep_through)
        try:
            self.file = open(path, "a", buffering=1)
        except OSError as exc:
            raise storage_error(path, exc) from None

    def write(self, step: int, metrics: dict[str, float]) -> None:
        row: dict[str, float | None] = {"step": step, "time": round(time.time(), 3)}
        row.update({k: (v if math.isfinite(v) else None) for k, v in metrics.items()})
        try:
            self.file.write(json.dumps(row) + "\n")
        except OSError as exc:
            raise storage_error(self.path, exc) from None

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
    when the sink closes, from summary.json.

    keep_through: a resumed run's checkpoint step; the new event file starts with a purge of every
    step past it (TensorBoard's restart marker), which hides the events a killed run logged there."""

    def __init__(self, log_dir: Path, keep_through: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = log_dir
        purge_step = None if keep_through is None else keep_through + 1  # purges steps >= purge_step
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)
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
    """Fans metrics out to the sinks; rejects names missing from the registry.

    resume_step: a resumed run's checkpoint step (rows logged past it are dropped, see the module)."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, resume_step: int | None = None):
        self.sinks: list = [JsonlSink(run_dir / "metrics.jsonl", resume_step), MediaFiles(run_dir / "media"),
                            VideoFiles(run_dir / "videos")]
        if tensorboard:
            self.sinks.append(TensorBoardSink(run_dir, resume_step))

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
