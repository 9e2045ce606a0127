"""Where time, tokens and money go: :func:`plot_duration`, :func:`plot_tokens`,
:func:`plot_cost` and :func:`plot_duration_vs_tokens`."""

from __future__ import annotations

import warnings
from typing import Any, cast

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from ..analysis import cost_breakdown, float_values, in_time_zone, require_columns
from ..deprecation import renamed_arguments
from ..formatting import compact
from ._style import (
    PARTIAL_NOTE,
    bar_labels,
    bar_width,
    check_freq,
    colors_for,
    draw_nothing,
    figure_of,
    freq_word,
    grey_buckets,
    literal,
    log_ticks,
    mark_changes,
    one_group,
    ordered_groups,
    partial_buckets,
    pretty_name,
    side_legend,
    target_axes,
    text_usd,
    time_axis,
    top_labels,
    usd_formatter,
)

#: Input and output tokens, in every token plot.
_INPUT_COLOR, _OUTPUT_COLOR = "#4c78a8", "#f58518"


# -- duration -------------------------------------------------------------------------------

def plot_duration(
    runs: pd.DataFrame,
    *,
    by: str | None = None,
    kind: str = "hist",
    log: bool = True,
    bins: int = 50,
    top: int = 8,
    marks: bool = True,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Run durations: a histogram (``kind="hist"``) or ECDF (``kind="ecdf"``) per group, on a log
    scale by default, with the median (dashed) and 90th percentile (dotted) marked.

    ``kwargs`` go to ``Axes.hist`` or ``Axes.plot`` (``color=`` colours every group).
    """
    require_columns(runs, ["duration_ms", *([by] if by else [])], "plot_duration")
    if kind not in ("hist", "ecdf"):
        raise ValueError(f"kind must be 'hist' or 'ecdf', got {kind!r}")
    ax = target_axes(ax)
    seconds = pd.Series(float_values(runs["duration_ms"]) / 1000.0, index=runs.index)
    valid = seconds.notna() & ((seconds > 0) if log else True)
    if not valid.any():
        return draw_nothing(ax)
    seconds = seconds[valid]
    labels = top_labels(runs.loc[valid, by], None, top) if by else one_group(seconds.index)
    groups = ordered_groups(labels)
    colors = colors_for(by, groups) if by else {"all runs": "#4c78a8"}
    lo, hi = seconds.min(), seconds.max()
    edges = np.geomspace(lo, hi if hi > lo else lo * 1.01, bins + 1) if log else np.linspace(lo, hi, bins + 1)
    for group in groups:
        values = seconds[labels == group].to_numpy()
        p50, p90 = np.percentile(values, [50, 90])
        defaults = {"color": colors[group], "label": f"{literal(group)} (p50 {p50:,.1f} s, p90 {p90:,.1f} s)"}
        if kind == "hist":
            options = {**defaults, "histtype": "step" if len(groups) > 1 else "stepfilled", "linewidth": 1.6,
                       "alpha": 1.0 if len(groups) > 1 else 0.75, **kwargs}
            ax.hist(values, bins=edges.tolist(), **options)
        else:
            ordered = np.sort(values)
            # The same steps through distinct values only: ties add no vertex (a million demo
            # runs have 19,000 distinct durations in ms; drawing the path is what costs).
            last = np.append(ordered[1:] != ordered[:-1], True)
            ax.plot(ordered[last], (np.flatnonzero(last) + 1) / len(ordered),
                    **{**defaults, "drawstyle": "steps-post", **kwargs})
        if marks:
            mark = kwargs.get("color", colors[group])
            ax.axvline(p50, color=mark, linestyle="--", linewidth=1)
            ax.axvline(p90, color=mark, linestyle=":", linewidth=1)
    if log:
        ax.set_xscale("log")
        log_ticks(ax.xaxis, lo, hi, FuncFormatter(lambda v, _p=None: f"{v:g}"))
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p=None: f"{v:g}"))
    ax.set_xlabel("duration (s)")
    ax.set_ylabel("runs" if kind == "hist" else "share of runs")
    if kind == "hist":
        ax.yaxis.set_major_formatter(FuncFormatter(compact))
    ax.set_title("Run duration" + (f" by {pretty_name(by)}" if by else ""))
    side_legend(ax, title="dashed: p50, dotted: p90" if marks else None)
    return ax


# -- tokens ---------------------------------------------------------------------------------

def plot_tokens(
    runs: pd.DataFrame,
    *,
    by: str | None = None,
    freq: str | None = None,
    tz: str | None = None,
    top: int = 8,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Input against output tokens: stacked bars per group (``by``), or stacked areas over time
    (``freq``, e.g. ``"D"``; buckets in UTC or in ``tz``). ``kwargs`` go to ``Axes.barh`` or
    ``Axes.stackplot``."""
    require_columns(runs, ["input_tokens", "output_tokens", *([by] if by else []),
                           *(["created_at"] if freq else [])], "plot_tokens")
    ax = target_axes(ax)
    frame = pd.DataFrame({"input": float_values(runs["input_tokens"]), "output": float_values(runs["output_tokens"])},
                         index=runs.index)
    has = frame["input"].notna() | frame["output"].notna()
    if freq:  # runs without a readable created_at have no bucket
        has &= runs["created_at"].notna().to_numpy()
    if not has.any():
        return draw_nothing(ax)
    frame = frame[has].fillna(0)
    if freq:
        check_freq(freq)
        created = in_time_zone(runs.loc[has, "created_at"], tz)
        buckets = frame.set_index(created).resample(freq, label="left", closed="left").sum()
        label = kwargs.pop("label", None)  # stackplot takes one label per area
        ax.stackplot(buckets.index, buckets["input"], buckets["output"],
                     **{"labels": ["input", "output"] if label is None else [label] * 2,
                        "colors": [_INPUT_COLOR, _OUTPUT_COLOR], "alpha": 0.85, **kwargs})
        ax.set_ylabel("tokens")
        ax.yaxis.set_major_formatter(FuncFormatter(compact))
        partial = partial_buckets(buckets.index, freq, created.min(), created.max())
        grey_buckets(ax, buckets.index, freq, partial, points=True)
        ax.set_title(f"Tokens per {freq_word(freq)}, input and output"
                     + (f"\n({PARTIAL_NOTE.format(word=freq_word(freq))})" if partial.any() else ""))
        side_legend(ax)
        time_axis(ax, tz)
        return ax
    labels = (top_labels(runs.loc[has, by], frame["input"] + frame["output"], top) if by
              else one_group(frame.index))
    sums = frame.groupby(labels, observed=False).sum()
    order = ordered_groups(labels, frame["input"] + frame["output"])
    sums = sums.loc[order[::-1]]  # largest at the top
    names = [literal(k) for k in sums.index]
    ax.barh(names, sums["input"], **{"color": _INPUT_COLOR, "label": "input", **kwargs})
    ax.barh(names, sums["output"], left=sums["input"], **{"color": _OUTPUT_COLOR, "label": "output", **kwargs})
    totals = (sums["input"] + sums["output"]).to_numpy()
    shares = np.where(totals > 0, sums["output"].to_numpy() / np.where(totals > 0, totals, 1), 0)
    side_legend(ax)
    # Inside, the label sits at the end of the input segment, on its one colour (across the
    # two segments it was dark text half on blue).
    bar_labels(ax, totals, [f"{compact(t)} ({s:.0%} out)" for t, s in zip(totals, shares, strict=False)],
                [_INPUT_COLOR] * len(totals), ends=sums["input"].to_numpy())
    ax.set_xlabel("tokens")
    ax.xaxis.set_major_formatter(FuncFormatter(compact))
    ax.set_title("Tokens, input and output" + (f", by {pretty_name(by)}" if by else ""))
    return ax


# -- cost -----------------------------------------------------------------------------------

def plot_cost(
    runs: pd.DataFrame,
    *,
    by: str | None = "agent_name",
    freq: str | None = None,
    tz: str | None = None,
    top: int = 8,
    changes: pd.DataFrame | None = None,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Cost in USD: a bar per group, labelled with the cost per resolved run; or, with ``freq``,
    bars over time stacked by group (buckets in UTC or in ``tz``), with the ``changes`` of
    :func:`change_points` marked. ``kwargs`` go to ``Axes.barh`` or ``Axes.bar``."""
    require_columns(runs, ["total_cost", *([by] if by else []), *(["created_at"] if freq else [])],
                    "plot_cost")
    ax = target_axes(ax)
    cost = pd.Series(float_values(runs["total_cost"]), index=runs.index)
    has = cost.notna()
    if not has.any():
        return draw_nothing(ax)
    labels = (top_labels(runs.loc[has, by], cost[has], top) if by
              else one_group(cost[has].index))
    order = ordered_groups(labels, cost[has])
    colors = colors_for(by, order)
    if freq:
        check_freq(freq)
        created = in_time_zone(runs["created_at"], tz)
        if created[has].isna().all():  # no time to bucket by (pandas 3.0's Grouper fails on all-NaT)
            return draw_nothing(ax)
        frame = pd.DataFrame({"t": created[has], "g": labels, "c": cost[has]})
        # Every bucket with runs gets a bar, as in summarize(): a day whose runs have no cost yet
        # (they are still running) is a day at $0, not a day left out.
        buckets = (created.dropna().to_frame("t").groupby(pd.Grouper(key="t", freq=freq, label="left",
                                                             closed="left")).size().index)
        table = (frame.groupby([pd.Grouper(key="t", freq=freq, label="left", closed="left"), "g"],
                               observed=False)["c"].sum()
                 .unstack(fill_value=cast(Any, 0.0)).reindex(index=buckets, columns=order, fill_value=0.0))
        width = bar_width(table.index)
        bottom = np.zeros(len(table))
        for group in order:
            ax.bar(table.index, table[group], bottom=bottom,
                   **{"width": width, "color": colors[group], "label": literal(group), "align": "edge",
                      **kwargs})
            bottom += table[group].to_numpy()
        ax.set_ylabel("cost (USD)")
        ax.yaxis.set_major_formatter(usd_formatter(float(bottom.max()) if len(bottom) else 0))
        partial = partial_buckets(table.index, freq, created[has].min(), created[has].max())
        grey_buckets(ax, table.index, freq, partial)
        ax.set_title(f"Cost per {freq_word(freq)}" + (f" by {pretty_name(by)}" if by else "")
                     + (f"\n({PARTIAL_NOTE.format(word=freq_word(freq))})" if partial.any() else ""))
        mark_changes(ax, changes)
        if by:
            side_legend(ax)
        time_axis(ax, tz)
        return ax
    # Only the columns cost_breakdown reads: taking every column of a million runs took seconds.
    needed = ["disposition", "input_tokens", "output_tokens", "total_tokens", "total_cost"]
    frame = runs.loc[has, [c for c in needed if c in runs]].assign(_group=labels)
    table = cost_breakdown(frame, by="_group").reindex(order)
    names = [literal(k) for k in table.index][::-1]
    values = table["total_cost"].to_numpy()[::-1]
    bar_colors = [colors[k] for k in table.index][::-1]
    ax.barh(names, values, **{"color": bar_colors, **kwargs})
    notes = [text_usd(value) + (f" ({text_usd(per_resolved)}/resolved)" if np.isfinite(per_resolved) else "")
             for value, per_resolved in zip(values, table["cost_per_resolved_run"].to_numpy()[::-1], strict=False)]
    bar_labels(ax, values, notes, bar_colors)
    ax.set_xlabel("cost (USD); in brackets: cost per resolved run")
    ax.xaxis.set_major_formatter(usd_formatter(float(values.max())))
    ax.set_title("Cost" + (f" by {pretty_name(by)}" if by else ""))
    return ax



# -- scatter --------------------------------------------------------------------------------

@renamed_arguments(sample="max_points")
def plot_duration_vs_tokens(
    runs: pd.DataFrame,
    *,
    by: str | None = "disposition",
    max_points: int | None = 20_000,
    log: bool = True,
    top: int = 8,
    seed: int = 0,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Duration against total tokens, one point per run, coloured by a categorical ``by``
    (``"disposition"``: the disposition colours; its ``top`` values, then "other") or a numeric
    one (``"total_cost"``: a colour scale with a bar in USD). At most ``max_points`` points
    are drawn (a reproducible random sample of runs, ``seed``); ``kwargs`` go to ``Axes.scatter``. (``hue=`` is the
    old name of ``by``.)"""
    if "hue" in kwargs:
        warnings.warn("plot_duration_vs_tokens(hue=...) is now by=...", DeprecationWarning, stacklevel=2)
        by = kwargs.pop("hue")
    require_columns(runs, ["duration_ms", "total_tokens", *([by] if by else [])], "plot_duration_vs_tokens")
    ax = target_axes(ax)
    x = float_values(runs["total_tokens"])
    y = float_values(runs["duration_ms"]) / 1000.0
    ok = ~np.isnan(x) & ~np.isnan(y) & ((x > 0) & (y > 0) if log else True)
    rows = np.flatnonzero(ok)
    if not len(rows):
        return draw_nothing(ax)
    if max_points is not None and len(rows) > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=max_points, replace=False))
    options = {"s": 10, "alpha": 0.6, "linewidths": 0, **kwargs}
    if by is None:
        ax.scatter(x[rows], y[rows], **{"color": "#4c78a8", **options})
    elif pd.api.types.is_numeric_dtype(runs[by]) and not isinstance(runs[by].dtype, pd.CategoricalDtype):
        if "color" in options:
            raise ValueError(f"color= cannot colour points by the numbers in {by!r}; pass cmap= instead")
        values = float_values(runs[by])[rows]
        points = ax.scatter(x[rows], y[rows], c=values, **{"cmap": "viridis", **options})
        bar = figure_of(ax).colorbar(points, ax=ax)
        bar.set_label(f"{pretty_name(by)} (USD)" if "cost" in by else pretty_name(by))
        if "cost" in by:
            bar.formatter = usd_formatter(float(np.nanmax(values)) if len(values) else 0)
            bar.update_ticks()
    else:
        labels = top_labels(runs[by].iloc[rows], None, top)
        order = ordered_groups(labels)
        colors = colors_for(by, order)
        for key in order:
            pick = (labels == key).to_numpy()
            ax.scatter(x[rows][pick], y[rows][pick], **{"color": colors[key], "label": literal(key), **options})
        side_legend(ax, title=pretty_name(by), markerscale=2)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
        # Minor ticks would print as 2x10^0: labelled ticks enough for the data's span instead.
        log_ticks(ax.xaxis, float(x[rows].min()), float(x[rows].max()), FuncFormatter(compact))
        log_ticks(ax.yaxis, float(y[rows].min()), float(y[rows].max()), FuncFormatter(lambda v, _p=None: f"{v:g}"))
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(compact))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p=None: f"{v:g}"))
    ax.set_xlabel("tokens (input + output)")
    ax.set_ylabel("duration (s)")
    shown = f"\n({len(rows):,} of {int(ok.sum()):,} runs)" if len(rows) < ok.sum() else ""
    ax.set_title("Duration against tokens" + (f", by {pretty_name(by)}" if by else "") + shown)
    return ax
