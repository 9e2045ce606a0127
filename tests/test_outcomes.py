"""What happened after each run, over real HTTP against the demo server: outcomes equal flags
computed straight from the records, young runs are unknown, escalation_quality's rates equal
direct counts with intervals that cover them, and the planted agent stands out."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from conduit_notebook import ConduitClient, demo, fetch_escalations, fetch_runs
from conduit_notebook.conversation_outcomes import OUTCOMES, escalation_quality, outcomes

from .conftest import DEMO_END


@pytest.fixture(scope="module", params=[True, False], ids=["planted", "control"])
def workspace(request):
    with demo.serve(runs=1500, agents=3, seed=3, end=DEMO_END, plant=request.param) as server:
        with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000) as client:
            frames = fetch_runs(client=client, details=False, progress=False, cache=False)
            escalations = fetch_escalations(client=client)
        yield server.data, frames.runs, escalations


def _stamp(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_outcomes_equal_flags_from_the_records(workspace):
    data, runs, escalations = workspace
    table = outcomes(runs, within="24h", escalations=escalations)
    assert list(table.index) == list(runs.index) and str(table["came_back"].dtype) == "boolean"
    assert list(table["outcome"].cat.categories) == list(OUTCOMES)
    records = data.summaries()
    by_conversation: dict[str, list] = {}
    for r in records:
        by_conversation.setdefault(r["conversation_id"], []).append(r)
    status = {e["agent_run_id"]: e["status"] for e in data.escalations()}
    newest = max(_stamp(r["created_at"]) for r in records)
    row_of = dict(zip(table["agent_run_id"], range(len(table)), strict=False))
    judged = young = 0
    for r in records:
        t = _stamp(r["created_at"])
        later = [x for x in by_conversation[r["conversation_id"]]
                 if (_stamp(x["created_at"]), x["id"]) > (t, r["id"])]
        within = [x for x in later if _stamp(x["created_at"]) - t <= timedelta(hours=24)]
        row = table.iloc[row_of[r["id"]]]
        if within:
            assert row["came_back"] is True or bool(row["came_back"])
            assert bool(row["came_back_escalated"]) == any(x["disposition"] == "escalated" for x in within)
        elif newest - t >= timedelta(hours=24):
            judged += 1
            assert not row["came_back"] and not row["came_back_escalated"]
        else:
            young += 1
            assert pd.isna(row["came_back"]) and pd.isna(row["came_back_escalated"])
        if r["disposition"] == "escalated":
            expected = {"dismissed": "escalation_dismissed", "pending": "escalation_pending"}.get(
                status.get(r["id"]), "escalation_acted")
            assert row["outcome"] == expected and row["escalation_status"] == status[r["id"]]
        elif not within and newest - t < timedelta(hours=24):
            assert row["outcome"] == "unknown"
    assert judged > 500 and young > 10  # both cases are exercised


def test_escalation_quality_rates_equal_direct_counts_and_intervals_cover(workspace):
    data, runs, escalations = workspace
    quality = escalation_quality(runs, escalations, by="agent_name")
    table = outcomes(runs, escalations=escalations)
    assert list(quality.index) == sorted(runs["agent_name"].astype(str).unique()) + ["(all)"]
    for name, row in quality.iterrows():
        mine = table if name == "(all)" else table[table["agent_name"].astype(str) == name]
        resolved = mine[mine["disposition"].astype(object) == "resolved"]
        judged = resolved[resolved["came_back"].notna()]
        assert row["resolved_runs"] == len(resolved) and row["resolved_judged"] == len(judged)
        assert row["came_back_rate"] == pytest.approx(judged["came_back"].astype(bool).mean())
        assert row["came_back_escalated_rate"] == pytest.approx(judged["came_back_escalated"].astype(bool).mean())
        escalated = mine[mine["disposition"].astype(object) == "escalated"]
        status = escalated["escalation_status"].astype(object)
        decided = status.isin(["reviewed", "resolved", "dismissed"])
        assert row["escalations_decided"] == decided.sum()
        assert row["dismissed_rate"] == pytest.approx((status == "dismissed").sum() / decided.sum())
        for rate in ("came_back_rate", "came_back_escalated_rate", "dismissed_rate"):
            assert row[f"{rate}_ci_low"] <= row[rate] <= row[f"{rate}_ci_high"]
    by_reason = escalation_quality(runs, escalations, by="disposition_reason")
    assert by_reason.loc["(all)", "resolved_runs"] == quality.loc["(all)", "resolved_runs"]


def test_the_planted_agent_stands_out_and_the_control_shows_nothing(workspace):
    data, runs, escalations = workspace
    quality = escalation_quality(runs, escalations).drop(index="(all)")
    planted = data.planted.get("resolutions_do_not_hold")
    if planted:
        agent = planted["agent"]
        others = quality.drop(index=agent)
        assert quality.loc[agent, "came_back_escalated_rate_ci_low"] > others["came_back_escalated_rate_ci_high"].max()
        assert quality.loc[agent, "came_back_rate"] > 0.25
    else:
        # No agent's interval lies wholly above every other's.
        for agent, row in quality.iterrows():
            others = quality.drop(index=agent)
            assert not row["came_back_escalated_rate_ci_low"] > others["came_back_escalated_rate_ci_high"].max()
            assert row["came_back_rate"] < 0.2


def test_bad_arguments_are_named(workspace):
    _, runs, _ = workspace
    with pytest.raises(ValueError, match="within must be a positive time span"):
        outcomes(runs, within="soon")
    with pytest.raises(ValueError, match="within must be a positive time span"):
        outcomes(runs, within="-1h")
    calls = pd.DataFrame({"agent_run_id": ["a"], "step": [0], "name": ["x"]})
    with pytest.raises(ValueError, match="not the tool-call table"):
        outcomes(calls)
    with pytest.raises(ValueError, match="by must be a column"):
        escalation_quality(runs, by="agent")


def test_the_plot_draws_the_table(workspace):
    import matplotlib.pyplot as plt

    from conduit_notebook.plots import plot_escalation_quality

    _, runs, escalations = workspace
    quality = escalation_quality(runs, escalations).drop(index="(all)")
    ax = plot_escalation_quality(runs, escalations, ax=plt.figure().gca())
    widths = [p.get_width() for p in ax.patches]
    n = len(quality)
    assert widths[:n] == pytest.approx(list(quality["came_back_escalated_rate"]))
    assert widths[n:] == pytest.approx(list(quality["dismissed_rate"]))
    assert [t.get_text() for t in ax.get_yticklabels()] == list(quality.index)
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    box = ax.figure.bbox
    for text in ax.texts:  # every label inside the figure
        extent = text.get_window_extent(renderer)
        assert extent.x1 <= box.x1 + 1 and extent.x0 >= box.x0 - 1, text.get_text()
