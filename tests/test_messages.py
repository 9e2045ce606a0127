"""A guest conversation's messages over real HTTP against the demo server: complete and
ordered, one request per thread of up to 100 messages, through the cache, and nothing lost."""

from __future__ import annotations

import warnings
from datetime import timedelta

import pandas as pd
import pytest

from conduit_notebook import (
    ConduitClient,
    NotFoundError,
    PermissionDeniedError,
    RunCache,
    demo,
    fetch_messages,
    fetch_runs,
    messages_frame,
)
from conduit_notebook.messages import MESSAGE_COLUMNS

from .conftest import DEMO_END, load_example

MESSAGES = r"^/v1/conversations/[^/]+/messages$"


def _conversations(data, runs: int) -> list[str]:
    """Conversations of the demo with exactly ``runs`` runs (and a thread of at most 100)."""
    counts = pd.Series(data.conversation.astype(str)).value_counts()
    long = data.planted["long_conversation"]["conversation_id"]
    return [c for c, n in counts.items() if n == runs and c != long]


def test_messages_arrive_complete_and_ordered_one_request_per_thread(server, client, tmp_path):
    data = server.data
    chosen = _conversations(data, 2)[:3] + _conversations(data, 1)[:2]
    messages = fetch_messages(chosen, client=client, cache=tmp_path / "c.sqlite")
    assert server.count(MESSAGES) == len(chosen)  # each thread is under 100 messages: one request
    assert messages.attrs["requests"] == len(chosen) and messages.attrs["errors"] == []
    for cid in chosen:
        expected = data.messages(cid)
        got = messages[messages["conversation_id"] == cid]
        assert list(got["id"]) == [m["id"] for m in expected]          # all of them, oldest first
        assert list(got["body"]) == [m["body"] for m in expected]
        assert list(got["sender_name"].astype(object)) == [m["sender"]["name"] for m in expected]
        assert got["sent_at"].is_monotonic_increasing
    assert list(messages.columns[: len(MESSAGE_COLUMNS)]) == list(MESSAGE_COLUMNS)
    assert str(messages["sent_at"].dtype) == "datetime64[ns, UTC]"
    assert all(isinstance(messages[c].dtype, pd.CategoricalDtype)
               for c in ("conversation_id", "direction", "channel", "status"))
    assert "workspace_id" in messages.columns  # a field beyond the table's own survives
    # Every run of the conversation has the guest's message before it; a completed run with a
    # reply has the agent's reply at its completion.
    for cid in chosen:
        got = messages[messages["conversation_id"] == cid]
        for i in [i for i in range(data.n) if data.conversation[i] == cid]:
            created = pd.Timestamp(int(data.created_ms[i]), unit="ms", tz="UTC")
            before = got[(got["direction"] == "inbound") & (got["sent_at"] <= created)]
            assert len(before) >= 1 and (created - before["sent_at"].max()) < pd.Timedelta(minutes=4)
            record = data.record(i)
            if record["status"] == "completed" and record["response"]:
                assert record["response"] in set(got.loc[got["direction"] == "outbound", "body"])


