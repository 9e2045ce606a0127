"""The questions users bring to the runs, as pure functions over the frames.

>>> from conduit_notebook import summarize, cost_breakdown, tool_stats, outliers, review_sample
>>> summarize(runs, by="agent_name")                 # runs, failures, latency, tokens, cost
>>> summarize(runs, by="disposition", freq="D")      # the same per day
>>> cost_breakdown(runs, by="agent_name")            # with the cost per resolved run
>>> tool_stats(calls, runs)                          # which tools, and what runs using them cost
>>> outliers(runs, column="total_cost", n=10)               # the runs furthest out, to drill into
>>> review_sample(runs, n=60)                        # a stratified sample for disposition reviews
>>> review_sample(runs, margin=0.05)                 # sized for a ±5-point overall accuracy

Every function takes frames with the columns of :func:`conduit_notebook.runs_frame` (or
:func:`conduit_notebook.tool_calls_frame`) and works on any of their subsets; none needs the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import metrics
from .checks import float_values, require_columns, require_runs
from .deprecation import keyword_only_after, renamed_arguments
from .frames import agent_labels
from .review import review_plan
from .sampling import id_keys
from .schema import FINISHED_STATUSES
from .times import parse_time
from .tools import tool_stats, tool_stats_estimated

__all__ = ["cost_breakdown", "filter_runs", "outliers", "review_sample", "summarize", "tool_stats",
           "tool_stats_estimated"]

SUMMARY_COLUMNS = ["runs", "share", "failure_rate", "p50_duration_s", "p90_duration_s",
                   "p99_duration_s", "input_tokens", "output_tokens", "total_tokens",
                   "tokens_per_run", "total_cost", "cost_per_run"]


def in_time_zone(data: Any, tz: Any) -> Any:
    """``created_at`` (of a runs frame, or a Series of times) converted to ``tz`` (a name such as
    ``"Europe/Paris"``), so that day buckets are that place's days; ``tz=None`` leaves it in UTC.
    Naive times are read as UTC."""
    if tz is None:
        return data
    try:
        pd.Timestamp("2026-01-01", tz=tz)
    except Exception:  # noqa: BLE001 - zoneinfo, pytz and dateutil raise different errors
        raise ValueError(f"tz must be a time zone name such as 'Europe/Paris' or 'UTC'; got {tz!r}") from None
    if isinstance(data, pd.Series):
        times = data if data.dt.tz is not None else data.dt.tz_localize("UTC")
        return times.dt.tz_convert(tz)
    return data.assign(created_at=in_time_zone(data["created_at"], tz))


def distinct_agent_names(runs: pd.DataFrame, by: str | Sequence[str] | None) -> pd.DataFrame:
    """``runs`` whose ``agent_name`` tells apart agents that share a name (the name and the end of
    the id, :func:`conduit_notebook.frames.agent_labels`) when ``by`` groups by it: groups are
    agents, not names. Unchanged when no two agents share a name."""
    by_list = [] if by is None else [by] if isinstance(by, str) else list(by)
    if "agent_name" not in by_list or "agent_id" not in runs or "agent_name" not in runs:
        return runs
    pairs = runs[["agent_id", "agent_name"]].astype(object).dropna().drop_duplicates()
    if not pairs["agent_name"].duplicated().any():
        return runs
    labels = agent_labels(dict(zip(pairs["agent_id"], pairs["agent_name"], strict=False)))
    named = runs["agent_id"].astype(object).map(labels).where(runs["agent_name"].notna(), None)
    return runs.assign(agent_name=pd.Categorical(named))


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
    # Only the key columns: grouping the whole frame would sort every one of its columns.
    columns = list(dict.fromkeys(k.key if isinstance(k, pd.Grouper) else k for k in keys))
    grouper = runs[columns].groupby(keys, observed=True, sort=True, dropna=True)
    codes = grouper.ngroup().to_numpy()
    codes = np.where(np.isnan(codes.astype(float)), -1, codes).astype(np.intp)
    return codes, grouper.size().index


def _sum(values: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    ok = (codes >= 0) & ~np.isnan(values)
    return np.bincount(codes[ok], weights=values[ok], minlength=n)


def _count(mask: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    ok = (codes >= 0) & mask
    return np.bincount(codes[ok], minlength=n).astype(np.int64)


def _sort_within_groups(values: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    """``values`` ordered by group code, then by value. With codes that fit in 16 bits: a
    stable radix sort of the codes puts each group's values together, then each group is sorted
    in place (SIMD sorts of plain floats), about 4x faster than ``np.lexsort`` on a million
    rows; else one argsort of the values, then a stable sort of their codes."""
    if n <= 1:
        return np.sort(values)
    if n <= np.iinfo(np.int16).max:
        by_group = values[np.argsort(codes.astype(np.int16), kind="stable")]
        start = 0
        for end in np.cumsum(np.bincount(codes, minlength=n)).tolist():
            by_group[start:end].sort()
            start = end
        return by_group
    order = np.argsort(values)
    return values[order[np.argsort(codes[order], kind="stable")]]


def _in(series: pd.Series, values: Sequence[Any]) -> np.ndarray:
    """Which rows hold one of ``values``: on a categorical, a test of its categories and a
    lookup by code, with no Python object per row."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = series.cat.categories
        hit = np.append(categories.astype(object).isin(list(values)), False)  # code -1: missing
        return hit[series.cat.codes.to_numpy()]
    return series.astype(object).isin(list(values)).to_numpy()


