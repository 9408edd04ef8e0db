"""Learning curves as a PNG: per group the mean over seeds and the min-max band, threshold, baseline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from dreamlab.analyze.runs import Curve, Run, load_run_dir
from dreamlab.track.run_dir import atomic_file

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 5.0, 100  # an 800 x 500 pixel image
X_LABELS = {"env_steps": "env steps", "wall": "training seconds", "updates": "updates"}
MARKERS_UP_TO = 30  # a line of at most this many points also marks each point (one point is a marker only)


def band(curves: list[Curve], axis: str, points: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max over seeds on a common x grid (seeds may have different eval schedules).

    The grid spans the x range every seed covers: the seeds' own x values there when they are
    at most `points` in all (so short runs keep their evaluation steps), else `points` even steps;
    each seed is linearly interpolated onto it. Returns x [P], mean [P], low [P], high [P].
    """
    series = []
    for curve in curves:
        x, y = curve.x(axis), curve.values
        keep = np.isfinite(x) & np.isfinite(y)
        if keep.sum() >= 1:
            series.append((x[keep], y[keep]))
    if not series:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    start, end = max(s[0][0] for s in series), min(s[0][-1] for s in series)
    if len(series) == 1 or end < start:  # one seed (or no overlap): draw the first seed as it is
        x, y = series[0]
        return x, y, y, y
    grid = np.unique(np.concatenate([x[(x >= start) & (x <= end)] for x, _ in series]))
    if len(grid) > points:
        grid = np.linspace(start, end, points)
    stacked = np.stack([np.interp(grid, x, y) for x, y in series])
    return grid, stacked.mean(axis=0), stacked.min(axis=0), stacked.max(axis=0)


def line_style(points: int, is_base: bool) -> dict[str, Any]:
    """Matplotlib style of a group's line: the baseline black and thick; a short line also marks its
    points (a curve of one point draws nothing without a marker)."""
    style: dict[str, Any] = {"color": "black", "linewidth": 2.5, "zorder": 3} if is_base else {"linewidth": 1.5}
    if points <= MARKERS_UP_TO:
        style.update(marker="o", markersize=4 if points > 1 else 6)
    return style


def plot_groups(groups: dict[str, list[Run]], metric: str, path: Path, axis: str = "env_steps",
                threshold: float | None = None, baseline: str | None = None, title: str = "") -> Path:
    """Write a PNG of `metric` against `axis`, one line and band per group; the baseline is drawn black and thick.

    The file is replaced only once fully written: StorageError (naming `path`) where it cannot be."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    try:
        for label, runs in groups.items():
            curves = [run.curves[metric] for run in runs if metric in run.curves]
            x, mean, low, high = band(curves, axis)
            if not len(x):
                continue
            is_base = label == baseline
            style = line_style(len(x), is_base)
            name = f"{label} (baseline)" if is_base else label
            line = ax.plot(x, mean, label=f"{name} [n={len(curves)}]", **style)[0]
            if len(curves) > 1 and len(x) > 1:
                ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
            elif len(curves) > 1:  # one common point: the band is a vertical bar
                ax.vlines(x, low, high, color=line.get_color(), alpha=0.4, linewidth=4)
        if threshold is not None:
            ax.axhline(threshold, color="gray", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
        ax.set_xlabel(X_LABELS.get(axis, axis))
        ax.set_ylabel(metric)
        if title:
            ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
        figure.tight_layout()
        with atomic_file(path) as file:
            figure.savefig(file, dpi=DPI, format="png")
    finally:
        plt.close(figure)
    return path


def plot_run_dir(run_dir: Path, metric: str = "eval/return_mean", threshold: float | None = None) -> Path:
    """curves.png of one run directory (written by `dreamlab train` at the end, see write_curves)."""
    run = load_run_dir(run_dir, [metric])
    return plot_groups({run.name: [run]}, metric, run_dir / "curves.png", threshold=threshold, title=run.name)


def write_curves(run_dir: Path, cfg: Any) -> None:
    """curves.png of a run's primary metric, where `dreamlab train` and `dreamlab.train` finish
    (passed to train/run.py's `train` as its `finish` step); a plotting failure is reported on stderr
    and never fails the run."""
    try:
        plot_run_dir(run_dir, cfg.run.primary_metric, cfg.run.threshold)
    except Exception as exc:  # noqa: BLE001 - a figure is not worth a failed run
        print(f"dreamlab: warning: {run_dir / 'curves.png'} not written: {exc}", file=sys.stderr)
