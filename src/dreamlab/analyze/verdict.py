"""Does the data support the hypothesis? A bootstrap over seeds, or an honest "one seed: inconclusive"."""

from __future__ import annotations

import dataclasses

import numpy as np

DIRECTIONS = ("up", "down")
SUPPORTED, CONTRADICTED, CANNOT_TELL = "supported", "contradicted", "cannot tell"
ONE_SEED = "one seed: inconclusive"


class ExpectError(ValueError):
    """An expectation that is not '<quantity> up|down'."""


@dataclasses.dataclass(frozen=True)
class Expectation:
    quantity: str  # a summary statistic (steps_to_threshold, best, ...) or a metric name
    direction: str  # "up" or "down"


@dataclasses.dataclass
class Verdict:
    group: str
    expect: str
    verdict: str
    difference: float | None = None  # mean(treatment) - mean(baseline)
    low: float | None = None  # bootstrap confidence interval of the difference
    high: float | None = None
    n_treatment: int = 0
    n_baseline: int = 0
    note: str = ""


def parse_expect(text: str) -> Expectation:
    """'eval/return_mean up' -> Expectation('eval/return_mean', 'up')."""
    parts = text.split()
    if len(parts) != 2 or parts[1].lower() not in DIRECTIONS:
        raise ExpectError(f"run.expect={text!r}: expected '<metric or statistic> up|down'")
    return Expectation(parts[0], parts[1].lower())


def bootstrap_difference_ci(treatment: np.ndarray, baseline: np.ndarray, confidence: float = 0.95,
                            resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(treatment) - mean(baseline), resampling each side's seeds.

    Args:
        treatment: [n] one value per seed; baseline: [m] likewise.
        confidence: coverage of the interval; resamples: bootstrap draws; seed: fixed for reproducibility.
    """
    rng = np.random.default_rng(seed)
    t_draws = rng.choice(treatment, size=(resamples, len(treatment)), replace=True).mean(axis=1)
    b_draws = rng.choice(baseline, size=(resamples, len(baseline)), replace=True).mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(t_draws - b_draws, [tail, 1.0 - tail])
    return float(low), float(high)


def judge(group: str, expect: str, treatment: list[float], baseline: list[float],
          confidence: float = 0.95, resamples: int = 10_000) -> Verdict:
    """Verdict on `expect` for one group against the baseline, from per-seed values of the quantity.

    With fewer than two seeds on either side the answer is "one seed: inconclusive". Otherwise the
    hypothesis is supported when the whole bootstrap interval of the difference lies on the expected
    side of zero, contradicted when it lies wholly on the other side, and undecided when it holds zero.
    """
    direction = parse_expect(expect).direction
    t, b = np.asarray(treatment, dtype=float), np.asarray(baseline, dtype=float)
    verdict = Verdict(group, expect, CANNOT_TELL, n_treatment=len(t), n_baseline=len(b))
    if len(t) == 0 or len(b) == 0:
        verdict.note = "no values"
        return verdict
    verdict.difference = float(t.mean() - b.mean())
    if len(t) < 2 or len(b) < 2:
        verdict.verdict = ONE_SEED
        return verdict
    verdict.low, verdict.high = bootstrap_difference_ci(t, b, confidence, resamples)
    sign = 1.0 if direction == "up" else -1.0
    if sign * verdict.low > 0 and sign * verdict.high > 0:
        verdict.verdict = SUPPORTED
    elif sign * verdict.low < 0 and sign * verdict.high < 0:
        verdict.verdict = CONTRADICTED
    return verdict
