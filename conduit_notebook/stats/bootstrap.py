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
    """The sample quantile (linear interpolation, as ``np.quantile``) and bootstrap draws of the
    same statistic, taken exactly rather than by resampling: a resample's quantile interpolates
    between its order statistics k and k + 1 (k = floor(q (n - 1)) + 1), which are F_n^-1(U_k)
    and F_n^-1(U_k+1) with U_k ~ Beta(k, n - k + 1) and U_k+1 = U_k + (1 - U_k) Beta(1, n - k)
    (the uniform order statistics). Estimate and draws interpolate alike, so the draws centre
    on the estimate (drawing only the k-th statistic put them below it)."""
    v = np.sort(values)
    n = len(v)
    if n == 0:
        return math.nan, np.full(n_boot, np.nan)
    position = q * (n - 1)
    k = int(math.floor(position)) + 1
    frac = position - (k - 1)
    u = rng.beta(k, n - k + 1, size=n_boot)
    lower = v[np.clip(np.ceil(u * n).astype(np.int64) - 1, 0, n - 1)]
    if k >= n or frac == 0:
        return float(np.quantile(v, q)), lower
    u_next = u + (1 - u) * rng.beta(1, n - k, size=n_boot)
    upper = v[np.clip(np.ceil(u_next * n).astype(np.int64) - 1, 0, n - 1)]
    return float(np.quantile(v, q)), lower + (upper - lower) * frac


def ratio_draws(num: list[np.ndarray], den: list[np.ndarray], n_boot: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Estimates sum(num)/sum(den) and bootstrap draws of them (runs resampled together; above
    BOOTSTRAP_SUBSET runs, an m-out-of-n bootstrap rescaled to n)."""
    n = len(num[0])
    full = np.array([x.sum() / d.sum() if d.sum() else np.nan for x, d in zip(num, den, strict=False)])
    if n == 0:
        return full, np.full((len(num), n_boot), np.nan)
    m = min(n, BOOTSTRAP_SUBSET)
    subset = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
    xs, ds = [x[subset] for x in num], [d[subset] for d in den]
    part = np.array([x.sum() / d.sum() if d.sum() else np.nan for x, d in zip(xs, ds, strict=False)])
    out = np.empty((len(num), n_boot))
    for start in range(0, n_boot, 250):
        idx = rng.integers(0, m, size=(min(250, n_boot - start), m))
        for j, (x, d) in enumerate(zip(xs, ds, strict=False)):
            with np.errstate(invalid="ignore", divide="ignore"):
                out[j, start:start + len(idx)] = x[idx].sum(axis=1) / d[idx].sum(axis=1)
    return full, full[:, None] + (out - part[:, None]) * math.sqrt(m / n)
