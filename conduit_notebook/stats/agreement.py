"""Agreement statistics for reviews: a stratified accuracy with its interval, Cohen's kappa and
its bootstrap interval. Pure functions of counts and labels."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .intervals import wilson_interval, z_value

__all__ = ["cohen_kappa", "kappa_interval", "stratified_accuracy"]


def stratified_accuracy(correct: ArrayLike, judged: ArrayLike, population: ArrayLike, *,
                        confidence: float = 0.95, outside: ArrayLike | None = None) -> dict[str, float]:
    """A population accuracy from per-stratum samples, with its interval.

    Stratum ``h`` holds ``population[h]`` runs, of which ``judged[h]`` were judged (a simple random
    sample of the stratum) and ``correct[h]`` were right. The estimate is the stratified mean
    ``sum(W_h * p_h)`` with ``W_h = N_h / N``. Its interval is a **stratified Wilson interval with
    Kish's effective sample size**: the variance is ``sum(W_h^2 (1 - n_h/N_h) p~_h (1 - p~_h) / n_h)``
    (finite population correction per stratum; ``p~_h = (x_h + 0.5) / (n_h + 1)``, so that a small
    stratum judged all right or all wrong still adds its uncertainty), the effective sample size is
    ``p~ (1 - p~) / variance``, and the Wilson interval is taken at that size. A stratum that holds
    runs but has no judged ones cannot be estimated: the estimate is over the judged strata and the
    interval is widened to the worst case for the rest (``unreviewed_share``). Simulated coverage:
    see tests/test_review_stats.py.

    ``outside[h]`` counts judged runs of stratum ``h`` that are not among its ``population[h]`` runs
    (verdicts on runs missing from the population). They are not a sample *of* that population, so
    such a stratum gets no finite population correction (nor does one with more judged runs than
    runs): only a stratum whose own runs were all judged is a census with no interval left.

    Returns ``estimate``, ``ci_low``, ``ci_high``, ``half_width``, ``effective_n`` and
    ``unreviewed_share``.
    """
    z = z_value(confidence)
    x = np.asarray(correct, dtype="float64")
    n = np.asarray(judged, dtype="float64")
    size = np.asarray(population, dtype="float64")
    out = {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "half_width": math.nan,
           "effective_n": 0.0, "unreviewed_share": math.nan}
    if size.sum() <= 0:
        return out
    weight = size / size.sum()
    seen = (n > 0) & (size > 0)
    unreviewed = float(weight[~seen].sum())
    out["unreviewed_share"] = unreviewed
    if not seen.any():
        return out
    w = weight[seen] / weight[seen].sum()
    away = np.zeros_like(n) if outside is None else np.asarray(outside, dtype="float64")
    x, n, size, away = x[seen], n[seen], size[seen], away[seen]
    estimate = float((w * x / n).sum())
    smoothed = (x + 0.5) / (n + 1)
    # A finite population correction only for a stratum sampled from its own runs.
    fpc = np.where((away > 0) | (n > size), 1.0, np.clip(1 - n / size, 0.0, 1.0))
    variance = float((w**2 * fpc * smoothed * (1 - smoothed) / n).sum())
    if variance <= 0:  # every stratum fully judged: a census
        low = high = estimate
        effective = float(n.sum())
    else:
        p_tilde = float((w * smoothed).sum())
        effective = p_tilde * (1 - p_tilde) / variance
        low, high = wilson_interval(estimate * effective, effective, z)
    low, high = (1 - unreviewed) * low, (1 - unreviewed) * high + unreviewed
    out.update(estimate=estimate, ci_low=low, ci_high=high, half_width=(high - low) / 2, effective_n=effective)
    return out


def cohen_kappa(first: pd.Series, second: pd.Series) -> float:
    """Cohen's kappa between two raters' labels of the same items (nan if undefined)."""
    pairs = pd.DataFrame({"a": np.asarray(first, dtype=object), "b": np.asarray(second, dtype=object)}).dropna()
    if len(pairs) == 0:
        return math.nan
    codes, _ = pd.factorize(pd.concat([pairs["a"], pairs["b"]], ignore_index=True))
    return float(_kappas(codes[: len(pairs)], codes[len(pairs):], np.arange(len(pairs))[None, :])[0])


def _kappas(a: np.ndarray, b: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Kappa of labels ``a``/``b`` (integer codes) over each row of index ``samples``."""
    k = int(max(a.max(), b.max())) + 1
    one_a, one_b = np.eye(k)[a], np.eye(k)[b]
    observed = (a == b)[samples].mean(axis=1)
    expected = (one_a[samples].mean(axis=1) * one_b[samples].mean(axis=1)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (observed - expected) / (1 - expected)
    return np.where(expected >= 1, np.where(observed >= 1, 1.0, np.nan), kappa)


def kappa_interval(first: pd.Series, second: pd.Series, *, confidence: float = 0.95,
                   resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval for Cohen's kappa (runs resampled with replacement)."""
    pairs = pd.DataFrame({"a": np.asarray(first, dtype=object), "b": np.asarray(second, dtype=object)}).dropna()
    if len(pairs) < 2:
        return (math.nan, math.nan)
    codes, _ = pd.factorize(pd.concat([pairs["a"], pairs["b"]], ignore_index=True))
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(pairs), size=(resamples, len(pairs)))
    values = _kappas(codes[: len(pairs)], codes[len(pairs):], samples)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return (math.nan, math.nan)
    tail = (1 - confidence) / 2
    return (float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail)))

