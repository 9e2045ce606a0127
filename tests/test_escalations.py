"""fetch_escalations over real HTTP against the demo server, and the summaries built on it."""

from __future__ import annotations

import pandas as pd
import pytest

from conduit_notebook import (
    ConduitClient,
    PermissionDeniedError,
    demo,
    escalation_summary,
    fetch_escalations,
    fetch_runs,
    review_report,
    runs_frame,
)
from conduit_notebook.escalations import ESCALATION_COLUMNS, escalations_frame

from .conftest import load_example


def test_every_escalated_run_has_one_escalation_with_an_outcome(server, client):
    data = server.data
    escalations = fetch_escalations(client=client)
    escalated = {str(data.ids[i]) for i in range(data.n) if data.disposition[i] == "escalated"}
    assert set(escalations["agent_run_id"]) == escalated and escalations["id"].is_unique
    pages = -(-len(escalated) // 100)
    assert server.count(r"^/v1/escalations$") == pages  # paged at 100 a request
    assert all(r.query.get("workspace_id") == data.workspace_id for r in server.requests
               if r.path == "/v1/escalations")
    assert set(escalations["status"].astype(str)) <= {"pending", "reviewed", "resolved", "dismissed"}
    assert {"dismissed", "resolved", "pending"} <= set(escalations["status"].astype(str))
    assert str(escalations["created_at"].dtype) == "datetime64[ns, UTC]"
    handled = escalations[escalations["status"] != "pending"]
    assert handled["reviewed_at"].notna().all() and (handled["reviewed_at"] > handled["created_at"]).all()
    assert escalations.loc[escalations["status"] == "pending", "reviewed_by"].isna().all()
    assert list(escalations.columns[: len(ESCALATION_COLUMNS)]) == list(ESCALATION_COLUMNS)
    assert {"workspace_id", "type", "disposition", "request_for_additional_info"} <= set(escalations.columns)


def test_status_filter_and_since(server, client):
    everything = fetch_escalations(client=client)
    server.reset_log()
    dismissed = fetch_escalations(client=client, status="dismissed")
    assert server.requests[-1].query["status"] == "dismissed"
    assert len(dismissed) == (everything["status"] == "dismissed").sum() > 0
    cut = everything["created_at"].median().floor("s")
    recent = fetch_escalations(client=client, since=cut.to_pydatetime())
    assert len(recent) == (everything["created_at"] >= cut).sum()
    with pytest.raises(ValueError, match="status must be one of"):
        fetch_escalations(client=client, status="closed")


def test_a_foreign_workspace_is_a_403(server):
    with ConduitClient(server.token, base_url=server.base_url, workspace_id="j57someone-else",
                       requests_per_minute=60_000, max_retries=0) as c:
        with pytest.raises(PermissionDeniedError):
            fetch_escalations(client=c)


def test_missing_fields_are_tolerated():
    item = load_example("list-escalations.json")["data"][0]  # no agent_run_id, agent_id, ...
    full = load_example("escalation.json")
    odd = {"id": "k5odd", "status": "resolved", "created_at": "2026-04-03T05:42:10Z",
           "reviewed_at": "2026-04-03T07:12:10+00:00", "priority": {"level": 2}}
    agents = load_example("list-agents.json")["data"]
    with demo.serve_records(agents, [], escalations=[item, {**full, "id": "k5full"}, odd]) as srv:
        with ConduitClient(srv.token, base_url=srv.base_url, requests_per_minute=60_000) as c:
            frame = fetch_escalations(client=c)
            assert srv.count(r"^/v1/agents$") == 1  # the workspace, from the agents
    assert list(frame["id"]) == [item["id"], "k5full", "k5odd"]
    assert frame["agent_run_id"].isna().tolist() == [True, False, True]
    assert frame.loc[2, "reviewed_at"] - frame.loc[2, "created_at"] == pd.Timedelta(hours=1.5)
    assert frame.loc[2, "priority"] == {"level": 2}
    assert escalations_frame([]).columns.tolist() == list(ESCALATION_COLUMNS)


def test_summary_by_agent_and_reason(server, client):
    escalations = fetch_escalations(client=client)
    now = pd.Timestamp(server.data.end)
    summary = escalation_summary(escalations, by="disposition_reason", as_of=now)
    total = summary.loc["(all)"]
    assert total["escalations"] == len(escalations)
    assert total[["pending", "reviewed", "resolved", "dismissed"]].sum() == len(escalations)
    assert 0 < total["dismissed_share"] < 1 and total["p50_hours_to_review"] > 0
    assert total["oldest_pending_hours"] > 0
    # Planted: each agent's first escalation reason is dismissed far more often.
    first = {p.escalation_reasons[0] for p in server.data.profiles}
    shares = summary.drop("(all)")["dismissed_share"]
    assert shares[shares.index.isin(first)].mean() > 2 * shares[~shares.index.isin(first)].mean()
    runs = fetch_runs(client=client, details=False, cache=False, progress=False).runs
    by_agent = escalation_summary(escalations, runs, as_of=now)
    assert set(by_agent.index) == {*runs["agent_name"].astype(str).unique(), "(all)"}
    assert by_agent.drop("(all)")["escalations"].sum() == len(escalations)


def test_review_report_sets_verdicts_beside_operator_outcomes(server, client):
    escalations = fetch_escalations(client=client)
    runs = runs_frame([server.data.summary(i) for i in range(server.data.n)])
    judged = escalations.head(6)
    results = pd.DataFrame({"agent_run_id": judged["agent_run_id"].astype(object), "disposition": "escalated",
                            "verdict": ["correct", "correct", "wrong", "correct", "unsure", "correct"],
                            "reviewed_disposition": ["escalated", "escalated", "resolved", "escalated", None,
                                                     "escalated"], "reviewer": "ana"})
    report = review_report(results, runs, escalations=escalations)
    table = report["escalations"]
    assert table.to_numpy().sum() == 6 and set(table.index) == {"correct", "wrong", "unsure"}
    assert set(table.columns) <= {"pending", "reviewed", "resolved", "dismissed"}


def test_the_review_widget_shows_the_operator_outcome(server, client, tmp_path):
    from conduit_notebook import DispositionReview

    frames = fetch_runs(client=client, cache=False, progress=False)
    escalations = fetch_escalations(client=client)
    sample = frames.runs[frames.runs["disposition"] == "escalated"].head(3)
    review = DispositionReview(frames, sample=sample, store=str(tmp_path / "r.csv"), escalations=escalations)
    outcome = escalations.set_index("agent_run_id").loc[review.current, "status"]
    assert f"Conduit operator: <b>{outcome}</b>" in review.controls["progress"].value
