"""Tests and corrections: two-sided normal p-values, the pooled two-proportion z-test, the
chi-square upper tail (closed form, no scipy) and test of a 2 x K table, Holm's step-down
adjustment."""

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


def two_proportion_test(ka: int, na: int, kb: int, nb: int) -> float:
    """The pooled z-test's two-sided p-value for ``kb / nb - ka / na`` (NaN when a side is empty)."""
    if na == 0 or nb == 0:
        return math.nan
    pooled = (ka + kb) / (na + nb)
    return two_sided(kb / nb - ka / na, math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb)))


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


def chi_square_table(table: np.ndarray) -> float:
    """Pearson's chi-square test of homogeneity of the rows of a 2 x K count table (empty
    columns dropped); NaN with fewer than two columns or an empty row."""
    table = np.asarray(table, dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return math.nan
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    return chi_square_sf(float(((table - expected) ** 2 / expected).sum()), table.shape[1] - 1)
