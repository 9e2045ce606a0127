"""How runs ended over time: :func:`plot_dispositions`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import ScaledTranslation

from ..analysis import in_time_zone, require_columns
from ..formatting import compact
from ._style import (
    THIN_NOTE,
    bar_width,
    check_freq,
    disposition_colors,
    draw_nothing,
    figure_of,
    freq_word,
    literal,
    mark_changes,
    ordered_groups,
    side_legend,
    target_axes,
    thin_buckets,
    thousands,
    time_axis,
    top_labels,
)

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
    bucket, and buckets with under a quarter of the median count are greyed out, so that a
    6-run day does not read like a 500-run day (drawn again on the same Axes, cleared, the plot
    reuses that right axis). ``colors=`` (a mapping from disposition to
    colour, or a list in legend order) replaces the disposition colours; other ``kwargs`` go to
    ``Axes.stackplot`` or ``Axes.bar``."""
    require_columns(runs, ["disposition", "created_at"], "plot_dispositions")
    check_freq(freq)
    ax = target_axes(ax)
    has = runs["disposition"].notna() & runs["created_at"].notna()
    if not has.any():
        return draw_nothing(ax, "no runs with a disposition")
    labels = top_labels(runs.loc[has, "disposition"], None, top)
    order = ordered_groups(labels)
    colors = disposition_colors(order)
    custom = kwargs.pop("colors", None)
    if isinstance(custom, Mapping):
        colors.update({k: v for k, v in custom.items() if k in colors})
    elif custom is not None:
        colors.update(zip(order, custom, strict=False))
    counts = (pd.DataFrame({"t": in_time_zone(runs.loc[has, "created_at"], tz), "d": labels})
              .groupby([pd.Grouper(key="t", freq=freq, label="left", closed="left"), "d"], observed=False).size()
              .unstack(fill_value=0)
              .reindex(columns=order, fill_value=0))
    names = [literal(c) for c in order]
    if normalize:
        _draw_shares(ax, counts, order, names, colors, freq, changes, kwargs)
    else:
        _draw_counts(ax, counts, order, names, colors, freq, changes, kwargs)
    time_axis(ax, tz)
    return ax


def _draw_shares(ax: Axes, counts: pd.DataFrame, order: list[Any], names: list[str], colors: dict[Any, Any],
                 freq: str, changes: pd.DataFrame | None, kwargs: dict[str, Any]) -> None:
    """Stacked shares per bucket, the runs per bucket on a right axis, thin buckets greyed."""
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
    thin = thin_buckets(totals)
    for start in totals.index[thin]:
        ax.axvspan(start, start + width, color="white", alpha=0.6, linewidth=0)
    weight = _right_axis(ax)
    weight.step(edges, np.append(totals.to_numpy(), totals.to_numpy()[-1]), where="post",
                color="#222222", linewidth=1.2, label="runs (right axis)")
    weight.set_ylim(0, float(totals.max()) * 1.15 if len(totals) else 1)
    weight.yaxis.set_major_formatter(FuncFormatter(compact))
    mark_changes(ax, changes)
    handles, texts = ax.get_legend_handles_labels()
    line, _ = weight.get_legend_handles_labels()
    ax.set_title(f"Dispositions per {freq_word(freq)}, share of runs"
                 + (f"\n({THIN_NOTE})" if thin.any() else ""))
    # Beside the right axis's tick labels (the runs), a fixed distance from the Axes.
    beside = ax.transAxes + ScaledTranslation(0.5, 0, figure_of(ax).dpi_scale_trans)
    side_legend(ax, handles=handles + line, labels=texts + [f"runs per {freq_word(freq)} (right axis)"],
            bbox_to_anchor=(1.0, 1.0), bbox_transform=beside)


def _draw_counts(ax: Axes, counts: pd.DataFrame, order: list[Any], names: list[str], colors: dict[Any, Any],
                 freq: str, changes: pd.DataFrame | None, kwargs: dict[str, Any]) -> None:
    """Stacked bars of runs per bucket and disposition."""
    bottom = np.zeros(len(counts))
    width = cast(Any, bar_width(counts.index))
    for c, name in zip(order, names, strict=False):
        ax.bar(counts.index, counts[c], bottom=bottom,
               **{"width": width, "color": colors[c], "label": name, "align": "edge", **kwargs})
        bottom += counts[c].to_numpy()
    ax.set_ylabel("runs")
    ax.yaxis.set_major_formatter(FuncFormatter(thousands))
    mark_changes(ax, changes)
    ax.set_title(f"Dispositions per {freq_word(freq)}")
    side_legend(ax)
