"""Notebook widgets: a run explorer, a run inspector and a disposition review.

>>> from conduit_notebook import RunExplorer, RunInspector, DispositionReview
>>> RunExplorer(frames)                       # filters over summary, duration, tokens, cost... tabs
>>> RunInspector(frames, run_id)              # one run: header, response, reflection, tool trace
>>> review = DispositionReview(frames, reviewer="ana")   # verdicts saved as they are given
>>> review.results                            # the verdicts so far

They take frames (``fetch_runs(...)`` or anything with ``.runs`` and ``.tool_calls``), never a
client. The logic lives in plain functions (:func:`conduit_notebook.analysis.filter_runs`,
:mod:`conduit_notebook.review`); the widgets are thin ``VBox`` subclasses, and an exception in a
callback is shown in the widget, not lost in a log.
"""

from __future__ import annotations

import functools
import gc
import html
import io
import json
import math
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as w
import matplotlib.pyplot as plt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import PlaceHolderLayoutEngine
from matplotlib.transforms import Bbox
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from IPython.display import HTML, Image, display

from . import plots
from .analysis import filter_runs, review_sample, summarize
from .formatting import SUMMARY_FORMATS, format_table, html_value, usd
from .frames import JSON_TEXT, decode_json
from .review import VERDICTS, ReviewStore, run_votes, stratified_accuracy

__all__ = ["DispositionReview", "RunExplorer", "RunInspector"]

#: Characters of a tool call's input or output shown before "show all".
PAYLOAD_PREVIEW = 1200
_RUN_LIST_SIZE = 200


