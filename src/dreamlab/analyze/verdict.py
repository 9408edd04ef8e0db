"""Does the data support the hypothesis? A bootstrap interval and Welch's t-test over seeds.

A verdict needs at least `MIN_SEEDS` seeds on each side; with fewer it is "inconclusive: n=<the
smaller side's count>". Otherwise it is **supported** when the bootstrap interval of the difference
lies wholly on the expected side of zero and Welch's two-sided p is below `ALPHA`, **contradicted**
when both say the opposite direction, and "cannot tell" otherwise (docs/compare.md says why).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

DIRECTIONS = ("up", "down")
SUPPORTED, CONTRADICTED, CANNOT_TELL = "supported", "contradicted", "cannot tell"
MIN_SEEDS = 3  # per group: below this a verdict is "inconclusive: n=<count>"
ALPHA = 0.05  # Welch's two-sided p must be below this for supported or contradicted
TEST_NAME = "welch"  # the test behind Verdict.p_value


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
    p_value: float | None = None  # Welch's t-test, two-sided (None with fewer than 2 seeds a side)
    test: str = TEST_NAME


def inconclusive(n: int) -> str:
    """The verdict for too few seeds: n is the smaller group's seed count."""
    return f"inconclusive: n={n}"


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


# ---- Welch's t-test (no scipy: the Student-t tail through the regularized incomplete beta) ----------


def _beta_continued_fraction(a: float, b: float, x: float, steps: int = 500, eps: float = 1e-15) -> float:
    """The continued fraction of the incomplete beta function, evaluated by the modified Lentz method."""
    tiny = 1e-300

    def guard(value: float) -> float:
        return tiny if abs(value) < tiny else value

    c, d = 1.0, 1.0 / guard(1.0 - (a + b) * x / (a + 1.0))
    result = d
    for m in range(1, steps + 1):
        even = m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m))
        d, c = 1.0 / guard(1.0 + even * d), guard(1.0 + even / c)
        result *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))
        d, c = 1.0 / guard(1.0 + odd * d), guard(1.0 + odd / c)
        result *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return result


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):  # the fraction converges fast here; otherwise use the symmetry
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` (real, > 0) degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def welch_t_test(treatment: np.ndarray, baseline: np.ndarray) -> tuple[float, float, float]:
    """Welch's unequal-variance t-test of mean(treatment) != mean(baseline).

    Args:
        treatment: [n >= 2] one value per seed; baseline: [m >= 2] likewise.
    Returns:
        (t, Welch-Satterthwaite degrees of freedom, two-sided p). When neither side varies the
        means are either equal (p = 1) or apart with no noise at all (p = 0).
    """
    t_var = float(np.var(treatment, ddof=1)) / len(treatment)
    b_var = float(np.var(baseline, ddof=1)) / len(baseline)
    difference = float(np.mean(treatment) - np.mean(baseline))
    standard_error_sq = t_var + b_var
    if standard_error_sq == 0.0:
        return (math.copysign(math.inf, difference) if difference else 0.0), math.nan, 0.0 if difference else 1.0
    t = difference / math.sqrt(standard_error_sq)
    df = standard_error_sq ** 2 / (t_var ** 2 / (len(treatment) - 1) + b_var ** 2 / (len(baseline) - 1))
    return t, df, student_t_two_sided_p(t, df)


# ---- the verdict ------------------------------------------------------------------------------------


def _direction_of(low: float, high: float, p_value: float, sign: float) -> str:
    """supported / contradicted / cannot tell from the interval, the p-value and the expected sign."""
    if p_value >= ALPHA:
        return CANNOT_TELL
    if sign * low > 0 and sign * high > 0:
        return SUPPORTED
    if sign * low < 0 and sign * high < 0:
        return CONTRADICTED
    return CANNOT_TELL


def judge(group: str, expect: str, treatment: list[float], baseline: list[float],
          confidence: float = 0.95, resamples: int = 10_000) -> Verdict:
    """Verdict on `expect` for one group against the baseline, from per-seed values of the quantity.

    The interval and the p-value are reported from two seeds a side on; a verdict other than
    "inconclusive" needs `MIN_SEEDS` a side.
    """
    direction = parse_expect(expect).direction
    t, b = np.asarray(treatment, dtype=float), np.asarray(baseline, dtype=float)
    verdict = Verdict(group, expect, CANNOT_TELL, n_treatment=len(t), n_baseline=len(b))
    if len(t) == 0 or len(b) == 0:
        verdict.note = "no values"
        return verdict
    verdict.difference = float(t.mean() - b.mean())
    n = min(len(t), len(b))
    if n < 2:  # no interval and no test with one seed on a side (MIN_SEEDS >= 2)
        verdict.verdict = inconclusive(n)
        return verdict
    low, high = bootstrap_difference_ci(t, b, confidence, resamples)
    p_value = welch_t_test(t, b)[2]
    verdict.low, verdict.high, verdict.p_value = low, high, p_value
    if n < MIN_SEEDS:
        verdict.verdict = inconclusive(n)
        return verdict
    verdict.verdict = _direction_of(low, high, p_value, 1.0 if direction == "up" else -1.0)
    return verdict
