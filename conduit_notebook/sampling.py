"""Trace samples: which runs' traces to fetch within a budget, and how to weigh them back.

Every run of a window comes from the list pages (100 a request); a run's trace costs one request
of its own. When not every trace fits the budget, :func:`choose_traces` picks a stratified
sample: strata are agent x disposition x status, every stratum gets at least one traced run,
the rest is shared in proportion to the strata's sizes, and within a stratum runs are taken in
the order of a seeded hash of their id (reproducible with ``seed``, and stable as the window
moves, so a later call reuses the traces it already has).

Each traced run then stands for its stratum: :func:`trace_weights` gives it
``runs in the stratum / traced runs in the stratum``; :func:`stratified_totals` estimates a
population total from the traced runs with its standard error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["STRATA", "choose_traces", "strata_codes", "stratified_totals", "trace_weights"]

#: The columns whose combinations are the strata of a trace sample.
STRATA = ("agent_id", "disposition", "status")


def strata_codes(runs: pd.DataFrame, columns: Sequence[str] = STRATA) -> np.ndarray:
    """One integer per run naming its stratum (missing values are a level of their own)."""
    combined = np.zeros(len(runs), dtype=np.int64)
    for column in columns:
        if column not in runs:
            continue
        values = runs[column]
        codes = (values.cat.codes if isinstance(values.dtype, pd.CategoricalDtype)
                 else values.astype("category").cat.codes).to_numpy().astype(np.int64) + 1
        combined = combined * (int(codes.max(initial=0)) + 1) + codes
    return np.unique(combined, return_inverse=True)[1].astype(np.int64).reshape(-1)


def _rank(ids: Sequence[str], seed: int) -> np.ndarray:
    """A seeded pseudo-random order key per id: the same id gets the same key in every call."""
    prefix = f"{seed}:".encode()
    return np.array([int.from_bytes(hashlib.blake2b(prefix + str(i).encode(), digest_size=8).digest(), "big")
                     for i in ids], dtype=np.uint64)


def _allocate(sizes: np.ndarray, total: int) -> np.ndarray:
    """Traced runs wanted per stratum: proportional to size (largest remainders), at least one
    each, never more than the stratum holds."""
    sizes = np.asarray(sizes, dtype=np.int64)
    want = np.minimum(sizes, 1)
    rest = max(0, total - int(want.sum()))
    if rest and sizes.sum():
        room = sizes - want
        share = rest * room / max(int(room.sum()), 1)
        extra = np.floor(share).astype(np.int64)
        left = min(rest, int(room.sum())) - int(extra.sum())
        if left > 0:
            order = np.argsort(-(share - extra), kind="stable")
            extra[order[:left]] += 1
        want = want + np.minimum(extra, room)
    return want


def choose_traces(runs: pd.DataFrame, have: np.ndarray, total: int, *, seed: int = 0) -> np.ndarray:
    """Which runs' traces to fetch so that about ``total`` runs of ``runs`` carry one.

    ``have`` marks the runs whose trace is already at hand (the cache): they count towards the
    total and cost nothing. Returns a boolean mask of the runs to fetch: in each stratum the
    first runs in seeded hash order that lack a trace, up to the stratum's share.
    """
    have = np.asarray(have, dtype=bool)
    if total >= len(runs):
        return ~have
    codes = strata_codes(runs)
    n_strata = int(codes.max()) + 1 if len(codes) else 0
    sizes = np.bincount(codes, minlength=n_strata)
    wanted = _allocate(sizes, total)
    missing = np.flatnonzero(~have)
    fetch = np.zeros(len(runs), dtype=bool)
    if not len(missing):
        return fetch
    need = np.maximum(0, wanted - np.bincount(codes[have], minlength=n_strata))
    rank = _rank(runs["id"].to_numpy()[missing], seed)
    order = missing[np.lexsort((rank, codes[missing]))]  # by stratum, then hash order
    stratum = codes[order]
    # Position of each run within its stratum's hash order.
    starts = np.searchsorted(stratum, np.arange(n_strata))
    position = np.arange(len(order)) - starts[stratum]
    fetch[order[position < need[stratum]]] = True
    return fetch


def trace_weights(runs: pd.DataFrame, traced: np.ndarray) -> np.ndarray:
    """Per run: ``runs in its stratum / traced runs in its stratum`` if it is traced, else NaN.

    Every run traced gives weights of 1. Runs of a stratum without any traced run are
    represented by the others: the weights are scaled by ``all runs / runs in traced strata``
    (a ratio adjustment), so the weights always add up to the number of runs.
    """
    traced = np.asarray(traced, dtype=bool)
    weights = np.full(len(runs), np.nan)
    if not traced.any():
        return weights
    codes = strata_codes(runs)
    sizes = np.bincount(codes)
    n = np.bincount(codes[traced], minlength=len(sizes))
    covered = sizes[n > 0].sum()
    scale = len(runs) / covered if covered else np.nan
    weights[traced] = sizes[codes[traced]] / n[codes[traced]] * scale
    return weights


def stratified_totals(
    values: np.ndarray,
    strata: np.ndarray,
    sizes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Population totals of each column of ``values`` (traced runs x measures) and their
    standard errors, by the stratified expansion estimator.

    ``strata`` gives each traced run's stratum, ``sizes`` the number of runs in each stratum
    (traced or not). The total is ``sum_h N_h * mean_h`` and its variance
    ``sum_h N_h**2 * (1 - n_h / N_h) * s2_h / n_h`` (simple random sampling within strata,
    without replacement). A stratum with a single traced run borrows the pooled within-stratum
    variance. Strata without traced runs count through a ratio adjustment of the others.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    sizes = np.asarray(sizes, dtype=float)
    k = len(sizes)
    n = np.bincount(strata, minlength=k).astype(float)
    s1 = np.stack([np.bincount(strata, weights=values[:, j], minlength=k) for j in range(values.shape[1])], axis=1)
    s2 = np.stack([np.bincount(strata, weights=values[:, j] ** 2, minlength=k) for j in range(values.shape[1])], axis=1)
    return totals_from_sums(s1, s2, n, sizes)


def totals_from_sums(s1: np.ndarray, s2: np.ndarray, n: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`stratified_totals` from per-stratum sums (strata x measures) of the values and of
    their squares, the traced runs ``n`` and all runs ``sizes`` per stratum."""
    n = np.asarray(n, dtype=float)[:, None]
    sizes = np.asarray(sizes, dtype=float)[:, None]
    seen = n[:, 0] > 0
    covered = sizes[seen].sum()
    scale = sizes.sum() / covered if covered else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s1 / np.maximum(n, 1), 0.0)
        total = (sizes * mean).sum(axis=0) * scale
        within = np.where(n > 1, (s2 - s1 ** 2 / np.maximum(n, 1)) / np.maximum(n - 1, 1), np.nan)
        dof = np.maximum(n - 1, 0).sum()
        pooled = np.where(n > 1, within * (n - 1), 0.0).sum(axis=0) / dof if dof else np.zeros(s1.shape[1])
        within = np.where(np.isnan(within), pooled, np.maximum(within, 0.0))
        fpc = np.where(sizes > 0, 1 - n / np.maximum(sizes, 1), 0.0)
        var = np.where(n > 0, sizes ** 2 * fpc * within / np.maximum(n, 1), 0.0).sum(axis=0) * scale ** 2
    return total, np.sqrt(var)
