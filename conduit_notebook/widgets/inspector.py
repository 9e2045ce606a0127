"""RunInspector: one run, its response and reflection, and its tool trace."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as w
import pandas as pd

from ..formatting import html_value, usd
from ..frames import JSON_TEXT, TOOL_CALL_COLUMNS, decode_json
from ..messages import messages_frame
from ..thread import run_thread
from .common import ErrorArea, frames_parts, guarded, messages_fetcher
from .thread_view import thread_html

__all__ = ["PAYLOAD_PREVIEW", "RunInspector"]

#: Characters of a tool call's input or output shown before "show all".
PAYLOAD_PREVIEW = 1200


def _decoded(calls: pd.DataFrame) -> pd.DataFrame:
    """A few tool calls with their JSON text columns decoded (for display)."""
    columns = [str(name) for name, dtype in calls.dtypes.items() if dtype == JSON_TEXT]
    return calls.assign(**{name: decode_json(calls[name]) for name in columns}) if columns else calls


def _pretty_json(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


class RunInspector(w.VBox, ErrorArea):
    """One run: status, disposition, reason, duration, tokens, cost and times; the response and
    the reflection; the tool trace in order, each call's input and output as pretty JSON
    (collapsible; long payloads cut, with a button to show all); previous/next over ``run_ids``
    (default: every run in ``frames.runs``, newest first).

    A run without its trace (``trace_weight`` missing: the fetch took a sample) is fetched when
    it is shown, by ``fetch_trace(run_id) -> (run row, its tool calls)``: by default
    ``frames.fetch_trace`` of a :class:`RunFrames` (one request, through the cache).

    The run's guest conversation is shown beside it (:func:`conduit_notebook.run_thread`): the
    guest's messages before it, the agent's reply, and what followed, with the next runs of the
    conversation (from ``context_runs``, default these frames' runs). Its messages are fetched
    when the run is shown, by ``fetch_messages(run_id) -> messages``: by default
    ``frames.fetch_messages([run_id])`` of a :class:`RunFrames` (one request for a thread of up to
    100 messages, through the cache; a thread already at hand costs nothing)."""

    def __init__(self, frames: Any, run_id: str | None = None, *, run_ids: Sequence[str] | None = None,
                 fetch_trace: Callable[[str], tuple[pd.DataFrame, pd.DataFrame]] | None = None,
                 fetch_messages: Callable[[str], pd.DataFrame] | None = None,
                 context_runs: pd.DataFrame | None = None) -> None:
        self._runs, self._calls = frames_parts(frames)
        self.fetch_trace = fetch_trace if fetch_trace is not None else getattr(frames, "fetch_trace", None)
        self.fetch_messages = fetch_messages if fetch_messages is not None else messages_fetcher(frames)
        self._context = context_runs if context_runs is not None else self._runs
        self._threads: dict[str, pd.DataFrame] = {}  # conversation -> its messages, fetched once
        self._thread = w.HTML()
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
                          self._thread, self._texts, self._trace])
        self.add_class("conduit-run-inspector")
        if run_id is not None or self.run_ids:
            self.show(run_id if run_id is not None else self.run_ids[0])

    @property
    def controls(self) -> dict[str, w.Widget]:
        """The widget's controls by name (``previous``, ``next``) and what it shows
        (``header``, ``texts``, ``thread``, ``trace``: the tool calls, ``errors``): set values and
        click here, as a user would."""
        return {"previous": self._prev, "next": self._next, "position": self._position,
                "header": self._header, "thread": self._thread, "texts": self._texts, "trace": self._trace,
                "errors": self._errors}

    def show(self, run_id: str) -> None:
        """Show the run with this ``id``; a ``KeyError`` (naming it) if these frames lack it."""
        if run_id not in self._by_id.index:
            raise KeyError(f"run {run_id!r} is not in these frames ({len(self._by_id):,} runs)")
        self._clear_error()
        self.run_id = run_id
        run, calls = self._run_and_calls(run_id)
        self._show_position()
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
        self._thread.value = self._thread_view(run)
        calls = _decoded(calls.sort_values("step"))  # the one run shown: its JSON text as values
        untraced = "trace_weight" in run.index and pd.isna(run["trace_weight"])
        heading = (" (not fetched: this run is not in the traced sample)" if untraced
                   else f" ({len(calls)} call{'s' if len(calls) != 1 else ''}; numbered by <code>step</code>, "
                        "as in <code>tool_calls</code>)")
        self.calls = [self._call_widget(call) for _, call in calls.iterrows()]
        self._trace.children = [w.HTML(f"<b>Tool trace</b>{heading}")] + [c["box"] for c in self.calls]

    def _thread_view(self, run: pd.Series) -> str:
        """The conversation around ``run`` as HTML; its messages fetched once per conversation."""
        conversation = run.get("conversation_id")
        if conversation is None or pd.isna(conversation):
            return "<div style='color:#666'>This run has no conversation_id: no conversation to show.</div>"
        note = ""
        if conversation not in self._threads:
            if self.fetch_messages is None:
                messages = None
                note = "The guest's messages are not at hand (these frames cannot fetch them)."
            else:
                try:
                    messages = self.fetch_messages(str(run["id"]))
                except Exception as exc:  # noqa: BLE001 - shown in the widget; the run is still shown
                    messages = None
                    note = f"The guest's messages could not be fetched: {type(exc).__name__}: {exc}"
            if messages is not None:
                self._threads[conversation] = messages
        messages = self._threads.get(conversation)
        if messages is None:
            messages = messages_frame([])
        context = self._context if (self._context["id"].astype(object) == run["id"]).any() else self._runs
        return thread_html(run_thread(str(run["id"]), context, messages), note=note)

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
        # What the trace item said beyond the table's own columns (the run's fields repeated on
        # every call, agent_name included, are in the header above).
        extras = {k: call[k] for k in call.index
                  if k not in TOOL_CALL_COLUMNS and k != "agent_name" and pd.notna(call[k])}
        parts = []
        entry: dict[str, Any] = {"step": int(call["step"]), "name": str(call["name"]), "extras": extras}
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

    def set_run_ids(self, run_ids: Sequence[str]) -> None:
        """Step through these runs from now on (a filter changed the list): the position and
        the previous/next buttons follow; the run shown stays."""
        self.run_ids = list(run_ids)
        self._show_position()

    def _show_position(self) -> None:
        position = self.run_ids.index(self.run_id) if self.run_id in self.run_ids else None
        self._position.value = f"{position + 1} of {len(self.run_ids)}" if position is not None else ""
        self._prev.disabled = position is None or position == 0
        self._next.disabled = position is None or position >= len(self.run_ids) - 1

    def _step(self, delta: int) -> None:
        if self.run_id in self.run_ids:
            index = self.run_ids.index(self.run_id) + delta
            if 0 <= index < len(self.run_ids):
                self.show(self.run_ids[index])

    @guarded
    def _on_prev_click(self, _button: Any = None) -> None:
        self._step(-1)

    @guarded
    def _on_next_click(self, _button: Any = None) -> None:
        self._step(+1)

