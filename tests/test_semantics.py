"""What values mean: whole days, naive times, the exception tree, numbering, names."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from conduit_notebook import (
    APIStatusError,
    ConduitClient,
    NotFoundError,
    UnknownAgentError,
    demo,
    fetch_runs,
    filter_runs,
    runs_frame,
)
from conduit_notebook.times import parse_time

from .conftest import DEMO_END as END


@pytest.fixture(scope="module")
def workspace():
    with demo.serve(runs=600, agents=2, seed=11, end=END) as server:
        yield server


@pytest.fixture
def client(workspace):
    with ConduitClient(workspace.token, base_url=workspace.base_url, requests_per_minute=60_000) as c:
        yield c


def _on(server, day: str) -> set[str]:
    return {r["id"] for r in server.data.summaries() if r["created_at"].startswith(day)}


def test_a_date_string_and_a_date_mean_the_same_whole_day(workspace, client):
    truth = _on(workspace, "2026-11-18")
    assert len(truth) > 10
    as_strings = fetch_runs(client=client, since="2026-11-18", until="2026-11-18", details=False, cache=False)
    as_dates = fetch_runs(client=client, since=date(2026, 11, 18), until=date(2026, 11, 18), details=False,
                          cache=False)
    assert set(as_strings.runs["id"]) == set(as_dates.runs["id"]) == truth
    runs = runs_frame(workspace.data.summaries())
    for start, end in (("2026-11-18", "2026-11-18"), (date(2026, 11, 18), date(2026, 11, 18)),
                       ("2026-11-18", date(2026, 11, 18))):
        assert set(filter_runs(runs, since=start, until=end)["id"]) == truth
    # A timestamp is an instant: until midnight is not the day after it.
    assert set(filter_runs(runs, since="2026-11-18", until="2026-11-18T00:00:00Z")["id"]) <= truth
    assert len(filter_runs(runs, since="2026-11-18", until="2026-11-18T00:00:00Z")) < len(truth)


def test_naive_times_are_utc_in_the_helpers(workspace):
    runs = runs_frame(workspace.data.summaries())
    naive = filter_runs(runs, since=datetime(2026, 11, 18), until=pd.Timestamp("2026-11-18 23:59:59.999999999"))
    assert set(naive["id"]) == _on(workspace, "2026-11-18")
    assert parse_time("2026-11-18T10:00", "since") == pd.Timestamp("2026-11-18T10:00", tz="UTC")


def test_out_of_range_spans_are_a_clear_error():
    with pytest.raises(ValueError, match="since must be"):
        parse_time("99999999999d", "since")
    with pytest.raises(ValueError, match="until must be"):
        parse_time("2026-13-45", "until")


def test_api_status_error_is_the_base_of_the_status_errors(workspace, client):
    with pytest.raises(APIStatusError) as info:
        client.get_run(workspace.data.agents[0]["id"], "ar_nope")
    assert isinstance(info.value, NotFoundError) and info.value.status_code == 404
    with pytest.raises(APIStatusError, match="'Spa'") as unknown:
        fetch_runs("Spa", client=client, cache=False)
    assert isinstance(unknown.value, UnknownAgentError) and isinstance(unknown.value, NotFoundError)


def test_tool_calls_carry_the_agent_name(workspace, client):
    frames = fetch_runs(client=client, since="2026-11-19", cache=False)
    calls = frames.tool_calls
    assert list(calls.columns[:4]) == ["agent_run_id", "agent_id", "agent_name", "step"]
    names = {a["id"]: a["name"] for a in workspace.data.agents}
    assert (calls["agent_name"].astype(object) == calls["agent_id"].astype(object).map(names)).all()
    assert calls.groupby("agent_name", observed=True).size().sum() == len(calls) > 0


def test_refresh_fetches_a_relabelled_run_again(tmp_path):
    records = demo.DemoData(runs=120, agents=1, seed=3, end=END).records()
    agents = demo.DemoData(runs=1, agents=1, seed=3, end=END).agents
    with demo.serve_records(agents, records) as server, ConduitClient(
            server.token, base_url=server.base_url, requests_per_minute=60_000) as client:
        cache = tmp_path / "runs.sqlite"
        first = fetch_runs(client=client, cache=cache, progress=False)
        finished = first.runs[first.runs["status"] == "completed"]
        run_id = finished["id"].iloc[5]
        before = finished.set_index("id").loc[run_id, "disposition"]
        relabelled = "handed_off" if before != "handed_off" else "resolved"
        server.data.runs[server.data.position(run_id)]["disposition"] = relabelled  # Conduit re-labels it
        stale = fetch_runs(client=client, cache=cache, progress=False)
        assert stale.runs.set_index("id").loc[run_id, "disposition"] == before  # a finished run is not re-read
        server.reset_log()
        fresh = fetch_runs(client=client, cache=cache, progress=False, refresh=True)
        assert fresh.runs.set_index("id").loc[run_id, "disposition"] == relabelled
        assert fresh.stats.detail_requests == len(first.runs)
        again = fetch_runs(client=client, cache=cache, progress=False)  # and the cache now holds it
        assert again.runs.set_index("id").loc[run_id, "disposition"] == relabelled
        assert again.stats.detail_requests == 0
    with pytest.raises(ValueError, match="refresh must be True or False"):
        fetch_runs(client=client, refresh="yes")
