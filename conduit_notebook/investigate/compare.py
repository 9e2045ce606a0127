"""Is a change real? :func:`compare` tests every metric between two sets of runs and
:func:`compare_tools` each tool's share of runs, with intervals and Holm's correction."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any, cast

import numpy as np
import pandas as pd

from ..analysis import require_columns
from ..lookup import run_positions
from ..stats import (
    chi_square_table,
    holm,
    inverted_p_value,
    newcombe_interval,
    percentile_interval,
    quantile_draws,
    ratio_t_draws,
    share_interval,
    studentized_interval,
    wilson_interval,
    z_value,
)
from .sample import Sample, trace_sample
from .values import QUANTILES, RATES, category_codes, float_values, per_run, resolved_list

COMPARE_COLUMNS = ["a", "b", "difference", "ci_low", "ci_high", "p_value", "p_holm", "significant", "method"]


def _z(alpha: float) -> float:
    return NormalDist().inv_cdf(1 - alpha / 2)


def _alpha(confidence: float, alpha: float | None) -> float:
    """The test level from ``confidence`` (the package's one confidence argument), or from the
    deprecated ``alpha=`` (kept one release, with a DeprecationWarning)."""
    if alpha is not None:
        warnings.warn("alpha= is deprecated and goes in the next release: pass confidence=1 - alpha "
                      "(e.g. confidence=0.95)", DeprecationWarning, stacklevel=3)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {alpha!r} (better: confidence=0.95)")
        confidence = 1 - alpha
    z_value(confidence)  # a ValueError naming confidence unless it is between 0 and 1
    return 1 - confidence


def _proportion_row(ka: int, na: int, kb: int, nb: int, alpha: float) -> dict[str, Any]:
    """Newcombe's hybrid score interval (Wilson on each side) for pb - pa and the p-value that
    inverts it (:func:`conduit_notebook.stats.inverted_p_value`): the two agree at any level."""
    if na == 0 or nb == 0:
        return {"a": ka / na if na else math.nan, "b": kb / nb if nb else math.nan}
    pa_, pb_ = ka / na, kb / nb

    def interval(z: float) -> tuple[float, float]:
        return newcombe_interval(pa_, wilson_interval(ka, na, z), pb_, wilson_interval(kb, nb, z))

    low, high = interval(_z(alpha))
    return {"a": pa_, "b": pb_, "difference": pb_ - pa_, "ci_low": low, "ci_high": high,
            "p_value": inverted_p_value(interval, pb_ - pa_), "method": "Newcombe-Wilson interval, p-value its inversion"}


def _bootstrap_row(a: float, b: float, draws: np.ndarray, alpha: float, method: str) -> dict[str, Any]:
    """Percentile interval of the bootstrap differences and the p-value that inverts it
    (:func:`conduit_notebook.stats.percentile_interval`: the interval excludes 0 exactly when
    p < alpha; the two had come from different procedures)."""
    row = {"a": a, "b": b, "difference": b - a, "method": f"{method}; percentile interval, p-value its inversion"}
    if np.count_nonzero(np.isfinite(draws)) < 10 or not (np.isfinite(a) and np.isfinite(b)):
        return row
    low, high, p = percentile_interval(b - a, draws, 1 - alpha)
    return {**row, "ci_low": low, "ci_high": high, "p_value": p}


def _few_runs(num: list[np.ndarray], name: str, top: int = 5) -> list[str]:
    """For tokens, cost and cost per resolved run: a note when the ``top`` runs hold more than
    half of side ``name``'s total (the mean, and its bootstrap, then rest on a few runs)."""
    notes = []
    for values in num:
        total = float(values.sum())
        share = float(np.sort(values)[-top:].sum()) / total if total > 0 else 0.0
        notes.append(f"; a few runs dominate: the top {top} of {name} hold {share:.0%} (interval not to be trusted)"
                     if share > 0.5 else "")
    return notes


def _mean_rows(inputs_a: tuple[list[np.ndarray], list[np.ndarray]], inputs_b: tuple[list[np.ndarray], list[np.ndarray]],
               alpha: float, n_boot: int, rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    """Tokens per run, cost per run and cost per resolved run: from one set of resamples (runs
    resampled within each side), the percentile interval of the difference and its studentized
    (bootstrap-t) interval, the t of a resample over the two sides' linearised standard errors;
    the row shows their hull and the larger of the two inverted p-values, so that interval and
    p-value still agree (benchmarks/sim_compare_means.py: the hull covers 89.5-98.5% on normal,
    skewed and heavy-tailed costs where either alone fell to 85.5-87.5%)."""
    ea, sa, dev_a, se_a = ratio_t_draws(*inputs_a, n_boot, rng)
    eb, sb, dev_b, se_b = ratio_t_draws(*inputs_b, n_boot, rng)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_draws = (dev_b - dev_a) / np.sqrt(se_a ** 2 + se_b ** 2)
    notes = [x + y for x, y in zip(_few_runs(inputs_a[0], "a"), _few_runs(inputs_b[0], "b"), strict=False)]
    rows = {}
    for j, metric in enumerate(("tokens_per_run", "cost_per_run", "cost_per_resolved_run")):
        a_, b_ = float(ea[j]), float(eb[j])
        d = b_ - a_
        p_low, p_high, p_p = percentile_interval(d, d + dev_b[j] - dev_a[j], 1 - alpha)
        t_low, t_high, t_p = studentized_interval(d, math.hypot(sa[j], sb[j]), t_draws[j], 1 - alpha)
        rows[metric] = {"a": a_, "b": b_, "difference": d, "ci_low": min(p_low, t_low), "ci_high": max(p_high, t_high),
                        "p_value": max(p_p, t_p),
                        "method": "bootstrap (runs resampled); hull of the percentile and studentized intervals, "
                                  "p-value the larger of their inversions" + notes[j]}
    return rows


def _mean_inputs(runs: pd.DataFrame, resolved: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    tokens, cost = float_values(runs["total_tokens"]), float_values(runs["total_cost"])
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
    shares = table / table.sum(axis=1, keepdims=True)
    return {**row, "difference": float(np.abs(shares[1] - shares[0]).sum() / 2), "p_value": chi_square_table(table)}


def family_rows(rows: Sequence[str], family: str | Sequence[str]) -> list[str]:
    """The rows of a :func:`compare` table in Holm's family: ``"distinct"`` one test per
    distinct question (every row but the ``disposition:<name>`` shares: escalated and resolved
    repeat ``escalation_rate`` and ``resolution_rate``, and all of them are the follow-ups of
    ``disposition_mix``, which stands for them), ``"all"`` every tested row, or the names given."""
    if isinstance(family, str):
        if family not in ("distinct", "all"):
            raise ValueError(f"family must be 'distinct', 'all' or a list of compare's rows; got {family!r}")
        return [r for r in rows if family == "all" or not str(r).startswith("disposition:")]
    unknown = [r for r in family if r not in rows]
    if unknown:
        raise ValueError(f"family names rows compare does not have: {unknown}; its rows are {list(rows)}")
    return [r for r in rows if r in family]


def _finish(rows: dict[str, dict[str, Any]], alpha: float, index_name: str,
            family: str | Sequence[str] = "all") -> pd.DataFrame:
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=COMPARE_COLUMNS)
    for column in COMPARE_COLUMNS[:7]:
        table[column] = table[column].astype("float64")
    members = table.index.isin(family_rows(list(table.index), family))
    table["p_holm"] = holm(list(table["p_value"].where(members)))
    table["significant"] = (table["p_holm"] < alpha).to_numpy()
    table.attrs["family"] = [r for r, m in zip(table.index, members, strict=False) if m and pd.notna(table["p_value"].loc[r])]
    table["method"] = table["method"].astype(object)
    table.index.name = index_name
    return table


def compare(a: pd.DataFrame, b: pd.DataFrame, *, resolved: str | Sequence[str] = "resolved",
            confidence: float = 0.95, family: str | Sequence[str] = "distinct", alpha: float | None = None,
            n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Is the change from runs ``a`` to runs ``b`` real? One row per metric (``runs``, the rates,
    duration quantiles, tokens and cost per run, cost per resolved run, ``disposition:<name>``
    shares and a ``disposition_mix`` row), with columns ``a``, ``b``, ``difference`` (b - a),
    a ``confidence`` interval ``ci_low``/``ci_high``, ``p_value``, ``p_holm`` and ``significant``
    (Holm-adjusted p below ``1 - confidence``, within ``family``), and the ``method`` used.
    ``alpha=`` (the old spelling, ``1 - confidence``) still works this release, with a
    DeprecationWarning.

    Holm's family (``.attrs["family"]`` lists it): by default ``"distinct"``, one test per
    distinct question: the three rates, two duration quantiles, three means and the
    disposition mix. The ``disposition:<name>`` shares are left out: escalated and resolved
    ask what ``escalation_rate`` and ``resolution_rate`` ask (counting them twice cost power:
    a 5-point escalation change at 300 runs a side was significant 6.5% of the time, 8.5% now,
    and 29% as the one question, ``family=["escalation_rate"]``; docs/compare.md), and the others are the mix's follow-ups: their ``p_value`` is
    shown, ``p_holm`` is NaN, read them when ``disposition_mix`` is significant.
    ``family="all"``: every row (as before); or a list of the rows you decided to test.

    Methods: Newcombe's hybrid score interval (Wilson on each side) for rates and shares, with
    the p-value that inverts it (the level at which the interval reaches 0; a pooled z-test
    disagreed with the interval on 0.07% of null rows, e.g. 0 of 20 against 4 of 20). Duration quantiles: a bootstrap (``n_boot`` draws, ``seed``:
    reproducible) taken exactly from the order-statistic distribution of a resample, its
    percentile interval and the p-value that inverts it (twice the share of draws beyond 0).
    Means (tokens per run, cost per run, cost per resolved run; ratios of sums over all the
    runs given, each run counting once): runs resampled within each side (above 5,000 runs a
    side, 5,000 of them, rescaled to n), and from the same resamples two intervals, the
    percentile one and the studentized bootstrap (bootstrap-t: the resample's difference over
    its own linearised standard error, Efron & Tibshirani 1993 ch. 12); the row shows their
    hull, and its p-value is the larger of the two inverted p-values, so that every bootstrap
    row's interval excludes 0 exactly when p < 1 - confidence. The hull covered at least 90.5%
    on normal, skewed, log-normal (sigma 1, 2) and Pareto costs at 30, 200 and 2,000 runs a
    side, where the percentile interval alone fell to 89.8% and the studentized one to 86.5%
    (benchmarks/sim_compare_means.py, 400 pairs each; docs/compare.md). A mean whose top 5
    runs hold more than half of a side's total says so in ``method``, "interval not to be
    trusted" (a heavy tail, mostly unseen; with such tails the type I error of a mean row is
    7-9.5%, as it was with the percentile interval alone). The mix row
    is a chi-square test; its ``difference`` is the total variation distance. ``runs`` is a
    count, not an estimate: no test. Intervals are not adjusted for multiplicity.

    >>> compare(runs[runs.created_at < cut], runs[runs.created_at >= cut])
    """
    for frame, name in ((a, "compare (a)"), (b, "compare (b)")):
        require_columns(frame, ["status", "disposition", "duration_ms", "total_tokens", "total_cost"], name)
    alpha = _alpha(confidence, alpha)
    if not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f"n_boot must be a whole number >= 100, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    resolved = resolved_list(resolved)
    rows: dict[str, dict[str, Any]] = {
        "runs": {"a": len(a), "b": len(b), "difference": len(b) - len(a), "method": "count (no test)"}}
    for metric in RATES:
        (xa, wa), (xb, wb) = per_run(a, metric, resolved), per_run(b, metric, resolved)
        rows[metric] = _proportion_row(int(xa[wa].sum()), int(wa.sum()), int(xb[wb].sum()), int(wb.sum()), alpha)
    for metric, q in list(QUANTILES.items())[:2]:
        (va, wa), (vb, wb) = per_run(a, metric), per_run(b, metric)
        ea, da = quantile_draws(va[wa], q, n_boot, rng)
        eb, db = quantile_draws(vb[wb], q, n_boot, rng)
        rows[metric] = _bootstrap_row(ea, eb, db - da, alpha, "bootstrap (order statistics)")
    rows.update(_mean_rows(_mean_inputs(a, resolved), _mean_inputs(b, resolved), alpha, n_boot, rng))
    da_, db_ = a["disposition"].astype(object), b["disposition"].astype(object)
    names = sorted(set(da_.dropna()) | set(db_.dropna()), key=str)
    ca = da_.value_counts().reindex(names, fill_value=0).to_numpy()
    cb = db_.value_counts().reindex(names, fill_value=0).to_numpy()
    for name, ka, kb in zip(names, ca, cb, strict=False):
        rows[f"disposition:{name}"] = _proportion_row(int(ka), int(ca.sum()), int(kb), int(cb.sum()), alpha)
    rows["disposition_mix"] = _mix_row(ca, cb)
    return _finish(rows, alpha, "metric", family)


def compare_tools(calls_a: pd.DataFrame, calls_b: pd.DataFrame, runs_a: pd.DataFrame | None = None,
                  runs_b: pd.DataFrame | None = None, *, confidence: float = 0.95,
                  alpha: float | None = None) -> pd.DataFrame:
    """Tool usage in ``a`` against ``b``: per tool, the share of runs that called it (``a``,
    ``b``), its difference with a Newcombe-Wilson interval, the ``p_value`` that inverts it, Holm's
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
    the p-value inverts that interval (the level at which it reaches 0), so the two agree. It
    answers how the two windows'
    shares would compare had every run been traced. ``.attrs["note"]`` says how many traced
    runs the estimate rests on. With every trace present nothing changes. ``confidence``: of the
    intervals, and ``1 - confidence`` the level of ``significant`` (``alpha=``: deprecated).
    """
    alpha = _alpha(confidence, alpha)
    rows, extra = {}, {}
    sides = []
    for calls, runs, name in ((calls_a, runs_a, "a"), (calls_b, runs_b, "b")):
        require_columns(calls, ["agent_run_id", "name"], f"compare_tools (calls_{name})")
        if runs is not None:
            require_columns(runs, ["id"], f"compare_tools (runs_{name})")
        sample = trace_sample(runs)
        if sample is not None:
            sides.append(_sampled_usage(calls, cast(pd.DataFrame, runs), sample))
            continue
        using, calls_per_tool, seen = _tool_usage(calls)
        sides.append(_ToolSide(using, calls_per_tool, len(runs) if runs is not None else seen))
    tools = sorted(set(sides[0].using.index) | set(sides[1].using.index), key=str)
    sampled = any(side.sample is not None for side in sides)
    for tool in tools:
        (ua, ca, na), (ub, cb, nb) = [(s.using.get(tool, 0), s.calls.get(tool, 0), s.n) for s in sides]
        if sampled:
            rows[tool] = _design_proportion_row(sides[0], sides[1], tool, _z(alpha))
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
        told = [(name, side.sample.traced) for name, side in zip("ab", sides, strict=False) if side.sample is not None]
        note = "estimated from " + " and ".join(f"{n:,} ({name})" for name, n in told) + " traced runs"
        if len(told) == 1:
            note += f"; {'b' if told[0][0] == 'a' else 'a'}: every trace"
        table.attrs.update(note=note, estimated_from=sum(n for _, n in told))
    return table


class _ToolSide:
    """One side of :func:`compare_tools`: per tool the runs using it and its calls (estimated
    totals for a sampled side), the runs, and for a sampled side its design's shares."""

    def __init__(self, using: pd.Series, calls: pd.Series, n: float, sample: Sample | None = None,
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
        p, se = ((float(self.shares["share"].loc[tool]), float(self.shares["se"].loc[tool]))
                 if tool in self.shares.index else (0.0, 0.0))
        return (p, se, *share_interval(p, se, self.sample.traced, z))


def _sampled_usage(calls: pd.DataFrame, runs: pd.DataFrame, sample: Sample) -> _ToolSide:
    """Per tool, from the random trace sample: the estimated runs using it and calls
    (Horvitz-Thompson) and its share of runs with its design-based standard error."""
    rcode, run_ids = category_codes(calls["agent_run_id"])
    ncode, names = category_codes(calls["name"])
    # Only the ids the calls use (a filtered frame keeps every category), among sampled runs only.
    used = np.flatnonzero(np.bincount(rcode[rcode >= 0], minlength=len(run_ids)))
    position = np.full(len(run_ids), -1, dtype=np.int64)
    position[used] = run_positions(run_ids.take(used), runs, np.flatnonzero(sample.sampled))
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


def _design_proportion_row(a: _ToolSide, b: _ToolSide, tool: str, z: float) -> dict[str, Any]:
    """:func:`_proportion_row` for shares of which at least one is estimated from a trace sample:
    Newcombe's hybrid of Wilson intervals (a sampled side's at Kish's effective sample size),
    and the p-value that inverts it (:func:`conduit_notebook.stats.inverted_p_value`)."""

    def interval(zz: float) -> tuple[float, float]:
        (pa_, _, la, ua), (pb_, _, lb, ub) = a.share(tool, zz), b.share(tool, zz)
        return newcombe_interval(pa_, (la, ua), pb_, (lb, ub))

    pa_, pb_ = a.share(tool, z)[0], b.share(tool, z)[0]
    low, high = interval(z)
    return {"a": pa_, "b": pb_, "difference": pb_ - pa_, "ci_low": low, "ci_high": high,
            "p_value": inverted_p_value(interval, pb_ - pa_),
            "method": "stratified ratio estimate; Newcombe-Wilson at Kish's effective n, p-value its inversion"}


def _tool_usage(calls: pd.DataFrame) -> tuple[pd.Series, pd.Series, int]:
    """Per tool name: the runs using it and its calls; and the number of runs seen."""
    rcode, _ = category_codes(calls["agent_run_id"])
    ncode, names = category_codes(calls["name"])
    ok = (rcode >= 0) & (ncode >= 0)
    rcode, ncode = rcode[ok], ncode[ok]
    k = max(len(names), 1)
    pairs = pd.unique(rcode * k + ncode)  # hashing: numpy 2.4's np.unique is slow here
    index = pd.Index(names.astype(str), name="tool")
    using = pd.Series(np.bincount(pairs % k, minlength=len(names)), index=index)
    count = pd.Series(np.bincount(ncode, minlength=len(names)), index=index)
    seen = int(np.count_nonzero(np.bincount(rcode))) if len(rcode) else 0
    return using[count > 0], count[count > 0], seen
