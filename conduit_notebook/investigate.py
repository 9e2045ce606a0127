"""Investigations: is a change real, which tool paths end in escalations, where an agent repeats
itself, what a whole conversation cost, and on which day a metric's level shifted.

>>> from conduit_notebook import compare, tool_paths, repeated_calls, conversations, change_points
>>> compare(last_week, week_before)            # every metric, with 95% intervals and Holm's p-values
>>> tool_paths(calls, runs).head(10)           # the commonest tool sequences and how they end
>>> repeated_calls(calls, runs)                # the same tool with the same input, again and again
>>> conversations(runs)                        # one row per guest thread: runs, cost, escalated
>>> change_points(runs, metric="escalation_rate", by="agent_name")

Metrics mean what they mean everywhere in the package (:func:`conduit_notebook.summarize`,
:func:`conduit_notebook.cost_breakdown`):

- ``escalation_rate`` / ``resolution_rate``: escalated / resolved among completed runs that
  have a disposition; ``failure_rate``: failed among finished (completed or failed) runs.
- ``p50/p90/p99_duration_s``: quantiles (linear interpolation) of the runs with a duration.
- ``tokens_per_run`` / ``cost_per_run``: means over the runs with token usage / with a cost.
- ``cost_per_resolved_run``: the cost of *all* runs divided by the resolved runs.
- ``disposition:<name>``: share among runs with a disposition.

Pure functions of the frames of :func:`conduit_notebook.fetch_runs`; none needs the API.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .analysis import require_columns, require_runs, summarize
from .stats import Z95, chi_square_sf, holm, share_interval, two_sided, wilson_interval
from .sampling import design_groups, domain_ratios_from_sums, domain_totals_from_sums, trace_failures
from .schema import FINISHED_STATUSES

__all__ = ["CHANGE_METRICS", "change_points", "compare", "compare_tools", "contacts", "conversations",
           "metric_levels", "repeat_rates", "repeated_calls", "run_paths", "tool_paths", "tool_transitions"]

_RATES = ("escalation_rate", "failure_rate", "resolution_rate")
_QUANTILES = {"p50_duration_s": 0.5, "p90_duration_s": 0.9, "p99_duration_s": 0.99}
_MEANS = ("tokens_per_run", "cost_per_run")
#: The metrics :func:`change_points` and :func:`metric_levels` follow.
CHANGE_METRICS = (*_RATES, *_QUANTILES, *_MEANS)
COMPARE_COLUMNS = ["a", "b", "difference", "ci_low", "ci_high", "p_value", "p_holm", "significant", "method"]
NO_TOOLS = "(no tool calls)"
#: Above this many runs a side, means are bootstrapped on a random subset of this size and the
#: spread scaled by sqrt(m/n) (the m-out-of-n bootstrap of a sqrt(n)-consistent statistic).
BOOTSTRAP_SUBSET = 5_000


# -- per-run values ------------------------------------------------------------------------------

def _float(series: pd.Series) -> np.ndarray:
    return series.astype("float64").to_numpy(na_value=np.nan)


def _text(series: pd.Series) -> np.ndarray:
    return series.astype(object).to_numpy()


def _resolved_list(resolved: str | Sequence[str]) -> list[str]:
    return [resolved] if isinstance(resolved, str) else list(resolved)


def _per_run(runs: pd.DataFrame, metric: str, resolved: str | Sequence[str] = "resolved") -> tuple[np.ndarray, np.ndarray]:
    """(value, counted) per run: a rate's event (0/1) and whether the run is in its denominator,
    or a run's value and whether it has one."""
    if metric in _RATES:
        status, disposition = _text(runs["status"]), runs["disposition"]
        if metric == "failure_rate":
            return (status == "failed").astype(float), np.isin(status, FINISHED_STATUSES)
        counted = (status == "completed") & disposition.notna().to_numpy()
        wanted = ["escalated"] if metric == "escalation_rate" else _resolved_list(resolved)
        return disposition.astype(object).isin(wanted).to_numpy().astype(float), counted
    if metric in _QUANTILES:
        values = _float(runs["duration_ms"]) / 1000.0
    elif metric in _MEANS:
        values = _float(runs["total_tokens" if metric == "tokens_per_run" else "total_cost"])
    else:
        raise ValueError(f"metric must be one of {', '.join(CHANGE_METRICS)}; got {metric!r}")
    return values, ~np.isnan(values)


# -- trace samples -------------------------------------------------------------------------------

