"""fetch_runs against the demo server over HTTP: windows, filters, errors, the cache."""

from __future__ import annotations

import _thread
import asyncio
import math
import os
import signal
import stat
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from conduit_notebook import (
    ConduitClient,
    NotFoundError,
    RunCache,
    cache_info,
    clear_cache,
    demo,
    fetch_runs,
)
from conduit_notebook.demo import RecordSet
from conduit_notebook.frames import DETAIL_COLUMNS

from .conftest import DEMO_END

TRACE = r"/runs/[^/]+$"  # a run's full record
PAGES = r"/runs$"


def created(record) -> datetime:
    return datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))


def expected_records(server, *, since=None, until=None, status=None, agent_ids=None):
    data = server.data
    out = []
    for agent in data.agents:
        if agent_ids and agent["id"] not in agent_ids:
            continue
        for i in data.agent_rows(agent["id"]):
            r = data.summary(int(i))
            if since and created(r) < since or until and created(r) > until:
                continue
            if status and r["status"] not in status:
                continue
            out.append(r)
    return out


def refetched(server) -> set[str]:
    return {r.path.rsplit("/", 1)[1] for r in server.requests if r.path.count("/") == 5}


def unfinished_ids(server) -> set[str]:
    return {r["id"] for r in expected_records(server, status={"accepted", "running"})}


def test_fetch_everything_with_details(server, client):
    frames = fetch_runs(client=client)
    expected = expected_records(server)
    assert len(frames.runs) == len(expected) == server.data.n
    assert set(frames.runs["id"]) == {r["id"] for r in expected}
    records = {r["id"]: server.data.record(server.data.position(r["id"])) for r in expected}
    assert len(frames.tool_calls) == sum(len(r["tool_trace"] or []) for r in records.values())
    assert frames.runs["total_cost"].sum() == pytest.approx(sum(r["total_cost"] or 0 for r in records.values()))
    sample = frames.runs.set_index("id").loc[expected[10]["id"]]
    full = records[expected[10]["id"]]
    assert sample["response"] == full["response"] and sample["disposition_reason"] == full["disposition_reason"]
    assert sample["agent_name"] == next(a["name"] for a in server.data.agents if a["id"] == full["agent_id"])
    assert frames.runs["created_at"].is_monotonic_decreasing
    assert frames.errors.empty and len(frames.agents) == 3
    # One request for the agents, one per page of 100 per agent, one per trace.
    pages = sum(math.ceil(len(server.data.agent_rows(a["id"])) / 100) for a in server.data.agents)
    assert frames.stats.requests == 1 + pages + server.data.n == server.count()
    assert server.count(TRACE) == server.data.n
    assert "runs" in frames._repr_html_() and f"{server.data.n}" in repr(frames)


def test_since_window_stops_paging_early():
    with demo.serve(runs=1200, agents=2, seed=7, end=DEMO_END) as server:
        client = ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000)
        frames = fetch_runs(client=client, since="3d", details=False, cache=False)  # before the clock's now
    since = DEMO_END - timedelta(days=3)
    expected = expected_records(server, since=since)
    assert sorted(frames.runs["id"]) == sorted(r["id"] for r in expected)
    assert frames.runs["created_at"].min() >= pd.Timestamp(since)
    for agent in server.data.agents:
        in_window = sum(1 for r in expected if r["agent_id"] == agent["id"])
        listed = server.count(f"{agent['id']}{PAGES}")
        assert listed == in_window // 100 + 1  # the page holding the first older run ends it
        assert listed < math.ceil(len(server.data.agent_rows(agent["id"])) / 100)
    assert server.count(TRACE) == 0
    for column in DETAIL_COLUMNS:
        assert frames.runs[column].isna().all()
    assert frames.tool_calls.empty
    assert list(frames.tool_calls.columns)[:4] == ["agent_run_id", "agent_id", "agent_name", "step"]


