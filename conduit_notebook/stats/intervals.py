"""Intervals: the normal quantile for a confidence level, Wilson's score interval, and Wilson's
interval for a design-based share at Kish's effective sample size."""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

#: The normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054


def z_value(confidence: float = 0.95) -> float:
    """The standard normal quantile of a two-sided ``confidence`` interval (1.96 for 0.95); a
    ValueError naming ``confidence`` unless it is a number strictly between 0 and 1."""
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number between 0 and 1 (e.g. 0.95), got {confidence!r}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: float, total: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a proportion (95% by default); (nan, nan) when total is 0,
    a ValueError naming them when ``successes`` is not between 0 and ``total``.

    ``total`` may be an effective sample size (not a whole number), as the stratified estimators
    pass it.
    """
    if not (math.isfinite(successes) and math.isfinite(total)):
        raise ValueError(f"successes and trials must be finite numbers; got {successes!r} and {total!r}")
    if total <= 0:
        return (math.nan, math.nan)
    if not -1e-9 * total <= successes <= total * (1 + 1e-9):
        raise ValueError(f"successes ({successes:g}) must be between 0 and trials ({total:g})")
    p = min(max(successes / total, 0.0), 1.0)
    denominator = 1 + z**2 / total
    centre = (p + z**2 / (2 * total)) / denominator
    half = z * math.sqrt(max(p * (1 - p), 0.0) / total + z**2 / (4 * total**2)) / denominator
    # The interval holds p exactly: rounding put the low end of 0 of n at 2.8e-17 (above the rate).
    return (min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


def share_interval(p: float, se: float, sampled: int, z: float = Z95) -> tuple[float, float]:
    """A Wilson interval for an estimated share at Kish's effective sample size
    ``p (1 - p) / se**2`` (from the design's variance); at the sampled count
    where that is undefined (a share of 0 or 1, or no spread seen)."""
    if not math.isfinite(p):
        return math.nan, math.nan
    effective = p * (1 - p) / se ** 2 if se > 0 and 0 < p < 1 else float(sampled)
    return wilson_interval(p * effective, effective, z)


def newcombe_interval(pa: float, a_interval: tuple[float, float], pb: float,
                      b_interval: tuple[float, float]) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``pb - pa`` from an interval of each side (Wilson's,
    or Wilson's at Kish's effective n for a design-based share): Newcombe (1998), method 10."""
    (la, ua), (lb, ub), d = a_interval, b_interval, pb - pa
    return (d - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2), d + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2))


def inverted_p_value(interval_at: Callable[[float], tuple[float, float]], estimate: float) -> float:
    """The two-sided p-value of "the difference is 0" that inverts a family of intervals:
    ``interval_at(z)`` is the interval at normal quantile ``z`` (wider as ``z`` grows), and
    ``p = erfc(z* / sqrt 2)`` at the ``z*`` where its bound nearer 0 reaches 0 (bisection), so
    that the interval at any confidence leaves 0 out exactly when p < 1 - confidence (used to
    give Newcombe's interval its own p-value rather than a z-test's, which can disagree)."""
    if not math.isfinite(estimate):
        return math.nan
    if estimate == 0:
        return 1.0

    def excluded(z: float) -> bool:
        low, high = interval_at(z)
        return low > 0 if estimate > 0 else high < 0

    low_z, high_z = 0.0, 40.0
    if excluded(high_z):
        return 0.0
    for _ in range(60):
        middle = (low_z + high_z) / 2
        low_z, high_z = (middle, high_z) if excluded(middle) else (low_z, middle)
    return math.erfc(high_z / math.sqrt(2))
