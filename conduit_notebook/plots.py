"""Plots of duration, tokens, cost, dispositions and tool use, in the style of seaborn's
axes-level functions: ``plot_x(frame, *, by=None, ax=None, **kwargs) -> Axes``.

They draw on ``ax`` (or the current Axes), pass ``**kwargs`` on to matplotlib the way seaborn
does (a keyword the plot sets itself, such as ``color``, is overridden by yours), return the
Axes and never call ``plt.show()``. Units are in the labels (s, tokens, USD); each disposition
has one colour in every plot (:func:`disposition_colors`); 40 groups read as well as 2 (the
``top`` largest, then "other"); an empty frame gives an Axes that says "no runs". Names from the
data are drawn literally (a ``$`` is not read as mathtext). Time plots take ``tz=`` to bucket by
local days.

A figure without a layout engine gets matplotlib's constrained layout, so that tick labels,
annotations and legends stay inside it when saved with ``ax.figure.savefig(...)``; give the
figure a layout engine of your own to keep your margins.

>>> import matplotlib.pyplot as plt
>>> fig, axes = plt.subplots(1, 2, figsize=(12, 4))
>>> plot_duration(runs, by="agent_name", ax=axes[0])
>>> plot_cost(runs, by="agent_name", freq="D", ax=axes[1])
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
from matplotlib.transforms import ScaledTranslation

from .analysis import cost_breakdown, float_values, in_time_zone, require_columns
from .formatting import MISSING, PERCENT, WHOLE, compact, usd
from .investigate import metric_levels, run_paths, tool_paths
from .sampling import trace_failures

__all__ = [
    "DISPOSITION_COLORS",
    "disposition_colors",
    "plot_change_points",
    "plot_compare",
    "plot_cost",
    "plot_dispositions",
    "plot_duration",
    "plot_duration_vs_tokens",
    "plot_tokens",
    "plot_tool_paths",
    "plot_tool_usage",
]

#: The colour of each well-known disposition; others get a stable colour from their name.
DISPOSITION_COLORS: dict[str, str] = {
    "resolved": "#2a9d8f",
    "escalated": "#e76f51",
    "awaiting_guest": "#e9c46a",
    "handed_off": "#7b5ea7",
    "no_action_needed": "#8d99ae",
    "spam": "#5c5f66",
}
OTHER = "other"
OTHER_COLOR = "#c8c8c8"
_PALETTE = [plt.get_cmap("tab20")(i) for i in range(20)]
_GROUP_PALETTE = [to_rgb(plt.get_cmap("tab10")(i)) for i in range(10)]
_INPUT_COLOR, _OUTPUT_COLOR = "#4c78a8", "#f58518"


def disposition_colors(names: Iterable[Any]) -> dict[Any, Any]:
    """A colour per disposition: fixed for the known ones, derived from the name otherwise,
    so that a disposition has the same colour in every plot and every session."""
    colors: dict[Any, Any] = {}
    for name in names:
        if name in DISPOSITION_COLORS:
            colors[name] = DISPOSITION_COLORS[name]
        elif name == OTHER:
            colors[name] = OTHER_COLOR
        else:
            colors[name] = _PALETTE[zlib.crc32(str(name).encode()) % len(_PALETTE)]
    return colors


def _colors_for(column: str | None, keys: Sequence[Any]) -> dict[Any, Any]:
    if column == "disposition":
        return disposition_colors(keys)
    colors: dict[Any, Any] = {}
    i = 0
    for key in keys:
        if key == OTHER:
            colors[key] = OTHER_COLOR
        else:
            colors[key] = _GROUP_PALETTE[i % len(_GROUP_PALETTE)]
            i += 1
    return colors


def _axes(ax: Axes | None) -> Axes:
    """``ax`` or the current Axes; its figure gets constrained layout unless it has a layout
    engine already, so that every label survives ``savefig`` without ``bbox_inches``."""
    ax = ax if ax is not None else plt.gca()
    figure = ax.get_figure(root=True)
    if figure is not None and figure.get_layout_engine() is None:
        figure.set_layout_engine("constrained")
    return ax


def _literal(text: Any) -> str:
    """A name from the data as matplotlib must draw it: a '$' is a dollar, not mathtext."""
    return str(text).replace("$", r"\$")


def _legend(ax: Axes, **kwargs: Any) -> Any:
    """A legend beside the Axes, on the right, where it covers no bar and no label."""
    options = {"fontsize": "small", "loc": "upper left", "bbox_to_anchor": (1.01, 1.0),
               "borderaxespad": 0.0, "title_fontsize": "small", **kwargs}
    if "title" in options and options["title"] is not None:
        options["title"] = _literal(options["title"])
    return ax.legend(**options)


def _figure_of(ax: Axes) -> Figure:
    """The figure ``ax`` is drawn on (the root one, when it is on a subfigure)."""
    figure = ax.get_figure(root=True)
    if figure is None:
        raise ValueError("ax must be an Axes on a figure")
    return figure


def _nothing(ax: Axes, message: str = "no runs") -> Axes:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#777777",
            fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _thousands(value: float, _pos: Any = None) -> str:
    return WHOLE.format(value)


def _usd_formatter(largest: float) -> FuncFormatter:
    # Few digits: "$10.00$12.00" side by side on a narrow axis would run together.
    decimals = 0 if largest >= 10 else 1 if largest >= 1 else 2 if largest >= 0.1 else 3
    return FuncFormatter(lambda value, _pos=None: usd(value, decimals))


def _missing_label(column: Any) -> str:
    return f"(no {_pretty(column)})" if column else "(none)"


def _pretty(column: Any) -> str:
    """A column name as a title says it: agent_name -> agent, disposition_reason -> disposition reason."""
    return {"agent_name": "agent", "agent_id": "agent id"}.get(column, str(column).replace("_", " "))


_FREQ_WORDS = {"h": "hour", "H": "hour", "D": "day", "W": "week", "MS": "month", "ME": "month", "M": "month"}


def _per(freq: str) -> str:
    return _FREQ_WORDS.get(freq, f"{freq} bucket")


def _text_usd(value: float) -> str:
    """Dollars in a text label: escaped, as two '$' would start matplotlib's mathtext."""
    return usd(value).replace("$", r"\$")