@pytest.mark.parametrize(
    "since, until",
    [
        ("2026-11-10T00:00:00Z", "2026-11-12T12:00:00+00:00"),
        (datetime(2026, 11, 10), datetime(2026, 11, 12, 12)),  # naive means UTC
        (date(2026, 11, 10), date(2026, 11, 12)),  # until a date: to the end of that day
    ],
)
def test_since_and_until_forms(since, until):
    with demo.serve(runs=600, agents=2, seed=4, end=DEMO_END) as server:
        client = ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000)
        frames = fetch_runs(client=client, since=since, until=until, details=False, cache=False)
    lo = datetime(2026, 11, 10, tzinfo=UTC)
    hi = (datetime(2026, 11, 13, tzinfo=UTC) - timedelta(milliseconds=1)
          if isinstance(until, date) and not isinstance(until, datetime)
          else datetime(2026, 11, 12, 12, tzinfo=UTC))
    expected = expected_records(server, since=lo, until=hi)
    assert expected and sorted(frames.runs["id"]) == sorted(r["id"] for r in expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"since": "last week"}, "since must be a datetime .* '7d', '12h', '30m'"),
        ({"until": 12}, "until must be a datetime"),
        ({"since": "1d", "until": "3d"}, "since .* is after until"),
        ({"status": "done"}, "status must be one of accepted, running, completed, failed"),
        ({"status": ["completed", "ok"]}, "status must be one of"),
        ({"max_runs": 0}, "max_runs must be a whole number >= 1"),
        ({"details": "yes"}, "details must be True .every trace., False .none., a whole number"),
        ({"details": 0}, "details must be True"),
        ({"seed": "x"}, "seed must be a whole number"),
        ({"cache": 3}, "cache must be None, False, a file path or a RunCache"),
        ({"agents": 7}, "agents must be None"),
    ],
)
def test_bad_arguments_name_the_parameter(client, server, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fetch_runs(client=client, **kwargs)


def test_status_filter(server, client):
    frames = fetch_runs(client=client, status="failed", cache=False)
    expected = expected_records(server, status={"failed"})
    assert sorted(frames.runs["id"]) == sorted(r["id"] for r in expected)
    assert {r.query.get("status") for r in server.requests if r.path.endswith("/runs")} == {"failed"}
    several = fetch_runs(client=client, status=["running", "accepted"], details=False, cache=False)
    assert set(several.runs["status"]) == {"running", "accepted"}
    assert len(several.runs) == len(expected_records(server, status={"running", "accepted"}))


def test_agents_by_name_and_id(server, client):
    first, second = server.data.agents[:2]
    frames = fetch_runs([first["name"].upper(), second["id"]], client=client, details=False, cache=False)
    assert set(frames.runs["agent_id"]) == {first["id"], second["id"]}
    assert set(frames.runs["agent_name"]) == {first["name"], second["name"]}
    assert len(frames.runs) == len(expected_records(server, agent_ids={first["id"], second["id"]}))
    with pytest.raises(NotFoundError, match="'Spa Bookings'") as info:
        fetch_runs("Spa Bookings", client=client)
    assert first["name"] in str(info.value)  # it lists the agents there are


def test_max_runs_takes_the_newest_over_all_agents(server, client):
    frames = fetch_runs(client=client, max_runs=25, cache=False)
    newest = sorted(expected_records(server), key=lambda r: r["created_at"], reverse=True)[:25]
    assert list(frames.runs["id"]) == [r["id"] for r in newest]
    assert server.count(TRACE) == 25


def test_failed_traces_go_to_the_errors_table(server, client):
    victims = [server.data.summary(int(server.data.agent_rows(a["id"])[3]))["id"] for a in server.data.agents]
    server.inject(500, times=-1, match="|".join(victims), body='{"error": "trace store down"}')
    in_window = {r["id"] for r in expected_records(server, since=DEMO_END - timedelta(days=7))}
    with pytest.warns(UserWarning, match=f"3 of {len(in_window)} traces failed"):
        frames = fetch_runs(client=client, since="7d")
    assert set(victims) <= in_window
    assert set(frames.errors["agent_run_id"]) == set(victims)
    # Nothing lost: the runs stay, from their list page, without a trace (issue 23, item 13).
    assert set(frames.runs["id"]) == in_window
    failed = frames.runs[frames.runs["trace_failed"]]
    assert set(failed["id"]) == set(victims) and failed["trace_weight"].isna().all()
    assert (frames.errors["status_code"] == 500).all()
    assert (frames.errors["attempts"] == client.max_retries + 1).all()
    assert frames.errors["error"].str.contains("trace store down").all()
    # The next call, with the fault gone, fetches exactly the missing traces.
    server.clear_faults()
    server.reset_log()
    again = fetch_runs(client=client, since="7d")
    assert again.errors.empty and server.count(TRACE) == len(victims)
    assert set(again.runs["id"]) == in_window


def test_failed_page_goes_to_the_errors_table(server, client):
    agent = server.data.agents[1]["id"]
    server.inject(503, times=-1, match=f"{agent}/runs$")
    frames = fetch_runs(client=client, details=False, cache=False)
    assert list(frames.errors["agent_id"]) == [agent]
    assert frames.errors["agent_run_id"].isna().all() and frames.errors.loc[0, "status_code"] == 503
    assert agent not in set(frames.runs["agent_id"])
    assert len(frames.runs) == len(expected_records(server)) - len(server.data.agent_rows(agent))


def test_second_fetch_costs_one_list_request_per_agent(server, client, _private_cache):
    first = fetch_runs(client=client, since="10d")
    assert first.stats.detail_requests == len(first.runs) > 0
    server.reset_log()
    second = fetch_runs(client=client, since="10d")
    assert refetched(server) <= unfinished_ids(server)
    assert server.count(PAGES) == len(server.data.agents)
    assert second.stats.requests == 1 + len(server.data.agents) + server.count(TRACE) == server.count()
    assert second.stats.cache_hits == len(second.runs)
    pd.testing.assert_frame_equal(first.runs, second.runs)
    pd.testing.assert_frame_equal(first.tool_calls, second.tool_calls)
    # A wider window lists further back and fetches only the traces it lacks.
    server.reset_log()
    wider = fetch_runs(client=client, since="20d")
    new = len(wider.runs) - len(first.runs)
    assert new > 0 and server.count(TRACE) == new


def test_cache_file_is_private_and_holds_no_token(server, client, _private_cache):
    fetch_runs(client=client, max_runs=30)
    mode = stat.S_IMODE(os.stat(_private_cache).st_mode)
    assert mode == 0o600
    for path in _private_cache.parent.iterdir():
        assert server.token.encode() not in path.read_bytes(), path
    info = cache_info()
    assert info.path == _private_cache and info.sources.loc[0, "runs"] >= 30
    assert info.sources.loc[0, "with_details"] == 30
    assert str(_private_cache) in repr(info)
    assert clear_cache() == info.sources.loc[0, "runs"]
    assert cache_info().sources.empty


def _changing_workspace():
    """A workspace whose runs we can change between fetches, as the real one does."""
    base = datetime(2026, 11, 1, 12, tzinfo=UTC)
    source = demo.DemoData(runs=260, agents=1, seed=11, end=base)
    records = source.records()
    return source.agents, records


def test_new_and_finishing_runs_are_picked_up():
    agents, records = _changing_workspace()
    running = next(i for i, r in enumerate(records[30:], 30) if r["status"] == "completed")
    early = [dict(r) for r in records[20:]]  # the workspace before the 20 newest runs arrived
    early_running = dict(records[running], status="running", disposition=None, tool_trace=[],
                         completed_at=None, response=None)
    early[running - 20] = early_running
    with demo.serve_records(agents, early) as server:
        client = ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000)
        first = fetch_runs(client=client)
        assert len(first.runs) == 240 and server.count(TRACE) == 240
        assert first.runs.set_index("id").loc[records[running]["id"], "status"] == "running"
        server.data = RecordSet(agents, records)  # 20 new runs; the running one has finished
        server.reset_log()
        second = fetch_runs(client=client)
    assert len(second.runs) == 260
    # One page holds the new runs, the stop point and the run that finished; two status-filtered
    # pages tell which older runs are still unfinished (the finished one is not among them).
    assert server.count(PAGES) == 3
    assert sorted(r.query.get("status", "") for r in server.requests if r.path.endswith("/runs")) == [
        "", "accepted", "running"]
    fetched = {r.path.rsplit("/", 1)[1] for r in server.requests if r.path.count("/") == 5}
    assert fetched == {r["id"] for r in records[:20]} | {records[running]["id"]}
    row = second.runs.set_index("id").loc[records[running]["id"]]
    assert row["status"] == "completed" and row["tool_call_count"] == len(records[running]["tool_trace"])


