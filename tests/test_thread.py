"""A run in its conversation, over real HTTP against the demo server: the timeline around a run,
and the inspector and review showing it, fetched once when a run is opened."""

from __future__ import annotations

import pandas as pd
import pytest

from conduit_notebook import DispositionReview, RunInspector, demo, fetch_runs, messages_frame
from conduit_notebook.thread import THREAD_COLUMNS, relative_time, run_thread

MESSAGES = r"^/v1/conversations/[^/]+/messages$"


def _returning_run(data, frames):
    """A run whose conversation had an earlier run, and a later one (guest came back twice)."""
    counts = pd.Series(data.conversation.astype(str)).value_counts()
    long = data.planted["long_conversation"]["conversation_id"]
    conversation = next(c for c, n in counts.items() if n == 3 and c != long)
    runs = frames.runs[frames.runs["conversation_id"].astype(str) == conversation].sort_values("created_at")
    return runs.iloc[1], conversation


def test_relative_time_reads_well():
    assert relative_time(pd.Timedelta(minutes=-3)) == "−3 min"
    assert relative_time(pd.Timedelta(hours=2, minutes=10)) == "+2 h 10 min"
    assert relative_time(pd.Timedelta(days=1, hours=4, minutes=2)) == "+1 d 4 h"
    assert relative_time(pd.Timedelta(seconds=42)) == "+42 s" and relative_time(pd.Timedelta(0)) == "0 s"


def test_run_thread_puts_the_run_in_its_conversation(server, client):
    frames = fetch_runs(client=client, details=False, progress=False)
    run, conversation = _returning_run(server.data, frames)
    messages = frames.fetch_messages([run["id"]])
    thread = run_thread(run["id"], frames.runs, messages)
    assert list(thread.columns) == list(THREAD_COLUMNS) and thread["at"].is_monotonic_increasing
    expected = server.data.messages(conversation)
    assert set(thread["message_id"].dropna()) == {m["id"] for m in expected}
    start = run["created_at"]
    before = thread[thread["part"] == "before"]
    assert (before["at"] < start).all() and (before["offset"] < pd.Timedelta(0)).all()
    # The guest's message that started this run is the last inbound message before it.
    started = [m for m in expected if m["direction"] == "inbound" and pd.Timestamp(m["sent_at"]) <= start][-1]
    last_in = before[(before["kind"] == "message") & (before["role"] == "guest")].iloc[-1]
    assert last_in["message_id"] == started["id"] and last_in["text"] == started["body"]
    runs_rows = thread[thread["kind"] == "run"]
    assert list(runs_rows["part"].astype(str)) == ["before", "this run", "after"]
    this = runs_rows[runs_rows["part"] == "this run"].iloc[0]
    assert this["agent_run_id"] == run["id"] and this["offset"] == pd.Timedelta(0)
    if pd.notna(run["disposition"]) and run["status"] == "completed":
        reply = thread[(thread["part"] == "this run") & (thread["kind"] == "message")]
        assert len(reply) <= 1 and (reply["role"].astype(str) == "agent").all()
    with pytest.raises(KeyError, match="not in these runs"):
        run_thread("ar_nope", frames.runs, messages)


def test_opening_a_run_in_the_inspector_fetches_its_thread_once(server, client):
    frames = fetch_runs(client=client, details=False, progress=False)
    run, conversation = _returning_run(server.data, frames)
    server.reset_log()
    inspector = RunInspector(frames, run["id"])
    assert server.count(MESSAGES) == 1  # one request: the thread is under 100 messages
    shown = inspector.controls["thread"].value
    expected = server.data.messages(conversation)
    start = run["created_at"]
    earlier = [m for m in expected if pd.Timestamp(m["sent_at"]) < start]
    assert earlier and all(m["body"].replace("'", "&#x27;") in shown for m in earlier)  # escaped as HTML
    assert "this run" in shown and "next run" in shown and "earlier run" in shown
    # Another run of the same conversation, then back: nothing more is asked.
    other = frames.runs[(frames.runs["conversation_id"].astype(str) == conversation)
                        & (frames.runs["id"] != run["id"])]["id"].iloc[0]
    inspector.show(other)
    inspector.show(run["id"])
    assert server.count(MESSAGES) == 1
    assert server.count(r"^/v1/agents/[^/]+/runs/") == 2  # each opened run's trace, once