def _top_labels(keys: pd.Series, weights: pd.Series | None, top: int) -> pd.Series:
    """Group labels (a categorical) with all but the ``top`` heaviest groups merged into
    "other"; missing keys become "(no <column>)". Works on the categories' codes, so that a
    million rows cost a bincount, not a million string comparisons."""
    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise ValueError(f"top must be a whole number >= 1, got {top!r}")
    keys = keys if isinstance(keys.dtype, pd.CategoricalDtype) else keys.astype("category")
    codes = keys.cat.codes.to_numpy()
    names = [str(c) for c in keys.cat.categories]
    if (codes < 0).any():
        names.append(_missing_label(keys.name))
        codes = np.where(codes < 0, len(names) - 1, codes)
    w = None if weights is None else np.nan_to_num(float_values(weights.reindex(keys.index)))
    totals = np.bincount(codes, weights=w, minlength=len(names))
    present = np.flatnonzero(np.bincount(codes, minlength=len(names)) > 0)
    order = present[np.argsort(-totals[present], kind="stable")]
    if len(order) <= top + 1:  # "other" for a single group would hide a name for nothing
        kept, merged = order, np.array([], dtype=int)
    else:
        kept, merged = order[:top], order[top:]
    categories = [names[i] for i in kept] + ([OTHER] if len(merged) else [])
    mapping = np.full(len(names), -1, dtype=np.int64)
    mapping[kept] = np.arange(len(kept))
    mapping[merged] = len(kept)
    labels = pd.Categorical.from_codes(mapping[codes], categories=categories)
    return pd.Series(labels, index=keys.index, name=keys.name)


def _single(index: pd.Index) -> pd.Series:
    """One group for everything, as a categorical like :func:`_top_labels` gives."""
    return pd.Series(pd.Categorical.from_codes(np.zeros(len(index), dtype=np.int8), ["all runs"]), index=index)


def _ordered(labels: pd.Series, weights: pd.Series | None = None) -> list[Any]:
    """Groups heaviest first, "other" last."""
    w = None if weights is None else np.nan_to_num(float_values(weights.reindex(labels.index)))
    codes = labels.cat.codes.to_numpy()
    totals = np.bincount(codes[codes >= 0], weights=None if w is None else w[codes >= 0],
                         minlength=len(labels.cat.categories))
    present = [i for i in np.argsort(-totals, kind="stable") if totals[i] > 0 or w is not None]
    order = [labels.cat.categories[i] for i in present if labels.cat.categories[i] != OTHER]
    return order + ([OTHER] if OTHER in labels.cat.categories else [])


def _check_freq(freq: str) -> None:
    try:
        pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        raise ValueError(f"freq must be a pandas frequency such as 'h', 'D', 'W'; got {freq!r}") from None