def _quantiles(values: np.ndarray, codes: np.ndarray, n: int, qs: Sequence[float]) -> np.ndarray:
    """Per-group quantiles (linear interpolation, as numpy and pandas), NaN for empty groups:
    one sort by (group, value), then positions, instead of a sort per group."""
    ok = (codes >= 0) & ~np.isnan(values)
    v, c = values[ok], codes[ok]
    v = _sort_within_groups(v, c, n)
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


__all__ += ["float_values", "require_columns", "require_runs"]  # where the plots and investigations took them


@keyword_only_after("runs", moved=("by",))
def summarize(runs: pd.DataFrame, *, by: str | Sequence[str] | None = None, freq: str | None = None,
              tz: str | None = None) -> pd.DataFrame:
    """One row per group (``by``: a column or a list of them) and/or per time bucket
    (``freq``: ``"h"``, ``"D"``, ``"W"``... on ``created_at``; days in UTC, or in ``tz`` such as
    ``"America/New_York"`` for the property's local days).

    Columns: ``runs``; ``share`` of all runs; ``failure_rate`` (failed among finished runs);
    ``p50/p90/p99_duration_s`` (of runs with a duration); ``input_tokens``, ``output_tokens``,
    ``total_tokens`` (sums); ``tokens_per_run`` (mean over runs with token usage);
    ``total_cost`` (USD) and ``cost_per_run`` (mean over runs with a cost). Every name is
    defined once, in :data:`conduit_notebook.metrics.GLOSSARY`. Counts, tokens and costs of the
    groups add up to the totals.

    >>> summarize(runs, by="agent_name")
    >>> summarize(runs, by=["agent_name", "disposition"], freq="W")
    """
    require_columns(runs, ["status", "duration_ms", "input_tokens", "output_tokens",
                           "total_tokens", "total_cost"], "summarize")
    runs = distinct_agent_names(runs, by)
    keys = _keys(runs, by, freq, "summarize")
    if freq is not None:
        runs = in_time_zone(runs, tz)
    codes, index = _group_index(runs, keys)
    n = len(index)
    finished = _count(_in(runs["status"], FINISHED_STATUSES), codes, n)
    failed = _count(_in(runs["status"], ["failed"]), codes, n)
    count = _count(np.ones(len(runs), dtype=bool), codes, n)
    seconds = float_values(runs["duration_ms"]) / 1000.0
    tokens = {c: float_values(runs[c]) for c in ("input_tokens", "output_tokens", "total_tokens")}
    cost = float_values(runs["total_cost"])
    with np.errstate(invalid="ignore", divide="ignore"):
        with_tokens = _count(~np.isnan(tokens["total_tokens"]), codes, n)
        with_cost = _count(~np.isnan(cost), codes, n)
        q = _quantiles(seconds, codes, n, (0.5, 0.9, 0.99))
        total_cost = _sum(cost, codes, n)
        total_tokens = _sum(tokens["total_tokens"], codes, n)
        table = pd.DataFrame({
            "runs": count,
            "share": metrics.share(count, int((codes >= 0).sum())),
            "failure_rate": metrics.failure_rate(failed, finished),
            "p50_duration_s": q[:, 0],
            "p90_duration_s": q[:, 1],
            "p99_duration_s": q[:, 2],
            "input_tokens": _sum(tokens["input_tokens"], codes, n).astype(np.int64),
            "output_tokens": _sum(tokens["output_tokens"], codes, n).astype(np.int64),
            "total_tokens": total_tokens.astype(np.int64),
            "tokens_per_run": metrics.tokens_per_run(total_tokens, with_tokens),
            "total_cost": total_cost,
            "cost_per_run": metrics.cost_per_run(total_cost, with_cost),
        }, index=index)
    return table


