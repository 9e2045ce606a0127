"""What every plot shares: the disposition colours, group labels ("other", "(no agent)"),
legends beside the Axes, bar labels that stay inside the figure, money and time axes. The
names are public inside :mod:`conduit_notebook.plots` only (this module is private to it)."""

from __future__ import annotations

import textwrap
import zlib
from collections.abc import Iterable, Sequence
from typing import Any, cast

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from ..analysis import float_values
from ..formatting import WHOLE, usd

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


def colors_for(column: str | None, keys: Sequence[Any]) -> dict[Any, Any]:
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


def target_axes(ax: Axes | None, figsize: tuple[float, float] | None = None) -> Axes:
    """``ax``, or the Axes of a new figure (``figsize``, else matplotlib's default size) as
    seaborn's figure-level functions make one: a second plot never draws over the first. The
    figure gets constrained layout unless it has a layout engine already, so that every label
    survives ``savefig`` without ``bbox_inches``."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    figure = ax.get_figure(root=True)
    if figure is not None and figure.get_layout_engine() is None:
        figure.set_layout_engine("constrained")
    return ax


#: A bucket with fewer runs than this share of the usual (median) bucket is greyed: a partial
#: last day of 6 runs is not a 0% or 50% day.
THIN_SHARE = 0.25
THIN_NOTE = "greyed: under a quarter of the usual runs"


def thin_buckets(runs: Any) -> np.ndarray:
    """Which buckets hold too few runs to read alone (see :data:`THIN_SHARE`)."""
    counts = np.asarray(runs, dtype=float)
    usual = float(np.median(counts[counts > 0])) if (counts > 0).any() else 0.0
    return counts < THIN_SHARE * usual


#: A bucket whose runs span less than this share of it (the window began or ended inside it).
PARTIAL_SHARE = 0.9
PARTIAL_NOTE = "greyed: a part of the {word} only"


def partial_buckets(starts: pd.Index, freq: str, first: pd.Timestamp, last: pd.Timestamp) -> np.ndarray:
    """Which buckets (their ``starts``, every ``freq``) the runs' span, ``first`` to ``last``
    created_at, covers less than :data:`PARTIAL_SHARE` of: the first and last of a window that
    began or ended inside them (today's hours still to come). A sum over such a bucket looks
    like a drop that is not there."""
    if not len(starts):
        return np.zeros(0, dtype=bool)
    begin = pd.DatetimeIndex(starts)
    end = begin + pd.tseries.frequencies.to_offset(freq)
    length = (end - begin).total_seconds().to_numpy()
    covered = ((np.minimum(end.asi8, pd.Timestamp(last).value) - np.maximum(begin.asi8, pd.Timestamp(first).value))
               / 1e9).clip(min=0)
    return covered < PARTIAL_SHARE * length


def grey_buckets(ax: Axes, starts: pd.Index, freq: str, greyed: np.ndarray, *, points: bool = False) -> None:
    """Veil the ``greyed`` buckets (white, as the dispositions chart greys its thin ones), under
    the spines: the bucket's span for bars; for a line or area through the buckets' starts
    (``points``), the segments to its neighbours, which its value bends."""
    step = pd.tseries.frequencies.to_offset(freq)
    at = list(pd.DatetimeIndex(starts))
    for i in (int(k) for k in np.flatnonzero(greyed)):
        if points:
            low, high = at[max(i - 1, 0)], at[min(i + 1, len(at) - 1)]
        else:
            low, high = at[i], at[i] + step
        if points:  # a patch: an area chart's own artists are its collections
            ax.axvspan(cast(Any, low), cast(Any, high), color="white", alpha=0.6, linewidth=0, zorder=1.5)
        else:  # a collection: a bar chart's patches stay its bars, one per bucket and group
            ax.fill_between(mdates.date2num([low, high]), 0, 1, transform=ax.get_xaxis_transform(), color="white",
                            alpha=0.6, linewidth=0, zorder=1.5)


def log_ticks(axis: Any, low: float, high: float, formatter: Any) -> None:
    """Enough labelled ticks on a log ``axis`` for data from ``low`` to ``high``: 1-2-5 within a
    decade or two, every digit within less than one (decades alone left one label, "10")."""
    decades = np.log10(high / low) if low > 0 and high > low else 0.0
    subs: Any = (1.0,) if decades > 2.5 else (1.0, 2.0, 5.0) if decades > 0.8 else np.arange(1.0, 10.0)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_minor_formatter(NullFormatter())
    axis.set_major_formatter(formatter)


def wrap_title(ax: Axes, title: str, *, size: float = 12.0) -> None:
    """``title``, its lines broken between words where they would be wider than the Axes
    usually is (two thirds of the figure: the title is centred on the Axes, not the figure)."""
    width = figure_of(ax).get_size_inches()[0] * 0.66
    chars = max(20, int(width * 72 / (size * 0.6)))
    lines = [textwrap.fill(line, chars, break_long_words=False) for line in title.split("\n")]
    ax.set_title("\n".join(lines))


def literal(text: Any) -> str:
    """A name from the data as matplotlib must draw it: a '$' is a dollar, not mathtext."""
    return str(text).replace("$", r"\$")


def side_legend(ax: Axes, **kwargs: Any) -> Any:
    """A legend beside the Axes, on the right, where it covers no bar and no label."""
    options = {"fontsize": "small", "loc": "upper left", "bbox_to_anchor": (1.01, 1.0),
               "borderaxespad": 0.0, "title_fontsize": "small", **kwargs}
    if "title" in options and options["title"] is not None:
        options["title"] = literal(options["title"])
    return ax.legend(**options)


def figure_of(ax: Axes) -> Figure:
    """The figure ``ax`` is drawn on (the root one, when it is on a subfigure)."""
    figure = ax.get_figure(root=True)
    if figure is None:
        raise ValueError("ax must be an Axes on a figure")
    return figure


def draw_nothing(ax: Axes, message: str = "no runs") -> Axes:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#777777",
            fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def thousands(value: float, _pos: Any = None) -> str:
    return WHOLE.format(value)


def usd_formatter(largest: float) -> FuncFormatter:
    # Few digits: "$10.00$12.00" side by side on a narrow axis would run together.
    decimals = 0 if largest >= 10 else 1 if largest >= 1 else 2 if largest >= 0.1 else 3
    return FuncFormatter(lambda value, _pos=None: usd(value, decimals))


def _missing_label(column: Any) -> str:
    return f"(no {pretty_name(column)})" if column else "(none)"


def pretty_name(column: Any) -> str:
    """A column name as a title says it: agent_name -> agent, disposition_reason -> disposition reason."""
    return {"agent_name": "agent", "agent_id": "agent id"}.get(column, str(column).replace("_", " "))


_FREQ_WORDS = {"h": "hour", "H": "hour", "D": "day", "W": "week", "MS": "month", "ME": "month", "M": "month"}


def freq_word(freq: str) -> str:
    return _FREQ_WORDS.get(freq, f"{freq} bucket")


def text_usd(value: float) -> str:
    """Dollars in a text label: escaped, as two '$' would start matplotlib's mathtext."""
    return usd(value).replace("$", r"\$")


def top_labels(keys: pd.Series, weights: pd.Series | None, top: int) -> pd.Series:
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
    labels = pd.Categorical.from_codes(mapping[codes], categories=pd.Index(categories))
    return pd.Series(labels, index=keys.index, name=keys.name)


def one_group(index: pd.Index) -> pd.Series:
    """One group for everything, as a categorical like :func:`top_labels` gives."""
    return pd.Series(pd.Categorical.from_codes(np.zeros(len(index), dtype=np.int8), pd.Index(["all runs"])),
                     index=index)


def ordered_groups(labels: pd.Series, weights: pd.Series | None = None) -> list[Any]:
    """Groups heaviest first, "other" last."""
    w = None if weights is None else np.nan_to_num(float_values(weights.reindex(labels.index)))
    codes = labels.cat.codes.to_numpy()
    totals = np.bincount(codes[codes >= 0], weights=None if w is None else w[codes >= 0],
                         minlength=len(labels.cat.categories))
    present = [i for i in np.argsort(-totals, kind="stable") if totals[i] > 0 or w is not None]
    order = [labels.cat.categories[i] for i in present if labels.cat.categories[i] != OTHER]
    return order + ([OTHER] if OTHER in labels.cat.categories else [])


def check_freq(freq: str) -> None:
    try:
        pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        raise ValueError(f"freq must be a pandas frequency such as 'h', 'D', 'W'; got {freq!r}") from None


def time_axis(ax: Axes, tz: Any = None) -> None:
    """Concise dates, in ``tz`` (UTC by default): no rotated, overlapping labels."""
    locator = mdates.AutoDateLocator(tz=tz, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=tz))


