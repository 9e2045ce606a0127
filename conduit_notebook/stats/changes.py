"""Change points in a weighted series of bucket values (a metric per day): the noise model, an
outlier test, the exact penalised segmentation (PELT) and a check that a step explains the data
better than a straight line.

The model: bucket ``t``'s value has variance ``sampling[t] + extra``, its own sampling variance
(per-run variance over its runs) plus a between-bucket variance ``extra`` (over-dispersion: days
differ by more than their runs explain) estimated from the series (:func:`extra_variance`).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

#: The median of a chi-square variable with one degree of freedom.
CHI2_1_MEDIAN = 0.454936423119572


def extra_variance(y: np.ndarray, sampling: np.ndarray, odd: np.ndarray | None = None) -> float:
    """The between-bucket variance ``tau^2 >= 0`` that makes the successive differences of ``y``
    as large as the model says, ``d_t^2 / (sampling_t + sampling_{t-1} + 2 tau^2)`` being
    chi-square with 1 degree of freedom (solved by bisection). Without ``odd``: their median
    is the chi-square's median (robust: a level shift moves one difference, an outlier bucket
    two). With ``odd`` (outlier buckets): their mean over the differences between buckets that
    are not odd is 1 (the moment estimator, more precise; a step inflates it a little)."""
    keep = np.ones(max(len(y) - 1, 0), dtype=bool) if odd is None else ~(odd[1:] | odd[:-1])
    if keep.sum() < 2:
        return 0.0
    d2, base = (np.diff(y) ** 2)[keep], (sampling[1:] + sampling[:-1])[keep]
    centre, target = (np.median, CHI2_1_MEDIAN) if odd is None else (np.mean, 1.0)
    if not np.all(np.isfinite(d2)) or centre(d2 / np.maximum(base, 1e-300)) <= target:
        return 0.0
    low, high = 0.0, float(np.max(d2))
    for _ in range(60):
        middle = (low + high) / 2
        if centre(d2 / (base + 2 * middle)) > target:
            low = middle
        else:
            high = middle
    return high


def outlier_buckets(y: np.ndarray, variance: np.ndarray, *, level: float = 0.01, side: int = 3) -> np.ndarray:
    """Buckets unlike both their neighbours: the bucket's distance to the median of the ``side``
    buckets before it and to that of the ``side`` after it (each side with at least 2 buckets)
    both exceed the normal quantile of a two-sided test at ``level / n`` (Bonferroni over the
    n buckets: a series without outliers has one flagged with probability below ``level``). A
    bucket at a real step agrees with one side, so steps are not flagged; one or two odd
    buckets in a row are."""
    n = len(y)
    flags = np.zeros(n, dtype=bool)
    if n < 3:
        return flags
    critical = NormalDist().inv_cdf(1 - level / (2 * n))
    for t in range(n):
        far = []
        for near in (np.arange(max(0, t - side), t), np.arange(t + 1, min(n, t + 1 + side))):
            if len(near) >= 2:
                # The variance of a median of k is about pi / 2 times that of their mean.
                spread = variance[t] + math.pi / 2 * float(np.mean(variance[near])) / len(near)
                far.append(abs(y[t] - float(np.median(y[near]))) > critical * math.sqrt(spread))
        flags[t] = bool(far) and all(far)
    return flags


def _xlogx(k: np.ndarray, m: np.ndarray) -> np.ndarray:
    """k * log(k / m), 0 where k is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(k > 0, k * np.log(np.where(k > 0, k, 1) / np.where(m > 0, m, 1)), 0.0)


def _segment_cost(cw: np.ndarray, cy: np.ndarray, cyy: np.ndarray, s: np.ndarray, t: int,
                  binomial: bool = False) -> np.ndarray:
    """The weighted sum of squares about the mean of buckets ``s..t-1`` (prefix sums), or with
    ``binomial`` the binomial deviance of (effective) events ``cy`` among trials ``cw``."""
    m, k = cw[t] - cw[s], cy[t] - cy[s]
    if binomial:
        return -2 * (_xlogx(k, m) + _xlogx(np.maximum(m - k, 0.0), m))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(cyy[t] - cyy[s] - np.where(m > 0, k ** 2 / np.where(m > 0, m, 1), 0.0), 0.0)


