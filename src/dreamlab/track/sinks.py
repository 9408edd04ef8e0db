"""Metric sinks behind one `write(step, metrics)` interface: JSONL always, TensorBoard optional."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from dreamlab.track import names


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

    def close(self) -> None:
        self.writer.close()


class Tracker:
    """Fans metrics out to the sinks; rejects names missing from the registry."""

    def __init__(self, run_dir: Path, tensorboard: bool = True):
        self.sinks: list = [JsonlSink(run_dir / "metrics.jsonl")]
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
