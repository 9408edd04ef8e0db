"""Pure statistics of one learning curve: numpy arrays in, plain floats out.

Every function takes `values` [N] in logging order (and `x` [N] where a position is reported) and
ignores nothing: a NaN value is skipped only where a docstring says so. An empty curve gives None.
"""

from __future__ import annotations

import numpy as np


def best_index(values: np.ndarray) -> int | None:
    """Index of the first occurrence of the largest finite value."""
    finite = np.isfinite(values)
    if not finite.any():
        return None
    return int(np.argmax(np.where(finite, values, -np.inf)))


def first_crossing(values: np.ndarray, threshold: float) -> int | None:
    """Index of the first value >= threshold, None if the curve never gets there."""
    hits = np.flatnonzero(values >= threshold)
    return int(hits[0]) if len(hits) else None


def final_value(values: np.ndarray) -> float | None:
    """The last finite value."""
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if len(finite) else None


def share_at_or_above(values: np.ndarray, threshold: float) -> float | None:
    """Share of `values` >= threshold (None for no values)."""
    return float(np.mean(values >= threshold)) if len(values) else None


def max_drop(values: np.ndarray) -> float | None:
    """Largest fall from a running peak: max over t of (max(values[:t+1]) - values[t]); NaNs skipped."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None
    return float(np.max(np.maximum.accumulate(finite) - finite))


def area_under_curve(x: np.ndarray, values: np.ndarray) -> float | None:
    """Trapezoid area under the curve divided by its span in x: the curve's mean height.

    Dividing by the span keeps runs of different lengths on the scale of the metric; a single
    point gives its value. NaN points are skipped.
    """
    keep = np.isfinite(values) & np.isfinite(x)
    x, values = x[keep], values[keep]
    if not len(values):
        return None
    span = float(x[-1] - x[0])
    if len(values) == 1 or span <= 0:
        return float(np.mean(values))
    return float(np.sum((values[1:] + values[:-1]) * np.diff(x)) / 2.0 / span)


def covered_range(x: np.ndarray, values: np.ndarray) -> tuple[float | None, float | None]:
    """(first, last) x of the finite points, in logging order: the range `area_under_curve` covers."""
    keep = np.isfinite(x) & np.isfinite(values)
    if not keep.any():
        return None, None
    return float(x[keep][0]), float(x[keep][-1])


def stability_after(values: np.ndarray, threshold: float, crossing: int) -> dict[str, float | None]:
    """How well a run holds the threshold after first reaching it (at index `crossing`).

    Returns:
        share_above: share of the evaluations after the crossing that are >= threshold
            (None when the crossing is the last evaluation);
        min_after: the smallest value after the crossing (None likewise);
        drop_after: the largest fall from a running peak, from the crossing on.
    """
    later = values[crossing + 1:]
    later_finite = later[np.isfinite(later)]
    return {
        "share_above": share_at_or_above(later, threshold),
        "min_after": float(np.min(later_finite)) if len(later_finite) else None,
        "drop_after": max_drop(values[crossing:]),
    }


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, None when either is missing or the baseline is 0."""
    if value is None or baseline is None or baseline == 0:
        return None
    return float(value) / float(baseline)


def mean_or_none(values: list[float | None]) -> float | None:
    """Mean of the values that are not None."""
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None
