"""Investigations drawn: what changed from a to b (:func:`plot_compare`) and a metric's levels
and change points over time (:func:`plot_change_points`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..analysis import require_columns
from ..formatting import MISSING, PERCENT, WHOLE
from ..investigate import metric_levels
from ._style import (
    THIN_NOTE,
    colors_for,
    draw_nothing,
    freq_word,
    literal,
    pretty_name,
    side_legend,
    target_axes,
    text_usd,
    thin_buckets,
    time_axis,
    usd_formatter,
)

# -- investigations -------------------------------------------------------------------------

_SIGNIFICANT, _NOT_SIGNIFICANT = "#e76f51", "#8d99ae"


def _metric_value(metric: str, value: float) -> str:
    if not np.isfinite(value):
        return MISSING
    if metric.endswith("_rate") or metric.startswith("disposition:") or metric.startswith("share"):
        return PERCENT.format(value)
    if metric.endswith("_s"):
        return f"{value:,.1f} s"
    if "cost" in metric:
        return text_usd(value)
    if "tokens" in metric:
        return WHOLE.format(value)
    return f"{value:,.3g}"


def plot_compare(table: pd.DataFrame, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """The rows of :func:`compare` (or :func:`compare_tools`) as changes relative to ``a``, in
    %, with their intervals: red where significant after Holm, grey where not, hollow where the
    row is outside Holm's family (compare's ``disposition:*`` rows, which have no ``p_holm``); each row is
    labelled ``a -> b``. Rows without an interval (``runs``, the mix) are left out. A table
    estimated from a trace sample (its ``.attrs["note"]``, as :func:`compare_tools` sets it)
    says so in the title. ``kwargs`` go to ``Axes.errorbar``."""
    require_columns(table, ["a", "b", "difference", "ci_low", "ci_high", "significant"], "plot_compare")
    ax = target_axes(ax)
    base = table["a"].abs().where(table["a"] != 0)
    rows = table[np.isfinite(table["ci_low"]) & np.isfinite(table["ci_high"]) & base.notna()]
    if not len(rows):
        return draw_nothing(ax, "nothing to compare")
    scale = 100 / rows["a"].abs()
    middle = (rows["difference"] * scale).to_numpy()
    low, high = (rows["ci_low"] * scale).to_numpy(), (rows["ci_high"] * scale).to_numpy()
    y = np.arange(len(rows))[::-1]
    significant = rows["significant"].to_numpy(dtype=bool)
    # Rows outside Holm's family (compare's disposition:* rows: the mix's parts, with a p-value of
    # their own but no p_holm) are neither "significant" nor "not": they are drawn hollow.
    outside = rows["p_holm"].isna().to_numpy() if "p_holm" in rows else np.zeros(len(rows), dtype=bool)
    kinds = ((significant & ~outside, _SIGNIFICANT, "significant (Holm)", "o"),
             (~significant & ~outside, _NOT_SIGNIFICANT, "not significant", "o"),
             (outside, _NOT_SIGNIFICANT, "not in the Holm family (the mix's parts)", "white"))
    for pick, color, label, face in kinds:
        if pick.any():
            options = {"fmt": "o", "capsize": 3, "markersize": 6, "color": color, "label": label,
                       **({"markerfacecolor": "white"} if face == "white" else {}), **kwargs}
            ax.errorbar(middle[pick], y[pick], xerr=[middle[pick] - low[pick], high[pick] - middle[pick]],
                        **options)
    ax.axvline(0, color="#777777", linewidth=1)
    ax.set_yticks(y, [literal(k) for k in rows.index])
    span = max(float(np.nanmax(np.abs([low, high]))), 1.0)
    ax.set_xlim(-span * 1.15, span * 2.0)
    for yy, (metric, a, b) in zip(y, zip(rows.index, rows["a"], rows["b"], strict=False), strict=False):
        ax.text(span * 1.2, yy, f"{_metric_value(str(metric), a)} → {_metric_value(str(metric), b)}",
                va="center", fontsize="small")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))  # "+100%+150%" would run together
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p=None: f"{v:+.0f}%"))
    ax.set_xlabel("change from a to b, relative to a (%), with 95% interval")
    note = table.attrs.get("note")
    ax.set_title("What changed from a to b" + (f"\n({note})" if note else ""))
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=3, frameon=False)
    return ax



def plot_change_points(
    runs: pd.DataFrame,
    *,
    metric: str = "escalation_rate",
    freq: str = "D",
    by: str | None = None,
    top: int = 6,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """A metric per ``freq`` bucket (dots) and the levels :func:`change_points` finds (lines),
    with the change points marked, per ``by`` group (the ``top`` with most runs).
    ``kwargs`` go to ``Axes.plot`` for the dots."""
    levels = metric_levels(runs, metric=metric, freq=freq, by=by)
    ax = target_axes(ax)
    if not len(levels):
        return draw_nothing(ax)
    if by:
        sizes = levels.groupby(by, observed=True)["runs"].sum().sort_values(ascending=False, kind="stable")
        groups = list(sizes.index[:top])
    else:
        groups = [None]
    colors = colors_for(by, groups) if by else {None: "#4c78a8"}
    greyed = _grey_thin_buckets(ax, levels, freq)
    for group in groups:
        part = levels if group is None else levels[levels[by] == group]
        color = colors[group]
        label = "all runs" if group is None else literal(group)
        options = {"marker": "o", "markersize": 3.5, "linewidth": 0.8, "alpha": 0.55, "color": color,
                   "label": label, **kwargs}
        # A bucket with few runs (a partial last day) is a hollow, faint dot off the line: two
        # runs make a 0% or 50% day that is no spike.
        thin = thin_buckets(part["runs"])
        greyed |= bool(thin.any())
        ax.plot(part["at"], part["value"].where(~thin), **options)
        if thin.any():
            ax.plot(part["at"][thin], part["value"][thin], linestyle="none", marker="o", markersize=3.5,
                    markerfacecolor="none", color=color, alpha=0.35)
        # Levels as steps; a trend's fitted line as a line.
        drifting = part["trend"].to_numpy()
        ax.plot(part["at"], part["level"].where(~drifting), color=color, linewidth=2.2, drawstyle="steps-mid")
        if drifting.any():
            ax.plot(part["at"], part["level"].where(drifting), color=color, linewidth=2.2)
        moved = part["segment"].diff().fillna(0).to_numpy() != 0
        for at, before, after in zip(part["at"][moved], part["level"].shift(1)[moved], part["level"][moved], strict=False):
            ax.axvline(at, color=color, linestyle="--", linewidth=1.2)
            ax.annotate(f"{_metric_value(metric, before)} → {_metric_value(metric, after)}", (at, after),
                        xytext=(4, 6), textcoords="offset points", fontsize="small", color=color)
    if metric.endswith("_rate"):
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p=None: f"{v:.0%}"))
    elif "cost" in metric:
        ax.yaxis.set_major_formatter(usd_formatter(float(levels["value"].max())))
    unit = {"_s": " (s)", "cost": " (USD)", "tokens": " (tokens)"}
    ax.set_ylabel(metric.replace("_", " ") + next((u for k, u in unit.items() if k in metric), ""))
    ax.set_title(f"{metric.replace('_', ' ').capitalize()} per {freq_word(freq)}"
                 + (f" by {pretty_name(by)}" if by else "") + "\nlevels and change points"
                 + (f"\n({THIN_NOTE})" if greyed else ""))
    side_legend(ax)
    time_axis(ax)
    return ax


def _grey_thin_buckets(ax: Axes, levels: pd.DataFrame, freq: str) -> bool:
    """Buckets whose runs, all groups together, are too few to read (a partial last day) are
    greyed over, as in :func:`plot_dispositions`; whether any was."""
    totals = levels.groupby("at")["runs"].sum()
    thin = thin_buckets(totals)
    span = pd.tseries.frequencies.to_offset(freq)
    for start in totals.index[thin]:
        ax.axvspan(start - (start + span - start) / 2, start + (start + span - start) / 2,
                   color="#dddddd", alpha=0.5, linewidth=0)
    return bool(thin.any())
