"""Tests and corrections: two-sided normal p-values, the chi-square upper tail (closed form, no
scipy) and Holm's step-down adjustment."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def two_sided(d: float, se: float) -> float:
    """The two-sided normal p-value of a difference ``d`` with standard error ``se`` (NaN when
    either is not finite; 1 or 0 when ``se`` is 0)."""
    if not np.isfinite(d) or not np.isfinite(se):
        return math.nan
    if se == 0:
        return 1.0 if d == 0 else 0.0
    return math.erfc(abs(d) / se / math.sqrt(2))


def chi_square_sf(x: float, df: int) -> float:
    """P(chi2_df > x) for a whole df, in closed form (no scipy)."""
    if df <= 0 or not np.isfinite(x):
        return math.nan
    if x <= 0:
        return 1.0
    half = x / 2
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, df // 2):
            term *= half / i
            total += term
        return min(1.0, math.exp(-half) * total)
    total = math.erfc(math.sqrt(half))
    term = math.sqrt(half) * math.exp(-half) / math.sqrt(math.pi) * 2
    for i in range(1, (df + 1) // 2):
        total += term
        term *= half / (i + 0.5)
    return min(1.0, total)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count as a test)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    if m:
        out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out