def _time_axis(ax: Axes, tz: Any = None) -> None:
    """Concise dates, in ``tz`` (UTC by default): no rotated, overlapping labels."""
    locator = mdates.AutoDateLocator(tz=tz, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=tz))


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
    ax = _axes(ax)
    seconds = pd.Series(float_values(runs["duration_ms"]) / 1000.0, index=runs.index)
    valid = seconds.notna() & ((seconds > 0) if log else True)
    if not valid.any():
        return _nothing(ax)
    seconds = seconds[valid]
    labels = _top_labels(runs.loc[valid, by], None, top) if by else _single(seconds.index)
    groups = _ordered(labels)
    colors = _colors_for(by, groups) if by else {"all runs": "#4c78a8"}
    lo, hi = seconds.min(), seconds.max()
    edges = np.geomspace(lo, hi if hi > lo else lo * 1.01, bins + 1) if log else np.linspace(lo, hi, bins + 1)
    for group in groups:
        values = seconds[labels == group].to_numpy()
        p50, p90 = np.percentile(values, [50, 90])
        defaults = {"color": colors[group], "label": f"{_literal(group)} (p50 {p50:,.1f} s, p90 {p90:,.1f} s)"}
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
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p=None: f"{v:g}"))
    ax.set_xlabel("duration (s)")
    ax.set_ylabel("runs" if kind == "hist" else "share of runs")
    if kind == "hist":
        ax.yaxis.set_major_formatter(FuncFormatter(compact))
    ax.set_title("Run duration" + (f" by {_pretty(by)}" if by else ""))
    _legend(ax, title="dashed: p50, dotted: p90" if marks else None)
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
    ax = _axes(ax)
    frame = pd.DataFrame({"input": float_values(runs["input_tokens"]), "output": float_values(runs["output_tokens"])},
                         index=runs.index)
    has = frame["input"].notna() | frame["output"].notna()
    if freq:  # runs without a readable created_at have no bucket
        has &= runs["created_at"].notna().to_numpy()
    if not has.any():
        return _nothing(ax)
    frame = frame[has].fillna(0)
    if freq:
        _check_freq(freq)
        created = in_time_zone(runs.loc[has, "created_at"], tz)
        buckets = frame.set_index(created).resample(freq, label="left", closed="left").sum()
        label = kwargs.pop("label", None)  # stackplot takes one label per area
        ax.stackplot(buckets.index, buckets["input"], buckets["output"],
                     **{"labels": ["input", "output"] if label is None else [label] * 2,
                        "colors": [_INPUT_COLOR, _OUTPUT_COLOR], "alpha": 0.85, **kwargs})
        ax.set_ylabel("tokens")
        ax.yaxis.set_major_formatter(FuncFormatter(compact))
        ax.set_title(f"Tokens per {_per(freq)}, input and output")
        _legend(ax)
        _time_axis(ax, tz)
        return ax
    labels = (_top_labels(runs.loc[has, by], frame["input"] + frame["output"], top) if by
              else _single(frame.index))
    sums = frame.groupby(labels, observed=False).sum()
    order = _ordered(labels, frame["input"] + frame["output"])
    sums = sums.loc[order[::-1]]  # largest at the top
    names = [_literal(k) for k in sums.index]
    ax.barh(names, sums["input"], **{"color": _INPUT_COLOR, "label": "input", **kwargs})
    ax.barh(names, sums["output"], left=sums["input"], **{"color": _OUTPUT_COLOR, "label": "output", **kwargs})
    totals = (sums["input"] + sums["output"]).to_numpy()
    shares = np.where(totals > 0, sums["output"].to_numpy() / np.where(totals > 0, totals, 1), 0)
    _legend(ax)
    # Inside, the label sits at the end of the input segment, on its one colour (across the
    # two segments it was dark text half on blue).
    _bar_labels(ax, totals, [f"{compact(t)} ({s:.0%} out)" for t, s in zip(totals, shares)],
                [_INPUT_COLOR] * len(totals), ends=sums["input"].to_numpy())
    ax.set_xlabel("tokens")
    ax.xaxis.set_major_formatter(FuncFormatter(compact))
    ax.set_title("Tokens, input and output" + (f", by {_pretty(by)}" if by else ""))
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
    ax = _axes(ax)
    cost = pd.Series(float_values(runs["total_cost"]), index=runs.index)
    has = cost.notna()
    if not has.any():
        return _nothing(ax)
    labels = (_top_labels(runs.loc[has, by], cost[has], top) if by
              else _single(cost[has].index))
    order = _ordered(labels, cost[has])
    colors = _colors_for(by, order)
    if freq:
        _check_freq(freq)
        created = in_time_zone(runs["created_at"], tz)
        frame = pd.DataFrame({"t": created[has], "g": labels, "c": cost[has]})
        # Every bucket with runs gets a bar, as in summarize(): a day whose runs have no cost yet
        # (they are still running) is a day at $0, not a day left out.
        buckets = (created.to_frame("t").groupby(pd.Grouper(key="t", freq=freq, label="left",
                                                             closed="left")).size().index)
        table = (frame.groupby([pd.Grouper(key="t", freq=freq, label="left", closed="left"), "g"],
                               observed=False)["c"].sum()
                 .unstack(fill_value=0.0).reindex(index=buckets, columns=order, fill_value=0.0))
        width = _bar_width(table.index)
        bottom = np.zeros(len(table))
        for group in order:
            ax.bar(table.index, table[group], bottom=bottom,
                   **{"width": width, "color": colors[group], "label": _literal(group), "align": "edge",
                      **kwargs})
            bottom += table[group].to_numpy()
        ax.set_ylabel("cost (USD)")
        ax.yaxis.set_major_formatter(_usd_formatter(float(bottom.max()) if len(bottom) else 0))
        ax.set_title(f"Cost per {_per(freq)}" + (f" by {_pretty(by)}" if by else ""))
        _mark_changes(ax, changes)
        if by:
            _legend(ax)
        _time_axis(ax, tz)
        return ax
    # Only the columns cost_breakdown reads: taking every column of a million runs took seconds.
    needed = ["disposition", "input_tokens", "output_tokens", "total_tokens", "total_cost"]
    frame = runs.loc[has, [c for c in needed if c in runs]].assign(_group=labels)
    table = cost_breakdown(frame, by="_group").reindex(order)
    names = [_literal(k) for k in table.index][::-1]
    values = table["total_cost"].to_numpy()[::-1]
    bar_colors = [colors[k] for k in table.index][::-1]
    ax.barh(names, values, **{"color": bar_colors, **kwargs})
    notes = [_text_usd(value) + (f" ({_text_usd(per_resolved)}/resolved)" if np.isfinite(per_resolved) else "")
             for value, per_resolved in zip(values, table["cost_per_resolved_run"].to_numpy()[::-1])]
    _bar_labels(ax, values, notes, bar_colors)
    ax.set_xlabel("cost (USD); in brackets: cost per resolved run")
    ax.xaxis.set_major_formatter(_usd_formatter(float(values.max())))
    ax.set_title("Cost" + (f" by {_pretty(by)}" if by else ""))
    return ax