def test_interrupt_keeps_what_was_fetched_and_resumes(_private_cache):
    # A process started in the background has SIGINT ignored, and then interrupt_main() does
    # nothing: make Ctrl-C raise KeyboardInterrupt, as in a notebook, for this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_and_resume(_private_cache)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_and_resume(_private_cache):
    with demo.serve(runs=160, agents=1, seed=3, end=DEMO_END) as server:
        client = ConduitClient(server.token, base_url=server.base_url, requests_per_minute=900)
        timer = threading.Timer(3.0, _thread.interrupt_main)  # Ctrl-C in a notebook, 3 s in
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            fetch_runs(client=client)
        timer.cancel()
        time.sleep(1.0)  # requests already on the wire when Ctrl-C came still land
        server.wait_idle()
        with RunCache(_private_cache) as store:
            source = f"{server.base_url}#"
            kept = sum(1 for c in store.select(source, server.data.agents[0]["id"]) if c.detailed)
        assert 10 < kept < 160
        server.reset_log()
        client = ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000)
        frames = fetch_runs(client=client)
    assert len(frames.runs) == 160 and frames.errors.empty
    assert server.count(TRACE) == 160 - kept


def test_works_inside_a_running_event_loop(server, client):
    async def notebook_cell():
        return fetch_runs(client=client, max_runs=20)

    frames = asyncio.run(notebook_cell())
    assert len(frames.runs) == 20 and len(frames.tool_calls) > 0


