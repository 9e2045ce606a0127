"""Tool use: calls per tool (:func:`plot_tool_usage`) and the commonest tool paths
(:func:`plot_tool_paths`).

With a trace sample, the weights, the traced runs and the note come from the one sample-design
object, :class:`conduit_notebook.stats.design.TraceSample`, as in the table functions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, cast

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import ScaledTranslation, blended_transform_factory

from ..analysis import require_columns
from ..formatting import compact
from ..investigate import run_paths, tool_paths
from ..lookup import call_runs
from ..sampling import trace_failures
from ..stats.design import TraceSample
from ._style import (
    DISPOSITION_COLORS,
    OTHER_COLOR,
    bar_labels,
    colors_for,
    disposition_colors,
    draw_nothing,
    figure_of,
    literal,
    ordered_groups,
    pretty_name,
    side_legend,
    target_axes,
    thousands,
    top_labels,
    wrap_title,
)

# -- tools ----------------------------------------------------------------------------------

def _run_weights(tool_calls: pd.DataFrame, runs: pd.DataFrame | None) -> tuple[pd.Series | None, str]:
    """Each call's weight (its run's ``trace_weight``) and a title note, when the runs' traces
    are a sample; (None, "") when they are all there."""
    if runs is None or "trace_weight" not in runs:
        return None, ""
    design = TraceSample.from_runs(runs)
    if not design.is_sample:  # as tool_stats: every trace there
        return None, ""
    require_columns(tool_calls, ["agent_run_id"], "plot_tool_usage")
    # Calls of runs outside ``runs`` and of hand-picked traces (weight 0) weigh nothing: the
    # bars are sum(w * calls), the estimate tool_stats gives and its intervals are around.
    row = call_runs(tool_calls, runs)
    weights = pd.Series(np.where(row >= 0, np.asarray(design.weight, dtype=float)[np.maximum(row, 0)], 0.0),
                        index=tool_calls.index)
    traced = design.traced
    failed, _ = trace_failures(runs)
    return weights, (f"\nestimated from {traced:,} traced runs of {len(runs):,}"
                     + (f" ({failed:,} traces failed)" if failed else ""))


def plot_tool_usage(
    tool_calls: pd.DataFrame,
    runs: pd.DataFrame | None = None,
    *,
    by: str | None = None,
    top: int = 15,
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
    ax = target_axes(ax)
    if tool_calls.empty:
        return draw_nothing(ax, "no tool calls")
    weights, note = _run_weights(tool_calls, runs)
    names = top_labels(tool_calls["name"], weights, top)
    order = ordered_groups(names, weights)
    rows = [literal(n) for n in order][::-1]
    if by is None:
        if weights is None:
            counts = names.value_counts().reindex(order).to_numpy()[::-1]
        else:
            counts = weights.groupby(names, observed=False).sum().reindex(order).to_numpy()[::-1]
        xerr = None
        if weights is not None:
            from ..analysis import tool_stats_estimated

            est = tool_stats_estimated(tool_calls, cast(pd.DataFrame, runs)).reindex([str(n) for n in order][::-1])
            low = np.nan_to_num(counts - est["calls_low"].to_numpy(), nan=0.0).clip(0)
            high = np.nan_to_num(est["calls_high"].to_numpy() - counts, nan=0.0).clip(0)
            xerr = np.vstack([low, high])
        ax.barh(rows, counts, **{"color": "#4c78a8", "xerr": xerr, "ecolor": "#333333", "capsize": 2, **kwargs})
        for y, value in enumerate(counts):
            ax.text(value + (0 if xerr is None else xerr[1][y]), y,
                    f"  {'≈' if weights is not None else ''}{value:,.0f}", va="center", fontsize="small")
        ax.set_xlim(0, float((counts + (0 if xerr is None else xerr[1])).max()) * 1.18)
    else:
        split = top_labels(tool_calls[by], None, top_by)
        parts = ordered_groups(split)
        colors = colors_for(by, parts)
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
            side_legend(ax, title=pretty_name(by))
        else:
            from matplotlib.patches import Patch

            side_legend(ax, handles=[Patch(color=colors[part], label=literal(part)) for part in parts],
                    title=pretty_name(by))
    ax.set_xlabel("calls" + (" (estimated for all runs)" if weights is not None else ""))
    ax.xaxis.set_major_formatter(FuncFormatter(compact))
    wrap_title(ax, "Tool calls" + (f" by {pretty_name(by)}" if by else "")
               + (" (95% intervals)" if note and by is None else "") + note)
    return ax



def path_labels(paths: Sequence[str], width: int, lines: int = 2) -> list[str]:
    """Tool paths (``"a > b > c"``) as tick labels of at most ``lines`` (1 or 2) lines of about
    ``width`` characters: whole tool names only, the middle elided as ``(k more)``; where two paths
    would read alike, a number tells them apart. Only a tool name longer than a line is cut."""
    labels = [_path_label(path, width, lines) for path in paths]
    alike = Counter(labels)
    seen: Counter[str] = Counter()
    for i, label in enumerate(list(labels)):
        if alike[label] > 1:
            seen[label] += 1
            labels[i] = f"{label} ({seen[label]})"
    return labels


def _path_label(path: str, width: int, lines: int) -> str:
    if len(path) <= width:
        return path
    steps = [s if len(s) <= width - 4 else s[: width - 5] + "…" for s in path.split(" > ")]
    front, back = [steps[0]], [steps[-1]] if len(steps) > 1 else []

    def fits(front: list[str], back: list[str]) -> bool:
        if lines == 2:
            return len(" > ".join(front)) + 4 <= width and len(" > ".join(back)) + 12 <= width
        return len(" > ".join(front + back)) + 14 <= width

    # Take whole names from either end, in turn, while the line(s) have room.
    i, j = 1, len(steps) - 1
    while i < j:
        grown = False
        if fits([*front, steps[i]], back):
            front.append(steps[i])
            i, grown = i + 1, True
        if i < j and fits(front, [steps[j - 1], *back]):
            back.insert(0, steps[j - 1])
            j, grown = j - 1, True
        if not grown:
            break
    hidden, sep = j - i, "\n" if lines == 2 else " "
    if not back:
        return " > ".join(front)
    if hidden == 0:
        return " > ".join(front) + " >" + sep + " > ".join(back)
    return " > ".join(front) + (" > …\n" if lines == 2 else " > ") + f"({hidden} more) > " + " > ".join(back)


def plot_tool_paths(
    tool_calls: pd.DataFrame,
    runs: pd.DataFrame | None = None,
    *,
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
    paths = run_paths(tool_calls, runs)
    if not len(paths):
        return draw_nothing(target_axes(ax), "no tool calls")
    codes = paths.cat.codes.to_numpy().astype(np.int64)
    weights, estimated = None, ""
    if runs is not None and "trace_weight" in runs and runs["trace_weight"].isna().any():
        # A trace budget: the random sample's runs weighted to the window (hand-picked: 0).
        design = TraceSample.from_runs(runs)
        weights, estimated = design.weight, f", {design.note}"
    counts = np.bincount(codes, weights=weights, minlength=len(paths.cat.categories))
    labels = [str(p) for p in paths.cat.categories]
    order = sorted(np.flatnonzero(counts), key=lambda k: (-counts[k], labels[k]))[:top]
    # A figure of its own is as tall as its two-line labels need.
    ax = target_axes(ax, figsize=(plt.rcParams["figure.figsize"][0], 2.2 + 0.42 * len(order)))
    # Path labels as long as the figure has room for (a third of its width), on two lines
    # where each bar has the height for them.
    size = figure_of(ax).get_size_inches()
    width = max(24, int(size[0] * 5))
    lines = 2 if size[1] * ax.get_position().height * 0.75 / max(len(order), 1) >= 0.32 else 1
    names = [literal(name) for name in path_labels([labels[k] for k in order], width, lines)][::-1]
    y = np.arange(len(order))  # positions, not names: two long paths may shorten alike
    if runs is None:
        ends: np.ndarray = counts[order][::-1]
        ax.barh(y, ends, **{"color": "#4c78a8", **kwargs})
        notes, end_colors = [""] * len(order), ["#4c78a8"] * len(order)
    else:
        ends, notes, end_colors = _disposition_bars(ax, runs, codes, weights, order, len(labels), kwargs)
    ax.set_yticks(y, names)
    ax.tick_params(axis="y", labelsize="small")
    amounts = [f"{value:,.0f}" for value in ends]
    if weights is not None:  # estimates: with their intervals, as tool_paths gives them
        bounds = tool_paths(tool_calls, runs).set_index("path")
        if "runs_low" in bounds:
            shown = [labels[k] for k in order][::-1]
            low, high = bounds["runs_low"].reindex(shown), bounds["runs_high"].reindex(shown)
            amounts = [f"≈{value:,.0f} ({lo:,.0f}–{hi:,.0f})" for value, lo, hi in zip(ends, low, high, strict=False)]
            notes = [note.replace(" (", ", ").rstrip(")") for note in notes]  # one pair of brackets
    bar_labels(ax, ends, [f"{amount}{note}" for amount, note in zip(amounts, notes, strict=False)], end_colors,
               inside_ok=runs is None)
    ax.set_xlabel("runs")
    ax.xaxis.set_major_formatter(FuncFormatter(thousands))
    if runs is not None:  # below the x axis label: beside the bars it covered their labels
        figure = figure_of(ax)  # centred on the figure: the Axes sits right of long path names
        below = (blended_transform_factory(figure.transFigure, ax.transAxes)
                 + ScaledTranslation(0, -0.55, figure.dpi_scale_trans))
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below, ncols=3,
                  fontsize="small", frameon=False)
    wrap_title(ax, f"The {len(order)} commonest tool paths\n(tool calls of a run, in order{estimated})")
    return ax


def _disposition_bars(ax: Axes, runs: pd.DataFrame, codes: np.ndarray, weights: np.ndarray | None,
                      order: list[Any], paths: int, kwargs: dict[str, Any]) -> tuple[np.ndarray, list[str], list[Any]]:
    """Bars of the paths in ``order`` stacked by disposition: their ends, notes (the escalated
    share) and the colour each bar ends with."""
    # Runs per path and disposition from the codes (a crosstab of a million strings is slow).
    disposition = runs["disposition"].astype("category")
    dcode = disposition.cat.codes.to_numpy().astype(np.int64)
    kinds = [str(d) for d in disposition.cat.categories] + ["(no disposition)"]
    dcode = np.where(dcode < 0, len(kinds) - 1, dcode)
    mix = np.bincount(codes * len(kinds) + dcode, weights=weights,
                      minlength=paths * len(kinds)).reshape(-1, len(kinds))
    table = pd.DataFrame(mix[order[::-1]], columns=kinds)
    table = table.loc[:, table.sum() > 0]
    parts = [d for d in DISPOSITION_COLORS if d in table] + sorted(
        str(c) for c in table if c not in DISPOSITION_COLORS and c != "(no disposition)")
    parts += ["(no disposition)"] if "(no disposition)" in table else []
    colors = {**disposition_colors(parts), "(no disposition)": OTHER_COLOR}
    left = np.zeros(len(table))
    end_colors = [OTHER_COLOR] * len(table)
    y = np.arange(len(table))
    for part in parts:
        widths = table[part].to_numpy()
        ax.barh(y, widths, left=left, **{"color": colors[part], "label": literal(part), **kwargs})
        left += widths
        end_colors = [colors[part] if w > 0 else c for w, c in zip(widths, end_colors, strict=False)]
    decided = table.drop(columns="(no disposition)", errors="ignore").sum(axis=1)
    escalated = table["escalated"] if "escalated" in table else pd.Series(0, index=table.index)
    notes = [f" ({e / d:.0%} escalated)" if d else "" for e, d in zip(escalated, decided, strict=False)]
    return left, notes, end_colors