def test_the_review_shows_the_thread_and_bodies_are_escaped(tmp_path):
    agent = {"id": "ag1", "workspace_id": "ws", "name": "Billing"}
    base = {"agent_id": "ag1", "workspace_id": "ws", "status": "completed", "conversation_id": "cv1",
            "contact_id": "co1", "duration_ms": 2000, "token_usage": {"input": 10, "output": 5},
            "total_cost": 0.01, "response": "Refund sent.", "tool_trace": []}
    runs = [dict(base, id="ar1", disposition="resolved", created_at="2026-11-20T10:00:00.000Z",
                 completed_at="2026-11-20T10:00:02.000Z"),
            dict(base, id="ar2", disposition="escalated", created_at="2026-11-20T12:00:00.000Z",
                 completed_at="2026-11-20T12:00:03.000Z")]
    messages = [
        {"id": "m1", "conversation_id": "cv1", "direction": "inbound", "channel": "email", "status": "sent",
         "body": "<script>alert(1)</script> I was charged twice", "sent_at": "2026-11-20T09:59:00.000Z",
         "created_at": "2026-11-20T09:59:01.000Z", "sender": {"user_id": None, "external_id": "g1", "name": "Ana"}},
        {"id": "m2", "conversation_id": "cv1", "direction": "outbound", "channel": "email", "status": "sent",
         "body": "Refund sent.", "sent_at": "2026-11-20T10:00:02.000Z", "created_at": "2026-11-20T10:00:03.000Z",
         "sender": {"user_id": None, "external_id": None, "name": "Billing"}},
        {"id": "m3", "conversation_id": "cv1", "direction": "inbound", "channel": "email", "status": "sent",
         "body": "Still charged twice!", "sent_at": "2026-11-20T11:59:00.000Z",
         "created_at": "2026-11-20T11:59:01.000Z", "sender": {"user_id": None, "external_id": "g1", "name": "Ana"}}]
    with demo.serve_records([agent], runs, messages=messages) as server:
        from conduit_notebook import ConduitClient

        with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000) as client:
            frames = fetch_runs(client=client, progress=False, cache=tmp_path / "c.sqlite")
            server.reset_log()
            sample = frames.runs[frames.runs["id"] == "ar1"]
            review = DispositionReview(frames, sample=sample, store=str(tmp_path / "r.csv"))
            shown = review.controls["inspector"].controls["thread"].value
            assert server.count(MESSAGES) == 1
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert "Still charged twice!" in shown and "next run" in shown and "escalated" in shown
    assert shown.index("I was charged twice") < shown.index("Refund sent.") < shown.index("Still charged twice!")
    thread = run_thread("ar1", frames.runs, messages_frame(messages))
    assert list(thread["role"].astype(str)) == ["guest", "run", "agent", "guest", "run"]
    assert list(thread["when"]) == ["−1 min", "0 s", "+2 s", "+1 h 59 min", "+2 h"]


def test_a_failed_thread_fetch_is_said_in_the_widget(server, client):
    frames = fetch_runs(client=client, details=False, progress=False)
    run, _ = _returning_run(server.data, frames)
    server.inject(404, match=r"/messages$", times=5)
    inspector = RunInspector(frames, run["id"])
    shown = inspector.controls["thread"].value
    assert "could not be fetched" in shown and "returned 404" in shown
    assert frames.errors["error"].str.contains("returned 404").any()
    assert inspector.controls["errors"].value == ""  # the run itself is still shown
