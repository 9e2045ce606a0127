"""Tool numbers: per tool, calls, runs using it, share of runs and calls per run, and how runs
with and without it compare (:func:`tool_stats`); from a trace sample, estimates for all runs
with 95% intervals, the traced runs each rests on, flags where an interval may not hold, and rows
with an upper bound for known tools the sample missed (:func:`tool_stats_estimated`).

>>> tool_stats(frames.tool_calls, frames.runs)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from .checks import float_values, require_columns
from .lookup import call_runs
from .sampling import trace_failures
from .stats import Z95, share_interval, weighted_median
from .stats.design import TraceSample, concentration, row_flags
from .stats.unseen import flags_note, with_unseen_rows

__all__ = ["tool_stats", "tool_stats_estimated"]


def tool_stats(tool_calls: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per tool: ``calls``, ``runs_using`` it, ``share_of_runs``, ``calls_per_run`` (calls per
    run using it).

    Given ``runs`` (the frame the calls came from), also how runs that used the tool compare
    with runs that did not: ``p50_duration_s_with`` / ``_without`` and ``cost_per_run_with`` /
    ``_without``, and the disposition mix of the runs using it (``disposition:<name>`` shares).
    ``share_of_runs`` is then out of all of ``runs``, else out of the runs seen in the calls.
    Sorted by calls, most first.

    Given ``runs``, only the calls of those runs count (filter the runs, and the tool numbers
    follow).

    When the traces are a sample (``trace_weight`` other than 1 or missing for some of
    ``runs``, as after ``fetch_runs(details="auto")`` on a busy workspace), every number is an
    estimate for all of ``runs`` from the stored weights, with 95% intervals: see
    :func:`tool_stats_estimated` for the method and when not to trust it. With every trace
    present (all weights 1, or no ``trace_weight``) the table is exactly the counts.

    >>> tool_stats(frames.tool_calls, frames.runs)
    """
    if runs is not None and "trace_weight" in runs and TraceSample.from_runs(runs).is_sample:
        return tool_stats_estimated(tool_calls, runs)
    require_columns(tool_calls, ["agent_run_id", "name"], "tool_stats")
    if runs is not None:
        require_columns(runs, ["id", "duration_ms", "total_cost", "disposition"], "tool_stats")
    tools, tool_code, run_code, n_runs, ok = _call_codes(tool_calls, runs)
    n_tools = len(tools)
    calls = np.bincount(tool_code[ok], minlength=n_tools)
    member, using, pair_tool, pair_run = _tool_runs(tool_code[ok], run_code[ok], n_tools, n_runs)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame({
            "calls": calls,
            "runs_using": using,
            "share_of_runs": using / n_runs if n_runs else np.nan,
            "calls_per_run": np.where(using > 0, calls / using, np.nan),
        }, index=pd.Index(tools.astype(object), name="tool"))
        if runs is not None:
            table = _with_and_without(table, runs, member, pair_tool, pair_run)
    return table.sort_values("calls", ascending=False, kind="stable")


def _call_codes(tool_calls: pd.DataFrame, runs: pd.DataFrame | None
                ) -> tuple[pd.Index, np.ndarray, np.ndarray, int, np.ndarray]:
    """The tools, each call's tool and run codes, the number of runs, and which calls count:
    given ``runs``, only the calls of those runs (and the tools only they used are left out)."""
    names = tool_calls["name"].astype("category")
    tools = names.cat.categories
    tool_code = names.cat.codes.to_numpy().astype(np.int64)
    if runs is not None:
        n_runs = len(runs)
        run_code = call_runs(tool_calls, runs)
    else:
        run_ids = tool_calls["agent_run_id"].astype("category")
        codes = run_ids.cat.codes.to_numpy().astype(np.int64)
        used = np.bincount(codes[codes >= 0], minlength=len(run_ids.cat.categories)) > 0
        renumber = np.cumsum(used) - 1
        n_runs = int(used.sum())
        run_code = np.where(codes < 0, -1, renumber[np.maximum(codes, 0)])
    ok = (tool_code >= 0) & (run_code >= 0)
    if runs is not None and not ok[tool_code >= 0].all():
        # Calls of runs outside ``runs`` do not count; nor do the tools only they used.
        used_tools = np.unique(tool_code[ok])
        tools = tools[used_tools]
        tool_code = np.where(ok, np.searchsorted(used_tools, tool_code), -1)
    return tools, tool_code, run_code, n_runs, ok