def _bar_labels(ax: Axes, values: np.ndarray, notes: Sequence[str], colors: Sequence[Any],
                ends: np.ndarray | None = None) -> float:
    """A label at the end of each horizontal bar: inside the bar when it fits there, else after
    it, with the x limit widened so that every label stays inside the Axes (not off the figure,
    not under a legend beside it). Widths are estimated from the characters, as the Axes' final
    size is only known when the figure is drawn. For a stacked bar, ``ends`` says where the
    segment of ``colors`` ends: a label inside is put there, on that one colour."""
    finite = np.asarray(values, dtype=float)[np.isfinite(np.asarray(values, dtype=float))]
    largest = float(finite.max()) if len(finite) else 0.0  # an infinite bar cannot set the scale
    if largest <= 0:
        largest = 1.0
    char_inches = 0.075  # a character of fontsize "small", with some room
    # The Axes' width once the tick labels and a legend beside it have taken their room (a lone
    # Axes spans 0.775 of the figure before layout and about 0.95 after).
    figure = _figure_of(ax)
    ticks = max((len(t.get_text()) * 0.6 * float(t.get_fontsize()) / 72 for t in ax.get_yticklabels()), default=0.0)
    legend = 1.6 if ax.get_legend() is not None else 0.0
    span = figure.get_size_inches()[0] * ax.get_position().width * 0.95 / 0.775
    axes_inches = max(span - ticks - legend, 1.0)
    needed = [min(len(note) * char_inches / axes_inches, 0.9) for note in notes]
    ends = values if ends is None else ends
    shares = [float(v) / largest if np.isfinite(v) else 0.0 for v in ends]
    reach, inside = 1.03, [True] * len(notes)
    for _ in range(3):  # a wider axis makes bars shorter: settle which labels fit inside
        inside = [share / reach * 0.95 >= need for share, need in zip(shares, needed)]
        wanted = max([1.03] + [float(v) / largest / (1 - need) * 1.02
                               for v, need, i in zip(values, needed, inside) if not i and np.isfinite(v)])
        if wanted <= reach:
            break
        reach = min(wanted, 3.0)
    for y, (value, end, note, color, fits) in enumerate(zip(values, ends, notes, colors, inside)):
        if fits:
            red, green, blue = to_rgb(color)
            ink = "white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.6 else "#222222"
            ax.text(end, y, note + " ", va="center", ha="right", fontsize="small", color=ink)
        else:
            ax.text(value, y, " " + note, va="center", fontsize="small")
    ax.set_xlim(0, largest * reach)
    # No tick at the very right edge: its label would hang past the figure (constrained layout
    # does not make room for it).
    locations = MaxNLocator(nbins=6).tick_values(0, largest * reach)
    ax.set_xticks([t for t in locations if 0 <= t <= largest * reach * 0.96])
    return largest


#: The label of the twin Axes that :func:`plot_dispositions` draws the runs per bucket on.
_RUNS_AXIS_LABEL = "runs (right axis)"


def _right_axis(ax: Axes) -> Axes:
    """A twin of ``ax`` with its y axis on the right: the one an earlier plot on ``ax`` made,
    cleared, when there is one (a redraw on a cleared ``ax`` neither stacks a second twin over
    the first nor leaves the first behind as garbage), else a new one."""
    figure = ax.get_figure(root=True)
    for other in figure.axes if figure is not None else []:
        if (other is not ax and other.get_label() == _RUNS_AXIS_LABEL
                and other.get_shared_x_axes().joined(ax, other)):
            other.cla()  # resets the tick side too: set it again below
            break
    else:
        other = ax.twinx()
        other.set_label(_RUNS_AXIS_LABEL)
    other.yaxis.tick_right()
    other.yaxis.set_label_position("right")
    other.yaxis.set_offset_position("right")
    return other


def _bar_width(index: pd.Index) -> float:
    if len(index) < 2:
        return 0.8
    step = (index[1] - index[0]) / pd.Timedelta(days=1)
    return float(step) * 0.9


# -- dispositions ---------------------------------------------------------------------------