class _Sample:
    """The random trace sample behind ``runs`` (``trace_weight`` > 0), as far as the frame still
    shows its design (:func:`conduit_notebook.sampling.design_groups`)."""

    def __init__(self, runs: pd.DataFrame) -> None:
        w = runs["trace_weight"].to_numpy(dtype=float, na_value=np.nan)
        self.sampled = w > 0  # NaN: not traced; 0: traced by hand, not drawn at random
        self.weight = np.where(self.sampled, w, 0.0)
        self.group, self.g_weight, self.g_agent, self.g_partial = design_groups(runs)
        self.n_h = np.bincount(self.group[self.sampled], minlength=len(self.g_weight)).astype(float)
        self.traced = int(self.sampled.sum())
        self.note = f"estimated from {self.traced:,} traced runs"
        failed, _ = trace_failures(runs)
        if failed:  # non-response: the traced runs of their strata stand for them
            self.note += (f"; {failed:,} traces failed, assumed missing at random within agent x "
                          "disposition x status (low if failures go with big traces)")

    def sums(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_cols: int) -> np.ndarray:
        """Per design group and column (groups x n_cols): the sum of ``values`` of sampled
        ``rows`` (runs) in ``cols``."""
        keep = self.sampled[rows]
        cell = self.group[rows[keep]] * n_cols + cols[keep]
        return np.bincount(cell, weights=np.asarray(values, dtype=float)[keep],
                           minlength=len(self.g_weight) * n_cols).reshape(len(self.g_weight), n_cols)

    def totals(self, s1: np.ndarray, s2: np.ndarray, groups: np.ndarray | slice = slice(None)
               ) -> tuple[np.ndarray, np.ndarray]:
        """Horvitz-Thompson totals ``sum w * y`` and their stratified standard errors."""
        return domain_totals_from_sums(s1[groups], s2[groups], self.n_h[groups], self.g_weight[groups],
                                       self.g_agent[groups], self.g_partial[groups])

    def ratios(self, sy: np.ndarray, syy: np.ndarray, sx: np.ndarray, sxx: np.ndarray, sxy: np.ndarray,
               groups: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """Ratio estimates ``sum w * y / sum w * x`` and their linearised stratified errors."""
        return domain_ratios_from_sums(sy[groups], syy[groups], sx[groups], sxx[groups], sxy[groups],
                                       self.n_h[groups], self.g_weight[groups], self.g_agent[groups],
                                       self.g_partial[groups])


def _trace_sample(runs: pd.DataFrame | None) -> _Sample | None:
    """The sample design when ``runs``' traces are a sample (as :func:`tool_stats` decides: some
    ``trace_weight`` other than 1), else None: every trace is there and counts are exact."""
    if runs is None or "trace_weight" not in runs:
        return None
    w = runs["trace_weight"].to_numpy(dtype=float, na_value=np.nan)
    if not (w > 0).any() or (w == 1).all():
        return None
    return _Sample(runs)


# -- compare -------------------------------------------------------------------------------------

def _z(alpha: float) -> float:
    return NormalDist().inv_cdf(1 - alpha / 2)


def _proportion_row(ka: int, na: int, kb: int, nb: int, alpha: float) -> dict[str, Any]:
    """Newcombe's hybrid score interval (Wilson on each side) for pb - pa; pooled z-test p-value."""
    if na == 0 or nb == 0:
        return {"a": ka / na if na else math.nan, "b": kb / nb if nb else math.nan}
    z = _z(alpha)
    pa_, pb_ = ka / na, kb / nb
    la, ua = wilson_interval(ka, na, z)
    lb, ub = wilson_interval(kb, nb, z)
    d = pb_ - pa_
    pooled = (ka + kb) / (na + nb)
    se = math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    return {"a": pa_, "b": pb_, "difference": d,
            "ci_low": d - math.sqrt((pb_ - lb) ** 2 + (ua - pa_) ** 2),
            "ci_high": d + math.sqrt((ub - pb_) ** 2 + (pa_ - la) ** 2),
            "p_value": two_sided(d, se), "method": "Newcombe-Wilson interval, pooled z-test"}


def _bootstrap_row(a: float, b: float, draws: np.ndarray, alpha: float, method: str) -> dict[str, Any]:
    """Percentile interval of the bootstrap differences; p-value from their standard error."""
    draws = draws[np.isfinite(draws)]
    row = {"a": a, "b": b, "difference": b - a, "method": method}
    if len(draws) < 10 or not (np.isfinite(a) and np.isfinite(b)):
        return row
    low, high = np.percentile(draws, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return {**row, "ci_low": float(low), "ci_high": float(high),
            "p_value": two_sided(b - a, float(np.std(draws, ddof=1)))}


def _quantile_draws(values: np.ndarray, q: float, n_boot: int, rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """The sample quantile and bootstrap draws of it, taken exactly rather than by resampling:
    the k-th order statistic of a resample is F_n^-1(U) with U ~ Beta(k, n - k + 1)."""
    v = np.sort(values)
    n = len(v)
    if n == 0:
        return math.nan, np.full(n_boot, np.nan)
    k = int(math.floor(q * (n - 1))) + 1
    u = rng.beta(k, n - k + 1, size=n_boot)
    return float(np.quantile(v, q)), v[np.clip(np.ceil(u * n).astype(np.int64) - 1, 0, n - 1)]


def _ratio_draws(num: list[np.ndarray], den: list[np.ndarray], n_boot: int,
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


def _mean_inputs(runs: pd.DataFrame, resolved: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    tokens, cost = _float(runs["total_tokens"]), _float(runs["total_cost"])
    is_resolved = runs["disposition"].astype(object).isin(resolved).to_numpy().astype(float)
    num = [np.nan_to_num(tokens), np.nan_to_num(cost), np.nan_to_num(cost)]
    den = [(~np.isnan(tokens)).astype(float), (~np.isnan(cost)).astype(float), is_resolved]
    return num, den


def _mix_row(ca: np.ndarray, cb: np.ndarray) -> dict[str, Any]:
    """Chi-square test of the 2 x K disposition table; difference: total variation distance."""
    table = np.vstack([ca, cb]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    row: dict[str, Any] = {"method": "chi-square test of the mix; difference: total variation distance"}
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return row
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    shares = table / table.sum(axis=1, keepdims=True)
    return {**row, "difference": float(np.abs(shares[1] - shares[0]).sum() / 2),
            "p_value": chi_square_sf(statistic, table.shape[1] - 1)}


def _finish(rows: dict[str, dict[str, Any]], alpha: float, index_name: str) -> pd.DataFrame:
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=COMPARE_COLUMNS)
    for column in COMPARE_COLUMNS[:7]:
        table[column] = table[column].astype("float64")
    table["p_holm"] = holm(table["p_value"].to_numpy())
    table["significant"] = (table["p_holm"] < alpha).to_numpy()
    table["method"] = table["method"].astype(object)
    table.index.name = index_name
    return table


def compare(a: pd.DataFrame, b: pd.DataFrame, *, resolved: str | Sequence[str] = "resolved",
            alpha: float = 0.05, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Is the change from runs ``a`` to runs ``b`` real? One row per metric (``runs``, the rates,
    duration quantiles, tokens and cost per run, cost per resolved run, ``disposition:<name>``
    shares and a ``disposition_mix`` row), with columns ``a``, ``b``, ``difference`` (b - a),
    a ``1 - alpha`` interval ``ci_low``/``ci_high``, ``p_value``, ``p_holm`` and ``significant``
    (Holm-adjusted p below ``alpha``, across all the rows), and the ``method`` used.

    Methods: Newcombe's hybrid score interval (Wilson on each side) and a pooled z-test for
    rates and shares; for quantiles and means a bootstrap (``n_boot`` draws, ``seed``:
    reproducible), percentile interval and a p-value from the bootstrap standard error;
    quantile draws come exactly from the order-statistic distribution of a resample, means
    resample runs (above 5,000 runs a side, 5,000 of them, the spread scaled to n). The
    mix row is a chi-square test; its ``difference`` is the total variation distance. ``runs``
    is a count, not an estimate: no test. Intervals are not adjusted for multiplicity.

    >>> compare(runs[runs.created_at < cut], runs[runs.created_at >= cut])
    """
    for frame, name in ((a, "compare (a)"), (b, "compare (b)")):
        require_columns(frame, ["status", "disposition", "duration_ms", "total_tokens", "total_cost"], name)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    if not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f"n_boot must be a whole number >= 100, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    resolved = _resolved_list(resolved)
    rows: dict[str, dict[str, Any]] = {
        "runs": {"a": len(a), "b": len(b), "difference": len(b) - len(a), "method": "count (no test)"}}
    for metric in _RATES:
        (xa, wa), (xb, wb) = _per_run(a, metric, resolved), _per_run(b, metric, resolved)
        rows[metric] = _proportion_row(int(xa[wa].sum()), int(wa.sum()), int(xb[wb].sum()), int(wb.sum()), alpha)
    for metric, q in list(_QUANTILES.items())[:2]:
        (va, wa), (vb, wb) = _per_run(a, metric), _per_run(b, metric)
        ea, da = _quantile_draws(va[wa], q, n_boot, rng)
        eb, db = _quantile_draws(vb[wb], q, n_boot, rng)
        rows[metric] = _bootstrap_row(ea, eb, db - da, alpha, "bootstrap (order statistics)")
    fa, da = _ratio_draws(*_mean_inputs(a, resolved), n_boot, rng)
    fb, db = _ratio_draws(*_mean_inputs(b, resolved), n_boot, rng)
    for j, metric in enumerate(("tokens_per_run", "cost_per_run", "cost_per_resolved_run")):
        rows[metric] = _bootstrap_row(float(fa[j]), float(fb[j]), db[j] - da[j], alpha, "bootstrap (runs resampled)")
    da_, db_ = a["disposition"].astype(object), b["disposition"].astype(object)
    names = sorted(set(da_.dropna()) | set(db_.dropna()), key=str)
    ca = da_.value_counts().reindex(names, fill_value=0).to_numpy()
    cb = db_.value_counts().reindex(names, fill_value=0).to_numpy()
    for name, ka, kb in zip(names, ca, cb):
        rows[f"disposition:{name}"] = _proportion_row(int(ka), int(ca.sum()), int(kb), int(cb.sum()), alpha)
    rows["disposition_mix"] = _mix_row(ca, cb)
    return _finish(rows, alpha, "metric")


def compare_tools(calls_a: pd.DataFrame, calls_b: pd.DataFrame, runs_a: pd.DataFrame | None = None,
                  runs_b: pd.DataFrame | None = None, *, alpha: float = 0.05) -> pd.DataFrame:
    """Tool usage in ``a`` against ``b``: per tool, the share of runs that called it (``a``,
    ``b``), its difference with a Newcombe-Wilson interval, pooled z-test ``p_value``, Holm's
    ``p_holm`` across the tools and ``significant``; plus ``runs_using_a/b`` and
    ``calls_per_run_a/b`` (calls per run using it). The share is out of all runs of ``runs_a``
    / ``runs_b`` when given, else out of the runs seen in the calls (runs without any call are
    then invisible). Sorted by p-value.

    With a trace budget (``runs_a`` / ``runs_b`` with ``trace_weight``, some other than 1), a
    sampled side is estimated for all of its runs from its runs in the random trace sample
    (``trace_weight`` > 0; untraced runs and runs traced by hand do not count): its share is
    the ratio estimate ``sum w * used / sum w``, ``runs_using`` the Horvitz-Thompson total
    ``sum w * used`` and ``calls_per_run`` the ratio of the weighted calls to it. The
    difference's interval is then Newcombe's hybrid of the two sides' Wilson intervals, a
    sampled side's at Kish's effective sample size from the design-based (stratified,
    linearised) variance of its share (:func:`conduit_notebook.sampling.domain_ratios_from_sums`);
    the p-value is a z-test on the difference over the two sides' standard errors (design-based
    for a sampled side, binomial for a fully traced one). It answers how the two windows'
    shares would compare had every run been traced. ``.attrs["note"]`` says how many traced
    runs the estimate rests on. With every trace present nothing changes.
    """
    rows, extra = {}, {}
    sides = []
    for calls, runs, name in ((calls_a, runs_a, "a"), (calls_b, runs_b, "b")):
        require_columns(calls, ["agent_run_id", "name"], f"compare_tools (calls_{name})")
        if runs is not None:
            require_columns(runs, ["id"], f"compare_tools (runs_{name})")
        sample = _trace_sample(runs)
        if sample is not None:
            sides.append(_sampled_usage(calls, runs, sample))
            continue
        using, calls_per_tool, seen = _tool_usage(calls)
        sides.append(_ToolSide(using, calls_per_tool, len(runs) if runs is not None else seen))
    tools = sorted(set(sides[0].using.index) | set(sides[1].using.index), key=str)
    sampled = any(side.sample is not None for side in sides)
    for tool in tools:
        (ua, ca, na), (ub, cb, nb) = [(s.using.get(tool, 0), s.calls.get(tool, 0), s.n) for s in sides]
        if sampled:
            rows[tool] = _design_proportion_row(sides[0].share(tool, _z(alpha)), sides[1].share(tool, _z(alpha)))
        else:
            rows[tool] = _proportion_row(int(ua), int(na), int(ub), int(nb), alpha)
        extra[tool] = {"runs_using_a": ua, "runs_using_b": ub,
                       "calls_per_run_a": ca / ua if ua else math.nan, "calls_per_run_b": cb / ub if ub else math.nan}
    table = _finish(rows, alpha, "tool") if rows else pd.DataFrame(columns=COMPARE_COLUMNS).rename_axis("tool")
    table = table.join(pd.DataFrame.from_dict(extra, orient="index",
                                              columns=["runs_using_a", "runs_using_b", "calls_per_run_a",
                                                       "calls_per_run_b"]))
    table = table.sort_values(["p_value"], kind="stable", na_position="last")
    if sampled:
        told = [(name, side.sample.traced) for name, side in zip("ab", sides) if side.sample is not None]
        note = "estimated from " + " and ".join(f"{n:,} ({name})" for name, n in told) + " traced runs"
        if len(told) == 1:
            note += f"; {'b' if told[0][0] == 'a' else 'a'}: every trace"
        table.attrs.update(note=note, estimated_from=sum(n for _, n in told))
    return table


class _ToolSide:
    """One side of :func:`compare_tools`: per tool the runs using it and its calls (estimated
    totals for a sampled side), the runs, and for a sampled side its design's shares."""

    def __init__(self, using: pd.Series, calls: pd.Series, n: float, sample: _Sample | None = None,
                 shares: pd.DataFrame | None = None) -> None:
        self.using, self.calls, self.n, self.sample = using, calls, n, sample
        self.shares = pd.DataFrame(columns=["share", "se"]) if shares is None else shares

    def share(self, tool: str, z: float) -> tuple[float, float, float, float]:
        """(share, standard error, interval low, high): binomial and Wilson for a fully traced
        side, design-based and Wilson at Kish's effective n for a sampled one."""
        if self.sample is None:
            k, n = float(self.using.get(tool, 0)), float(self.n)
            if not n:
                return math.nan, math.nan, math.nan, math.nan
            p = k / n
            return (p, math.sqrt(p * (1 - p) / n), *wilson_interval(k, n, z))
        p, se = ((float(self.shares.at[tool, "share"]), float(self.shares.at[tool, "se"]))
                 if tool in self.shares.index else (0.0, 0.0))
        return (p, se, *share_interval(p, se, self.sample.traced, z))


def _sampled_usage(calls: pd.DataFrame, runs: pd.DataFrame, sample: _Sample) -> _ToolSide:
    """Per tool, from the random trace sample: the estimated runs using it and calls
    (Horvitz-Thompson) and its share of runs with its design-based standard error."""
    rcode, run_ids = _codes(calls["agent_run_id"])
    ncode, names = _codes(calls["name"])
    # Only the ids the calls use (a filtered frame keeps every category), among sampled runs only.
    used = np.flatnonzero(np.bincount(rcode[rcode >= 0], minlength=len(run_ids)))
    position = np.full(len(run_ids), -1, dtype=np.int64)
    position[used] = _run_positions(run_ids.take(used), runs, np.flatnonzero(sample.sampled))
    row = np.where(rcode >= 0, position[np.maximum(rcode, 0)], -1) if len(position) else np.full(len(rcode), -1)
    ok = (row >= 0) & (ncode >= 0)
    k = max(len(names), 1)
    pair, count = np.unique(row[ok] * k + ncode[ok], return_counts=True)
    p_run, p_tool = pair // k, pair % k
    took = sample.sums(p_run, p_tool, np.ones(len(pair)), k)  # per group and tool: runs using it
    called = sample.sums(p_run, p_tool, count.astype(float), k)
    n_col = np.repeat(sample.n_h[:, None], k, axis=1)
    share, se = sample.ratios(took, took, n_col, n_col, took)
    weights = sample.g_weight[:, None]
    seen = np.bincount(p_tool, minlength=k) > 0
    index = pd.Index(np.asarray(names.astype(str), dtype=object)[seen[:len(names)]], name="tool")
    keep = np.flatnonzero(seen)
    return _ToolSide(pd.Series((weights * took).sum(axis=0)[keep], index=index),
                     pd.Series((weights * called).sum(axis=0)[keep], index=index),
                     float((sample.g_weight * sample.n_h).sum()), sample,
                     pd.DataFrame({"share": share[keep], "se": se[keep]}, index=index))


def _design_proportion_row(a: tuple[float, float, float, float], b: tuple[float, float, float, float]
                           ) -> dict[str, Any]:
    """:func:`_proportion_row` for shares of which at least one is estimated from a trace sample:
    Newcombe's hybrid of Wilson intervals (a sampled side's at Kish's effective sample size),
    a z-test on the difference over both sides' standard errors."""
    (pa_, sa, la, ua), (pb_, sb, lb, ub) = a, b
    d = pb_ - pa_
    return {"a": pa_, "b": pb_, "difference": d,
            "ci_low": d - math.sqrt((pb_ - lb) ** 2 + (ua - pa_) ** 2),
            "ci_high": d + math.sqrt((ub - pb_) ** 2 + (pa_ - la) ** 2),
            "p_value": two_sided(d, math.sqrt(sa ** 2 + sb ** 2)),
            "method": "stratified ratio estimate; Newcombe-Wilson at Kish's effective n, design-based z-test"}


def _codes(series: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Category codes (int64, -1 for missing) and the categories, without copying strings."""
    series = series if isinstance(series.dtype, pd.CategoricalDtype) else series.astype("category")
    return series.cat.codes.to_numpy().astype(np.int64), series.cat.categories


def _tool_usage(calls: pd.DataFrame) -> tuple[pd.Series, pd.Series, int]:
    """Per tool name: the runs using it and its calls; and the number of runs seen."""
    rcode, _ = _codes(calls["agent_run_id"])
    ncode, names = _codes(calls["name"])
    ok = (rcode >= 0) & (ncode >= 0)
    rcode, ncode = rcode[ok], ncode[ok]
    k = max(len(names), 1)
    pairs = pd.unique(rcode * k + ncode)  # hashing: numpy 2.4's np.unique is slow here
    index = pd.Index(names.astype(str), name="tool")
    using = pd.Series(np.bincount(pairs % k, minlength=len(names)), index=index)
    count = pd.Series(np.bincount(ncode, minlength=len(names)), index=index)
    seen = int(np.count_nonzero(np.bincount(rcode))) if len(rcode) else 0
    return using[count > 0], count[count > 0], seen


# -- tool sequences ------------------------------------------------------------------------------

def _sequences(tool_calls: pd.DataFrame) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The calls of each run in trace order: (run ids, run code per segment, segment starts,
    tool code per call, tool names), one segment per run."""
    require_columns(tool_calls, ["agent_run_id", "name"], "tool paths")
    run = tool_calls["agent_run_id"]
    run = run if isinstance(run.dtype, pd.CategoricalDtype) else run.astype("category")
    name = tool_calls["name"]
    name = name if isinstance(name.dtype, pd.CategoricalDtype) else name.astype("category")
    names = [str(n) for n in name.cat.categories] + ["(unnamed)"]
    rcode = run.cat.codes.to_numpy().astype(np.int64)
    ncode = name.cat.codes.to_numpy().astype(np.int64)
    ncode = np.where(ncode < 0, len(names) - 1, ncode)
    step = (tool_calls["step"].to_numpy(dtype=np.int64, na_value=0) if "step" in tool_calls
            else np.arange(len(tool_calls)))
    keep = rcode >= 0
    rcode, ncode, step = rcode[keep], ncode[keep], step[keep]
    change = np.flatnonzero(rcode[1:] != rcode[:-1]) + 1
    # Each run's calls together (as frames hold them) iff there is one stretch per run seen.
    ordered = (len(change) + 1 == np.count_nonzero(np.bincount(rcode)) if len(rcode) else True)
    if ordered and len(rcode):
        inside = np.ones(len(rcode) - 1, dtype=bool)
        inside[change - 1] = False
        ordered = bool(np.all(step[1:][inside] > step[:-1][inside]))
    if not ordered:  # group each run's calls together, in step order
        order = np.lexsort((step, rcode))
        rcode, ncode = rcode[order], ncode[order]
        change = np.flatnonzero(rcode[1:] != rcode[:-1]) + 1
    starts = np.concatenate([[0], change]).astype(np.int64) if len(rcode) else np.zeros(0, dtype=np.int64)
    return run.cat.categories, rcode[starts], starts, ncode, names


def _path_codes(starts: np.ndarray, ncode: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A code per segment (equal codes: equal tool sequences) and the first segment of each
    code: a polynomial hash of the sequence, wrapping in uint64, mixed with its length."""
    if not len(starts):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    lengths = np.diff(np.concatenate([starts, [len(ncode)]]))
    position = np.arange(len(ncode)) - np.repeat(starts, lengths)
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.concatenate([[1], np.full(int(lengths.max()), 1_000_003)]).astype(np.uint64))
        contribution = (ncode.astype(np.uint64) + np.uint64(1)) * powers[position]
        key = np.add.reduceat(contribution, starts) + lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    _, first, codes = np.unique(key, return_index=True, return_inverse=True)
    return codes.ravel(), first


def _run_positions(run_ids: pd.Index, runs: pd.DataFrame, among: np.ndarray | None = None) -> np.ndarray:
    """For each of ``run_ids`` (distinct), its row in ``runs`` (-1: not there, or not one of
    the rows ``among``): Arrow's hash lookup of the runs' ids among ``run_ids`` (no Python
    strings)."""
    ids = runs["id"] if among is None else runs["id"].take(among)
    found = pc.index_in(pa.array(ids.astype(str).array), value_set=pa.array(run_ids.astype(str).array))
    found = np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    rows = np.flatnonzero(found >= 0)
    positions = np.full(len(run_ids), -1, dtype=np.int64)
    positions[found[rows]] = rows if among is None else among[rows]
    return positions


def run_paths(tool_calls: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.Series:
    """Each run's ordered tool names joined by ``" > "`` (a categorical Series indexed like
    ``runs``, runs without calls: ``"(no tool calls)"``; without ``runs``: indexed by run id)."""
    run_ids, seg_run, starts, ncode, names = _sequences(tool_calls)
    codes, first = _path_codes(starts, ncode)
    ends = np.concatenate([starts[1:], [len(ncode)]]) if len(starts) else starts
    labels = [" > ".join(names[c] for c in ncode[starts[s]:ends[s]]) for s in first]
    if runs is None:
        return pd.Series(pd.Categorical.from_codes(codes, categories=labels),
                         index=run_ids.take(seg_run).rename("agent_run_id"), name="path")
    require_columns(runs, ["id"], "run_paths")
    row = _run_positions(run_ids.take(seg_run), runs)  # the ids used: a filtered frame keeps every category
    per_run = np.full(len(runs), len(labels), dtype=np.int64)
    per_run[row[row >= 0]] = codes[row >= 0]
    return pd.Series(pd.Categorical.from_codes(per_run, categories=[*labels, NO_TOOLS]), index=runs.index,
                     name="path")


def _shares(codes: np.ndarray, n: int, disposition: pd.Series,
            weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    d = disposition.astype("category")
    dcode = d.cat.codes.to_numpy().astype(np.int64)
    ok = dcode >= 0
    k = len(d.cat.categories)
    mix = np.bincount(codes[ok] * k + dcode[ok], weights=None if weights is None else weights[ok],
                      minlength=n * k).reshape(n, k).astype(float)
    totals = mix.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(totals > 0, mix / totals, np.nan)
    return {f"disposition:{name}": shares[:, j] for j, name in enumerate(d.cat.categories)}


def tool_paths(tool_calls: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per distinct ordered sequence of tool names in a run, most common first:
    ``path`` (names joined by ``" > "``), ``calls`` (its length), ``runs`` and ``share`` of runs.

    With ``runs``, every run counts (those without calls as ``"(no tool calls)"``) and each
    path also gets the ``disposition:<name>`` mix of its runs (among those with a disposition),
    ``p50_duration_s`` and ``cost_per_run`` (as :func:`summarize` defines them).

    With a trace budget (``runs`` carry ``trace_weight``, NaN for runs whose trace was not
    fetched), only traced runs count, each weighted by its ``trace_weight`` (Horvitz-Thompson):
    ``runs`` is then the estimated number of runs of the window taking the path (a float),
    ``share`` and the disposition mix are weighted estimates, the duration and cost columns
    are unweighted over the path's traced runs, and ``.attrs["note"]`` says
    ``"estimated from N traced runs"``. When the weights are a random sample's (some > 0 and
    not all 1), ``share_low``/``share_high`` are its 95% interval: Wilson at Kish's effective
    sample size from the stratified variance over the strata recovered from the weights, the
    share linearised as a ratio (:func:`conduit_notebook.sampling.domain_ratios_from_sums`);
    ``runs_low``/``runs_high`` are that interval times the runs it is a share of. With every
    trace present nothing changes.

    >>> tool_paths(calls, runs).sort_values("disposition:escalated", ascending=False).head()
    """
    paths = run_paths(tool_calls, runs)
    codes = paths.cat.codes.to_numpy().astype(np.int64)
    labels = list(paths.cat.categories)
    n = len(labels)
    weights, note = None, None
    if runs is not None and "trace_weight" in runs:
        w = _float(runs["trace_weight"])
        if np.isnan(w).any():
            weights = np.where(np.isnan(w), 0.0, w)
            note = f"estimated from {int(np.count_nonzero(~np.isnan(w))):,} traced runs"
    count = np.bincount(codes, weights=weights, minlength=n)
    total = len(codes) if weights is None else weights.sum()
    table = pd.DataFrame({"path": labels,
                          "calls": [0 if p == NO_TOOLS else p.count(" > ") + 1 for p in labels],
                          "runs": count, "share": count / (total if total else 1)})
    sample = _trace_sample(runs) if weights is not None else None
    if sample is not None:
        _path_intervals(table, sample, codes, n)
    if runs is not None:
        for column, values in _shares(codes, n, runs["disposition"], weights).items():
            table[column] = values
        path_code = codes if weights is None else np.where(weights > 0, codes, -1)
        stats = summarize(runs[["status", "duration_ms", "input_tokens", "output_tokens", "total_tokens",
                                "total_cost"]].assign(_path=path_code), by="_path")
        stats = stats.reindex(np.arange(n))
        table["p50_duration_s"] = stats["p50_duration_s"].to_numpy()
        table["cost_per_run"] = stats["cost_per_run"].to_numpy()
    table = table[table["runs"] > 0]
    table = table.sort_values(["runs", "path"], ascending=[False, True], kind="stable").reset_index(drop=True)
    if note:
        table.attrs["note"] = note
    return table


def _path_intervals(table: pd.DataFrame, sample: _Sample, codes: np.ndarray, n: int) -> None:
    """Add 95% intervals of :func:`tool_paths`' estimated ``runs`` and ``share`` (per path code)."""
    every = np.arange(len(codes))
    took = sample.sums(every, codes, np.ones(len(codes)), n)
    runs_n = np.repeat(sample.n_h[:, None], n, axis=1)
    share, share_se = sample.ratios(took, took, runs_n, runs_n, took)
    bounds = np.array([share_interval(p, e, sample.traced) for p, e in zip(share, share_se)]).reshape(-1, 2)
    # The runs are the share of the runs it is out of: its Wilson interval scaled (positive
    # for a path seen in a few traced runs, where a normal interval would reach below 0).
    population = float((sample.g_weight * sample.n_h).sum())
    table.insert(3, "runs_low", bounds[:, 0] * population)
    table.insert(4, "runs_high", bounds[:, 1] * population)
    table["share_low"], table["share_high"] = bounds[:, 0], bounds[:, 1]


def tool_transitions(tool_calls: pd.DataFrame, runs: pd.DataFrame | None = None, *, normalize: bool = False,
                     long: bool = False) -> pd.DataFrame:
    """Which tool follows which: a table of counts from each tool (and ``"(start)"``, a run's
    first call) to the next (and ``"(end)"``, its last). ``normalize=True``: shares of each row.
    Given ``runs``, only the calls of those runs count.

    ``long=True``: one row per transition seen instead, ``from``, ``to``, ``transitions`` and
    ``share`` (of the transitions out of ``from``), most frequent first.

    With a trace budget (``runs`` with ``trace_weight``, as after ``fetch_runs(details="auto")``
    on a busy workspace), the table estimates the whole window from the random trace sample:
    only runs with ``trace_weight`` > 0 count (not the untraced, nor those traced by hand), each
    weighted by its weight. Counts are Horvitz-Thompson totals ``sum w * transitions``, shares
    ratio estimates ``sum w * (from -> to) / sum w * (from -> any)``; ``long=True`` adds 95%
    intervals (``transitions_low``/``_high``: normal, from the stratified variance over the
    strata recovered from the weights; ``share_low``/``_high``: Wilson at Kish's effective
    sample size from the linearised stratified variance; see
    :func:`conduit_notebook.sampling.domain_ratios_from_sums`), and ``.attrs["note"]`` says
    ``"estimated from N traced runs"``. With every trace present nothing changes.

    >>> tool_transitions(calls, runs, normalize=True).round(2)
    >>> tool_transitions(calls, runs, long=True).head(10)      # with intervals under a budget
    """
    run_ids, seg_run, starts, ncode, names = _sequences(tool_calls)
    k = len(names)
    start, end = k, k + 1
    lengths = np.diff(np.concatenate([starts, [len(ncode)]])) if len(starts) else starts
    segment = np.repeat(np.arange(len(starts)), lengths)
    is_start = np.zeros(len(ncode), dtype=bool)
    is_start[starts] = True
    previous = np.where(is_start, start, np.concatenate([[start], ncode[:-1]]))
    is_last = np.zeros(len(ncode), dtype=bool)
    is_last[np.concatenate([starts[1:] - 1, [len(ncode) - 1]]) if len(starts) else []] = True
    src = np.concatenate([previous, ncode[is_last]])
    dst = np.concatenate([ncode, np.full(int(is_last.sum()), end)])
    run = np.concatenate([segment, segment[is_last]])  # each transition's segment (run)
    sample = None
    if runs is not None:
        require_columns(runs, ["id"], "tool_transitions")
        sample = _trace_sample(runs)
        among = None if sample is None else np.flatnonzero(sample.sampled)  # only sampled runs count
        run = _run_positions(run_ids.take(seg_run), runs, among)[run] if len(run) else run
        keep = run >= 0  # calls of runs outside ``runs`` (or of the sample) do not count
        src, dst, run = src[keep], dst[keep], run[keep]
    weights = None if sample is None else sample.weight[run]
    counts = np.bincount(src * (k + 2) + dst, weights=weights, minlength=(k + 2) ** 2).reshape(k + 2, k + 2)
    used = sorted(np.flatnonzero(np.bincount(dst[dst < k], minlength=k)).tolist(), key=lambda c: names[c])
    rows, columns = [start, *used], [*used, end]
    from_names = ["(start)", *[names[c] for c in used]]
    to_names = [*[names[c] for c in used], "(end)"]
    if long:
        table = _transitions_long(counts, rows, columns, from_names, to_names, src, dst, run, sample, k)
    else:
        table = pd.DataFrame(counts[np.ix_(rows, columns)], index=pd.Index(from_names, name="from"),
                             columns=pd.Index(to_names, name="to"))
        if normalize:
            table = table.div(table.sum(axis=1).where(lambda s: s > 0), axis=0)
    if sample is not None:
        table.attrs.update(note=sample.note, estimated_from=sample.traced)
    return table


def _transitions_long(counts: np.ndarray, rows: list[int], columns: list[int], from_names: list[str],
                      to_names: list[str], src: np.ndarray, dst: np.ndarray, run: np.ndarray,
                      sample: _Sample | None, k: int) -> pd.DataFrame:
    """:func:`tool_transitions` as one row per transition seen, with intervals under a sample."""
    fi, ti = np.nonzero(counts[np.ix_(rows, columns)] > 0)
    out_of = counts[rows].sum(axis=1)
    value = counts[np.ix_(rows, columns)][fi, ti]
    table = pd.DataFrame({"from": [from_names[i] for i in fi], "to": [to_names[j] for j in ti],
                          "transitions": value, "share": value / out_of[fi]})
    if sample is not None and len(table):
        # Per run: its count of each transition seen (y) and of transitions out of its tool (x).
        cell_code = np.full((k + 2) ** 2, -1, dtype=np.int64)
        cell_code[np.asarray(rows)[fi] * (k + 2) + np.asarray(columns)[ti]] = np.arange(len(fi))
        cell = cell_code[src * (k + 2) + dst]
        n_cells, n_rows = len(fi), len(rows)
        pair, y = np.unique(run * n_cells + cell, return_counts=True)
        p_run, p_cell = pair // n_cells, pair % n_cells
        row_index = np.full(k + 2, -1, dtype=np.int64)
        row_index[rows] = np.arange(n_rows)
        from_row = row_index[src]
        rpair, x = np.unique(run * n_rows + from_row, return_counts=True)
        x_of_pair = x[np.searchsorted(rpair, p_run * n_rows + fi[p_cell])]
        r_run, r_row = rpair // n_rows, rpair % n_rows
        sy, syy = (sample.sums(p_run, p_cell, v, n_cells) for v in (y, y.astype(float) ** 2))
        sxy = sample.sums(p_run, p_cell, x_of_pair * y, n_cells)
        sx_rows, sxx_rows = (sample.sums(r_run, r_row, v, n_rows) for v in (x, x.astype(float) ** 2))
        total, total_se = sample.totals(sy, syy)
        share, share_se = sample.ratios(sy, syy, sx_rows[:, fi], sxx_rows[:, fi], sxy)
        seen = np.bincount(r_row, minlength=n_rows)  # sampled runs with a transition out of the row
        bounds = [share_interval(p, e, int(seen[i])) for p, e, i in zip(share, share_se, fi)]
        table["transitions_low"] = np.maximum(total - Z95 * total_se, 0.0)
        table["transitions_high"] = total + Z95 * total_se
        table["share_low"], table["share_high"] = [b[0] for b in bounds], [b[1] for b in bounds]
        table = table[["from", "to", "transitions", "transitions_low", "transitions_high", "share", "share_low",
                       "share_high"]]
    return table.sort_values(["transitions", "from", "to"], ascending=[False, True, True],
                             kind="stable").reset_index(drop=True)


# -- repeated calls ------------------------------------------------------------------------------

_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_SORTED = orjson.OPT_SORT_KEYS


def _encode(value: Any) -> str:
    try:  # orjson first (fast); what it refuses (NaN, huge ints, odd keys) goes to json
        return orjson.dumps(value, option=_SORTED).decode()
    except (TypeError, ValueError):
        pass
    try:
        return _ENCODE(value)
    except (TypeError, ValueError):
        return _ENCODE(str(value))


def canonical_json(value: Any) -> str:
    """One text per JSON value, whatever its key order (sorted keys, compact separators, as
    ``orjson`` writes it): a string is parsed first (tool-call input may be stored as JSON
    text); text that is not JSON counts as a JSON string."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except ValueError:
            try:
                value = json.loads(value)  # NaN, Infinity and huge integers orjson refuses
            except ValueError:
                pass
    elif value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        value = None
    return _encode(value)


def _canonical_ids(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """An integer per value, equal for equal canonical JSON, and the canonical texts. JSON text
    (the frames' Arrow strings) is dictionary-encoded first, so each distinct text is parsed
    once; other values (dicts, lists) are canonicalised once per repr."""
    by_text: dict[str, int] = {}
    texts: list[str] = []

    def intern(text: str) -> int:
        found = by_text.get(text)
        if found is None:
            found = by_text[text] = len(texts)
            texts.append(text)
        return found

    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        text = pa.array(values.array)
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        encoded = pc.dictionary_encode(text.cast(pa.large_string()) if text.type != pa.string() else text)
        mapping = np.array([intern(canonical_json(t)) for t in encoded.dictionary.to_pylist()] + [intern("null")],
                           dtype=np.int64)
        index = pc.fill_null(encoded.indices, len(mapping) - 1).to_numpy(zero_copy_only=False)
        return mapping[index.astype(np.int64)], texts
    by_repr: dict[tuple[bool, str], int] = {}
    ids = np.empty(len(values), dtype=np.int64)
    for k, value in enumerate(values.tolist()):
        key = (True, value) if isinstance(value, str) else (False, repr(value))
        found = by_repr.get(key)
        if found is None:
            found = by_repr[key] = intern(canonical_json(value))
        ids[k] = found
    return ids, texts


def repeated_calls(tool_calls: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run, tool and input that the run called more than once with the same input
    (compared as canonical JSON, whatever the key order; another input is not a repeat):
    ``agent_run_id``, ``agent_id``, ``name``, ``times``, ``input`` (canonical JSON) and, given
    ``runs``, the run's ``agent_name`` and ``total_cost``. Most repeated first.

    With a trace budget (``runs`` with ``trace_weight``, some other than 1) the rows can only
    be those of traced runs: each row then carries its run's ``trace_weight``, the runs of the
    window it stands for (0 for a run traced by hand, outside the random sample), so that
    ``(repeats.trace_weight * repeats.times).sum()`` is the Horvitz-Thompson estimate of the
    window's repeated calls; ``.attrs["note"]`` says ``"estimated from N traced runs"``. For
    the share of runs with a repeat, with its interval, see :func:`repeat_rates`.
    """
    require_columns(tool_calls, ["agent_run_id", "name", "input"], "repeated_calls")
    rcode, run_ids = _codes(tool_calls["agent_run_id"])
    ncode, names = _codes(tool_calls["name"])
    # Only a tool called twice in a run can repeat: canonicalise just those inputs.
    # A stable sort of the (run, tool) keys finds them; calls come grouped by run, so the sort
    # is nearly free (faster than hashing 4 million keys).
    pair = rcode * (len(names) + 1) + ncode
    order = np.argsort(pair, kind="stable")
    same = pair[order][1:] == pair[order][:-1]
    twice = np.zeros(len(pair), dtype=bool)
    twice[order[1:][same]] = True
    twice[order[:-1][same]] = True
    candidates = np.flatnonzero(twice & (rcode >= 0) & (ncode >= 0))
    ids, texts = _canonical_ids(tool_calls["input"].take(candidates))
    key = (rcode[candidates] * (len(names) + 1) + ncode[candidates]) * max(len(texts), 1) + ids
    group, _ = pd.factorize(key)
    times = np.bincount(group)
    first = np.full(len(times), len(tool_calls), dtype=np.int64)
    np.minimum.at(first, group, candidates)
    keep = np.flatnonzero(times > 1)
    first = first[keep]
    order = np.argsort(first, kind="stable")  # in the calls' order before the final sort
    keep, first = keep[order], first[order]
    at = np.searchsorted(candidates, first)
    grouped = pd.DataFrame({"r": rcode[first], "t": ncode[first], "size": times[keep], "min": first,
                            "input": [texts[i] for i in ids[at]]})
    agent = (tool_calls["agent_id"].take(grouped["min"].to_numpy()).astype(object).to_numpy()
             if "agent_id" in tool_calls else np.full(len(grouped), None, dtype=object))
    out = pd.DataFrame({
        "agent_run_id": run_ids.take(grouped["r"].to_numpy()).astype(str).to_numpy(dtype=object),
        "agent_id": agent,
        "name": names.take(grouped["t"].to_numpy()).astype(str).to_numpy(dtype=object),
        "times": grouped["size"].to_numpy(dtype=np.int64), "input": grouped["input"].to_numpy(dtype=object)})
    if runs is not None:
        require_columns(runs, ["id", "total_cost"], "repeated_calls")
        codes, unique = pd.factorize(out["agent_run_id"])  # a run may repeat several tools
        row = _run_positions(pd.Index(unique, dtype=object), runs)[codes] if len(out) else np.zeros(0, dtype=np.int64)
        found = row >= 0
        if "agent_name" in runs:
            name = np.full(len(out), None, dtype=object)
            name[found] = runs["agent_name"].take(row[found]).astype(object).to_numpy()
            out["agent_name"] = name
        cost = np.full(len(out), np.nan)
        cost[found] = _float(runs["total_cost"].take(row[found]))
        out["total_cost"] = cost
        sample = _trace_sample(runs)
        if sample is not None:
            weight = np.full(len(out), np.nan)
            weight[found] = sample.weight[row[found]]
            out["trace_weight"] = weight
            out.attrs.update(note=sample.note, estimated_from=sample.traced)
    return out.sort_values(["times", "agent_run_id", "name"], ascending=[False, True, True],
                           kind="stable").reset_index(drop=True)


def repeat_rates(tool_calls: pd.DataFrame, runs: pd.DataFrame | None = None, *,
                 repeats: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per agent: ``runs``, ``runs_with_repeat`` (a tool called again with the same input),
    ``share`` with a 95% Wilson interval (``ci_low``, ``ci_high``). Out of all of the agent's
    ``runs`` when given (by ``agent_name``), else out of the runs seen in the calls (by
    ``agent_id``). Pass ``repeats`` (from :func:`repeated_calls`) to skip recomputing them.

    With a trace budget (``runs`` with ``trace_weight``, some other than 1), the share is
    estimated for all of the agent's runs from its runs in the random trace sample
    (``trace_weight`` > 0; untraced runs and runs traced by hand do not count): a ratio
    estimate ``sum w * repeated / sum w``, ``runs_with_repeat`` is that share of ``runs`` (a
    float), ``traced_runs`` the agent's sampled runs, and the interval is Wilson's at Kish's
    effective sample size from the linearised stratified variance over the strata recovered
    from the weights (:func:`conduit_notebook.sampling.domain_ratios_from_sums`).
    ``.attrs["note"]`` says ``"estimated from N traced runs"``. With every trace present
    nothing changes.
    """
    repeats = repeated_calls(tool_calls) if repeats is None else repeats
    repeating = pa.array(pd.unique(repeats["agent_run_id"].astype(str)), type=pa.string())
    if runs is not None:
        require_columns(runs, ["id", "agent_id"], "repeat_rates")
        key = "agent_name" if "agent_name" in runs and runs["agent_name"].notna().any() else "agent_id"
        agent, agents = _codes(runs[key])
        ids = runs["id"]
    else:
        key = "agent_id"
        require_columns(tool_calls, ["agent_id"], "repeat_rates")
        rcode, run_ids = _codes(tool_calls["agent_run_id"])
        code, agents = _codes(tool_calls["agent_id"])
        first = np.full(len(run_ids), -1, dtype=np.int64)
        first[rcode[::-1]] = np.arange(len(rcode))[::-1]  # each run's first call
        seen = np.flatnonzero(first >= 0)
        agent, ids = code[first[seen]], pd.Series(run_ids.take(seen))
    has = pc.is_in(pa.array(ids.astype(str).array), value_set=repeating).to_numpy(zero_copy_only=False)
    labels = [*agents.astype(object), None]
    agent = np.where(agent < 0, len(labels) - 1, agent)
    sample = _trace_sample(runs)
    if sample is not None:
        return _repeat_rates_estimated(sample, agent, labels, has, key)
    total = np.bincount(agent, minlength=len(labels))
    with_repeat = np.bincount(agent[has], minlength=len(labels))
    keep = total > 0
    table = pd.DataFrame({"runs": total[keep], "runs_with_repeat": with_repeat[keep]},
                         index=pd.Index([label for label, k in zip(labels, keep) if k], name=key))
    table["share"] = table["runs_with_repeat"] / table["runs"]
    bounds = [wilson_interval(int(k), int(n)) for k, n in zip(table["runs_with_repeat"], table["runs"])]
    table["ci_low"], table["ci_high"] = [b[0] for b in bounds], [b[1] for b in bounds]
    return table.sort_values("share", ascending=False, kind="stable")


def _repeat_rates_estimated(sample: _Sample, agent: np.ndarray, labels: list[Any], has: np.ndarray,
                            key: str) -> pd.DataFrame:
    """:func:`repeat_rates` for all runs from the random trace sample: each agent is a domain
    (its runs' design groups), its share a ratio estimate with a design-based interval."""
    every = np.arange(len(agent))
    sy = sample.sums(every, agent, has.astype(float), len(labels))
    sx = sample.sums(every, agent, np.ones(len(agent)), len(labels))
    total = np.bincount(agent, minlength=len(labels))
    traced = np.bincount(agent[sample.sampled], minlength=len(labels))
    share, low, high = np.full(len(labels), np.nan), np.full(len(labels), np.nan), np.full(len(labels), np.nan)
    for a in np.flatnonzero(traced):
        groups = np.flatnonzero(sx[:, a] > 0)  # the agent's groups only: others' zeros are not its spread
        column = [a]
        p, se = sample.ratios(sy[:, column], sy[:, column], sx[:, column], sx[:, column], sy[:, column], groups)
        share[a] = p[0]
        low[a], high[a] = share_interval(float(p[0]), float(se[0]), int(traced[a]))
    keep = total > 0
    table = pd.DataFrame({"runs": total[keep], "traced_runs": traced[keep], "runs_with_repeat": (share * total)[keep],
                          "share": share[keep], "ci_low": low[keep], "ci_high": high[keep]},
                         index=pd.Index([label for label, k in zip(labels, keep) if k], name=key))
    table = table.sort_values("share", ascending=False, kind="stable")
    table.attrs.update(note=sample.note, estimated_from=sample.traced)
    return table


# -- conversations -------------------------------------------------------------------------------

def _nanoseconds(stamps: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(stamps).as_unit("ns").asi8


def _threads(runs: pd.DataFrame, key: str, what: str) -> pd.DataFrame:
    require_columns(runs, [key, "agent_id", "created_at", "disposition", "total_cost", "total_tokens"], what)
    keys = runs[key].astype("category")
    code = keys.cat.codes.to_numpy().astype(np.int64)
    ns = _nanoseconds(runs["created_at"])
    rows = np.flatnonzero(code >= 0)
    rows = rows[np.lexsort((ns[rows], code[rows]))]
    c = code[rows]
    starts = np.flatnonzero(np.concatenate([[True], c[1:] != c[:-1]])) if len(c) else np.zeros(0, dtype=np.int64)
    ends = np.concatenate([starts[1:], [len(c)]]).astype(np.int64) - 1 if len(c) else starts
    group = np.cumsum(np.concatenate([[False], c[1:] != c[:-1]])) if len(c) else c
    n = len(starts)
    cost = _float(runs["total_cost"])[rows]
    tokens = _float(runs["total_tokens"])[rows]
    agent = runs["agent_id"].astype("category").cat.codes.to_numpy().astype(np.int64)[rows]
    disposition = runs["disposition"].astype(object).to_numpy()[rows]
    has = pd.notna(disposition)
    pairs = pd.unique(group * (int(agent.max(initial=0)) + 2) + agent + 1) if n else np.zeros(0, dtype=np.int64)
    last = pd.Series(np.flatnonzero(has)).groupby(group[has]).last().reindex(np.arange(n))
    final = np.where(last.notna(), disposition[last.fillna(0).astype(np.int64).to_numpy()], None)
    with_cost = np.bincount(group[~np.isnan(cost)], minlength=n)
    with_tokens = np.bincount(group[~np.isnan(tokens)], minlength=n)
    first_ns, last_ns = ns[rows][starts], ns[rows][ends]
    table = pd.DataFrame({
        "runs": np.diff(np.concatenate([starts, [len(c)]])).astype(np.int64),
        "agents": np.bincount(pairs // (int(agent.max(initial=0)) + 2), minlength=n).astype(np.int64),
        "first_at": pd.to_datetime(first_ns, utc=True), "last_at": pd.to_datetime(last_ns, utc=True),
        "total_cost": np.where(with_cost > 0, np.bincount(group, weights=np.nan_to_num(cost), minlength=n), np.nan),
        "total_tokens": pd.array(np.where(with_tokens > 0, np.bincount(group, weights=np.nan_to_num(tokens),
                                                                        minlength=n), np.nan), dtype="Int64"),
        "escalated": np.bincount(group[disposition == "escalated"], minlength=n) > 0,
        "final_disposition": pd.Categorical(final),
        "_first": rows[starts],  # the row of each thread's first run, for the callers' extra columns
    }, index=pd.Index(np.asarray(keys.cat.categories.astype(str), dtype=object)[c[starts]] if n else [], name=key))
    return table.sort_values(["total_cost", "runs"], ascending=False, kind="stable", na_position="last")


def conversations(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per ``conversation_id``: ``runs``, ``agents`` (distinct), ``first_at``,
    ``last_at``, ``total_cost`` (USD; missing if no run has a cost), ``total_tokens``,
    ``escalated`` (any run escalated) and ``final_disposition`` (of the latest run that has
    one), with ``contact_id``. Most expensive first.

    >>> threads = conversations(runs)
    >>> threads["final_disposition"].eq("escalated").mean()    # threads ending with a person
    """
    table = _threads(runs, "conversation_id", "conversations")
    first = table.pop("_first").to_numpy()
    if "contact_id" in runs:
        table.insert(0, "contact_id", runs["contact_id"].astype(object).to_numpy()[first])
    return table


def contacts(runs: pd.DataFrame) -> pd.DataFrame:
    """The same as :func:`conversations` per ``contact_id``, with the number of
    ``conversations`` each contact had. Most expensive first."""
    table = _threads(runs, "contact_id", "contacts")
    first = table.pop("_first").to_numpy()
    if "conversation_id" in runs:
        contact, _ = _codes(runs["contact_id"])
        thread, threads = _codes(runs["conversation_id"])
        ok = (contact >= 0) & (thread >= 0)
        pairs = pd.unique(contact[ok] * (len(threads) + 1) + thread[ok])
        per_contact = np.bincount(pairs // (len(threads) + 1), minlength=int(contact.max(initial=-1)) + 1)
        table.insert(0, "conversations", per_contact[contact[first]].astype(np.int64) if len(first) else
                     np.zeros(0, dtype=np.int64))
    return table


# -- change points -------------------------------------------------------------------------------

def _bucket_values(runs: pd.DataFrame, metric: str, freq: str, by: str | None) -> pd.DataFrame:
    """Per group and time bucket: the metric's ``value``, the ``runs`` behind it (its weight)
    and the per-run variance within buckets (``within``)."""
    value, counted = _per_run(runs, metric)
    frame = pd.DataFrame({"t": runs["created_at"], "x": np.where(counted, value, np.nan)}, index=runs.index)
    keys: list[Any] = []
    if by is not None:
        frame["g"] = runs[by]
        keys.append("g")
    keys.append(pd.Grouper(key="t", freq=freq, label="left", closed="left"))
    frame = frame[counted & frame["t"].notna().to_numpy()]
    grouped = frame.groupby(keys, observed=True, sort=True)["x"]
    if metric in _QUANTILES:
        q = _QUANTILES[metric]
        table = pd.DataFrame({"value": grouped.quantile(q), "runs": grouped.count()})
        # A sample quantile's variance is q (1 - q) / (n f(x_q)^2): f from the spacing of the
        # group's quantiles either side of q gives the per-run variance.
        h = min(0.05, (1 - q) / 2, q / 2)
        whole = frame.groupby("g", observed=True)["x"] if by is not None else frame["x"]
        spread = whole.quantile(q + h) - whole.quantile(q - h)
        per_run = q * (1 - q) * (spread / (2 * h)) ** 2
        table["within"] = (per_run.reindex(table.index.get_level_values(0)).to_numpy() if by is not None
                           else float(per_run))
    else:
        table = pd.DataFrame({"value": grouped.mean(), "runs": grouped.count(), "within": grouped.var(ddof=0)})
    return table[table["runs"] > 0].reset_index()


def _xlogx(k: np.ndarray, m: np.ndarray) -> np.ndarray:
    """k * log(k / m), 0 where k is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(k > 0, k * np.log(np.where(k > 0, k, 1) / np.where(m > 0, m, 1)), 0.0)


def _segments(y: np.ndarray, w: np.ndarray, variance: float, penalty: float, min_size: int,
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


def _noise_variance(y: np.ndarray, w: np.ndarray, within: np.ndarray, rate: float | None) -> float:
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


def metric_levels(runs: pd.DataFrame, metric: str = "escalation_rate", *, freq: str = "D",
                  by: str | None = None, penalty: float | None = None, min_size: int = 3) -> pd.DataFrame:
    """The metric per ``freq`` bucket (and ``by`` group): ``at`` (bucket start), ``value``,
    ``runs`` behind it, and ``level``, the mean of the segment :func:`change_points` puts the
    bucket in; ``segment`` numbers the segments. Buckets without runs are left out."""
    require_runs(runs, "metric_levels")
    require_columns(runs, ["created_at", *([by] if by else [])], "metric_levels")
    if metric not in CHANGE_METRICS:
        raise ValueError(f"metric must be one of {', '.join(CHANGE_METRICS)}; got {metric!r}")
    try:
        pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        raise ValueError(f"freq must be a pandas frequency such as 'h', 'D', 'W'; got {freq!r}") from None
    if not isinstance(min_size, int) or min_size < 1:
        raise ValueError(f"min_size must be a whole number >= 1, got {min_size!r}")
    table = _bucket_values(runs, metric, freq, by).rename(columns={"t": "at", "g": by} if by else {"t": "at"})
    levels, segments = np.full(len(table), np.nan), np.zeros(len(table), dtype=np.int64)
    groups = table.groupby(by, observed=True, sort=False).indices if by else {None: np.arange(len(table))}
    for rows in groups.values():
        y, w = table["value"].to_numpy()[rows], table["runs"].to_numpy(dtype=float)[rows]
        within = table["within"].fillna(0).to_numpy()[rows]
        beta = 4 * math.log(max(len(y), 2)) if penalty is None else float(penalty)
        rate = float(np.sum(w * y) / np.sum(w)) if metric in _RATES else None
        fit, fit_within = y, within
        if metric in _QUANTILES and np.all(y > 0):
            # Sample quantiles are right-skewed: segment their logs (a step is then a ratio).
            fit, fit_within = np.log(y), within / (np.sum(w * y) / np.sum(w)) ** 2
        cuts = _segments(fit, w, _noise_variance(fit, w, fit_within, rate), beta, min_size, rate)
        bounds = [0, *cuts, len(y)]
        for k, (s, e) in enumerate(zip(bounds[:-1], bounds[1:])):
            levels[rows[s:e]] = np.sum(w[s:e] * y[s:e]) / np.sum(w[s:e])
            segments[rows[s:e]] = k
    table["level"], table["segment"] = levels, segments
    return table.drop(columns="within")


def change_points(runs: pd.DataFrame, metric: str = "escalation_rate", *, freq: str = "D",
                  by: str | None = None, penalty: float | None = None, min_size: int = 3) -> pd.DataFrame:
    """The times where ``metric`` (one of :data:`CHANGE_METRICS`) shifted to another level:
    columns ``at`` (start of the first bucket at the new level), ``before`` and ``after`` (the
    levels of the segments either side), ``change`` (after - before), and ``by``'s group.
    Nothing on a flat series.

    Method: penalised segmentation of the per-``freq`` series of the metric, solved exactly by
    PELT, with a binomial cost for rates and a Gaussian mean-shift cost for the others (on the
    log scale for duration quantiles, which are skewed), all
    weighted by the runs in each bucket; the noise (over-dispersion, for rates) is estimated
    robustly from successive differences (at least the runs' own variance). Each change point
    costs ``penalty`` = 4 log(n buckets): BIC's log n for each of its two parameters (the new
    level and where it starts) doubled, so that only about 2% of flat four-week daily series
    show a change (checked by simulation in the tests). Segments are at least ``min_size``
    buckets long, so a single odd day is not a change.

    >>> change_points(runs, metric="escalation_rate", by="agent_name")
    """
    levels = metric_levels(runs, metric, freq=freq, by=by, penalty=penalty, min_size=min_size)
    starts = levels["segment"].to_numpy() > 0
    starts &= levels["segment"].diff().fillna(0).to_numpy() != 0
    previous = levels["level"].shift(1)
    out = pd.DataFrame({**({by: levels[by]} if by else {}), "at": levels["at"],
                        "before": previous, "after": levels["level"]})[starts]
    out["change"] = out["after"] - out["before"]
    return out.reset_index(drop=True)