def _tool_runs(tool_code: np.ndarray, run_code: np.ndarray, n_tools: int, n_runs: int
               ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
    """Which runs used which tool: a tools x runs table of booleans when it fits in 256 MB (else
    None), the runs using each tool, and the distinct (tool, run) pairs, grouped by tool."""
    if n_tools * max(n_runs, 1) <= 256_000_000:
        member = np.zeros((n_tools, max(n_runs, 1)), dtype=bool)
        member[tool_code, run_code] = True
        pair_tool, pair_run = np.nonzero(member)
        return member, member.sum(axis=1), pair_tool, pair_run
    pairs = np.sort(tool_code * n_runs + run_code)  # pragma: no cover - tens of thousands of tools
    pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])] if len(pairs) else pairs
    pair_tool, pair_run = pairs // n_runs, pairs % n_runs
    return None, np.bincount(pair_tool, minlength=n_tools), pair_tool, pair_run


def _with_and_without(table: pd.DataFrame, runs: pd.DataFrame, member: np.ndarray | None, pair_tool: np.ndarray,
                      pair_run: np.ndarray) -> pd.DataFrame:
    """How runs that used each tool compare with runs that did not (median duration, cost per
    run), and the disposition mix of the runs using it."""
    n_tools, n_runs = len(table), len(runs)
    seconds = float_values(runs["duration_ms"]) / 1000.0
    cost = float_values(runs["total_cost"])
    has_s, has_c = ~np.isnan(seconds), ~np.isnan(cost)
    # Means from per-tool sums over the (tool, run) pairs, which come grouped by tool.
    cost0 = np.where(has_c, cost, 0.0)
    sum_with = np.bincount(pair_tool, weights=cost0[pair_run], minlength=n_tools)
    n_with = np.bincount(pair_tool, weights=has_c[pair_run], minlength=n_tools)
    sum_all, n_all = cost0.sum(), has_c.sum()
    table["cost_per_run_with"] = np.where(n_with > 0, sum_with / np.maximum(n_with, 1), np.nan)
    table["cost_per_run_without"] = np.where(n_all - n_with > 0,
                                             (sum_all - sum_with) / np.maximum(n_all - n_with, 1), np.nan)
    p50_with, p50_without = [], []
    for t in range(n_tools):
        if member is not None:
            mask = member[t]
        else:  # pragma: no cover
            mask = np.zeros(n_runs, dtype=bool)
            mask[pair_run[pair_tool == t]] = True
        inside, outside = seconds[mask & has_s], seconds[~mask & has_s]
        p50_with.append(float(np.median(inside)) if len(inside) else np.nan)
        p50_without.append(float(np.median(outside)) if len(outside) else np.nan)
    table["p50_duration_s_with"] = p50_with
    table["p50_duration_s_without"] = p50_without
    table = table[["calls", "runs_using", "share_of_runs", "calls_per_run", "p50_duration_s_with",
                   "p50_duration_s_without", "cost_per_run_with", "cost_per_run_without"]]
    disposition = runs["disposition"].astype("category")
    d_code = disposition.cat.codes.to_numpy().astype(np.int64)
    n_d = len(disposition.cat.categories)
    has = d_code[pair_run] >= 0
    mix = np.bincount(pair_tool[has] * n_d + d_code[pair_run][has],
                      minlength=n_tools * n_d).reshape(n_tools, n_d).astype(float)
    totals = mix.sum(axis=1, keepdims=True)
    shares = np.where(totals > 0, mix / np.where(totals > 0, totals, 1), np.nan)
    for j, name in enumerate(disposition.cat.categories):
        table[f"disposition:{name}"] = shares[:, j]
    return table


