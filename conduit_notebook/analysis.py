"""The questions users bring to the runs, as pure functions over the frames.

>>> from conduit_notebook import summarize, cost_breakdown, tool_stats, outliers, review_sample
>>> summarize(runs, by="agent_name")                 # runs, failures, latency, tokens, cost
>>> summarize(runs, by="disposition", freq="D")      # the same per day
>>> cost_breakdown(runs, by="agent_name")            # with the cost per resolved run
>>> tool_stats(calls, runs)                          # which tools, and what runs using them cost
>>> outliers(runs, "total_cost", n=10)               # the runs furthest out, to drill into
>>> review_sample(runs, n=60)                        # a stratified sample for disposition reviews

Every function takes frames with the columns of :func:`conduit_notebook.runs_frame` (or
:func:`conduit_notebook.tool_calls_frame`) and works on any of their subsets; none needs the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["cost_breakdown", "outliers", "review_sample", "summarize", "tool_stats"]

SUMMARY_COLUMNS = ["runs", "share", "failure_rate", "p50_duration_s", "p90_duration_s",
                   "p99_duration_s", "input_tokens", "output_tokens", "total_tokens",
                   "tokens_per_run", "total_cost", "cost_per_run"]
COST_COLUMNS = ["runs", "resolved_runs", "input_tokens", "output_tokens", "total_tokens",
                "output_token_share", "total_cost", "cost_share", "cost_per_run",
                "cost_per_resolved_run"]
_FINISHED = ("completed", "failed")


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise a ValueError naming the columns ``frame`` lacks for ``what``."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} takes a DataFrame (fetch_runs(...).runs), got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{what} needs the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
            "pass the runs frame from fetch_runs() or runs_frame()"
        )


def _keys(runs: pd.DataFrame, by: str | Sequence[str] | None, freq: str | None, what: str) -> list[Any]:
    """The groupby keys for ``by`` (columns) and ``freq`` (time buckets of created_at)."""
    by_list = [] if by is None else [by] if isinstance(by, str) else list(by)
    require_columns(runs, [*by_list, *(["created_at"] if freq else [])], what)
    keys: list[Any] = list(by_list)
    if freq is not None:
        try:
            pd.tseries.frequencies.to_offset(freq)
        except ValueError:
            raise ValueError(
                f"freq must be a pandas frequency such as 'h', 'D', 'W' or 'MS'; got {freq!r}"
            ) from None
        # Buckets are labelled by their start (pandas labels weeks and months by their end).
        keys.append(pd.Grouper(key="created_at", freq=freq, label="left", closed="left"))
    return keys


def _group_index(runs: pd.DataFrame, keys: list[Any]) -> tuple[np.ndarray, pd.Index]:
    """Group codes for each row (-1: not in a group) and the groups' index, without pandas'
    slower per-group machinery: everything below aggregates with bincount on the codes."""
    if not keys:
        return np.zeros(len(runs), dtype=np.intp), pd.Index(["all"], name=None)
    grouper = runs.groupby(keys, observed=True, sort=True, dropna=True)
    codes = grouper.ngroup().to_numpy()
    codes = np.where(np.isnan(codes.astype(float)), -1, codes).astype(np.intp)
    return codes, grouper.size().index


def _sum(values: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    ok = (codes >= 0) & ~np.isnan(values)
    return np.bincount(codes[ok], weights=values[ok], minlength=n)


def _count(mask: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    ok = (codes >= 0) & mask
    return np.bincount(codes[ok], minlength=n).astype(np.int64)


def _float(series: pd.Series) -> np.ndarray:
    return series.astype("float64").to_numpy(na_value=np.nan) if series.dtype != "float64" else series.to_numpy()


def _quantiles(values: np.ndarray, codes: np.ndarray, n: int, qs: Sequence[float]) -> np.ndarray:
    """Per-group quantiles (linear interpolation, as numpy and pandas), NaN for empty groups:
    one sort by (group, value), then positions, instead of a sort per group."""
    ok = (codes >= 0) & ~np.isnan(values)
    v, c = values[ok], codes[ok]
    order = np.lexsort((v, c))
    v, c = v[order], c[order]
    counts = np.bincount(c, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full((n, len(qs)), np.nan)
    has = counts > 0
    for j, q in enumerate(qs):
        pos = starts[has] + q * (counts[has] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, starts[has] + counts[has] - 1)
        frac = pos - lo
        out[has, j] = v[lo] + (v[hi] - v[lo]) * frac
    return out


def summarize(runs: pd.DataFrame, by: str | Sequence[str] | None = None, *, freq: str | None = None) -> pd.DataFrame:
    """One row per group (``by``: a column or a list of them) and/or per time bucket
    (``freq``: ``"h"``, ``"D"``, ``"W"``... on ``created_at``).

    Columns: ``runs``; ``share`` of all runs; ``failure_rate`` (failed among finished runs);
    ``p50/p90/p99_duration_s`` (of runs with a duration); ``input_tokens``, ``output_tokens``,
    ``total_tokens`` (sums); ``tokens_per_run`` (mean over runs with token usage);
    ``total_cost`` (USD) and ``cost_per_run`` (mean over runs with a cost). Counts, tokens and
    costs of the groups add up to the totals.

    >>> summarize(runs, by="agent_name")
    >>> summarize(runs, by=["agent_name", "disposition"], freq="W")
    """
    require_columns(runs, ["status", "duration_ms", "input_tokens", "output_tokens",
                           "total_tokens", "total_cost"], "summarize")
    keys = _keys(runs, by, freq, "summarize")
    codes, index = _group_index(runs, keys)
    n = len(index)
    status = runs["status"].astype(object).to_numpy()
    finished = _count(np.isin(status, _FINISHED), codes, n)
    failed = _count(status == "failed", codes, n)
    count = _count(np.ones(len(runs), dtype=bool), codes, n)
    seconds = _float(runs["duration_ms"]) / 1000.0
    tokens = {c: _float(runs[c]) for c in ("input_tokens", "output_tokens", "total_tokens")}
    cost = _float(runs["total_cost"])
    with np.errstate(invalid="ignore", divide="ignore"):
        with_tokens = _count(~np.isnan(tokens["total_tokens"]), codes, n)
        with_cost = _count(~np.isnan(cost), codes, n)
        q = _quantiles(seconds, codes, n, (0.5, 0.9, 0.99))
        total_cost = _sum(cost, codes, n)
        total_tokens = _sum(tokens["total_tokens"], codes, n)
        table = pd.DataFrame({
            "runs": count,
            "share": count / max(int((codes >= 0).sum()), 1),
            "failure_rate": np.where(finished > 0, failed / finished, np.nan),
            "p50_duration_s": q[:, 0],
            "p90_duration_s": q[:, 1],
            "p99_duration_s": q[:, 2],
            "input_tokens": _sum(tokens["input_tokens"], codes, n).astype(np.int64),
            "output_tokens": _sum(tokens["output_tokens"], codes, n).astype(np.int64),
            "total_tokens": total_tokens.astype(np.int64),
            "tokens_per_run": np.where(with_tokens > 0, total_tokens / with_tokens, np.nan),
            "total_cost": total_cost,
            "cost_per_run": np.where(with_cost > 0, total_cost / with_cost, np.nan),
        }, index=index)
    return table


def cost_breakdown(runs: pd.DataFrame, by: str | Sequence[str] | None = "agent_name", *, freq: str | None = None,
                   resolved: str | Sequence[str] = "resolved") -> pd.DataFrame:
    """Cost and tokens per group, with the number an operator cares about: the cost per
    resolved run (the cost of *all* the group's runs divided by its resolved runs).

    Columns: ``runs``, ``resolved_runs``, ``input_tokens``, ``output_tokens``, ``total_tokens``,
    ``output_token_share``, ``total_cost`` (USD), ``cost_share`` (of all cost),
    ``cost_per_run``, ``cost_per_resolved_run`` (NaN where nothing was resolved). ``resolved``
    names the disposition(s) that count as resolved. Sorted by cost, largest first, unless
    ``freq`` is given (then by time).
    """
    require_columns(runs, ["disposition", "input_tokens", "output_tokens", "total_tokens", "total_cost"],
                    "cost_breakdown")
    keys = _keys(runs, by, freq, "cost_breakdown")
    codes, index = _group_index(runs, keys)
    n = len(index)
    resolved_values = [resolved] if isinstance(resolved, str) else list(resolved)
    is_resolved = runs["disposition"].astype(object).isin(resolved_values).to_numpy()
    count = _count(np.ones(len(runs), dtype=bool), codes, n)
    resolved_count = _count(is_resolved, codes, n)
    cost = _sum(_float(runs["total_cost"]), codes, n)
    tokens = {c: _sum(_float(runs[c]), codes, n) for c in ("input_tokens", "output_tokens", "total_tokens")}
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame({
            "runs": count,
            "resolved_runs": resolved_count,
            "input_tokens": tokens["input_tokens"].astype(np.int64),
            "output_tokens": tokens["output_tokens"].astype(np.int64),
            "total_tokens": tokens["total_tokens"].astype(np.int64),
            "output_token_share": np.where(tokens["total_tokens"] > 0,
                                           tokens["output_tokens"] / tokens["total_tokens"], np.nan),
            "total_cost": cost,
            "cost_share": cost / cost.sum() if cost.sum() > 0 else np.full(n, np.nan),
            "cost_per_run": np.where(count > 0, cost / count, np.nan),
            "cost_per_resolved_run": np.where(resolved_count > 0, cost / resolved_count, np.nan),
        }, index=index)
    if freq is None and by is not None:
        table = table.sort_values("total_cost", ascending=False, kind="stable")
    return table


def tool_stats(tool_calls: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per tool: ``calls``, ``runs_using`` it, ``share_of_runs``, ``calls_per_run``.

    Given ``runs`` (the frame the calls came from), also how runs that used the tool compare
    with runs that did not: ``p50_duration_s_with`` / ``_without`` and ``cost_per_run_with`` /
    ``_without``, and the disposition mix of the runs using it (``disposition:<name>`` shares).
    ``share_of_runs`` is then out of all of ``runs``, else out of the runs seen in the calls.
    Sorted by calls, most first.
    """
    require_columns(tool_calls, ["agent_run_id", "name"], "tool_stats")
    names = tool_calls["name"].astype("category")
    tools = names.cat.categories
    tool_code = names.cat.codes.to_numpy()
    run_ids = tool_calls["agent_run_id"].astype("category")
    if runs is not None:
        require_columns(runs, ["id", "duration_ms", "total_cost", "disposition"], "tool_stats")
        universe = pd.Index(runs["id"].astype(object))
        run_code = universe.get_indexer(run_ids.cat.categories.astype(object))[run_ids.cat.codes.to_numpy()]
        run_code = np.where(run_ids.cat.codes.to_numpy() < 0, -1, run_code)
    else:
        universe = pd.Index(run_ids.cat.categories.astype(object))
        run_code = run_ids.cat.codes.to_numpy().astype(np.int64)
    ok = (tool_code >= 0) & (run_code >= 0)
    n_tools, n_runs = len(tools), len(universe)
    calls = np.bincount(tool_code[tool_code >= 0], minlength=n_tools)
    # (tool, run) pairs, deduplicated: which runs used which tool.
    pairs = np.unique(tool_code[ok].astype(np.int64) * max(n_runs, 1) + run_code[ok])
    pair_tool, pair_run = pairs // max(n_runs, 1), pairs % max(n_runs, 1)
    using = np.bincount(pair_tool, minlength=n_tools)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame({
            "calls": calls,
            "runs_using": using,
            "share_of_runs": using / n_runs if n_runs else np.nan,
            "calls_per_run": np.where(using > 0, calls / using, np.nan),
        }, index=pd.Index(tools.astype(object), name="tool"))
        if runs is not None:
            seconds = _float(runs["duration_ms"]) / 1000.0
            cost = _float(runs["total_cost"])
            p50_with, p50_without, cost_with, cost_without = [], [], [], []
            for t in range(n_tools):
                mask = np.zeros(n_runs, dtype=bool)
                mask[pair_run[pair_tool == t]] = True
                p50_with.append(np.nanmedian(seconds[mask]) if np.any(mask & ~np.isnan(seconds)) else np.nan)
                p50_without.append(np.nanmedian(seconds[~mask]) if np.any(~mask & ~np.isnan(seconds)) else np.nan)
                cost_with.append(np.nanmean(cost[mask]) if np.any(mask & ~np.isnan(cost)) else np.nan)
                cost_without.append(np.nanmean(cost[~mask]) if np.any(~mask & ~np.isnan(cost)) else np.nan)
            table["p50_duration_s_with"] = p50_with
            table["p50_duration_s_without"] = p50_without
            table["cost_per_run_with"] = cost_with
            table["cost_per_run_without"] = cost_without
            disposition = runs["disposition"].astype("category")
            d_code = disposition.cat.codes.to_numpy()
            mix = np.zeros((n_tools, len(disposition.cat.categories)))
            has = d_code[pair_run] >= 0
            np.add.at(mix, (pair_tool[has], d_code[pair_run][has]), 1)
            totals = mix.sum(axis=1, keepdims=True)
            shares = np.where(totals > 0, mix / np.where(totals > 0, totals, 1), np.nan)
            for j, name in enumerate(disposition.cat.categories):
                table[f"disposition:{name}"] = shares[:, j]
    return table.sort_values("calls", ascending=False, kind="stable")


def outliers(runs: pd.DataFrame, column: str = "duration_ms", *, n: int = 20, by: str | None = None,
             log: bool = True) -> pd.DataFrame:
    """The ``n`` runs furthest out on ``column`` (duration, cost, tokens...), for drilling down.

    Each run gets a robust ``score``: how many scaled median absolute deviations its value is
    above the median (of the log of the values when ``log``, as durations, tokens and costs are
    skewed), within its ``by`` group if given (a slow run for *its* agent), and its
    ``percentile``. Returns the runs (all columns) with the highest scores, highest first.
    """
    require_columns(runs, [column, *([by] if by else [])], "outliers")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a whole number >= 1, got {n!r}")
    values = _float(runs[column])
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(values > 0, np.log(values), np.nan)
    frame = pd.DataFrame({"v": values, "g": runs[by].astype(object).to_numpy() if by else 0}, index=runs.index)
    grouped = frame.groupby("g", dropna=False)["v"]
    median = grouped.transform("median")
    mad = (frame["v"] - median).abs().groupby(frame["g"], dropna=False).transform("median") * 1.4826
    score = (frame["v"] - median) / mad.where(mad > 0)
    percentile = runs[column].astype("float64").rank(pct=True) * 100
    out = runs.assign(score=score.to_numpy(), percentile=percentile.to_numpy())
    out = out[out["score"].notna()]
    return out.nlargest(n, "score")


def review_sample(runs: pd.DataFrame, n: int = 50, *, by: str | None = "disposition", seed: int = 0) -> pd.DataFrame:
    """A stratified, reproducible sample of runs for a disposition review.

    Runs with a value in ``by`` are split into strata; the sample takes the same number from
    each (all of a stratum smaller than its share, the rest spread over the larger ones), so
    that rare dispositions are reviewed too. The same ``runs``, ``n`` and ``seed`` give the same
    sample. ``by=None`` samples uniformly. Ordered by stratum, then newest first.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a whole number >= 1, got {n!r}")
    require_columns(runs, ["id", *([by] if by else [])], "review_sample")
    rng = np.random.default_rng(seed)
    if by is None:
        order = np.sort(rng.permutation(len(runs))[:n])
        return runs.iloc[order]
    pool = runs[runs[by].notna()]
    # Stable order before sampling, so that the same runs in another order give the same sample.
    pool = pool.sort_values("id", kind="stable")
    strata = {k: g for k, g in pool.groupby(pool[by].astype(object), sort=True)}
    sizes = {k: len(g) for k, g in strata.items()}
    quota = dict.fromkeys(sizes, 0)
    left = min(n, len(pool))
    while left > 0:
        open_ = [k for k in sizes if quota[k] < sizes[k]]
        each = max(1, left // len(open_))
        for k in open_:
            take = min(each, sizes[k] - quota[k], left)
            quota[k] += take
            left -= take
            if left == 0:
                break
    parts = []
    for k, group in strata.items():
        if quota[k]:
            chosen = rng.choice(len(group), size=quota[k], replace=False)
            part = group.iloc[np.sort(chosen)]
            if "created_at" in part:
                part = part.sort_values("created_at", ascending=False, kind="stable")
            parts.append(part)
    if not parts:
        return runs.iloc[0:0]
    return pd.concat(parts)