def bar_labels(ax: Axes, values: np.ndarray, notes: Sequence[str], colors: Sequence[Any],
                ends: np.ndarray | None = None, inside_ok: bool = True) -> float:
    """A label at the end of each horizontal bar: inside the bar when it fits there (and
    ``inside_ok``: a bar of many colours takes its label after it), else after
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
    figure = figure_of(ax)
    ticks = max((max(map(len, t.get_text().split("\n"))) * 0.6 * float(t.get_fontsize()) / 72 for t in ax.get_yticklabels()), default=0.0)
    legend = 1.6 if ax.get_legend() is not None else 0.0
    span = figure.get_size_inches()[0] * ax.get_position().width * 0.95 / 0.775
    axes_inches = max(span - ticks - legend, 1.0)
    needed = [min(len(note) * char_inches / axes_inches, 0.9) for note in notes]
    ends = values if ends is None else ends
    shares = [float(v) / largest if np.isfinite(v) else 0.0 for v in ends]
    reach, inside = 1.03, [True] * len(notes)
    for _ in range(3):  # a wider axis makes bars shorter: settle which labels fit inside
        inside = [inside_ok and share / reach * 0.95 >= need for share, need in zip(shares, needed, strict=False)]
        wanted = max([1.03] + [float(v) / largest / (1 - need) * 1.02
                               for v, need, i in zip(values, needed, inside, strict=False) if not i and np.isfinite(v)])
        if wanted <= reach:
            break
        reach = min(wanted, 3.0)
    for y, (value, end, note, color, fits) in enumerate(zip(values, ends, notes, colors, inside, strict=False)):
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


def bar_width(index: pd.Index) -> float:
    if len(index) < 2:
        return 0.8
    step = (index[1] - index[0]) / pd.Timedelta(days=1)
    return float(step) * 0.9


_CHANGE_COLOR = "#333333"


def mark_changes(ax: Axes, changes: pd.DataFrame | None) -> None:
    """Dashed lines at the ``at`` times of a :func:`change_points` table."""
    if changes is None or not len(changes):
        return
    for i, at in enumerate(pd.to_datetime(changes["at"])):
        ax.axvline(cast(Any, at), color=_CHANGE_COLOR, linestyle="--", linewidth=1.2,
                   label="change point" if i == 0 else None)