def tool_stats_estimated(tool_calls: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`tool_stats` for all of ``runs`` from the runs of the random trace sample.

    What it estimates: the numbers :func:`tool_stats` would give had every run of ``runs`` its
    trace. Method: domain estimation on the stored weights. Each run of the random sample
    (``trace_weight`` > 0) stands for ``trace_weight`` runs; ``calls`` and ``runs_using`` are
    ``sum w * y`` over the sampled runs in ``runs`` (Horvitz-Thompson), ``share_of_runs`` is
    ``runs_using / sum w`` and ``calls_per_run`` ``calls / runs_using`` (ratio estimates). As
    only the stored weights are used, the estimate stays unbiased when ``runs`` is filtered
    after the fetch (an agent, a date range, the traced runs only) or concatenated from several
    fetches (a fully traced window and a sampled one). Runs traced by hand
    (``RunFrames.fetch_traces(ids)``, the inspector: weight 0) are not drawn at random, so they
    are left out of the estimate (their calls are in ``tool_calls`` all the same).

    Intervals (``<column>_low``, ``<column>_high``): 95% normal intervals (``share_of_runs``:
    Wilson's at Kish's effective sample size, :func:`conduit_notebook.stats.share_interval`,
    as every share of the package) from the stratified
    variance over the strata recovered from the weights (agent x disposition x status x
    weight; ratios linearised), made conservative where a stratum cannot measure its own
    spread (fewer than two sampled runs, or no variation among them: the agent's pooled
    within-stratum variance is used) and where a filter kept part of a stratum (see
    :func:`conduit_notebook.sampling.domain_totals_from_sums`). Checked by simulation on the
    demo data at a 10% sample: bias under 2%, coverage of 90% or more for calls, share of runs
    and calls per run. Less trustworthy: a tool used by only a handful of runs, or whose calls
    pile up in a few runs (a skewed tool: one run calling it 100 times), can miss its interval
    more often than 5%, and an estimate from a few dozen traced runs is rough; fetch more
    traces (``frames.fetch_traces()``) before relying on it. The comparisons of runs with and
    without the tool and the disposition mix are weighted by ``trace_weight`` (no intervals).
    ``attrs["estimated_from"]`` is the number of sampled runs, ``attrs["runs"]`` the runs.

    Runs whose trace failed for good (``trace_failed``) are non-response, stood for by the
    traced runs of their stratum: that assumes they are missing at random within agent x
    disposition x status. Then ``attrs["trace_failures"]`` counts them, ``attrs["note"]`` says
    what that assumes, and a warning says it too (see
    :func:`conduit_notebook.sampling.trace_failures`).
    """
    require_columns(tool_calls, ["agent_run_id", "name"], "tool_stats")
    require_columns(runs, ["id", "duration_ms", "total_cost", "disposition", "trace_weight"], "tool_stats")
    design = TraceSample.from_runs(runs)
    weight, traced = design.weight, design.sampled  # the random sample (hand-picked traces: weight 0)
    n_runs = len(runs)
    names = tool_calls["name"].astype("category")
    run_code = call_runs(tool_calls, runs)
    tool_code = names.cat.codes.to_numpy().astype(np.int64)
    ok = (tool_code >= 0) & (run_code >= 0)
    ok[ok] = traced[run_code[ok]]  # only calls of sampled runs count
    used_tools = np.unique(tool_code[ok])
    tools = names.cat.categories[used_tools]
    tool_code = np.searchsorted(used_tools, tool_code)
    n_tools = len(tools)
    pairs, count = np.unique(tool_code[ok] * n_runs + run_code[ok], return_counts=True)
    pair_tool, pair_run = pairs // max(n_runs, 1), pairs % max(n_runs, 1)
    cols = _estimated_counts(design, pair_tool, pair_run, count, n_tools, traced)
    cols.update(_estimated_with_and_without(runs, pair_tool, pair_run, n_tools, traced, weight))
    table = pd.DataFrame(cols, index=pd.Index(tools.astype(object), name="tool"))
    table["traced_runs"] = np.bincount(pair_tool, minlength=n_tools).astype(np.int64)
    table["top5_share"] = concentration(pair_tool, count, n_tools)
    table = with_unseen_rows(table, names.cat.categories, design, share=["share_of_runs_high"], count=["runs_using_high"],
                             zero=["calls", "calls_low", "runs_using", "runs_using_low", "share_of_runs", "share_of_runs_low"])
    table["flag"] = row_flags(table["traced_runs"].to_numpy(), table["top5_share"].to_numpy(), design.traced)
    table = table.sort_values("calls", ascending=False, kind="stable")
    table.attrs.update(estimated_from=design.traced, runs=n_runs, kish_n=design.kish_n)
    table.attrs["flags"] = flags_note(table["traced_runs"].to_numpy(), table["flag"].to_numpy(), design)
    failed, note = trace_failures(runs)
    if note is not None:
        table.attrs.update(trace_failures=failed, note=note)
        warnings.warn(f"tool_stats: {note}", UserWarning, stacklevel=3)
    return table


def _estimated_counts(design: TraceSample, pair_tool: np.ndarray, pair_run: np.ndarray, count: np.ndarray,
                      n_tools: int, traced: np.ndarray) -> dict[str, Any]:
    """Calls, runs using, share of runs and calls per run of each tool, Horvitz-Thompson from
    the (tool, run) pairs of the sample, each with its 95% interval."""
    group, g_weight, n_h = design.group, design.g_weight, design.n_h
    n_groups = len(g_weight)
    cell = group[pair_run] * n_tools + pair_tool

    def by_group(values: np.ndarray) -> np.ndarray:
        return np.bincount(cell, weights=values, minlength=n_groups * n_tools).reshape(n_groups, n_tools)

    y1, y2, x1 = by_group(count.astype(float)), by_group(count.astype(float) ** 2), by_group(np.ones(len(cell)))
    n_col = np.repeat(n_h[:, None], n_tools, axis=1)

    def totals(s1: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return design.totals(s1, s2)

    calls, calls_se = totals(y1, y2)
    using, using_se = totals(x1, x1)
    population = float((g_weight * n_h).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        share = using / population if population else np.full(n_tools, np.nan)
        p = np.nan_to_num(share)
        _, share_z = totals(x1 - p * n_col, x1 - 2 * p * x1 + p ** 2 * n_col)
        share_se = share_z / population if population else np.full(n_tools, np.nan)
        ratio = np.where(using > 0, calls / using, np.nan)
        r = np.nan_to_num(ratio)
        # Calls per run moves with the rare repeat calls (beyond a run's first): a stratum
        # whose sampled runs show no repeat borrows its agent's spread.
        repeats = y1 - x1
        _, z_se = design.totals(y1 - r * x1, y2 - 2 * r * y1 + r ** 2 * x1, flat=repeats <= 0)
        # And when the sample shows no repeat at all the spread is 0: as a floor, the variance
        # of one more sampled run with one repeat (an "add one" rule for a rare count).
        sampled = float(n_h.sum())
        floor = (population / sampled) ** 2 * max(0.0, 1 - sampled / population) if sampled else 0.0
        ratio_se = np.where(using > 0, np.sqrt(z_se ** 2 + floor) / using, np.nan)
    cols: dict[str, Any] = {}
    for column, value, se, top in (("calls", calls, calls_se, np.inf), ("runs_using", using, using_se, np.inf),
                                   ("share_of_runs", share, share_se, 1.0),
                                   ("calls_per_run", ratio, ratio_se, np.inf)):
        cols[column] = value
        cols[f"{column}_low"] = np.clip(value - Z95 * se, 0, top)
        cols[f"{column}_high"] = np.clip(value + Z95 * se, 0, top)
    # A share's interval is the package's one: Wilson at Kish's effective n (not a clipped normal).
    bounds = np.array([share_interval(p_, e_, int(traced.sum())) for p_, e_ in zip(share, share_se, strict=False)]).reshape(-1, 2)
    cols["share_of_runs_low"], cols["share_of_runs_high"] = bounds[:, 0], bounds[:, 1]
    return cols


def _estimated_with_and_without(runs: pd.DataFrame, pair_tool: np.ndarray, pair_run: np.ndarray, n_tools: int,
                                traced: np.ndarray, weight: np.ndarray) -> dict[str, Any]:
    """Weighted medians of duration and weighted cost per run with and without each tool, and
    the weighted disposition mix of the runs using it."""
    n_runs = len(runs)
    member = np.zeros((n_tools, n_runs), dtype=bool)
    member[pair_tool, pair_run] = True
    seconds = float_values(runs["duration_ms"]) / 1000.0
    cost = float_values(runs["total_cost"])
    w = np.where(traced, weight, 0.0)
    has_c = ~np.isnan(cost) & traced
    cost0 = np.where(has_c, cost, 0.0)
    disposition = runs["disposition"].astype("category")
    d_code = disposition.cat.codes.to_numpy().astype(np.int64)
    rows: dict[str, list[float]] = {k: [] for k in ("p50_duration_s_with", "p50_duration_s_without",
                                                    "cost_per_run_with", "cost_per_run_without")}
    mix = np.zeros((n_tools, len(disposition.cat.categories)))
    for t in range(n_tools):
        inside, outside = member[t] & traced, ~member[t] & traced
        rows["p50_duration_s_with"].append(weighted_median(seconds[inside], w[inside]))
        rows["p50_duration_s_without"].append(weighted_median(seconds[outside], w[outside]))
        for key, mask in (("cost_per_run_with", inside), ("cost_per_run_without", outside)):
            total_w = (w * has_c)[mask].sum()
            rows[key].append(float((w * cost0)[mask].sum() / total_w) if total_w > 0 else np.nan)
        has_d = inside & (d_code >= 0)
        mix[t] = np.bincount(d_code[has_d], weights=w[has_d], minlength=mix.shape[1])
    out: dict[str, Any] = dict(rows)
    mix_totals = mix.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(mix_totals > 0, mix / np.where(mix_totals > 0, mix_totals, 1), np.nan)
    for j, name in enumerate(disposition.cat.categories):
        out[f"disposition:{name}"] = shares[:, j]
    return out