def test_two_notebooks_share_one_cache(server, _private_cache):
    results, failures = [], []

    def notebook(agent_name):
        try:
            with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000) as c:
                results.append(fetch_runs(agent_name, client=c, cache=_private_cache))
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    names = [a["name"] for a in server.data.agents]
    threads = [threading.Thread(target=notebook, args=(n,)) for n in names + names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000) as c:
        server.reset_log()
        together = fetch_runs(client=c, cache=_private_cache)
    assert len(together.runs) == server.data.n
    # Only runs still in progress are asked for again (a finished run's trace: once, ever).
    assert refetched(server) <= unfinished_ids(server)
    assert cache_info(_private_cache).sources.loc[0, "runs"] == server.data.n


def test_without_a_cache_nothing_is_written(server, client, _private_cache):
    frames = fetch_runs(client=client, max_runs=15, cache=False)
    assert len(frames.runs) == 15 and not _private_cache.exists()
    again = fetch_runs(client=client, max_runs=15, cache=False)
    assert again.stats.detail_requests == 15
    pd.testing.assert_frame_equal(frames.runs, again.runs)


def test_cache_path_argument_and_compaction(server, client, tmp_path):
    path = tmp_path / "elsewhere.sqlite"
    for days in range(1, 30):  # many small fetches: many segments, then one
        fetch_runs(client=client, since=f"{days}d", cache=path)
    with RunCache(path) as store:
        info = store.info()
        assert info.sources.loc[0, "segments"] <= 25
        source = f"{server.base_url}#"
        assert store.compact(source, force=True)
        assert store.info().sources.loc[0, "segments"] == 1
        runs, calls = store.load(source)
    assert len(runs) == server.data.n and runs["id"].is_unique
    frames = fetch_runs(client=client, cache=path)
    assert (frames.runs["trace_weight"] == 1).all()  # every trace: every weight 1
    assert not frames.runs["trace_failed"].any()
    pd.testing.assert_frame_equal(frames.runs.drop(columns=["trace_weight", "trace_failed"]), runs)
    pd.testing.assert_frame_equal(frames.tool_calls.drop(columns="agent_name"), calls)  # named on the way out


def test_client_from_the_environment_and_a_progress_bar(server, monkeypatch, capsys):
    monkeypatch.setenv("CONDUIT_API_TOKEN", server.token)
    monkeypatch.setenv("CONDUIT_BASE_URL", server.base_url)
    frames = fetch_runs(max_runs=6, progress=True)  # at the default pace, 120 a minute
    newest = sorted(expected_records(server), key=lambda r: r["created_at"], reverse=True)[:6]
    assert list(frames.runs["id"]) == [r["id"] for r in newest]
    err = capsys.readouterr().err
    assert "traces" in err and "pages" in err  # tqdm's text bars went to stderr
    assert server.token not in err