def _frames_parts(frames: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = getattr(frames, "runs", None)
    calls = getattr(frames, "tool_calls", None)
    if not isinstance(runs, pd.DataFrame) or not isinstance(calls, pd.DataFrame):
        raise TypeError("frames must have .runs and .tool_calls DataFrames (the result of fetch_runs)")
    return runs, calls


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """Show an exception raised in a widget callback inside the widget."""
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - shown to the user, who can act on it
            self._show_error(exc)
            return None
    return wrapper


class _ErrorArea:
    _errors: w.HTML

    def _show_error(self, exc: BaseException) -> None:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        self._errors.value = (f"<div style='color:#a40000;background:#fde8e8;padding:6px;border-radius:4px'>"
                              f"<b>Error:</b> {html.escape(detail)}</div>")
        self.last_error = exc

    def _clear_error(self) -> None:
        self._errors.value = ""


def _decoded(calls: pd.DataFrame) -> pd.DataFrame:
    """A few tool calls with their JSON text columns decoded (for display)."""
    columns = [name for name, dtype in calls.dtypes.items() if dtype == JSON_TEXT]
    return calls.assign(**{name: decode_json(calls[name]) for name in columns}) if columns else calls


def _pretty_json(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


# -- inspector ------------------------------------------------------------------------------

class RunInspector(w.VBox, _ErrorArea):
    """One run: status, disposition, reason, duration, tokens, cost and times; the response and
    the reflection; the tool trace in order, each call's input and output as pretty JSON
    (collapsible; long payloads cut, with a button to show all); previous/next over ``run_ids``
    (default: every run in ``frames.runs``, newest first).

    A run without its trace (``trace_weight`` missing: the fetch took a sample) is fetched when
    it is shown, by ``fetch_trace(run_id) -> (run row, its tool calls)``: by default
    ``frames.fetch_trace`` of a :class:`RunFrames` (one request, through the cache)."""

    def __init__(self, frames: Any, run_id: str | None = None, *, run_ids: Sequence[str] | None = None,
                 fetch_trace: Callable[[str], tuple[pd.DataFrame, pd.DataFrame]] | None = None) -> None:
        self._runs, self._calls = _frames_parts(frames)
        self.fetch_trace = fetch_trace if fetch_trace is not None else getattr(frames, "fetch_trace", None)
        self._fetched: dict[str, tuple[pd.Series, pd.DataFrame]] = {}
        self._by_id = self._runs.set_index(self._runs["id"].astype(object), drop=False)
        self._errors = w.HTML()
        self._header = w.HTML()
        self._texts = w.HTML()
        self._trace = w.VBox()
        self._prev = w.Button(description="◀ previous", layout=w.Layout(width="120px"))
        self._next = w.Button(description="next ▶", layout=w.Layout(width="120px"))
        self._position = w.Label()
        self._prev.on_click(self._on_prev_click)
        self._next.on_click(self._on_next_click)
        self.run_ids = list(run_ids) if run_ids is not None else list(self._runs["id"].astype(object))
        self.run_id: str | None = None
        #: The tool calls shown, in order: per call its ``step``, ``name``, the ``input`` and
        #: ``output`` views and their "show all" toggles (None when the payload is short).
        self.calls: list[dict[str, Any]] = []
        super().__init__([w.HBox([self._prev, self._next, self._position]), self._errors, self._header,
                          self._texts, self._trace])
        self.add_class("conduit-run-inspector")
        if run_id is not None or self.run_ids:
            self.show(run_id if run_id is not None else self.run_ids[0])

    @property
    def controls(self) -> dict[str, w.Widget]:
        """The widget's controls by name (``previous``, ``next``) and what it shows
        (``header``, ``texts``, ``errors``): set values and click here, as a user would."""
        return {"previous": self._prev, "next": self._next, "position": self._position,
                "header": self._header, "texts": self._texts, "errors": self._errors}

    def show(self, run_id: str) -> None:
        """Show the run with this ``id``; a ``KeyError`` (naming it) if these frames lack it."""
        if run_id not in self._by_id.index:
            raise KeyError(f"run {run_id!r} is not in these frames ({len(self._by_id):,} runs)")
        self._clear_error()
        self.run_id = run_id
        run, calls = self._run_and_calls(run_id)
        position = self.run_ids.index(run_id) if run_id in self.run_ids else None
        self._position.value = f"{position + 1} of {len(self.run_ids)}" if position is not None else ""
        self._prev.disabled = position is None or position == 0
        self._next.disabled = position is None or position >= len(self.run_ids) - 1
        seconds = run["duration_ms"] / 1000 if pd.notna(run["duration_ms"]) else None
        fields = [
            ("agent", html_value(run.get("agent_name") if pd.notna(run.get("agent_name")) else run["agent_id"])),
            ("status", html_value(run["status"])), ("disposition", html_value(run["disposition"])),
            ("reason", html_value(run["disposition_reason"])), ("duration", html_value(seconds, " s", 1)),
            ("tokens", f"{html_value(run['input_tokens'])} in / {html_value(run['output_tokens'])} out"),
            ("cost", usd(run["total_cost"], 4)),
            ("created", html_value(run["created_at"])), ("completed", html_value(run["completed_at"])),
        ]
        cells = "".join(f"<div><span style='color:#666'>{k}</span><br><b>{v}</b></div>" for k, v in fields)
        error = (f"<div style='color:#a40000'><b>error:</b> {html.escape(str(run['error']))}</div>"
                 if pd.notna(run["error"]) else "")
        self._header.value = (f"<div style='font-family:monospace;color:#555'>{html.escape(run_id)}</div>"
                              f"<div style='display:grid;grid-template-columns:repeat(5,auto);gap:6px 18px;"
                              f"margin:6px 0'>{cells}</div>{error}")
        response = run["response"] if pd.notna(run["response"]) else "(no response)"
        reflection = run["reflection"] if pd.notna(run["reflection"]) else "(no reflection)"
        self._texts.value = (
            "<div style='display:grid;grid-template-columns:1fr 1fr;gap:12px'>"
            f"<div><b>Response</b><div style='white-space:pre-wrap;background:#f6f8fa;padding:8px;"
            f"border-radius:4px'>{html.escape(str(response))}</div></div>"
            f"<div><b>Reflection</b><div style='white-space:pre-wrap;background:#f6f8fa;padding:8px;"
            f"border-radius:4px'>{html.escape(str(reflection))}</div></div></div>")
        calls = _decoded(calls.sort_values("step"))  # the one run shown: its JSON text as values
        untraced = "trace_weight" in run.index and pd.isna(run["trace_weight"])
        heading = (" (not fetched: this run is not in the traced sample)" if untraced
                   else f" ({len(calls)} call{'s' if len(calls) != 1 else ''}; numbered by <code>step</code>, "
                        "as in <code>tool_calls</code>)")
        self.calls = [self._call_widget(call) for _, call in calls.iterrows()]
        self._trace.children = [w.HTML(f"<b>Tool trace</b>{heading}")] + [c["box"] for c in self.calls]

    def _run_and_calls(self, run_id: str) -> tuple[pd.Series, pd.DataFrame]:
        """The run and its tool calls; a run without its trace is fetched first, once."""
        if run_id in self._fetched:
            return self._fetched[run_id]
        run = self._by_id.loc[run_id]
        if isinstance(run, pd.DataFrame):
            run = run.iloc[0]
        if "trace_weight" in run.index and pd.isna(run["trace_weight"]) and self.fetch_trace is not None:
            rows, calls = self.fetch_trace(run_id)
            if len(rows):
                self._fetched[run_id] = (rows.iloc[0], calls)
                return self._fetched[run_id]
        return run, self._calls[self._calls["agent_run_id"].astype(object) == run_id]

    def _call_widget(self, call: pd.Series) -> dict[str, Any]:
        extras = {k: call[k] for k in call.index
                  if k not in ("agent_run_id", "agent_id", "step", "name", "input", "output", "created_at",
                               "status", "disposition") and pd.notna(call[k])}
        parts = []
        entry: dict[str, Any] = {"step": int(call["step"]), "name": str(call["name"])}
        for label, value in (("input", call["input"]), ("output", call["output"])):
            text = _pretty_json(value)
            view = w.HTML(self._pre(text[:PAYLOAD_PREVIEW] + ("\n…" if len(text) > PAYLOAD_PREVIEW else "")))
            items: list[w.Widget] = [w.HTML(f"<b>{label}</b>"), view]
            entry[label], entry[f"{label}_show_all"] = view, None
            if len(text) > PAYLOAD_PREVIEW:
                more = w.ToggleButton(description=f"show all ({len(text):,} characters)", value=False)

                def toggle(change: dict[str, Any], view: w.HTML = view, text: str = text) -> None:
                    view.value = self._pre(text if change["new"] else text[:PAYLOAD_PREVIEW] + "\n…")
                more.observe(toggle, names="value")
                items.append(more)
                entry[f"{label}_show_all"] = more
            parts.append(w.VBox(items))
        if extras:
            parts.append(w.HTML("".join(f"<div><b>{html.escape(str(k))}:</b> {html.escape(str(v))}</div>"
                                        for k, v in extras.items())))
        body = w.VBox(parts)
        box = w.Accordion(children=[body])
        # The step as the tool_calls table numbers it (from 0), so the two can be matched.
        box.set_title(0, f"step {int(call['step'])}: {call['name']}" + (" ⚠" if "error" in extras else ""))
        box.selected_index = None
        entry["box"] = box
        return entry

    @staticmethod
    def _pre(text: str) -> str:
        return (f"<pre style='margin:0;max-height:400px;overflow:auto;background:#f6f8fa;padding:6px'>"
                f"{html.escape(text)}</pre>")

    def _step(self, delta: int) -> None:
        if self.run_id in self.run_ids:
            index = self.run_ids.index(self.run_id) + delta
            if 0 <= index < len(self.run_ids):
                self.show(self.run_ids[index])

    @_guarded
    def _on_prev_click(self, _button: Any = None) -> None:
        self._step(-1)

    @_guarded
    def _on_next_click(self, _button: Any = None) -> None:
        self._step(+1)


# -- explorer -------------------------------------------------------------------------------

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


class RunExplorer(w.VBox, _ErrorArea):
    """Filters (agents, statuses, dispositions, reasons, dates, duration, text in the response,
    reflection and error) over tabs: a summary table, duration, tokens, cost, dispositions over
    time and tools. Every tab follows the filters; ``.filtered`` and ``.filtered_tool_calls``
    are the current selection. Picking a run in the list opens it in the inspector below.

    A filter change reads only the columns it filters and draws on. Building the explorer calls
    ``gc.freeze()``: the objects alive then (the frames' above all) are left out of later full
    garbage collections, which would otherwise stall a filter change on a big workspace; a
    filter change runs with the collector paused (it is on again after, unless you had turned
    it off)."""

    TABS = ("Summary", "Duration", "Tokens", "Cost", "Dispositions", "Tools")

    def __init__(self, frames: Any, *, figsize: tuple[float, float] = (9, 4)) -> None:
        self._runs, self._calls = _frames_parts(frames)
        self._fetch_trace = getattr(frames, "fetch_trace", None)
        self._figsize = figsize
        runs = self._runs

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
        self._call_run = _run_positions(self._calls, runs)

        for control in (self._agents, self._statuses, self._dispositions, self._reasons, self._start,
                        self._end, self._duration, self._text):
            control.observe(self._on_filter_change, names="value")
        self._tabs.observe(self._on_tab_change, names="selected_index")
        self._run_list.observe(self._on_run_pick, names="value")

        def column(title: str, control: w.Widget) -> w.VBox:
            return w.VBox([w.HTML(f"<b>{title}</b>"), control])

        filters = w.HBox([column("agents", self._agents), column("statuses", self._statuses),
                          column("dispositions", self._dispositions), column("reasons", self._reasons)])
        ranges = w.HBox([w.VBox([w.HBox([self._start, self._end]), self._duration, self._text]), self._count])
        super().__init__([filters, ranges, self._errors, self._tabs, self._run_list_title, self._run_list,
                          self._inspector_box])
        self.add_class("conduit-run-explorer")
        self.refresh()
        _settle_garbage_collector()

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
        the explorer shows (``count``, ``runs_title``, ``errors``): set ``.value`` here, as a
        user would."""
        return {"agents": self._agents, "statuses": self._statuses, "dispositions": self._dispositions,
                "reasons": self._reasons, "start": self._start, "end": self._end, "duration": self._duration,
                "text": self._text, "tabs": self._tabs, "runs": self._run_list, "count": self._count,
                "runs_title": self._run_list_title, "errors": self._errors}

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
            "start": self._start.value, "end": self._end.value,
            # The slider's full span means "no filter": runs without a duration stay.
            "duration_s": None if tuple(seconds) == full else tuple(seconds),
            "text": self._text.value.strip() or None,
        }

    @_guarded
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
            for row in newest.itertuples()]
        self._run_list.value = None
        self._run_list.observe(self._on_run_pick, names="value")
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
                _without_layout_engine(fig)
                self.rendered[name] = fig
                display(_png(fig, fit=name not in self._fitted))
                self._fitted.add(name)
        self._stale.discard(name)

    def _figure(self, name: str) -> tuple[Any, Any]:
        """The tab's one figure, its Axes cleared for a redraw. A new figure per change left a
        closed figure and its artists (reference cycles) behind each time, enough garbage for a
        full collection every ~20 changes; ``Axes.cla()`` frees most of a drawing by reference
        counting. A twin Axes the plot added (the Dispositions tab's runs axis) stays: the plot
        clears and reuses it. While the plot draws, the figure has a layout engine that does
        nothing, so that the plot does not choose constrained layout (:func:`_png` fits the
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

    @_guarded
    def _on_filter_change(self, _change: Any = None) -> None:
        self.refresh()

    @_guarded
    def _on_tab_change(self, change: dict[str, Any]) -> None:
        name = self.TABS[change["new"] or 0]
        if name in self._stale:
            self._render(name)

    @_guarded
    def _on_run_pick(self, change: dict[str, Any]) -> None:
        if change["new"] is None:
            return
        ids = [value for _label, value in self._run_list.options]
        frames = _Frames(self.filtered, self.filtered_tool_calls)
        self._inspector = RunInspector(frames, change["new"], run_ids=ids, fetch_trace=self._fetch_trace)
        self._inspector_box.children = [self._inspector]

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
            self._inspector = RunInspector(_Frames(runs, calls), run_id, run_ids=listed,
                                           fetch_trace=self._fetch_trace)
            self._inspector_box.children = [self._inspector]
        assert self._inspector is not None
        return self._inspector


def _escalations_by_run(escalations: pd.DataFrame | None) -> pd.DataFrame | None:
    if escalations is None:
        return None
    if not isinstance(escalations, pd.DataFrame) or "agent_run_id" not in escalations:
        raise TypeError("escalations must be the frame from fetch_escalations() (with an 'agent_run_id' column)")
    latest = escalations.dropna(subset=["agent_run_id"])
    if "created_at" in latest:
        latest = latest.sort_values("created_at", kind="stable")
    return latest.drop_duplicates("agent_run_id", keep="last").set_index("agent_run_id")


def _operator_outcome(escalations: pd.DataFrame | None, run_id: str | None) -> str:
    """" · Conduit operator: dismissed by ana 1.5 h after" for an escalated run, else ""."""
    if escalations is None or run_id is None or run_id not in escalations.index:
        return ""
    row = escalations.loc[run_id]
    status = str(row.get("status")) if pd.notna(row.get("status")) else "unknown"
    who = row.get("reviewed_by")
    text = f" · Conduit operator: <b>{html.escape(status)}</b>"
    if pd.notna(who) and who:
        text += f" by {html.escape(str(who))}"
    created, reviewed = row.get("created_at"), row.get("reviewed_at")
    if pd.notna(created) and pd.notna(reviewed):
        text += f" {(reviewed - created).total_seconds() / 3600:.1f} h after the escalation"
    return text


class _Frames:
    def __init__(self, runs: pd.DataFrame, tool_calls: pd.DataFrame) -> None:
        self.runs, self.tool_calls = runs, tool_calls


#: What filter_runs reads (and, with a text search, _TEXT_COLUMNS).
_FILTER_COLUMNS = ("agent_name", "agent_id", "status", "disposition", "disposition_reason", "created_at",
                   "duration_ms")
_TEXT_COLUMNS = ("response", "reflection", "error")
_KEYS = ("agent_name", "agent_id", "status", "disposition", "disposition_reason", "name", "id", "agent_run_id")


def _is_text(dtype: Any) -> bool:
    if isinstance(dtype, pd.ArrowDtype):
        return pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype)
    return dtype == object or isinstance(dtype, pd.StringDtype)


def _light(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns the tabs draw from: all but free text and JSON payloads, whose rows are the
    dearest to copy (grouping keys and the run ids that join calls to runs stay, whatever their
    type)."""
    return frame[[c for c in frame.columns if c in _KEYS or not _is_text(frame[c].dtype)]]


def _run_positions(calls: pd.DataFrame, runs: pd.DataFrame) -> np.ndarray:
    """For each tool call, the position of its run in ``runs`` (-1: not there), found once:
    Arrow's hash lookup of the distinct run ids, then the calls' codes (no string per call)."""
    codes, ids = pd.factorize(calls["agent_run_id"])
    found = pc.index_in(pa.array(pd.Index(ids).astype(str).to_numpy(dtype=object)),
                        value_set=pa.array(runs["id"].astype(str).to_numpy(dtype=object)))
    found = np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return np.where(codes >= 0, found[np.maximum(codes, 0)], -1)


def _without_layout_engine(fig: Any) -> None:
    """Leave ``fig`` with no layout engine: ``savefig`` draws a figure that has one (even one
    that does nothing) twice, once to lay it out and once to render it."""
    with plt.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)


def _png(fig: Any, *, fit: bool = False, pad_inches: float = 0.08, room_inches: float = 0.2,
         slack_inches: float = 1.0) -> Image:
    """``fig`` as the PNG a notebook shows, every label inside it, usually drawn once.

    Shown as a figure, the inline backend would save it with ``bbox_inches="tight"``, and a
    layout engine would lay it out first: either draws the whole figure twice. Here the figure
    is drawn with the margins of its last redraw, and the labels are measured where that draw
    put them. Only when one fell outside the figure, or a margin is wider than needed by more
    than ``slack_inches`` (or ``fit`` is true: a new figure), are the margins fitted, with
    ``room_inches`` to spare so that the next filter's slightly longer names fit as they are,
    and the figure drawn again; a narrower Axes can take other ticks, hence up to three draws."""
    for attempt in range(3):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        inner, outer = fig.axes[0].bbox, _drawn_extent(fig, fig.canvas.get_renderer())
        width, height = fig.bbox.width, fig.bbox.height
        have = np.array([inner.x0, width - inner.x1, inner.y0, height - inner.y1])
        need = (np.array([inner.x0 - outer.x0, outer.x1 - inner.x1, inner.y0 - outer.y0, outer.y1 - inner.y1])
                + pad_inches * fig.dpi)
        fits = ((have >= need - 1) & (have <= need + slack_inches * fig.dpi)).all()
        if fits and not (fit and attempt == 0):
            break
        left, right, bottom, top = (need + room_inches * fig.dpi) / [width, width, height, height]
        # Names too long for the figure still leave the plot a third of it.
        left, bottom = min(left, 0.45), min(bottom, 0.45)
        fig.subplots_adjust(left=left, right=max(1 - right, left + 0.33), bottom=bottom,
                            top=max(1 - top, bottom + 0.33))
    return Image(data=buffer.getvalue(), format="png")


def _drawn_extent(fig: Any, renderer: Any) -> Bbox:
    """Where the last draw of ``fig`` put its Axes and their labels (titles, axis labels, tick
    labels within the view, texts, legends): read from the placed texts, without laying out
    the ticks again as ``get_tightbbox`` does."""
    boxes = []
    for ax in fig.axes:
        boxes.append(ax.bbox)
        texts = [ax.title, *ax.texts]
        for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            if not axis.get_visible():
                continue
            low, high = min(limits), max(limits)
            slack = (high - low) * 1e-6
            texts += [axis.label, axis.get_offset_text()]
            for tick in axis.get_major_ticks(len(axis.get_majorticklocs())):
                if low - slack <= tick.get_loc() <= high + slack:
                    texts += [tick.label1, tick.label2]
        boxes += [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text()]
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            boxes.append(legend.get_window_extent(renderer))
    return Bbox.union(boxes)


def _settle_garbage_collector() -> None:
    """Move what is alive now (the frames above all) out of the garbage collector's reach:
    a full collection walks every tracked object, and with a million of them it stalls a
    filter change for most of a second. Frozen objects are still freed by reference counting
    when the frames go; only reference cycles among them would wait (``gc.unfreeze()``)."""
    gc.collect()
    gc.freeze()


# -- review ---------------------------------------------------------------------------------

class DispositionReview(w.VBox, _ErrorArea):
    """Step through a sample of runs and record whether each disposition was right.

    ``sample``: a runs frame (default: :func:`review_sample` of 50, stratified by disposition; a
    sample from ``review_sample(runs, margin=0.05)`` carries its target). Each verdict (correct,
    wrong with the right disposition, unsure; and a note) is written to ``store`` (a CSV file) at
    once; reopening with the same store and reviewer resumes at the first run not yet judged.
    ``.results`` is the verdicts so far. The header shows the overall accuracy so far, weighted
    back to the runs, with its 95% interval against the sample's target margin, and says when the
    target is reached. ``escalations`` (from :func:`fetch_escalations`) shows what Conduit's
    operators did with an escalated run. "should be" offers the dispositions seen in the runs; a
    new one is recorded after a second click, as a confirmation.
    """

    def __init__(self, frames: Any, *, sample: pd.DataFrame | None = None,
                 store: str = "disposition_reviews.csv", reviewer: str | None = None,
                 escalations: pd.DataFrame | None = None) -> None:
        self._runs, self._calls = _frames_parts(frames)
        self.sample = sample if sample is not None else review_sample(self._runs, n=50)
        if not isinstance(self.sample, pd.DataFrame) or "id" not in self.sample:
            raise TypeError("sample must be a runs DataFrame (with an 'id' column)")
        self.store = ReviewStore(store)
        self.reviewer = reviewer or ""
        self._ids = list(self.sample["id"].astype(object))
        plan = self.sample.attrs.get("review_plan")
        self.target = plan.attrs.get("margin") if isinstance(plan, pd.DataFrame) else None
        self._escalations = _escalations_by_run(escalations)
        self.known_dispositions = sorted({str(d) for d in self._runs["disposition"].dropna().unique()})
        self._population = self._runs["disposition"].astype(object).value_counts()  # the strata, once
        self._new_disposition: tuple[str, str] | None = None
        self._errors = w.HTML()
        self._progress = w.HTML()
        self.interval = w.HTML()
        self._inspector = RunInspector(_Frames(self.sample, self._calls), run_ids=self._ids,
                                       fetch_trace=getattr(frames, "fetch_trace", None))
        self._inspector._prev.layout.display = "none"  # the review moves on by itself
        self._inspector._next.layout.display = "none"
        self._correct = w.Button(description="✔ correct", button_style="success")
        self._wrong = w.Button(description="✘ wrong", button_style="danger")
        self._unsure = w.Button(description="? unsure", button_style="warning")
        self._right = w.Combobox(options=self.known_dispositions, placeholder="the right disposition",
                                 description="should be", ensure_option=False, layout=w.Layout(width="320px"))
        self._note = w.Textarea(placeholder="note (optional)", layout=w.Layout(width="520px", height="60px"))
        self._back = w.Button(description="◀ back")
        self._skip = w.Button(description="skip ▶")
        self._correct.on_click(self._on_correct_click)
        self._wrong.on_click(self._on_wrong_click)
        self._unsure.on_click(self._on_unsure_click)
        self._back.on_click(self._on_back_click)
        self._skip.on_click(self._on_skip_click)
        super().__init__([
            self._progress, self.interval, self._errors,
            w.HBox([self._correct, self._wrong, self._right, self._unsure]),
            w.HBox([self._note, w.VBox([self._back, self._skip])]),
            self._inspector,
        ])
        self.add_class("conduit-disposition-review")
        done = self.store.reviewed(self.reviewer)
        self.position = next((i for i, run_id in enumerate(self._ids) if run_id not in done), len(self._ids))
        self._go(self.position)

    @property
    def controls(self) -> dict[str, w.Widget]:
        """The buttons and fields by name (``correct``, ``wrong``, ``unsure``, ``right``,
        ``note``, ``back``, ``skip``), what the review shows (``progress``, ``interval``,
        ``errors``) and its ``inspector``: click and set values here, as a reviewer would."""
        return {"correct": self._correct, "wrong": self._wrong, "unsure": self._unsure, "right": self._right,
                "note": self._note, "back": self._back, "skip": self._skip, "progress": self._progress,
                "interval": self.interval, "errors": self._errors, "inspector": self._inspector}

    @property
    def results(self) -> pd.DataFrame:
        """The verdicts in the store for this sample (every reviewer's latest)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the widget shows unreadable rows itself (_show_interval)
            frame = self.store.load()
        return frame[frame["agent_run_id"].isin(self._ids)].reset_index(drop=True)

    @property
    def current(self) -> str | None:
        return self._ids[self.position] if self.position < len(self._ids) else None

    def reached(self) -> dict[str, float]:
        """The overall accuracy so far (every reviewer, one vote a run), weighted back to the runs:
        ``estimate``, ``ci_low``, ``ci_high``, ``half_width`` (see :func:`stratified_accuracy`)."""
        votes = run_votes(self.results) if len(self.results) else None
        population = self._population
        if votes is None:
            return stratified_accuracy(np.zeros(len(population)), np.zeros(len(population)), population)
        recorded = votes["disposition"].astype(object)
        correct = (votes["verdict"] == "correct").groupby(recorded).sum().reindex(population.index, fill_value=0)
        judged = votes["verdict"].isin(["correct", "wrong"]).groupby(recorded).sum().reindex(population.index, fill_value=0)
        return stratified_accuracy(correct, judged, population)

    def _show_interval(self) -> None:
        now = self.reached()
        target = f" · target ±{100 * self.target:.1f} points" if self.target else ""
        if math.isnan(now["estimate"]):
            self.interval.value = (f"<span style='color:#555'>Accuracy so far: no verdicts yet{target}</span>"
                                   + self._rejected_note())
            return
        text = (f"Accuracy so far (weighted to the runs): <b>{now['estimate']:.1%}</b>, 95% interval "
                f"{now['ci_low']:.1%}–{now['ci_high']:.1%} (±{100 * now['half_width']:.1f} points){target}")
        if self.target and now["half_width"] <= self.target:
            text += " · <b style='color:#1a7f37'>target reached: you can stop here</b>"
        elif now["unreviewed_share"] > 0:
            text += f" · {now['unreviewed_share']:.0%} of runs in dispositions not yet judged"
        self.interval.value = f"<span style='color:#333'>{text}</span>" + self._rejected_note()

    def _rejected_note(self) -> str:
        if not len(self.store.rejected):
            return ""
        return (f"<br><span style='color:#a40000'>{len(self.store.rejected)} row(s) of {html.escape(str(self.store.path))} "
                "could not be read (torn by a crash or not verdicts); they are kept in the file, listed in "
                "<code>review.store.rejected</code>.</span>")

    def _go(self, position: int) -> None:
        self.position = max(0, min(position, len(self._ids)))
        self._new_disposition = None
        done = self.store.reviewed(self.reviewer)
        judged = sum(1 for i in self._ids if i in done)
        self._show_interval()
        if self.current is None:
            self._progress.value = (f"<b>Review complete</b>: {judged} of {len(self._ids)} runs judged. "
                                    "See <code>.results</code> and <code>review_report()</code>.")
            for button in (self._correct, self._wrong, self._unsure, self._skip):
                button.disabled = True
            return
        for button in (self._correct, self._wrong, self._unsure, self._skip):
            button.disabled = False
        run = self.sample.iloc[self.position]
        operator = _operator_outcome(self._escalations, self.current)
        self._progress.value = (f"<b>Run {self.position + 1} of {len(self._ids)}</b> · {judged} judged · "
                                f"recorded disposition: <b>{html.escape(str(run['disposition']))}</b>{operator}")
        self._right.value = ""
        self._note.value = ""
        self._inspector.show(self.current)

    def _record(self, verdict: str) -> None:
        self._clear_error()
        run = self.sample.iloc[self.position]
        right = self._right.value.strip() or None
        recorded = None if pd.isna(run["disposition"]) else str(run["disposition"])
        if verdict == "wrong":
            if not right:
                raise ValueError("Pick or type the right disposition in 'should be' before marking the run wrong.")
            known = {d.casefold(): d for d in self.known_dispositions}
            right = known.get(right.casefold(), right)
            if recorded is not None and right == recorded:
                raise ValueError(f"'should be' is the recorded disposition ({recorded}): pick the disposition the "
                                 "run should have had, or mark it correct.")
            if right not in self.known_dispositions and self._new_disposition != (self.current, right):
                self._new_disposition = (self.current, right)
                raise ValueError(f"'{right}' is not a disposition in these runs. Click ✘ wrong again to record it "
                                 "as a new disposition, or pick one from the list.")
        self.store.add(agent_run_id=str(run["id"]), agent_id=str(run["agent_id"]), disposition=recorded,
                       verdict=verdict, reviewed_disposition=right if verdict == "wrong" else None,
                       note=self._note.value, reviewer=self.reviewer)
        self._go(self.position + 1)

    def judge(self, verdict: str, *, right: str | None = None, note: str = "") -> None:
        """Record a verdict on the current run, as the buttons do."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
        self._right.value = right or ""
        self._note.value = note
        if verdict == "wrong" and right and self._right.value.strip() not in self.known_dispositions:
            self._new_disposition = (self.current, self._right.value.strip())  # a call confirms itself
        self._record(verdict)

    @_guarded
    def _on_correct_click(self, _button: Any = None) -> None:
        self._record("correct")

    @_guarded
    def _on_wrong_click(self, _button: Any = None) -> None:
        self._record("wrong")

    @_guarded
    def _on_unsure_click(self, _button: Any = None) -> None:
        self._record("unsure")

    @_guarded
    def _on_back_click(self, _button: Any = None) -> None:
        self._go(self.position - 1)

    @_guarded
    def _on_skip_click(self, _button: Any = None) -> None:
        self._go(self.position + 1)