def plot_dispositions(
    runs: pd.DataFrame,
    *,
    freq: str = "D",
    tz: str | None = None,
    normalize: bool = True,
    top: int = 8,
    changes: pd.DataFrame | None = None,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """The disposition mix over time: shares (stacked areas, ``normalize=True``) or counts
    (stacked bars) per ``freq`` bucket (in UTC or in ``tz``) of runs that have a disposition,
    with the ``changes`` of :func:`change_points` marked.

    Shares come with their weight: a thin black line (right axis) gives the runs in each
    bucket, and buckets with under a tenth of the median count are greyed out, so that a
    6-run day does not read like a 500-run day (drawn again on the same Axes, cleared, the plot
    reuses that right axis). ``colors=`` (a mapping from disposition to
    colour, or a list in legend order) replaces the disposition colours; other ``kwargs`` go to
    ``Axes.stackplot`` or ``Axes.bar``."""
    require_columns(runs, ["disposition", "created_at"], "plot_dispositions")
    _check_freq(freq)
    ax = _axes(ax)
    has = runs["disposition"].notna() & runs["created_at"].notna()
    if not has.any():
        return _nothing(ax, "no runs with a disposition")
    labels = _top_labels(runs.loc[has, "disposition"], None, top)
    order = _ordered(labels)
    colors = disposition_colors(order)
    custom = kwargs.pop("colors", None)
    if isinstance(custom, Mapping):
        colors.update({k: v for k, v in custom.items() if k in colors})
    elif custom is not None:
        colors.update(zip(order, custom))
    counts = (pd.DataFrame({"t": in_time_zone(runs.loc[has, "created_at"], tz), "d": labels})
              .groupby([pd.Grouper(key="t", freq=freq, label="left", closed="left"), "d"], observed=False).size()
              .unstack(fill_value=0)
              .reindex(columns=order, fill_value=0))
    names = [_literal(c) for c in order]
    if normalize:
        totals = counts.sum(axis=1)
        shares = counts.div(totals.where(lambda s: s > 0), axis=0).fillna(0.0)
        # Steps over each bucket's whole span (the last one included), not lines between starts.
        width = pd.Timedelta(shares.index[1] - shares.index[0]) if len(shares) > 1 else pd.Timedelta(days=1)
        edges = shares.index.append(pd.DatetimeIndex([shares.index[-1] + width]))
        stepped = pd.concat([shares, shares.iloc[[-1]]]).set_axis(edges)
        label = kwargs.pop("label", None)  # stackplot takes one label per area
        ax.stackplot(edges, *[stepped[c] for c in order],
                     **{"labels": names if label is None else [label] * len(names),
                        "colors": [colors[c] for c in order], "step": "post", **kwargs})
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p=None: f"{v:.0%}"))
        ax.set_ylabel("share of runs")
        thin = totals < 0.1 * float(totals[totals > 0].median())
        for start in totals.index[thin.to_numpy()]:
            ax.axvspan(start, start + width, color="white", alpha=0.6, linewidth=0)
        weight = _right_axis(ax)
        weight.step(edges, np.append(totals.to_numpy(), totals.to_numpy()[-1]), where="post",
                    color="#222222", linewidth=1.2, label="runs (right axis)")
        weight.set_ylim(0, float(totals.max()) * 1.15 if len(totals) else 1)
        weight.yaxis.set_major_formatter(FuncFormatter(compact))
        _mark_changes(ax, changes)
        handles, texts = ax.get_legend_handles_labels()
        line, _ = weight.get_legend_handles_labels()
        ax.set_title(f"Dispositions per {_per(freq)}, share of runs"
                     + ("\n(greyed: under a tenth of the usual runs)" if thin.any() else ""))
        # Beside the right axis's tick labels (the runs), a fixed distance from the Axes.
        beside = ax.transAxes + ScaledTranslation(0.5, 0, _figure_of(ax).dpi_scale_trans)
        _legend(ax, handles=handles + line, labels=texts + [f"runs per {_per(freq)} (right axis)"],
                bbox_to_anchor=(1.0, 1.0), bbox_transform=beside)
    else:
        bottom = np.zeros(len(counts))
        width = _bar_width(counts.index)
        for c, name in zip(order, names):
            ax.bar(counts.index, counts[c], bottom=bottom,
                   **{"width": width, "color": colors[c], "label": name, "align": "edge", **kwargs})
            bottom += counts[c].to_numpy()
        ax.set_ylabel("runs")
        ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
        _mark_changes(ax, changes)
        ax.set_title(f"Dispositions per {_per(freq)}")
        _legend(ax)
    _time_axis(ax, tz)
    return ax


# -- tools ----------------------------------------------------------------------------------

def _run_weights(tool_calls: pd.DataFrame, runs: pd.DataFrame | None) -> tuple[pd.Series | None, str]:
    """Each call's weight (its run's ``trace_weight``) and a title note, when the runs' traces
    are a sample; (None, "") when they are all there."""
    if runs is None or "trace_weight" not in runs:
        return None, ""
    stored = runs["trace_weight"].to_numpy(dtype=float, na_value=np.nan)
    if not (stored > 0).any() or (stored == 1).all():  # as tool_stats: every trace there
        return None, ""
    require_columns(tool_calls, ["agent_run_id"], "plot_tool_usage")
    by_id = pd.Series(stored, index=runs["id"].astype(object))
    # Calls of runs outside ``runs`` and of hand-picked traces (weight 0) weigh nothing: the
    # bars are sum(w * calls), the estimate tool_stats gives and its intervals are around.
    weights = tool_calls["agent_run_id"].astype(object).map(by_id).fillna(0.0).astype(float)
    traced = int((stored > 0).sum())
    failed, _ = trace_failures(runs)
    return weights, (f"\nestimated from {traced:,} traced runs of {len(runs):,}"
                     + (f" ({failed:,} traces failed)" if failed else ""))


