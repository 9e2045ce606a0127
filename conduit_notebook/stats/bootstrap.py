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


def ratio_se(num: np.ndarray, den: np.ndarray) -> float:
    """The linearised (delta-method) standard error of ``sum(num) / sum(den)`` over independent
    runs: ``sqrt(sum((x - R d)^2) / (n (n - 1))) / mean(d)``; for ``den`` all 1 the standard
    error of the mean, ``s / sqrt(n)``."""
    n, total = len(num), float(den.sum())
    if n < 2 or total <= 0:
        return math.nan
    r = float(num.sum()) / total
    return math.sqrt(float(((num - r * den) ** 2).sum()) / (n * (n - 1))) / (total / n)


def ratio_t_draws(num: list[np.ndarray], den: list[np.ndarray], n_boot: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each ratio ``sum(num[j]) / sum(den[j])`` (runs resampled together): the estimate, its
    linearised standard error (:func:`ratio_se`), and per bootstrap resample the deviation of
    the resample's ratio from the estimate and the resample's own standard error, the material
    of a studentized (bootstrap-t) interval (Efron & Tibshirani 1993, ch. 12; Hall 1992): the
    quantiles of ``deviation / se`` stand for those of ``(estimate - truth) / se``, which holds
    the skewness a percentile interval misses. Above :data:`BOOTSTRAP_SUBSET` runs, resamples
    of that size from a random subset, deviations and standard errors both rescaled to n (their
    ratio, the t, needs no rescaling)."""
    n, k = len(num[0]), len(num)
    estimate = np.array([x.sum() / d.sum() if d.sum() else np.nan for x, d in zip(num, den, strict=False)])
    se = np.array([ratio_se(x, d) for x, d in zip(num, den, strict=False)])
    deviation, boot_se = np.full((k, n_boot), np.nan), np.full((k, n_boot), np.nan)
    if n < 2:
        return estimate, se, deviation, boot_se
    m = min(n, BOOTSTRAP_SUBSET)
    subset = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
    xs, ds = [x[subset] for x in num], [d[subset] for d in den]
    part = np.array([x.sum() / d.sum() if d.sum() else np.nan for x, d in zip(xs, ds, strict=False)])
    scale = math.sqrt(m / n)
    for start in range(0, n_boot, 250):
        idx = rng.integers(0, m, size=(min(250, n_boot - start), m))
        rows = slice(start, start + len(idx))
        for j, (x, d) in enumerate(zip(xs, ds, strict=False)):
            xi, di = x[idx], d[idx]
            sx, sd = xi.sum(axis=1), di.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                r = sx / sd
                spread = (xi * xi).sum(axis=1) - 2 * r * (xi * di).sum(axis=1) + r * r * (di * di).sum(axis=1)
                boot_se[j, rows] = np.sqrt(np.maximum(spread, 0) / (m * (m - 1))) / (sd / m) * scale
            deviation[j, rows] = (r - part[j]) * scale
    return estimate, se, deviation, boot_se


def studentized_interval(difference: float, se: float, t_draws: np.ndarray,
                         confidence: float) -> tuple[float, float, float]:
    """The bootstrap-t interval of a ``difference`` with standard error ``se`` from the draws of
    its t statistic, and the p-value that inverts it: with ``k = ceil((1 - confidence) B / 2)``
    of B draws, ``difference - t_(B-k+1) se .. difference - t_(k) se`` (order statistics), and
    ``p = 2 min(#{t* >= T}, #{t* <= T}) / B`` at ``T = difference / se`` (at least 1 / B), so
    that the interval leaves 0 out exactly when p < 1 - confidence."""
    t = np.sort(t_draws[np.isfinite(t_draws)])
    b = len(t)
    if b < 10 or not (np.isfinite(difference) and np.isfinite(se)) or se <= 0:
        return math.nan, math.nan, math.nan
    k = min(max(math.ceil((1 - confidence) * b / 2), 1), b)
    low, high = difference - t[b - k] * se, difference - t[k - 1] * se
    observed = difference / se
    side = min(int(np.count_nonzero(t >= observed)), int(np.count_nonzero(t <= observed)))
    return float(low), float(high), min(1.0, max(2 * side / b, 1 / b))


def percentile_interval(estimate: float, draws: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """The percentile interval of bootstrap ``draws`` of an estimate and the p-value that inverts
    it: with ``k = ceil((1 - confidence) B / 2)`` of B draws, the order statistics ``d_(k) ..
    d_(B-k+1)``, and ``p = 2 min(#{d <= 0}, #{d >= 0}) / B`` (at least 1 / B), so that the
    interval leaves 0 out exactly when p < 1 - confidence (Efron & Tibshirani 1993, ch. 13)."""
    d = np.sort(draws[np.isfinite(draws)])
    b = len(d)
    if b < 10 or not np.isfinite(estimate):
        return math.nan, math.nan, math.nan
    k = min(max(math.ceil((1 - confidence) * b / 2), 1), b)
    side = min(int(np.count_nonzero(d <= 0)), int(np.count_nonzero(d >= 0)))
    return float(d[k - 1]), float(d[b - k]), min(1.0, max(2 * side / b, 1 / b))
