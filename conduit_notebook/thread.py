"""A run in its guest conversation: what the guest wrote before it, the agent's reply, and what
followed (the guest writing again, an operator's reply, the next runs and their dispositions),
as one timeline with times relative to the run. What a reviewer needs to judge "was
``resolved`` right?" with the guest's side in view.

>>> frames.fetch_messages([run_id])
>>> run_thread(run_id, frames.runs, frames.messages)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["THREAD_COLUMNS", "relative_time", "run_thread"]

#: The timeline's columns, in order.
THREAD_COLUMNS = ("at", "offset", "when", "part", "kind", "direction", "role", "who", "channel", "text",
                  "agent_run_id", "disposition", "message_id")
#: An outbound message sent this long after a run finished still counts as its reply.
REPLY_SLACK = pd.Timedelta(seconds=5)


def relative_time(offset: pd.Timedelta | Any) -> str:
    """A signed, readable offset: ``"−3 min"``, ``"+2 h 10 min"``, ``"+1 d 4 h"``, ``"0 s"``."""
    if offset is None or pd.isna(offset):
        return ""
    seconds = offset.total_seconds()
    sign = "−" if seconds < 0 else "+"
    left = abs(int(round(seconds)))
    if left < 60:
        return f"{sign}{left} s" if left else "0 s"
    days, left = divmod(left, 86_400)
    hours, left = divmod(left, 3_600)
    minutes = left // 60
    if days:
        return f"{sign}{days} d" + (f" {hours} h" if hours else "")
    if hours:
        return f"{sign}{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{sign}{minutes} min"


def _who(row: pd.Series) -> str:
    if row.get("direction") == "inbound":
        return str(row["sender_name"]) if pd.notna(row.get("sender_name")) else "guest"
    if pd.notna(row.get("sender_user_id")):
        return str(row["sender_name"]) if pd.notna(row.get("sender_name")) else "team member"
    return str(row["sender_name"]) if pd.notna(row.get("sender_name")) else "agent"


def run_thread(run_id: str, runs: pd.DataFrame, messages: pd.DataFrame) -> pd.DataFrame:
    """The timeline of ``run_id``'s conversation: one row per message and per run of it, oldest
    first (:data:`THREAD_COLUMNS`).

    ``offset`` is the time from the run's start (negative before it), ``when`` the same as text
    (:func:`relative_time`); ``part`` is ``before`` (the guest's messages and earlier runs),
    ``this run`` (the run and its reply: outbound messages from its start until it finished) or
    ``after`` (what followed); ``kind`` is ``message`` or ``run``; ``role`` is ``guest``,
    ``agent``, ``team`` (a team member: a sender with a ``user_id``) or ``run``; ``who`` is the
    guest's, the agent's or the team member's name. A run without a conversation, or whose conversation has
    no messages in ``messages``, gives its runs only. A KeyError names a run that ``runs`` lacks.
    """
    ids = runs["id"].astype(object)
    match = np.flatnonzero(ids.to_numpy() == run_id)
    if not len(match):
        raise KeyError(f"run {run_id!r} is not in these runs ({len(runs):,} runs)")
    run = runs.iloc[match[0]]
    start, conversation = run["created_at"], run.get("conversation_id")
    finished = run.get("completed_at")
    if conversation is None or pd.isna(conversation):
        mates = runs.iloc[match[:1]]
        thread = messages.iloc[0:0]
    else:
        mates = runs[runs["conversation_id"].astype(object).to_numpy() == conversation]
        thread = messages[messages["conversation_id"].astype(object).to_numpy() == conversation]
    rows: list[dict[str, Any]] = []
    for _, m in thread.iterrows():
        at = m["sent_at"] if pd.notna(m["sent_at"]) else m["created_at"]
        reply = (m["direction"] == "outbound" and pd.notna(at) and at >= start
                 and pd.notna(finished) and at <= finished + REPLY_SLACK)
        part = "this run" if reply else ("before" if pd.notna(at) and at < start else "after")
        role = ("guest" if m["direction"] == "inbound"
                else "team" if pd.notna(m.get("sender_user_id")) else "agent")
        rows.append({"at": at, "part": part, "kind": "message", "direction": m["direction"], "role": role,
                     "who": _who(m),
                     "channel": m["channel"], "text": m["body"], "agent_run_id": run_id if reply else None,
                     "disposition": None, "message_id": m["id"]})
    for _, r in mates.iterrows():
        this = r["id"] == run_id
        part = "this run" if this else ("before" if r["created_at"] < start else "after")
        name = r.get("agent_name")
        rows.append({"at": r["created_at"], "part": part, "kind": "run", "direction": None, "role": "run",
                     "who": str(name) if name is not None and pd.notna(name) else str(r["agent_id"]),
                     "channel": r.get("channel"), "text": f"run {r['status']}" + (
                         f": {r['disposition']}" if pd.notna(r["disposition"]) else ""),
                     "agent_run_id": str(r["id"]), "disposition": r["disposition"], "message_id": None})
    frame = pd.DataFrame(rows, columns=[c for c in THREAD_COLUMNS if c not in ("offset", "when")])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    # The run itself before its reply when they share a moment; messages before runs otherwise.
    frame["_order"] = np.where(frame["kind"] == "run", 0, 1)
    frame = frame.sort_values(["at", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)
    frame.insert(1, "offset", frame["at"] - start)
    frame.insert(2, "when", frame["offset"].map(relative_time))
    for name in ("part", "kind", "direction", "role"):
        frame[name] = frame[name].astype("category")
    return frame