def pelt_segments(y: np.ndarray, weight: np.ndarray, penalty: float, min_size: int,
                  binomial: bool = False) -> list[int]:
    """PELT (Killick, Fearnhead & Eckley 2012): the exact minimiser of the sum of segment costs
    plus ``penalty`` per change, the cost a segment's weighted squares about its mean (with
    ``weight`` = 1 / variance, a Gaussian log-likelihood ratio in chi-square units; a weight of 0
    drops a bucket), or with ``binomial`` the binomial deviance of rates ``y`` over (effective)
    trials ``weight`` (exact for rare events, where squares are not). Segments are at least
    ``min_size`` buckets long. Returns the starting
    positions of the segments after the first."""
    n = len(y)
    if n < 2 * min_size or not np.any(weight > 0):
        return []
    yw = np.where(weight > 0, y, 0.0)
    cw = np.concatenate([[0.0], np.cumsum(weight)])
    cy = np.concatenate([[0.0], np.cumsum(weight * yw)])
    cyy = np.concatenate([[0.0], np.cumsum(weight * yw * yw)])
    best = np.full(n + 1, np.inf)
    best[0] = -penalty
    last = np.zeros(n + 1, dtype=np.int64)
    candidates = np.array([0], dtype=np.int64)
    for t in range(1, n + 1):
        allowed = candidates[t - candidates >= min_size]
        if len(allowed):
            cost = best[allowed] + _segment_cost(cw, cy, cyy, allowed, t, binomial)
            k = int(np.argmin(cost))
            best[t], last[t] = cost[k] + penalty, allowed[k]
            # Pruning: a start that cannot beat best[t] now never will (the cost is additive).
            candidates = candidates[~np.isin(candidates, allowed[cost > best[t]])]
        if t >= min_size and np.isfinite(best[t]):
            candidates = np.append(candidates, t)
    cuts, t = [], n
    while t > 0:
        t = int(last[t])
        if t > 0:
            cuts.append(t)
    return sorted(cuts)


def _line_cost(y: np.ndarray, weight: np.ndarray) -> float:
    """The weighted sum of squares about the weighted least-squares line through ``y``."""
    if weight.sum() <= 0:
        return 0.0
    return float((weight * (y - line_fit(y, weight)) ** 2).sum())


def steps_not_trends(y: np.ndarray, weight: np.ndarray, cuts: list[int], margin: float = 2.0) -> list[int]:
    """The ``cuts`` whose step explains its two neighbouring segments better than a straight line
    through them (a slow drift is not a level shift) by more than ``margin`` (in chi-square
    units; 2 is Akaike's price of the step's one more parameter, where it starts): the cut where
    the line does best is dropped while the step does not beat it so, and the others checked
    again."""
    cuts = list(cuts)
    yw = np.where(weight > 0, y, 0.0)
    while cuts:
        bounds = [0, *cuts, len(y)]
        margins = []
        for i in range(1, len(bounds) - 1):
            s, c, e = bounds[i - 1], bounds[i], bounds[i + 1]
            step = _constant_cost(yw[s:c], weight[s:c]) + _constant_cost(yw[c:e], weight[c:e])
            margins.append(_line_cost(yw[s:e], weight[s:e]) - step)
        worst = int(np.argmin(margins))
        if margins[worst] > margin:
            break
        cuts.pop(worst)
    return cuts


def _constant_cost(y: np.ndarray, weight: np.ndarray) -> float:
    """The weighted sum of squares about the weighted mean of ``y``."""
    total = weight.sum()
    if total <= 0:
        return 0.0
    return float((weight * (y - (weight * y).sum() / total) ** 2).sum())


def default_penalty(n: int) -> float:
    """The penalty per change for a series of ``n`` buckets: 3.6 log n, calibrated by simulation
    (benchmarks/sim_changes.py) so that over-dispersed series with 20 to 1,000 runs a day, whose
    day-to-day variance is estimated from 27 differences, stay under 5% false alarms (3 log n:
    6%)."""
    return 3.6 * math.log(max(n, 2))


#: How much better (chi-square units) a step must explain its two neighbouring segments than a
#: straight line through them to be reported as a step rather than a trend: the smallest margin
#: (in steps of 0.5) at which a drift of 4 or 8 points over four weeks at 200 runs a day is
#: called a step under 5% of the time, by simulation on seeds of its own (benchmarks/
#: sim_changes.py, 1,500 series each: 2.5-3.1% and 3.8-4.6%; at 6, 6.2% on one seed).
STEP_MARGIN = 6.5


