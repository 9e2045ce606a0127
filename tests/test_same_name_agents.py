"""Two agents with one name are two groups, told apart by the end of their ids wherever names
label groups (issue 23, item 14: 120 runs of two agents summed up as one)."""

from __future__ import annotations

import pandas as pd

from conduit_notebook import ConduitClient, demo, fetch_runs, summarize
from conduit_notebook.analysis import cost_breakdown
from conduit_notebook.frames import agent_labels
from conduit_notebook.report import html_report

from .conftest import DEMO_END


def _twins():
    data = demo.DemoData(runs=120, agents=2, seed=4, end=DEMO_END)
    agents = [{**a, "name": "Front desk"} for a in data.agents]
    return agents, data.records()


def test_agent_labels_only_change_names_that_collide():
    assert agent_labels({"ag1": "A", "ag2": "B", "ag3": None}) == {"ag1": "A", "ag2": "B", "ag3": None}
    assert agent_labels({"agxxxx111111": "A", "agyyyy222222": "A", "ag3": "B"}) == {
        "agxxxx111111": "A (…111111)", "agyyyy222222": "A (…222222)", "ag3": "B"}
    # Ids that end alike: the whole id.
    assert agent_labels({"a-000001": "A", "b-000001": "A"}) == {"a-000001": "A (a-000001)", "b-000001": "A (b-000001)"}


def test_two_agents_with_one_name_stay_two_groups():
    agents, records = _twins()
    with demo.serve_records(agents, records) as server:
        with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000) as c:
            frames = fetch_runs(client=c, cache=False, progress=False)
    ids = [a["id"] for a in agents]
    by_agent = summarize(frames.runs, by="agent_name")
    assert len(by_agent) == 2 and by_agent["runs"].sum() == 120
    expected = {f"Front desk (…{i[-6:]})": sum(r["agent_id"] == i for r in records) for i in ids}
    assert dict(zip(by_agent.index.astype(str), by_agent["runs"], strict=False)) == expected
    assert set(frames.agents["name"]) == {"Front desk"}  # the agents table keeps the names as they are
    assert len(cost_breakdown(frames.runs, by="agent_name")) == 2
    page = html_report(frames)
    by_agent_section = page.split("<h2 id='by-agent'>")[1].split("<h2")[0]
    assert all(label in by_agent_section for label in expected)


def test_a_frame_made_elsewhere_is_grouped_by_agent_too():
    runs = pd.DataFrame({"agent_id": ["agaaaaaa1", "agbbbbbb2", "agbbbbbb2"],
                         "agent_name": pd.Categorical(["Twin", "Twin", "Twin"]),
                         "status": ["completed"] * 3, "duration_ms": [1000, 2000, 3000],
                         "input_tokens": [1, 2, 3], "output_tokens": [1, 1, 1], "total_tokens": [2, 3, 4],
                         "total_cost": [0.1, 0.2, 0.3], "disposition": ["resolved"] * 3})
    table = summarize(runs, by="agent_name")
    assert dict(zip(table.index.astype(str), table["runs"], strict=False)) == {"Twin (…aaaaa1)": 1, "Twin (…bbbbb2)": 2}
