"""The conversation around a run as HTML, like a chat: the guest's messages on the left, the
agent's and the team's on the right, the runs of the conversation as a line between them with
their dispositions, times relative to the run. Every text is escaped."""

from __future__ import annotations

import html
from typing import Any, cast

import pandas as pd

from ..plots import DISPOSITION_COLORS

__all__ = ["thread_html"]

_BUBBLE = ("max-width:70%;padding:6px 10px;border-radius:10px;white-space:pre-wrap;margin:2px 0;"
           "font-size:13px;line-height:1.35")
_STYLE = {
    "inbound": "background:#eef1f5;border:1px solid #d5dae1;margin-right:auto",
    "agent": "background:#dbeafe;border:1px solid #93c5fd;margin-left:auto",
    "team": "background:#dcfce7;border:1px solid #86efac;margin-left:auto",
}


def _badge(disposition: object) -> str:
    if disposition is None or pd.isna(cast(Any, disposition)):
        return "<span style='color:#666'>no disposition</span>"
    colour = DISPOSITION_COLORS.get(str(disposition), "#666")
    return (f"<span style='background:{colour};color:white;border-radius:8px;padding:0 7px;font-size:12px'>"
            f"{html.escape(str(disposition))}</span>")


def thread_html(thread: pd.DataFrame, *, note: str = "") -> str:
    """The timeline from :func:`conduit_notebook.run_thread` as HTML (``note``: a line above it)."""
    parts = ["<div class='conduit-thread' style='border:1px solid #e5e7eb;border-radius:6px;padding:8px;"
             "max-height:420px;overflow:auto'>",
             "<div style='font-weight:bold;margin-bottom:4px'>Conversation "
             "<span style='font-weight:normal;color:#666;font-size:12px'>guest on the left, agent and team "
             "on the right; times from this run's start</span></div>"]
    if note:
        parts.append(f"<div style='color:#666;font-size:12px'>{html.escape(note)}</div>")
    for _, row in thread.iterrows():
        when = html.escape(str(row["when"]))
        this = row["part"] == "this run"
        if row["kind"] == "run":
            weight = "bold" if this else "normal"
            back = "#fff7d6" if this else "transparent"
            label = "this run" if this else ("earlier run" if row["part"] == "before" else "next run")
            parts.append(
                f"<div style='display:flex;align-items:center;gap:8px;margin:6px 0;font-size:12px;"
                f"font-weight:{weight};background:{back};border-top:1px dashed #ccc;padding-top:3px'>"
                f"<span style='color:#666;width:86px'>{when}</span><span>{label} · "
                f"{html.escape(str(row['who']))}</span>{_badge(row['disposition'])}</div>")
            continue
        side = {"guest": "inbound", "team": "team"}.get(str(row["role"]), "agent")
        border = "box-shadow:0 0 0 2px #f59e0b;" if this else ""
        parts.append(
            f"<div style='display:flex;flex-direction:column'>"
            f"<div style='{_BUBBLE};{_STYLE[side]};{border}'>"
            f"<div style='font-size:11px;color:#555'>{html.escape(str(row['who']))} · {when}"
            f"{' · ' + html.escape(str(row['channel'])) if pd.notna(row['channel']) else ''}</div>"
            f"{html.escape(str(row['text']) if pd.notna(row['text']) else '')}</div></div>")
    if not len(thread):
        parts.append("<div style='color:#666'>(no messages)</div>")
    parts.append("</div>")
    return "".join(parts)