@keyword_only_after("runs", moved=("by",))
def cost_breakdown(runs: pd.DataFrame, *, by: str | Sequence[str] | None = "agent_name", freq: str | None = None,
                   tz: str | None = None, resolved: str | Sequence[str] = "resolved") -> pd.DataFrame:
    """Cost and tokens per group, with the number an operator cares about: the cost per
    resolved run (the cost of *all* the group's runs divided by its resolved runs).

    Columns: ``runs``, ``resolved_runs``, ``input_tokens``, ``output_tokens``, ``total_tokens``,
    ``output_token_share``, ``total_cost`` (USD), ``cost_share`` (of all cost),
    ``cost_per_run`` (over runs with a cost, as in :func:`summarize`), ``cost_per_resolved_run``
    (NaN where nothing was resolved); see :data:`conduit_notebook.metrics.GLOSSARY`. ``resolved``
    names the disposition(s) that count as resolved. Sorted by cost, largest first, unless
    ``freq`` is given (then by time; buckets in UTC or in ``tz``, as in :func:`summarize`).
    """
    require_columns(runs, ["disposition", "input_tokens", "output_tokens", "total_tokens", "total_cost"],
                    "cost_breakdown")
    runs = distinct_agent_names(runs, by)
    keys = _keys(runs, by, freq, "cost_breakdown")
    if freq is not None:
        runs = in_time_zone(runs, tz)
    codes, index = _group_index(runs, keys)
    n = len(index)
    resolved_values = [resolved] if isinstance(resolved, str) else list(resolved)
    is_resolved = _in(runs["disposition"], resolved_values)
    count = _count(np.ones(len(runs), dtype=bool), codes, n)
    resolved_count = _count(is_resolved, codes, n)
    costs = float_values(runs["total_cost"])
    with_cost = _count(~np.isnan(costs), codes, n)
    cost = _sum(costs, codes, n)
    tokens = {c: _sum(float_values(runs[c]), codes, n) for c in ("input_tokens", "output_tokens", "total_tokens")}
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame({
            "runs": count,
            "resolved_runs": resolved_count,
            "input_tokens": tokens["input_tokens"].astype(np.int64),
            "output_tokens": tokens["output_tokens"].astype(np.int64),
            "total_tokens": tokens["total_tokens"].astype(np.int64),
            "output_token_share": metrics.share(tokens["output_tokens"], tokens["total_tokens"]),
            "total_cost": cost,
            "cost_share": metrics.share(cost, np.full(n, cost.sum())),
            "cost_per_run": metrics.cost_per_run(cost, with_cost),
            "cost_per_resolved_run": metrics.cost_per_resolved_run(cost, resolved_count),
        }, index=index)
    if freq is None and by is not None:
        table = table.sort_values("total_cost", ascending=False, kind="stable")
    return table


