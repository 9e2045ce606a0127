"""RunExplorer: filters over tabs of tables and plots, a run list and an inspector."""

from __future__ import annotations

import functools
import gc
import html
from collections.abc import Callable
from typing import Any, cast

import ipywidgets as w
import numpy as np
import pandas as pd
import pyarrow as pa
from IPython.display import HTML, display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import PlaceHolderLayoutEngine

from .. import plots
from ..analysis import filter_runs, summarize
from ..conversation_outcomes import outcomes
from ..formatting import SUMMARY_FORMATS, format_table
from ..lookup import call_runs
from ..plots import plot_escalation_quality
from .common import ErrorArea, RunsAndCalls, frames_parts, guarded, messages_fetcher
from .explorer_png import figure_png, without_layout_engine
from .inspector import RunInspector

__all__ = ["RunExplorer"]

_RUN_LIST_SIZE = 200


def _collector_paused(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``method`` with the garbage collector paused. A redraw makes and drops tens of
    thousands of matplotlib objects, many in reference cycles: with the collector on, its
    young collections during a redraw moved the figure's artists into the oldest generation,
    and every 25-35 changes a full collection ran inside a change. Paused, a change's garbage
    is left to the next young collection after it, and full collections come far more
    rarely (none in the benchmark's 102 changes)."""
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not gc.isenabled():  # paused already (an outer call), or by the user
            return method(*args, **kwargs)
        gc.disable()
        try:
            return method(*args, **kwargs)
        finally:
            gc.enable()
    return wrapper


class RunExplorer(w.VBox, ErrorArea):
    """Filters (agents, statuses, dispositions, reasons, dates, duration, text in the response,
    reflection and error) over tabs: a summary table, duration, tokens, cost, dispositions over
    time, tools, and what happened after the runs (``After``: resolutions that did not hold and,
    with ``escalations=`` from :func:`fetch_escalations`, escalations dismissed; see
    :func:`escalation_quality`). Every tab follows the filters; ``.filtered`` and ``.filtered_tool_calls``
    are the current selection. Picking a run in the list opens it in the inspector below.

    A filter change reads only the columns it filters and draws on. Building the explorer calls
    ``gc.freeze()``: the objects alive then (the frames' above all) are left out of later full
    garbage collections, which would otherwise stall a filter change on a big workspace; a
    filter change runs with the collector paused (it is on again after, unless you had turned
    it off)."""

    TABS = ("Summary", "Duration", "Tokens", "Cost", "Dispositions", "Tools", "After")

    def __init__(self, frames: Any, *, figsize: tuple[float, float] = (9, 4),
                 escalations: pd.DataFrame | None = None) -> None:
        self._runs, self._calls = frames_parts(frames)
        self._escalations = escalations
        self._outcomes: pd.DataFrame | None = None  # outcomes() of every run, on the After tab's first draw
        self._fetch_trace = getattr(frames, "fetch_trace", None)
        self._fetch_messages = messages_fetcher(frames)
        self._figsize = figsize
        runs = self._runs

        self._make_filters(runs)
        self._count = w.HTML()
        self._errors = w.HTML()
        self._outputs = {name: w.Output() for name in self.TABS}
        self._tabs = w.Tab(children=[self._outputs[n] for n in self.TABS])
        for i, name in enumerate(self.TABS):
            self._tabs.set_title(i, name)
        self._run_list = w.Select(options=[], rows=8, layout=w.Layout(width="100%"))
        self._run_list_title = w.HTML()
        self._inspector_box = w.VBox()
        self._inspector: RunInspector | None = None
        self._stale: set[str] = set(self.TABS)
        #: What each tab shows now: the summary table, or the plot's Figure.
        self.rendered: dict[str, Any] = {}
        self._figures: dict[str, Any] = {}
        self._fitted: set[str] = set()  # tabs whose figure has margins fitted to its labels
        # A filter change works on masks and on the columns the tabs draw; the full filtered
        # frames are taken only when asked for (.filtered, .filtered_tool_calls, the inspector).
        self._mask = np.ones(len(runs), dtype=bool)
        self._calls_mask = np.ones(len(self._calls), dtype=bool)
        self._taken: dict[str, pd.DataFrame] = {}
        self._light_runs, self._light_calls = _light(runs), _light(self._calls)
        self._call_run = call_runs(self._calls, runs)

        for control in (self._agents, self._statuses, self._dispositions, self._reasons, self._start,
                        self._end, self._duration, self._text):
            control.observe(self._on_filter_change, names="value")
        self._tabs.observe(self._on_tab_change, names="selected_index")
        self._run_list.observe(self._on_run_pick, names="value")

        filters, ranges = self._filter_rows()
        super().__init__([filters, ranges, self._errors, self._tabs, self._run_list_title, self._run_list,
                          self._inspector_box])
        self.add_class("conduit-run-explorer")
        self.refresh()
        _settle_garbage_collector()

    def _make_filters(self, runs: pd.DataFrame) -> None:
        """The filters: agents, statuses, dispositions, reasons, dates, duration and text."""
        def options(column: str) -> list[str]:
            return sorted(str(v) for v in runs[column].dropna().unique())

        layout = w.Layout(width="190px", height="110px")
        self._agents = w.SelectMultiple(options=options("agent_name") or options("agent_id"),
                                        description="", layout=layout)
        self._statuses = w.SelectMultiple(options=options("status"), layout=layout)
        self._dispositions = w.SelectMultiple(options=options("disposition"), layout=layout)
        self._reasons = w.SelectMultiple(options=options("disposition_reason"), layout=w.Layout(width="260px", height="110px"))
        created = runs["created_at"].dropna()
        first = created.min().date() if len(created) else None
        last = created.max().date() if len(created) else None
        self._start = w.DatePicker(value=first, description="from", layout=w.Layout(width="210px"))
        self._end = w.DatePicker(value=last, description="to", layout=w.Layout(width="210px"))
        seconds = runs["duration_ms"].dropna().astype(float) / 1000
        top = float(seconds.max()) if len(seconds) else 1.0
        self._duration = w.FloatRangeSlider(value=(0.0, top), min=0.0, max=max(top, 1.0), step=0.1,
                                            description="duration s", readout_format=".1f",
                                            layout=w.Layout(width="420px"))
        self._text = w.Text(placeholder="search response, reflection, error", description="text",
                            layout=w.Layout(width="420px"))

    def _filter_rows(self) -> tuple[w.HBox, w.HBox]:
        """The filters laid out: the lists in a row, then the dates, duration and text."""
        def column(title: str, control: w.Widget) -> w.VBox:
            return w.VBox([w.HTML(f"<b>{title}</b>"), control])

        # A reason is cut at the list's width: the whole text, the ones picked first, below it.
        self._reasons_full = w.HTML(layout=w.Layout(width="260px"))
        self._reasons.observe(self._on_reasons_change, names="value")
        self._on_reasons_change()
        filters = w.HBox([column("agents", self._agents), column("statuses", self._statuses),
                          column("dispositions", self._dispositions),
                          w.VBox([w.HTML("<b>reasons</b>"), self._reasons, self._reasons_full])])
        ranges = w.HBox([w.VBox([w.HBox([self._start, self._end]), self._duration, self._text]), self._count])
        return filters, ranges

    @property
    def filtered(self) -> pd.DataFrame:
        """The runs the filters select, every column."""
        if "runs" not in self._taken:
            self._taken["runs"] = self._runs[self._mask]
        return self._taken["runs"]

    @property
    def filtered_tool_calls(self) -> pd.DataFrame:
        """The tool calls of :attr:`filtered`, every column."""
        if "calls" not in self._taken:
            self._taken["calls"] = self._calls[self._calls_mask]
        return self._taken["calls"]

    @property
    def controls(self) -> dict[str, w.Widget]:
        """The filters and pickers by name (``agents``, ``statuses``, ``dispositions``,
        ``reasons``, ``start``, ``end``, ``duration``, ``text``, ``tabs``, ``runs``) and what
        the explorer shows (``count``, ``runs_title``, ``errors``, ``reasons_full``: the reasons'
        whole text): set ``.value`` here, as a
        user would."""
        return {"agents": self._agents, "statuses": self._statuses, "dispositions": self._dispositions,
                "reasons": self._reasons, "start": self._start, "end": self._end, "duration": self._duration,
                "text": self._text, "tabs": self._tabs, "runs": self._run_list, "count": self._count,
                "runs_title": self._run_list_title, "errors": self._errors, "reasons_full": self._reasons_full}

    @property
    def stale_tabs(self) -> frozenset[str]:
        """The tabs a filter change has left to redraw: each is drawn again when it is opened
        (drawing only the tab in view keeps a filter change quick)."""
        return frozenset(self._stale)

    @property
    def inspector(self) -> RunInspector | None:
        """The inspector of the run picked last (None before any)."""
        return self._inspector

    # -- the filter, as a plain function of the controls --------------------------------------

    def _criteria(self) -> dict[str, Any]:
        seconds = self._duration.value
        full = (self._duration.min, self._duration.max)
        return {
            "agents": list(self._agents.value), "statuses": list(self._statuses.value),
            "dispositions": list(self._dispositions.value), "reasons": list(self._reasons.value),
            "since": self._start.value, "until": self._end.value,
            # The slider's full span means "no filter": runs without a duration stay.
            "duration_s": None if tuple(seconds) == full else tuple(seconds),
            "text": self._text.value.strip() or None,
        }

    @guarded
    @_collector_paused
    def refresh(self) -> None:
        """Apply the filters and redraw the visible tab (the others when they are opened)."""
        self._clear_error()
        criteria = self._criteria()
        self._mask = self._filter_mask(criteria)
        self._calls_mask = (np.ones(len(self._calls), dtype=bool) if self._mask.all()
                            else (self._call_run >= 0) & self._mask[self._call_run])
        self._taken = {}
        self._count.value = (f"<div style='padding:8px 16px'><b>{int(self._mask.sum()):,}</b> of "
                             f"{len(self._runs):,} runs<br>{int(self._calls_mask.sum()):,} tool calls</div>")
        positions = np.flatnonzero(self._mask)
        # As int64 nanoseconds: to_numpy() of tz-aware times makes 100,000 Timestamp objects.
        created = self._runs["created_at"].array.asi8[positions]
        picked = positions[np.argsort(created, kind="stable")[::-1][:_RUN_LIST_SIZE]]
        newest = self._runs[["created_at", "agent_name", "agent_id", "status", "disposition", "id"]].iloc[picked]
        shown = (f"the {len(picked):,} newest of {len(positions):,} (narrow the filters, or "
                 "<code>select_run(id)</code>, for the others)" if len(picked) < len(positions)
                 else f"all {len(picked):,}, newest first")
        self._run_list_title.value = f"<b>Runs</b>: {shown}; pick one to inspect"
        self._run_list.unobserve(self._on_run_pick, names="value")
        self._run_list.options = [
            (f"{row.created_at:%Y-%m-%d %H:%M}  {row.agent_name if pd.notna(row.agent_name) else row.agent_id}  "
             f"{row.status}  {row.disposition if pd.notna(row.disposition) else '–'}  {row.id}", row.id)
            for row in cast(Any, newest.itertuples())]
        self._run_list.value = None
        self._run_list.observe(self._on_run_pick, names="value")
        self._follow_inspector([value for _label, value in self._run_list.options], len(positions))
        self._stale = set(self.TABS)
        self._render(self.TABS[self._tabs.selected_index or 0])

    def _filter_mask(self, criteria: dict[str, Any]) -> np.ndarray:
        """Which runs pass: :func:`filter_runs` on the columns it reads, numbered by position."""
        columns = [c for c in _FILTER_COLUMNS if c in self._runs]
        if criteria["text"]:
            columns += [c for c in _TEXT_COLUMNS if c in self._runs]
        narrow = self._runs[columns].set_axis(pd.RangeIndex(len(self._runs)))
        mask = np.zeros(len(self._runs), dtype=bool)
        mask[filter_runs(narrow, **criteria).index.to_numpy()] = True
        return mask

    @_collector_paused
    def _render(self, name: str) -> None:
        out = self._outputs[name]
        out.clear_output(wait=True)
        runs, calls = self._light_runs[self._mask], self._light_calls[self._calls_mask]
        with out:
            if name == "Summary":
                table = summarize(runs, by="agent_name" if runs["agent_name"].notna().any() else "agent_id")
                total = summarize(runs).rename(index={"all": "(all)"})
                self.rendered[name] = table = pd.concat([table, total])
                # Plain HTML: pandas' Styler would need jinja2, which is not a dependency.
                display(HTML(format_table(table, SUMMARY_FORMATS)))
            else:
                fig, ax = self._figure(name)
                if name == "Duration":
                    plots.plot_duration(runs, by="agent_name", ax=ax)
                elif name == "Tokens":
                    plots.plot_tokens(runs, by="agent_name", ax=ax)
                elif name == "Cost":
                    plots.plot_cost(runs, by="agent_name", ax=ax)
                elif name == "Dispositions":
                    plots.plot_dispositions(runs, freq="D", ax=ax)
                elif name == "Tools":
                    plots.plot_tool_usage(calls, by="disposition", runs=runs, ax=ax)
                elif name == "After":
                    if self._outcomes is None:  # over every run: a filtered run's later runs still count
                        self._outcomes = outcomes(self._runs, escalations=self._escalations)
                    plot_escalation_quality(runs, self._escalations, outcomes_table=self._outcomes, ax=ax)
                without_layout_engine(fig)
                self.rendered[name] = fig
                display(figure_png(fig, fit=name not in self._fitted))
                self._fitted.add(name)
        self._stale.discard(name)

    def _figure(self, name: str) -> tuple[Any, Any]:
        """The tab's one figure, its Axes cleared for a redraw. A new figure per change left a
        closed figure and its artists (reference cycles) behind each time, enough garbage for a
        full collection every ~20 changes; ``Axes.cla()`` frees most of a drawing by reference
        counting. A twin Axes the plot added (the Dispositions tab's runs axis) stays: the plot
        clears and reuses it. While the plot draws, the figure has a layout engine that does
        nothing, so that the plot does not choose constrained layout (:func:`figure_png` fits the
        margins instead)."""
        fig = self._figures.get(name)
        if fig is None:
            # Not pyplot's (it would show it again at the end of the cell): drawn by Agg, as PNG.
            fig = Figure(figsize=self._figsize)
            FigureCanvasAgg(fig)
            ax = fig.add_subplot()
            self._figures[name] = fig
        else:
            ax = fig.axes[0]
            ax.cla()
        fig.set_layout_engine(PlaceHolderLayoutEngine(adjust_compatible=True, colorbar_gridspec=True))
        return fig, ax

    # -- handlers -----------------------------------------------------------------------------

    @guarded
    def _on_filter_change(self, _change: Any = None) -> None:
        self.refresh()

    @guarded
    def _on_reasons_change(self, _change: Any = None) -> None:
        picked = list(self._reasons.value)
        rest = [r for r in self._reasons.options if r not in picked]
        items = "".join(f"<li style='margin:2px 0{';font-weight:bold' if r in picked else ''}'>{html.escape(r)}</li>"
                        for r in picked + rest)
        self._reasons_full.value = (f"<details style='font-size:12px'><summary>reasons in full ({len(picked + rest)})"
                                    f"</summary><ul style='padding-left:16px;margin:4px 0'>{items}</ul></details>"
                                    if items else "")

    def _on_tab_change(self, change: dict[str, Any]) -> None:
        name = self.TABS[change["new"] or 0]
        if name in self._stale:
            self._render(name)

    @guarded
    def _on_run_pick(self, change: dict[str, Any]) -> None:
        if change["new"] is None:
            return
        ids = [value for _label, value in self._run_list.options]
        frames = RunsAndCalls(self.filtered, self.filtered_tool_calls)
        self._inspector = RunInspector(frames, change["new"], run_ids=ids, fetch_trace=self._fetch_trace,
                                       fetch_messages=self._fetch_messages, context_runs=self._runs)
        self._inspector_box.children = [self._inspector]

    def _follow_inspector(self, listed: list[str], passing: int) -> None:
        """After a filter change: the inspector steps through the new list, or, when the run it
        shows no longer passes the filters, closes (it showed an old run as "1 of 200")."""
        if self._inspector is None:
            return
        if passing and self._inspector.run_id in set(self.filtered["id"].astype(object)):
            self._inspector.set_run_ids(listed)
            return
        self._inspector = None
        self._inspector_box.children = [w.HTML(
            "<p style='color:#666'>No run inspected: " + ("no run passes the filters." if not passing else
                                                          "the run shown no longer passes the filters; pick one.")
            + "</p>")]

    def select_run(self, run_id: str) -> RunInspector:
        """Open any run of the frames in the inspector, as picking it in the list does (the list
        shows only the newest); a run the filters leave out is shown too. ``KeyError`` for an
        id the frames do not have."""
        listed = [value for _label, value in self._run_list.options]
        if run_id in listed:
            self._run_list.value = run_id  # opens it through _on_run_pick
        else:
            in_filtered = run_id in set(self.filtered["id"].astype(object))
            runs = self.filtered if in_filtered else self._runs
            calls = self.filtered_tool_calls if in_filtered else self._calls
            self._inspector = RunInspector(RunsAndCalls(runs, calls), run_id, run_ids=listed,
                                           fetch_trace=self._fetch_trace, fetch_messages=self._fetch_messages,
                                           context_runs=self._runs)
            self._inspector_box.children = [self._inspector]
        assert self._inspector is not None
        return self._inspector


#: What filter_runs reads (and, with a text search, _TEXT_COLUMNS).
_FILTER_COLUMNS = ("agent_name", "agent_id", "status", "disposition", "disposition_reason", "created_at",
                   "duration_ms")
_TEXT_COLUMNS = ("response", "reflection", "error")
_KEYS = ("agent_name", "agent_id", "status", "disposition", "disposition_reason", "name", "id", "agent_run_id",
         "conversation_id")


def _is_text(dtype: Any) -> bool:
    if isinstance(dtype, pd.ArrowDtype):
        return pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype)
    return dtype == object or isinstance(dtype, pd.StringDtype)  # noqa: E721 (numpy dtypes equal object)


def _light(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns the tabs draw from: all but free text and JSON payloads, whose rows are the
    dearest to copy (grouping keys and the run ids that join calls to runs stay, whatever their
    type)."""
    return frame[[c for c in frame.columns if c in _KEYS or not _is_text(frame[c].dtype)]]


def _settle_garbage_collector() -> None:
    """Move what is alive now (the frames above all) out of the garbage collector's reach:
    a full collection walks every tracked object, and with a million of them it stalls a
    filter change for most of a second. Frozen objects are still freed by reference counting
    when the frames go; only reference cycles among them would wait (``gc.unfreeze()``)."""
    gc.collect()
    gc.freeze()
