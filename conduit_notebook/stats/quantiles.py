"""Weighted quantiles of a sample whose values stand for ``weight`` units each (a trace sample's
runs): the weighted median, and a weighted quantile that equals numpy's with equal weights."""

from __future__ import annotations

import math

import numpy as np


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The median of ``values`` each standing for ``weights`` units (NaN values and units of
    weight 0 left out; NaN when nothing is left).

    Method: the value where the cumulative weight reaches half the total; when half the weight
    lies exactly below a value (an even count with equal weights), the midpoint of the two
    values around it, so that equal weights give ``np.median`` (2.5 for ``[1, 2, 3, 4]``, where
    the first cumulative rule alone gives the lower median 2).
    """
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    keep = ~np.isnan(values) & (weights > 0)
    values, weights = values[keep], weights[keep]
    if not len(values):
        return math.nan
    order = np.argsort(values, kind="stable")
    v, cumulative = values[order], np.cumsum(weights[order])
    half = cumulative[-1] / 2
    i = int(np.searchsorted(cumulative, half * (1 - 1e-12), side="left"))
    if i + 1 < len(v) and abs(cumulative[i] - half) <= 1e-12 * cumulative[-1]:
        return float((v[i] + v[i + 1]) / 2)
    return float(v[i])
