"""Bootstrap draws: of a sample quantile (exactly, from the order-statistic distribution of a
resample) and of ratios of sums (runs resampled together, an m-out-of-n bootstrap above
:data:`BOOTSTRAP_SUBSET`)."""

from __future__ import annotations

import math

import numpy as np

#: Above this many runs a side, means are bootstrapped on a random subset of this size and the
#: spread scaled by sqrt(m/n) (the m-out-of-n bootstrap of a sqrt(n)-consistent statistic).
BOOTSTRAP_SUBSET = 5_000


def quantile_draws(values: np.ndarray, q: float, n_boot: int, rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """The sample quantile and bootstrap draws of it, taken exactly rather than by resampling:
    the k-th order statistic of a resample is F_n^-1(U) with U ~ Beta(k, n - k + 1)."""
    v = np.sort(values)
    n = len(v)
    if n == 0:
        return math.nan, np.full(n_boot, np.nan)
    k = int(math.floor(q * (n - 1))) + 1
    u = rng.beta(k, n - k + 1, size=n_boot)
    return float(np.quantile(v, q)), v[np.clip(np.ceil(u * n).astype(np.int64) - 1, 0, n - 1)]


def ratio_draws(num: list[np.ndarray], den: list[np.ndarray], n_boot: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Estimates sum(num)/sum(den) and bootstrap draws of them (runs resampled together; above
    BOOTSTRAP_SUBSET runs, an m-out-of-n bootstrap rescaled to n)."""
    n = len(num[0])
    full = np.array([x.sum() / d.sum() if d.sum() else np.nan for x, d in zip(num, den)])
    if n == 0:
        return full, np.full((len(num), n_boot), np.nan)
    m = min(n, BOOTSTRAP_SUBSET)
    subset = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
    xs, ds = [x[subset] for x in num], [d[subset] for d in den]
    part = np.array([x.sum() / d.sum() if d.sum() else np.nan for x, d in zip(xs, ds)])
    out = np.empty((len(num), n_boot))
    for start in range(0, n_boot, 250):
        idx = rng.integers(0, m, size=(min(250, n_boot - start), m))
        for j, (x, d) in enumerate(zip(xs, ds)):
            with np.errstate(invalid="ignore", divide="ignore"):
                out[j, start:start + len(idx)] = x[idx].sum(axis=1) / d[idx].sum(axis=1)
    return full, full[:, None] + (out - part[:, None]) * math.sqrt(m / n)