def plot_tool_usage(
    tool_calls: pd.DataFrame,
    *,
    by: str | None = None,
    top: int = 15,
    runs: pd.DataFrame | None = None,
    top_by: int = 8,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Calls per tool (the ``top`` most called, then "other"), optionally split by a column of
    the calls, such as the run's ``"disposition"`` (its ``top_by`` largest values, then
    "other"). ``kwargs`` go to ``Axes.barh``.

    Given ``runs`` whose traces are a sample (``trace_weight`` missing or other than 1 for some
    runs, as after ``fetch_runs(details="auto")`` on a busy workspace), the bars are estimates
    for all of ``runs``: each call weighted by its run's ``trace_weight`` (the estimate of
    :func:`conduit_notebook.tool_stats_estimated`, hand-picked traces left out), with its 95%
    intervals when not split, and the title says from how many traced runs."""
    require_columns(tool_calls, ["name", *([by] if by else [])], "plot_tool_usage")
    ax = _axes(ax)
    if tool_calls.empty:
        return _nothing(ax, "no tool calls")
    weights, note = _run_weights(tool_calls, runs)
    names = _top_labels(tool_calls["name"], weights, top)
    order = _ordered(names, weights)
    rows = [_literal(n) for n in order][::-1]
    if by is None:
        if weights is None:
            counts = names.value_counts().reindex(order).to_numpy()[::-1]
        else:
            counts = weights.groupby(names, observed=False).sum().reindex(order).to_numpy()[::-1]
        xerr = None
        if weights is not None:
            from .analysis import tool_stats_estimated

            est = tool_stats_estimated(tool_calls, runs).reindex([str(n) for n in order][::-1])
            low = np.nan_to_num(counts - est["calls_low"].to_numpy(), nan=0.0).clip(0)
            high = np.nan_to_num(est["calls_high"].to_numpy() - counts, nan=0.0).clip(0)
            xerr = np.vstack([low, high])
        ax.barh(rows, counts, **{"color": "#4c78a8", "xerr": xerr, "ecolor": "#333333", "capsize": 2, **kwargs})
        for y, value in enumerate(counts):
            ax.text(value + (0 if xerr is None else xerr[1][y]), y,
                    f"  {'≈' if weights is not None else ''}{value:,.0f}", va="center", fontsize="small")
        ax.set_xlim(0, float((counts + (0 if xerr is None else xerr[1])).max()) * 1.18)
    else:
        split = _top_labels(tool_calls[by], None, top_by)
        parts = _ordered(split)
        colors = _colors_for(by, parts)
        w = np.ones(len(names)) if weights is None else weights.to_numpy()
        table = (pd.DataFrame({"n": names, "s": split, "w": w}).groupby(["n", "s"], observed=False)["w"].sum()
                 .unstack(fill_value=0).reindex(index=order, columns=parts, fill_value=0).iloc[::-1])
        # One barh call for all segments, empty ones left out (a call per part made up to 9
        # containers of 16 patches each, most of them zero-wide, on every explorer redraw).
        widths = table.to_numpy(dtype=float)
        lefts = np.cumsum(widths, axis=1) - widths
        row, col = np.nonzero(widths > 0)
        ax.set_yticks(range(len(rows)), rows)
        if len(row):
            ax.barh(row, widths[row, col], left=lefts[row, col],
                    **{"color": [colors[parts[c]] for c in col], **kwargs})
        if "label" in kwargs:
            _legend(ax, title=_pretty(by))
        else:
            from matplotlib.patches import Patch

            _legend(ax, handles=[Patch(color=colors[part], label=_literal(part)) for part in parts],
                    title=_pretty(by))
    ax.set_xlabel("calls" + (" (estimated for all runs)" if weights is not None else ""))
    ax.xaxis.set_major_formatter(FuncFormatter(compact))
    ax.set_title("Tool calls" + (f" by {_pretty(by)}" if by else "") + note
                 + (" (95% intervals)" if note and by is None else ""))
    return ax


# -- scatter --------------------------------------------------------------------------------

def plot_duration_vs_tokens(
    runs: pd.DataFrame,
    *,
    by: str | None = "disposition",
    sample: int | None = 20_000,
    log: bool = True,
    top: int = 8,
    seed: int = 0,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Duration against total tokens, one point per run, coloured by a categorical ``by``
    (``"disposition"``: the disposition colours; its ``top`` values, then "other") or a numeric
    one (``"total_cost"``: a colour scale with a bar in USD). At most ``sample`` points are
    drawn (a reproducible random sample); ``kwargs`` go to ``Axes.scatter``. (``hue=`` is the
    old name of ``by``.)"""
    if "hue" in kwargs:
        warnings.warn("plot_duration_vs_tokens(hue=...) is now by=...", DeprecationWarning, stacklevel=2)
        by = kwargs.pop("hue")
    require_columns(runs, ["duration_ms", "total_tokens", *([by] if by else [])], "plot_duration_vs_tokens")
    ax = _axes(ax)
    x = float_values(runs["total_tokens"])
    y = float_values(runs["duration_ms"]) / 1000.0
    ok = ~np.isnan(x) & ~np.isnan(y) & ((x > 0) & (y > 0) if log else True)
    rows = np.flatnonzero(ok)
    if not len(rows):
        return _nothing(ax)
    if sample is not None and len(rows) > sample:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=sample, replace=False))
    options = {"s": 10, "alpha": 0.6, "linewidths": 0, **kwargs}
    if by is None:
        ax.scatter(x[rows], y[rows], **{"color": "#4c78a8", **options})
    elif pd.api.types.is_numeric_dtype(runs[by]) and not isinstance(runs[by].dtype, pd.CategoricalDtype):
        if "color" in options:
            raise ValueError(f"color= cannot colour points by the numbers in {by!r}; pass cmap= instead")
        values = float_values(runs[by])[rows]
        points = ax.scatter(x[rows], y[rows], c=values, **{"cmap": "viridis", **options})
        bar = _figure_of(ax).colorbar(points, ax=ax)
        bar.set_label(f"{_pretty(by)} (USD)" if "cost" in by else _pretty(by))
        if "cost" in by:
            bar.formatter = _usd_formatter(float(np.nanmax(values)) if len(values) else 0)
            bar.update_ticks()
    else:
        labels = _top_labels(runs[by].iloc[rows], None, top)
        order = _ordered(labels)
        colors = _colors_for(by, order)
        for key in order:
            pick = (labels == key).to_numpy()
            ax.scatter(x[rows][pick], y[rows][pick], **{"color": colors[key], "label": _literal(key), **options})
        _legend(ax, title=_pretty(by), markerscale=2)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # minor ticks would print as 2x10^0
            axis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(FuncFormatter(compact))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p=None: f"{v:g}"))
    ax.set_xlabel("tokens (input + output)")
    ax.set_ylabel("duration (s)")
    shown = f"\n({len(rows):,} of {int(ok.sum()):,} runs)" if len(rows) < ok.sum() else ""
    ax.set_title("Duration against tokens" + (f", by {_pretty(by)}" if by else "") + shown)
    return ax