def line_fit(y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The weighted least-squares line through ``y``, evaluated at each bucket."""
    x = np.arange(len(y), dtype=float)
    total = weight.sum()
    if total <= 0:
        return np.full(len(y), np.nan)
    mx, my = (weight * x).sum() / total, (weight * y).sum() / total
    sxx = (weight * (x - mx) ** 2).sum()
    slope = (weight * (x - mx) * (y - my)).sum() / sxx if sxx > 0 else 0.0
    return my + slope * (x - mx)


def trend_segments(y: np.ndarray, weight: np.ndarray, cuts: list[int], penalty: float, min_size: int) -> list[bool]:
    """Per segment between ``cuts``: whether a straight line explains it better than its mean
    by more than ``penalty`` (the price of a change), the segment at least ``2 min_size``
    buckets long (as long as the shortest step): a drift within it."""
    yw = np.where(weight > 0, y, 0.0)
    bounds = [0, *cuts, len(y)]
    return [e - s >= 2 * min_size
            and _constant_cost(yw[s:e], weight[s:e]) - _line_cost(yw[s:e], weight[s:e]) > penalty
            for s, e in zip(bounds[:-1], bounds[1:], strict=False)]


def _variance_without(y: np.ndarray, sampling: np.ndarray, odd: np.ndarray, cuts: list[int]) -> float:
    """:func:`extra_variance` by moments with the differences across ``cuts`` left out as well
    as the outliers' (a step's one large difference would otherwise be read as day-to-day noise
    and weaken the test of that very step)."""
    if not cuts:
        return extra_variance(y, sampling, odd=odd)
    # Marking the bucket before each cut as odd drops its difference to the cut (and to the one
    # before it: one difference more lost, the estimate unbiased still).
    skip = odd.copy()
    skip[np.asarray(cuts) - 1] = True
    return extra_variance(y, sampling, odd=skip)


def robust_fit(y: np.ndarray, sampling: np.ndarray, penalty: float, min_size: int,
               rate: float | None = None, margin: float = STEP_MARGIN) -> tuple[list[int], list[bool]]:
    """The change points of ``y`` (starts of the segments after the first) whose buckets have
    sampling variances ``sampling``, and per segment whether it drifts (a trend): the
    between-bucket variance estimated (:func:`extra_variance`), outlier buckets set aside
    (:func:`outlier_buckets`), the series segmented exactly (:func:`pelt_segments`), the
    between-bucket variance estimated again without the differences across the cuts, steps that
    a straight line explains about as well (within ``margin``) dropped (:func:`steps_not_trends`);
    a segment is a trend where such a step was dropped (something moved, but the data cannot
    tell a step from a drift) or where a line beats its mean by the penalty
    (:func:`trend_segments`). For a rate
    (``rate``: the overall one) the segmentation's cost is the binomial deviance at each
    bucket's effective runs ``rate (1 - rate) / variance``."""
    variance = sampling + extra_variance(y, sampling)
    if len(y) < 2 * min_size or not np.all(variance > 0):
        return [], [False]
    odd = outlier_buckets(y, variance)
    # Without the outliers, all the differences estimate the extra variance (a weekly pattern
    # is noise too): the moment estimator, with its ~n degrees of freedom.
    variance = sampling + extra_variance(y, sampling, odd=odd)
    weight = np.where(odd, 0.0, 1 / variance)
    if rate is not None and 0 < rate < 1:
        cuts = pelt_segments(y, weight * rate * (1 - rate), penalty, min_size, binomial=True)
    else:
        cuts = pelt_segments(y, weight, penalty, min_size)
    weight = np.where(odd, 0.0, 1 / (sampling + _variance_without(y, sampling, odd, cuts)))
    steps = steps_not_trends(y, weight, cuts, margin)
    # A segment that swallowed a dropped cut moved (that cut beat a constant by the penalty), in
    # a way a line explains about as well as a step: a trend.
    bounds = [0, *steps, len(y)]
    merged = [any(s < c < e for c in cuts if c not in steps) for s, e in zip(bounds[:-1], bounds[1:], strict=False)]
    drifts = trend_segments(y, weight, steps, penalty, min_size)
    return steps, [m or d for m, d in zip(merged, drifts, strict=False)]


def robust_segments(y: np.ndarray, sampling: np.ndarray, penalty: float, min_size: int,
                    rate: float | None = None) -> list[int]:
    """The change points of :func:`robust_fit` (the steps; its trends left out)."""
    return robust_fit(y, sampling, penalty, min_size, rate)[0]