@keyword_only_after("runs", moved=("column",))
def outliers(runs: pd.DataFrame, *, column: str = "duration_ms", n: int = 20, by: str | None = None,
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
    raw = float_values(runs[column])
    values = raw
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(raw > 0, np.log(raw), np.nan)
    # Group codes, with runs lacking a `by` value as a group of their own.
    codes = pd.factorize(runs[by], use_na_sentinel=False)[0] if by else np.zeros(len(runs), dtype=np.intp)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    with np.errstate(invalid="ignore"):
        deviation = values - _quantiles(values, codes, n_groups, (0.5,))[:, 0][codes]
        mad = _quantiles(np.abs(deviation), codes, n_groups, (0.5,))[:, 0] * 1.4826
        score = deviation / np.where(mad > 0, mad, np.nan)[codes]
    top = _top_positions(score, n)
    # The rank of only the chosen values among all (as ``rank(pct=True)``: ties averaged).
    present = np.sort(raw[~np.isnan(raw)])
    chosen = raw[top]
    below = np.searchsorted(present, chosen, side="left")
    through = np.searchsorted(present, chosen, side="right")
    percentile = np.where(np.isnan(chosen), np.nan, (below + 1 + through) / 2 / max(len(present), 1) * 100)
    return runs.iloc[top].assign(score=score[top], percentile=percentile)


def _top_positions(score: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` highest non-NaN scores, highest first, ties in row order (as
    ``nlargest``), without sorting them all."""
    candidates = np.flatnonzero(~np.isnan(score))
    if len(candidates) > n:
        # Every score above the n-th highest, and of those equal to it the first in row order.
        threshold = np.partition(score[candidates], len(candidates) - n)[len(candidates) - n]
        above = candidates[score[candidates] > threshold]
        equal = candidates[score[candidates] == threshold][:n - len(above)]
        candidates = np.concatenate([above, equal])
    return candidates[np.lexsort((candidates, -score[candidates]))]


def stratum_labels(runs: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One label per run for strata crossed over ``columns`` ("resolved | came_back_escalated");
    missing when any of them is missing."""
    values = [runs[c].astype(object) for c in columns]
    missing = pd.concat([v.isna() for v in values], axis=1).any(axis=1)
    label = values[0].astype(str)
    for v in values[1:]:
        label = label + " | " + v.astype(str)
    return label.where(~missing, None).astype(object)


@keyword_only_after("runs", moved=("n",))
def review_sample(runs: pd.DataFrame, *, n: int | None = None, margin: float | None = None,
                  confidence: float = 0.95, by: str | list[str] | None = "disposition", seed: int = 0,
                  expected: float = 0.8, expected_agreement: float | None = None) -> pd.DataFrame:
    """A stratified, reproducible sample of runs for a disposition review.

    Runs with a value in ``by`` are split into strata (``by=None``: one stratum; a list of columns:
    their combinations, e.g. ``by=["disposition", "outcome"]`` with the ``outcome`` of
    :func:`outcomes` to over-sample resolutions that did not hold; then weight back with
    ``review_report(results, runs, strata=["outcome"])``). With ``n``
    (default 50), each stratum gets the same number of runs (all of a smaller one), so that rare
    dispositions are reviewed too. With ``margin`` instead (e.g. ``0.05``), the size and
    allocation are chosen so that the overall accuracy's 95% interval (``confidence``) is about
    ±margin: Neyman allocation with a floor per stratum (see :func:`review_plan`).
    ``review_report(results, runs)`` weights the strata back to the runs either way. With a judge
    on every run, ``expected_agreement=`` (its agreement with people, from a pilot) sizes the
    review for the judge-assisted interval (see :func:`review_plan`).

    The plan is ``sample.attrs["review_plan"]`` (population and sample size per stratum, the
    expected half-width). The runs are interleaved across strata (each stratum's first run comes
    first, then in proportion to the plan), so stopping early still covers every stratum. The same
    runs in any order, with the same ``n``/``margin`` and ``seed``, give the same sample.
    """
    if isinstance(by, (list, tuple)):
        # Strata crossed over several columns (e.g. ["disposition", "outcome"]): each combination
        # is a stratum, so a rare one (resolutions that did not hold) is over-sampled; pass the
        # extra columns to review_report(strata=...) to weight them back.
        require_columns(runs, ["id", *by], "review_sample")
        sample = review_sample(runs.assign(review_stratum=stratum_labels(runs, list(by))), n=n, margin=margin,
                               confidence=confidence, by="review_stratum", seed=seed, expected=expected,
                               expected_agreement=expected_agreement)
        out = sample.drop(columns="review_stratum")
        out.attrs.update(sample.attrs)
        return out
    plan = review_plan(runs, n=n, margin=margin, confidence=confidence, by=by, expected=expected,
                       expected_agreement=expected_agreement)
    require_columns(runs, ["id", *([by] if by else [])], "review_sample")
    if not len(runs):
        return runs.iloc[0:0]
    keys = id_keys(runs["id"], seed)
    quotas = plan["sample"].drop("(all)")
    if by is None:
        codes: np.ndarray = np.zeros(len(runs), dtype=np.int64)
        labels = list(quotas.index)
    else:
        strata = runs[by].astype("category")
        labels = [str(c) for c in strata.cat.categories]
        codes = strata.cat.codes.to_numpy()
    picked, rank, size = [], [], []
    for k, label in enumerate(labels):
        quota = int(quotas.get(label, 0))
        if quota == 0:
            continue
        members = np.flatnonzero(codes == k)
        # The quota smallest keyed hashes of the ids: a random draw that ignores the frame's order.
        chosen = members[np.argpartition(keys[members], quota - 1)[:quota]] if quota < len(members) else members
        chosen = chosen[np.argsort(keys[chosen], kind="stable")]
        picked.append(chosen)
        rank.append(np.arange(quota) / quota)
        size.append(np.full(quota, quota))
    if not picked:
        return runs.iloc[0:0]
    positions, ranks, sizes = np.concatenate(picked), np.concatenate(rank), np.concatenate(size)
    # Interleave: by the share of its stratum's quota done, smaller strata first on a tie.
    order = np.lexsort((keys[positions], sizes, ranks))
    sample = runs.iloc[positions[order]]
    sample.attrs["review_plan"] = plan
    return sample


@renamed_arguments(start="since", end="until")
def filter_runs(
    runs: pd.DataFrame,
    *,
    agents: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    dispositions: Sequence[str] | None = None,
    reasons: Sequence[str] | None = None,
    since: Any = None,
    until: Any = None,
    duration_s: tuple[float | None, float | None] | None = None,
    text: str | None = None,
) -> pd.DataFrame:
    """The runs matching every given filter (None or empty: no filter on that column).

    ``agents`` match ``agent_name`` or ``agent_id``; ``since``/``until`` bound ``created_at``,
    both included, read as :func:`fetch_runs` reads ``since``/``until``: a whole day (a date,
    or a string such as ``"2026-11-28"``) from its first to its last moment, a datetime or
    timestamp string (naive means UTC) as that instant; ``duration_s`` is (low, high) in seconds; ``text`` is searched, case-insensitively,
    in ``response``, ``reflection`` and ``error``.
    """
    mask = np.ones(len(runs), dtype=bool)

    def among(column: str, values: Sequence[str] | None) -> None:
        nonlocal mask
        if values:
            mask &= _in(runs[column], values)

    if agents:
        mask &= _in(runs["agent_name"], agents) | _in(runs["agent_id"], agents)
    among("status", statuses)
    among("disposition", dispositions)
    among("disposition_reason", reasons)
    created = runs["created_at"]
    low = parse_time(since, "since")
    high = parse_time(until, "until", end_of_day=True)  # a whole day, as a date or a string, to its last moment
    if low is not None and high is not None and low > high:
        raise ValueError(f"since ({low}) is after until ({high}): no run could match; swap them?")
    if low is not None:
        mask &= (created >= low).fillna(False).to_numpy()
    if high is not None:
        mask &= (created <= high).fillna(False).to_numpy()
    if duration_s is not None:
        shortest, longest = duration_s
        seconds = float_values(runs["duration_ms"]) / 1000.0
        if shortest is not None:
            mask &= seconds >= shortest
        if longest is not None:
            mask &= seconds <= longest
    if text:
        found = np.zeros(len(runs), dtype=bool)
        for column in ("response", "reflection", "error"):
            if column in runs:
                found |= runs[column].str.contains(text, case=False, regex=False).fillna(False).to_numpy(dtype=bool)
        mask &= found
    return runs[mask]