# -- investigations -------------------------------------------------------------------------

_CHANGE_COLOR = "#333333"
_SIGNIFICANT, _NOT_SIGNIFICANT = "#e76f51", "#8d99ae"


def _mark_changes(ax: Axes, changes: pd.DataFrame | None) -> None:
    """Dashed lines at the ``at`` times of a :func:`change_points` table."""
    if changes is None or not len(changes):
        return
    for i, at in enumerate(pd.to_datetime(changes["at"])):
        ax.axvline(at, color=_CHANGE_COLOR, linestyle="--", linewidth=1.2,
                   label="change point" if i == 0 else None)


def _metric_value(metric: str, value: float) -> str:
    if not np.isfinite(value):
        return MISSING
    if metric.endswith("_rate") or metric.startswith("disposition:") or metric.startswith("share"):
        return PERCENT.format(value)
    if metric.endswith("_s"):
        return f"{value:,.1f} s"
    if "cost" in metric:
        return _text_usd(value)
    if "tokens" in metric:
        return WHOLE.format(value)
    return f"{value:,.3g}"


def plot_compare(table: pd.DataFrame, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """The rows of :func:`compare` (or :func:`compare_tools`) as changes relative to ``a``, in
    %, with their intervals: red where significant after Holm, grey where not; each row is
    labelled ``a -> b``. Rows without an interval (``runs``, the mix) are left out. A table
    estimated from a trace sample (its ``.attrs["note"]``, as :func:`compare_tools` sets it)
    says so in the title. ``kwargs`` go to ``Axes.errorbar``."""
    require_columns(table, ["a", "b", "difference", "ci_low", "ci_high", "significant"], "plot_compare")
    ax = _axes(ax)
    base = table["a"].abs().where(table["a"] != 0)
    rows = table[np.isfinite(table["ci_low"]) & np.isfinite(table["ci_high"]) & base.notna()]
    if not len(rows):
        return _nothing(ax, "nothing to compare")
    scale = 100 / rows["a"].abs()
    middle = (rows["difference"] * scale).to_numpy()
    low, high = (rows["ci_low"] * scale).to_numpy(), (rows["ci_high"] * scale).to_numpy()
    y = np.arange(len(rows))[::-1]
    significant = rows["significant"].to_numpy(dtype=bool)
    for flag, color, label in ((True, _SIGNIFICANT, "significant (Holm)"), (False, _NOT_SIGNIFICANT, "not significant")):
        pick = significant == flag
        if pick.any():
            options = {"fmt": "o", "capsize": 3, "markersize": 6, "color": color, "label": label, **kwargs}
            ax.errorbar(middle[pick], y[pick], xerr=[middle[pick] - low[pick], high[pick] - middle[pick]],
                        **options)
    ax.axvline(0, color="#777777", linewidth=1)
    ax.set_yticks(y, [_literal(k) for k in rows.index])
    span = max(float(np.nanmax(np.abs([low, high]))), 1.0)
    ax.set_xlim(-span * 1.15, span * 2.0)
    for yy, (metric, a, b) in zip(y, zip(rows.index, rows["a"], rows["b"])):
        ax.text(span * 1.2, yy, f"{_metric_value(str(metric), a)} → {_metric_value(str(metric), b)}",
                va="center", fontsize="small")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))  # "+100%+150%" would run together
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p=None: f"{v:+.0f}%"))
    ax.set_xlabel("change from a to b, relative to a (%), with 95% interval")
    note = table.attrs.get("note")
    ax.set_title("What changed from a to b" + (f"\n({note})" if note else ""))
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=2, frameon=False)
    return ax


def _short(path: str, width: int = 44) -> str:
    if len(path) <= width:
        return path
    keep = (width - 3) // 2
    return path[:keep] + " … " + path[-keep:]


