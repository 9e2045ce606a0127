"""Change points: the exact penalised segmentation of a weighted series (PELT) with a Gaussian
or binomial cost, and the series' noise estimated robustly from successive differences."""

from __future__ import annotations

import numpy as np


def _xlogx(k: np.ndarray, m: np.ndarray) -> np.ndarray:
    """k * log(k / m), 0 where k is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(k > 0, k * np.log(np.where(k > 0, k, 1) / np.where(m > 0, m, 1)), 0.0)


def pelt_segments(y: np.ndarray, w: np.ndarray, variance: float, penalty: float, min_size: int,
              rate: float | None = None) -> list[int]:
    """PELT (Killick, Fearnhead & Eckley 2012): the exact minimiser of the sum of segment costs
    plus ``penalty`` per change. The cost is the Gaussian one (weighted squared deviations from
    the segment mean, over ``variance``) or, for a rate (``rate``: the overall one), the
    binomial deviance over the dispersion variance / (rate (1 - rate)). Returns the starting
    positions of the segments after the first."""
    n = len(y)
    if n < 2 * min_size or not variance > 0:
        return []
    cw = np.concatenate([[0.0], np.cumsum(w)])
    cy = np.concatenate([[0.0], np.cumsum(w * y)])
    cyy = np.concatenate([[0.0], np.cumsum(w * y * y)])
    dispersion = variance / (rate * (1 - rate)) if rate is not None and 0 < rate < 1 else None

    def cost(s: np.ndarray, t: int) -> np.ndarray:
        m, k = cw[t] - cw[s], cy[t] - cy[s]
        if dispersion is not None:
            return -2 * (_xlogx(k, m) + _xlogx(m - k, m)) / dispersion
        return np.maximum(cyy[t] - cyy[s] - k ** 2 / m, 0.0) / variance

    best = np.full(n + 1, np.inf)
    best[0] = -penalty
    last = np.zeros(n + 1, dtype=np.int64)
    candidates = np.array([0], dtype=np.int64)
    for t in range(1, n + 1):
        allowed = candidates[t - candidates >= min_size]
        if len(allowed):
            total = best[allowed] + cost(allowed, t) + penalty
            k = int(np.argmin(total))
            best[t], last[t] = total[k], allowed[k]
            # Pruning: a start that cannot beat best[t] now never will (the cost is additive).
            drop = np.isin(candidates, allowed[best[allowed] + cost(allowed, t) > best[t]])
            candidates = candidates[~drop]
        if t >= min_size and np.isfinite(best[t]):
            candidates = np.append(candidates, t)
    cuts, t = [], n
    while t > 0:
        t = int(last[t])
        if t > 0:
            cuts.append(t)
    return sorted(cuts)


def noise_variance(y: np.ndarray, w: np.ndarray, within: np.ndarray, rate: float | None) -> float:
    """Per-run variance for the model var(bucket value) = variance / runs: robustly from
    successive differences (a level shift moves one difference only; day-to-day noise beyond
    the runs' own counts in); at least the pooled variance within buckets (for a rate, the
    binomial rate (1 - rate); for a quantile, its asymptotic variance)."""
    floor = float(np.sum(within * w) / np.sum(w)) if np.sum(w) else 0.0
    if rate is not None:
        floor = rate * (1 - rate)
    if len(y) < 3:
        return floor
    d = np.diff(y) / np.sqrt(1 / w[1:] + 1 / w[:-1])
    robust = float(np.median(np.abs(d)) / 0.6744897501960817) ** 2
    if robust == 0:
        robust = float(np.mean(d ** 2))
    return max(robust, floor)