def test_a_long_thread_takes_more_pages_and_a_second_call_asks_nothing(server, client, tmp_path):
    cache = RunCache(tmp_path / "c.sqlite")
    long = server.data.planted["long_conversation"]["conversation_id"]
    expected = server.data.messages(long)
    assert len(expected) > 100
    messages = fetch_messages([long], client=client, cache=cache)
    assert len(messages) == len(expected) and messages["id"].is_unique
    assert server.count(MESSAGES) == -(-len(expected) // 100) == 2
    assert [r.query.get("order") for r in server.requests] == ["asc", "asc"]
    assert [r.query.get("limit") for r in server.requests] == ["100", "100"]
    server.reset_log()
    again = fetch_messages([long], client=client, cache=cache)
    assert server.count() == 0 and again.attrs["requests"] == 0
    pd.testing.assert_frame_equal(again, messages)
    fetch_messages([long], client=client, cache=cache, refresh=True)
    assert server.count(MESSAGES) == 2


def test_frames_fetch_messages_for_chosen_runs_and_the_cache_rule(server, client, capsys):
    frames = fetch_runs(client=client, details=False, progress=False)
    assert len(frames.messages) == 0 and list(frames.messages.columns) == list(MESSAGE_COLUMNS)
    runs = frames.runs
    picked = runs[runs["conversation_id"].notna()].head(5)
    server.reset_log()
    got = frames.fetch_messages(picked["id"])
    conversations = set(picked["conversation_id"].astype(str))
    assert server.count(MESSAGES) == sum(-(-len(server.data.messages(c)) // 100) for c in conversations)
    assert set(got["conversation_id"].astype(str)) == conversations
    assert set(frames.messages["conversation_id"].astype(str)) == conversations
    assert frames.stats.requests >= server.count(MESSAGES)
    server.reset_log()
    frames.fetch_messages(picked["id"])
    assert server.count() == 0  # stored threads still hold: no run is newer than them
    # A run of one conversation that started after the thread was fetched: that thread again.
    newer = frames.runs.copy()
    row = newer.index[newer["id"] == picked["id"].iloc[0]][0]
    newer.loc[row, "created_at"] = DEMO_END + timedelta(hours=1)
    frames.runs = newer
    frames.fetch_messages(picked["id"])
    assert server.count(MESSAGES) == 1
    assert server.requests[0].path.endswith(f"{picked['conversation_id'].iloc[0]}/messages")
    with pytest.raises(ValueError, match="run_ids must be ids of runs"):
        frames.fetch_messages(["ar_nope"])


def test_every_runs_threads_says_what_it_costs_first(client, server, capsys):
    frames = fetch_runs(client=client, details=False, progress=False, since=DEMO_END - timedelta(days=3))
    capsys.readouterr()
    frames.fetch_messages()
    said = capsys.readouterr().err
    threads = frames.runs["conversation_id"].nunique()
    assert threads > 20 and f"fetching the messages of {threads:,} conversations" in said
    assert "minutes at" in said and server.count(MESSAGES) >= threads


def test_403_and_404_are_clear(server, client):
    cid = _conversations(server.data, 1)[0]
    with ConduitClient(server.token, base_url=server.base_url, workspace_id="j57someone-else",
                       requests_per_minute=60_000, max_retries=0) as other:
        with pytest.raises(PermissionDeniedError, match="no access to this workspace"):
            other.get_messages(cid)
    with pytest.raises(NotFoundError, match="Check the conversation id"):
        client.get_messages("cv_does_not_exist")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        messages = fetch_messages(["cv_does_not_exist", cid], client=client, cache=False)
    assert any("could not be fetched" in str(w.message) for w in caught)
    [error] = messages.attrs["errors"]
    assert error["status_code"] == 404 and "cv_does_not_exist" in error["error"]
    assert set(messages["conversation_id"].astype(str)) == {cid}  # the other thread still arrives
    with pytest.raises(ValueError, match="conversation_ids must be conversation ids"):
        fetch_messages([None], client=client)


def test_a_bad_message_is_an_errors_row_and_unknown_fields_survive(tmp_path):
    example = load_example("list-messages.json")["data"][0]
    agent = load_example("list-agents.json")["data"][0]
    run = dict(load_example("get-run.json")["data"], agent_id=agent["id"], conversation_id=example["conversation_id"])
    good = dict(example, id="ms_good", mood="cheerful")
    no_time = dict(example, id="ms_bad_time", sent_at="yesterday")
    records = [good, no_time, ["not", "an", "object"]]
    with demo.serve_records([agent], [run], messages=records) as server:
        with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000) as client:
            with pytest.warns(UserWarning, match="2 thread"):
                messages = fetch_messages([example["conversation_id"]], client=client, cache=tmp_path / "c.sqlite")
            assert list(messages["id"]) == ["ms_good"] and messages["mood"].tolist() == ["cheerful"]
            errors = messages.attrs["errors"]
            assert len(errors) == 2 and any("sent_at 'yesterday' is not a time" in e["error"] for e in errors)
            assert any("not an object" in e["error"] for e in errors)
            server.reset_log()
            with pytest.warns(UserWarning):
                fetch_messages([example["conversation_id"]], client=client, cache=tmp_path / "c.sqlite")
            assert server.count(MESSAGES) == 1  # a thread with a bad record is not stored: asked again


def test_messages_frame_of_the_reference_example_and_of_nothing():
    example = load_example("list-messages.json")["data"]
    frame = messages_frame(example)
    assert frame.loc[0, "sender_user_id"] == example[0]["sender"]["user_id"]
    assert frame.loc[0, "sender_name"] == "Alex M" and pd.isna(frame.loc[0, "sender_external_id"])
    assert frame.loc[0, "sent_at"] == pd.Timestamp("2026-04-03T03:15:02Z")
    empty = messages_frame([])
    assert list(empty.columns) == list(MESSAGE_COLUMNS) and len(empty) == 0
    assert str(empty["sent_at"].dtype) == "datetime64[ns, UTC]"
    kinds = lambda f: [d.name for d in f.dtypes[: len(MESSAGE_COLUMNS)]]  # noqa: E731
    assert kinds(empty) == kinds(frame)


def test_the_demo_threads_agree_with_its_runs_and_escalations(server):
    data = server.data
    escalations = {e["agent_run_id"]: e for e in data.escalations()}
    acted = [e for e in escalations.values() if e["status"] in ("resolved", "reviewed")]
    end = pd.Timestamp(DEMO_END)
    for e in acted[:10]:
        thread = data.messages(e["conversation_id"])
        team = [m for m in thread if m["sender"]["user_id"] is not None]
        assert any(m["sent_at"] == e["reviewed_at"] for m in team)
        assert any(m["body"] == e["guest_message"] and m["direction"] == "inbound" for m in thread)
    for e in [e for e in escalations.values() if e["status"] in ("dismissed", "pending")][:10]:
        run_reply = {m["sent_at"] for m in data.messages(e["conversation_id"]) if m["sender"]["user_id"]}
        assert e["reviewed_at"] not in run_reply
    for cid in _conversations(data, 3)[:5]:
        assert all(pd.Timestamp(m["sent_at"]) <= end for m in data.messages(cid))
        assert len({m["sender"]["name"] for m in data.messages(cid) if m["direction"] == "inbound"}) == 1


def test_the_token_appears_nowhere(server, tmp_path):
    with ConduitClient(server.token, base_url=server.base_url, workspace_id="j57someone-else",
                       requests_per_minute=60_000, max_retries=0) as other:
        with pytest.warns(UserWarning):
            messages = fetch_messages([_conversations(server.data, 1)[0]], client=other, cache=tmp_path / "c.sqlite")
    assert server.token not in repr(messages.attrs["errors"])
    assert server.token.encode() not in (tmp_path / "c.sqlite").read_bytes()


def test_messages_round_trip_through_parquet(server, client, tmp_path):
    from conduit_notebook import read_parquet

    frames = fetch_runs(client=client, details=False, progress=False)
    frames.fetch_messages(frames.runs["id"].head(4))
    assert len(frames.messages) > 0
    frames.to_parquet(tmp_path / "export")
    again = read_parquet(tmp_path / "export")
    pd.testing.assert_frame_equal(again.messages, frames.messages, check_dtype=False)
    own = list(MESSAGE_COLUMNS)
    assert [str(d) for d in again.messages[own].dtypes] == [str(d) for d in frames.messages[own].dtypes]
    frames.messages = messages_frame([])
    frames.to_parquet(tmp_path / "export", overwrite=True)  # the old export's messages go
    assert len(read_parquet(tmp_path / "export").messages) == 0
