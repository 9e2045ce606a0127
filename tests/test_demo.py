"""The demo data and the demo server's side of the contract."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import numpy as np
import pytest

from conduit_notebook import demo
from conduit_notebook.demo import PROFILES, DemoData

from .conftest import DEMO_END

END = DEMO_END


def test_same_seed_same_data_other_seed_other_data():
    a = DemoData(runs=300, seed=3, end=END)
    b = DemoData(runs=300, seed=3, end=END)
    c = DemoData(runs=300, seed=4, end=END)
    assert a.records() == b.records()
    assert [r["id"] for r in a.summaries()] != [r["id"] for r in c.summaries()]
    assert a.workspace_id != c.workspace_id


def test_data_looks_like_a_hospitality_operation():
    data = DemoData(runs=20_000, agents=6, seed=0, end=END, days=28)
    runs = data.summaries()
    names = [a["name"] for a in data.agents]
    assert names == [p.name for p in PROFILES]
    statuses = {s: sum(r["status"] == s for r in runs) for s in ("accepted", "running", "completed", "failed")}
    assert statuses["accepted"] >= 6 and statuses["running"] >= 12
    assert 0.02 < statuses["failed"] / len(runs) < 0.08
    dispositions = {r["disposition"] for r in runs if r["status"] == "completed"}
    assert {"resolved", "escalated", "awaiting_guest", "handed_off"} <= dispositions
    durations = np.array([r["duration_ms"] for r in runs if r["status"] == "completed"])
    assert np.mean(durations) > 1.15 * np.median(durations)  # log-normal: a long right tail
    # Cost follows from tokens at the agent's prices.
    profile = {a["id"]: PROFILES[i] for i, a in enumerate(data.agents)}
    for r in runs[:2000]:
        if r["token_usage"]:
            p = profile[r["agent_id"]]
            expected = r["token_usage"]["input"] * p.price_in + r["token_usage"]["output"] * p.price_out
            assert r["total_cost"] == pytest.approx(expected, abs=1e-6)
    # Unfinished runs have no numbers yet; failed ones carry an error.
    for r in runs:
        if r["status"] in ("accepted", "running"):
            assert r["duration_ms"] is None and r["token_usage"] is None and r["completed_at"] is None
        if r["status"] == "failed":
            assert r["error"] and r["disposition"] is None
    # Timestamps: inside the window, with a daily rhythm (more at 14h than at 3h UTC).
    created = [datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")) for r in runs]
    assert min(created) >= END - timedelta(days=29) and max(created) <= END
    hours = np.bincount([c.hour for c in created], minlength=24)
    assert hours[14] > 5 * hours[3]


def test_full_records_have_plausible_tool_traces():
    data = DemoData(runs=2000, agents=3, seed=0, end=END)
    records = data.records()
    calls = [len(r["tool_trace"] or []) for r in records if r["status"] == "completed"]
    assert 3 <= np.mean(calls) <= 5
    escalated = [r for r in records if r["disposition"] == "escalated"]
    assert all(r["tool_trace"][-1]["name"] == "create_escalation" for r in escalated)
    completed = next(r for r in records if r["status"] == "completed" and r["tool_trace"])
    assert completed["response"] and completed["reflection"] and completed["disposition_reason"]
    assert all({"name", "input", "output"} <= item.keys() for item in completed["tool_trace"])
    inputs = [item["input"] for r in records for item in (r["tool_trace"] or [])]
    assert any(isinstance(i, str) for i in inputs) and any(isinstance(i, dict) for i in inputs)


def _get(server, path, **params):
    headers = {"Authorization": f"Bearer {server.token}"}
    return httpx.get(server.base_url + path, params=params, headers=headers)


@pytest.mark.parametrize("limit", ["0", "101", "ten", ""])
def test_limit_is_validated(server, limit):
    response = _get(server, "/v1/agents", limit=limit)
    assert response.status_code == 400
    assert "limit" in response.json()["error"]


def test_default_limit_is_20(server):
    agent = server.data.agents[0]["id"]
    body = _get(server, f"/v1/agents/{agent}/runs").json()
    assert len(body["data"]) == 20 and body["has_more"] is True and body["next_cursor"]


def test_cursor_is_opaque_and_checked(server):
    agent = server.data.agents[0]["id"]
    first = _get(server, f"/v1/agents/{agent}/runs", limit=5).json()
    second = _get(server, f"/v1/agents/{agent}/runs", limit=5, cursor=first["next_cursor"]).json()
    assert {r["id"] for r in first["data"]}.isdisjoint(r["id"] for r in second["data"])
    assert _get(server, f"/v1/agents/{agent}/runs", cursor="bogus").status_code == 400
    other = server.data.agents[1]["id"]
    # A cursor from one listing does not page another.
    assert _get(server, f"/v1/agents/{other}/runs", cursor=first["next_cursor"]).status_code == 400


def test_status_filter_and_bad_status(server):
    agent = server.data.agents[0]["id"]
    body = _get(server, f"/v1/agents/{agent}/runs", status="running", limit=100).json()
    assert body["data"] and {r["status"] for r in body["data"]} == {"running"}
    bad = _get(server, f"/v1/agents/{agent}/runs", status="done")
    assert bad.status_code == 400 and "status" in bad.json()["error"]


def test_auth_and_unknown_routes(server):
    assert httpx.get(server.base_url + "/v1/agents").status_code == 401
    assert _get(server, "/v1/nothing").status_code == 404
    run = server.data.summary(int(server.data.agent_rows(server.data.agents[0]["id"])[0]))
    other_agent = server.data.agents[1]["id"]
    assert _get(server, f"/v1/agents/{other_agent}/runs/{run['id']}").status_code == 404
    assert all(server.token not in str(r) for r in server.requests)


def test_rate_limit_answers_429_with_retry_after():
    # Two requests per 10-second window: the third is refused however slowly a loaded machine
    # sends them (a one-second window let it through under load).
    with demo.serve(runs=10, agents=1, end=END, requests_per_minute=12, rate_window=10.0) as server:
        codes = [_get(server, "/v1/agents").status_code for _ in range(3)]
        refused = _get(server, "/v1/agents")
    assert codes == [200, 200, 429]
    # A window scaled down for tests scales Retry-After too: within the window, not a minute.
    assert refused.status_code == 429 and 0 < float(refused.headers["Retry-After"]) <= 10.0
    assert "Rate limit" in refused.json()["error"]
    with demo.serve(runs=10, agents=1, end=END, requests_per_minute=2) as server:  # a real minute: whole seconds
        codes = [_get(server, "/v1/agents").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_fixed_window_rate_limit_and_runs_per_day():
    with demo.serve(runs=10, agents=1, end=END, requests_per_minute=180, rate_window=1.0, rate_mode="fixed") as server:
        codes = [_get(server, "/v1/agents").status_code for _ in range(4)]
    assert codes.count(429) == 1 or codes == [200, 200, 200, 200]  # 3 a window; a boundary may fall inside
    with pytest.raises(ValueError, match="rate_mode must be one of sliding, fixed"):
        demo.DemoServer(demo.DemoData(runs=1, end=END), rate_mode="tumbling")
    data = demo.DemoData(runs_per_day=50, days=3, agents=2, end=END)
    assert data.n == 150


def test_connect_keeps_the_demo_out_of_the_users_cache(monkeypatch, _private_cache):
    """A notebook on the demo (no token) fetches into a cache of its own session: the user's cache
    (here the test's private default file) gets no dead demo source, nor a pace file."""
    from conduit_notebook import fetch_messages, fetch_runs

    monkeypatch.delenv("CONDUIT_API_TOKEN", raising=False)
    client = demo.connect(runs=120, agents=1)
    try:
        frames = fetch_runs(client=client, since="30d")
        fetch_messages(frames.runs["conversation_id"].dropna().astype(str).iloc[:2].tolist(), client=client)
    finally:
        client.close()
        client.demo_server.stop()
    assert len(frames.runs) > 0 and frames.traced == len(frames.runs)
    assert not _private_cache.parent.exists()  # nothing in the user's cache folder
    assert client.cache_path is not None and "conduit-demo-" in str(client.cache_path)
    from conduit_notebook.cache import RunCache

    with RunCache(client.cache_path) as store:
        assert len(store.load(f"{client.base_url}#")[0]) == len(frames.runs)


@pytest.mark.parametrize("minutes_past_midnight", [5, 9 * 60])
def test_no_day_doubled_whatever_the_time_of_day(clock, minutes_past_midnight):
    """Generated just after midnight UTC, the last full day held its own runs and all of the new
    day's hours still to come (159 runs against 50-96 on other days)."""
    import pandas as pd

    clock.now = datetime(2026, 11, 21).replace(tzinfo=DEMO_END.tzinfo) + timedelta(minutes=minutes_past_midnight)
    data = DemoData(runs=5600, agents=3, seed=4)  # ~200 runs a day over 28 days, ending now
    created = pd.to_datetime([r["created_at"] for r in data.summaries()], utc=True, format="ISO8601")
    assert created.max() <= clock.now
    per_day = created.floor("D").value_counts().sort_index()
    full_days = per_day.iloc[1:-1]  # the first and the last day are partial
    last_full = per_day[pd.Timestamp("2026-11-20", tz="UTC")]
    others = full_days.drop(pd.Timestamp("2026-11-20", tz="UTC"))
    assert last_full <= others.max() and last_full >= others.min()
    assert per_day.sum() == 5600