def plot_tool_paths(
    tool_calls: pd.DataFrame,
    *,
    runs: pd.DataFrame | None = None,
    top: int = 10,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """The ``top`` commonest tool paths (ordered tool names of a run), as bars of runs; with
    ``runs``, split by how the runs ended (disposition colours) and labelled with their
    escalated share. With a trace sample (``runs`` with ``trace_weight``), the bars are
    :func:`tool_paths`' estimates for the window, labelled with their 95% intervals, and the
    title says from how many traced runs. ``kwargs`` go to ``Axes.barh``."""
    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise ValueError(f"top must be a whole number >= 1, got {top!r}")
    ax = _axes(ax)
    paths = run_paths(tool_calls, runs)
    if not len(paths):
        return _nothing(ax, "no tool calls")
    codes = paths.cat.codes.to_numpy().astype(np.int64)
    weights, estimated = None, ""
    if runs is not None and "trace_weight" in runs:  # a trace budget: weight traced runs to the window
        w = pd.to_numeric(runs["trace_weight"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if np.isnan(w).any():
            weights = np.where(np.isnan(w), 0.0, w)
            estimated = f", estimated from {int(np.count_nonzero(~np.isnan(w))):,} traced runs"
    counts = np.bincount(codes, weights=weights, minlength=len(paths.cat.categories))
    labels = [str(p) for p in paths.cat.categories]
    order = sorted(np.flatnonzero(counts), key=lambda k: (-counts[k], labels[k]))[:top]
    # Path labels as long as the figure has room for (a third of its width).
    width = max(24, int(_figure_of(ax).get_size_inches()[0] * 5))
    names = [_literal(_short(labels[k], width)) for k in order][::-1]
    y = np.arange(len(order))  # positions, not names: two long paths may shorten alike
    if runs is None:
        values = counts[order][::-1]
        ax.barh(y, values, **{"color": "#4c78a8", **kwargs})
        ends: np.ndarray = values
        notes = [""] * len(order)
        end_colors = ["#4c78a8"] * len(order)
    else:
        # Runs per path and disposition from the codes (a crosstab of a million strings is slow).
        disposition = runs["disposition"].astype("category")
        dcode = disposition.cat.codes.to_numpy().astype(np.int64)
        kinds = [str(d) for d in disposition.cat.categories] + ["(no disposition)"]
        dcode = np.where(dcode < 0, len(kinds) - 1, dcode)
        mix = np.bincount(codes * len(kinds) + dcode, weights=weights,
                          minlength=len(labels) * len(kinds)).reshape(-1, len(kinds))
        table = pd.DataFrame(mix[order[::-1]], columns=kinds)
        table = table.loc[:, table.sum() > 0]
        parts = [d for d in DISPOSITION_COLORS if d in table] + sorted(
            c for c in table if c not in DISPOSITION_COLORS and c != "(no disposition)")
        parts += ["(no disposition)"] if "(no disposition)" in table else []
        colors = {**disposition_colors(parts), "(no disposition)": OTHER_COLOR}
        left = np.zeros(len(table))
        end_colors = [OTHER_COLOR] * len(table)
        for part in parts:
            widths = table[part].to_numpy()
            ax.barh(y, widths, left=left, **{"color": colors[part], "label": _literal(part), **kwargs})
            left += widths
            end_colors = [colors[part] if w > 0 else c for w, c in zip(widths, end_colors)]
        ends = left
        decided = table.drop(columns="(no disposition)", errors="ignore").sum(axis=1)
        escalated = table["escalated"] if "escalated" in table else pd.Series(0, index=table.index)
        notes = [f" ({e / d:.0%} escalated)" if d else "" for e, d in zip(escalated, decided)]
        _legend(ax, title="disposition")
    ax.set_yticks(y, names)
    amounts = [f"{value:,.0f}" for value in ends]
    if weights is not None:  # estimates: with their intervals, as tool_paths gives them
        bounds = tool_paths(tool_calls, runs).set_index("path")
        if "runs_low" in bounds:
            shown = [labels[k] for k in order][::-1]
            low, high = bounds["runs_low"].reindex(shown), bounds["runs_high"].reindex(shown)
            amounts = [f"≈{value:,.0f} ({lo:,.0f}–{hi:,.0f})" for value, lo, hi in zip(ends, low, high)]
            notes = [note.replace(" (", ", ").rstrip(")") for note in notes]  # one pair of brackets
    _bar_labels(ax, ends, [f"{amount}{note}" for amount, note in zip(amounts, notes)], end_colors)
    ax.tick_params(axis="y", labelsize="small")
    ax.set_xlabel("runs")
    ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.set_title(f"The {len(order)} commonest tool paths\n(tool calls of a run, in order{estimated})")
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
    ax = _axes(ax)
    levels = metric_levels(runs, metric, freq=freq, by=by)
    if not len(levels):
        return _nothing(ax)
    if by:
        sizes = levels.groupby(by, observed=True)["runs"].sum().sort_values(ascending=False, kind="stable")
        groups = list(sizes.index[:top])
    else:
        groups = [None]
    colors = _colors_for(by, groups) if by else {None: "#4c78a8"}
    for group in groups:
        part = levels if group is None else levels[levels[by] == group]
        color = colors[group]
        label = "all runs" if group is None else _literal(group)
        options = {"marker": "o", "markersize": 3.5, "linewidth": 0.8, "alpha": 0.55, "color": color,
                   "label": label, **kwargs}
        ax.plot(part["at"], part["value"], **options)
        ax.plot(part["at"], part["level"], color=color, linewidth=2.2, drawstyle="steps-mid")
        moved = part["segment"].diff().fillna(0).to_numpy() != 0
        for at, before, after in zip(part["at"][moved], part["level"].shift(1)[moved], part["level"][moved]):
            ax.axvline(at, color=color, linestyle="--", linewidth=1.2)
            ax.annotate(f"{_metric_value(metric, before)} → {_metric_value(metric, after)}", (at, after),
                        xytext=(4, 6), textcoords="offset points", fontsize="small", color=color)
    if metric.endswith("_rate"):
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p=None: f"{v:.0%}"))
    elif "cost" in metric:
        ax.yaxis.set_major_formatter(_usd_formatter(float(levels["value"].max())))
    unit = {"_s": " (s)", "cost": " (USD)", "tokens": " (tokens)"}
    ax.set_ylabel(metric.replace("_", " ") + next((u for k, u in unit.items() if k in metric), ""))
    ax.set_title(f"{metric.replace('_', ' ').capitalize()} per {_per(freq)}"
                 + (f" by {_pretty(by)}" if by else "") + "\nlevels and change points")
    _legend(ax)
    _time_axis(ax)
    return ax
