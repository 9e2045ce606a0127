"""Agent names and escalations the API should not send: a bad one is repaired with a warning or
becomes a row of errors, and never fails the whole fetch (issue 23, items 9 and 15, and the
minor ones: a 100 KB agent name, an escalation listing that breaks off)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pandas as pd
import pytest

from conduit_notebook import ConduitClient, fetch_escalations, fetch_runs
from conduit_notebook.report import html_report

from .conftest import DEMO_END


def _agent_json(server, k, name_json):
    agent = dict(server.data.agents[k])
    return json.dumps({**agent, "name": "__NAME__"}).replace('"__NAME__"', name_json)


BAD_NAMES = [("lone surrogate", r'"Billing \ud83d"', "Billing \ufffd"),
             ("number", "42", "42"),
             ("object", '{"en": "Billing"}', None)]


@pytest.mark.parametrize("kind, name_json, shown", BAD_NAMES, ids=[b[0] for b in BAD_NAMES])
def test_a_bad_agent_name_is_repaired_and_the_fetch_goes_on(server, client, tmp_path, kind, name_json, shown):
    agent_id = server.data.agents[1]["id"]
    server.poison(agent_id, _agent_json(server, 1, name_json), where="list")
    with pytest.warns(UserWarning, match=f"agent {agent_id}'s name"):
        frames = fetch_runs(client=client, cache=tmp_path / "c.sqlite", progress=False, details=False)
    assert len(frames.runs) == server.data.n and frames.errors.empty
    names = frames.runs.loc[frames.runs["agent_id"] == agent_id, "agent_name"].astype(object)
    if shown is None:
        assert names.isna().all()  # no name: the agent is shown by its id
    else:
        assert (names == shown).all()
    stored = frames.agents.set_index("id").loc[agent_id, "name"]
    assert stored == shown if shown is not None else pd.isna(stored)
    # Stored and read back: the cache takes the repaired name.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = fetch_runs(client=client, cache=tmp_path / "c.sqlite", progress=False, details=False)
    assert len(again.runs) == server.data.n
    page = html_report(again)
    page.encode("utf-8")  # writable as UTF-8


def test_a_100_kb_agent_name_is_cut(server, client):
    agent_id = server.data.agents[0]["id"]
    server.poison(agent_id, _agent_json(server, 0, json.dumps("Reservations " + "x" * 100_000)), where="list")
    with pytest.warns(UserWarning, match="100,013 characters, cut to 200"):
        frames = fetch_runs(client=client, cache=False, progress=False, details=False)
    names = frames.runs.loc[frames.runs["agent_id"] == agent_id, "agent_name"].astype(object)
    assert (names.str.len() == 200).all() and names.iloc[0].startswith("Reservations xx") and names.iloc[0][-1] == "…"


def _escalations(server):
    return server.data.escalations()


def _client(server):
    return ConduitClient(server.token, base_url=server.base_url, workspace_id=server.data.workspace_id,
                         requests_per_minute=60_000, max_retries=1)


def test_unreadable_escalations_are_error_rows(server):
    items = _escalations(server)
    victims = [items[k]["id"] for k in (3, 10, 20, 30, 40)]
    server.poison(victims[0], "42", where="list")  # not an object
    server.poison(victims[1], json.dumps({k: v for k, v in items[10].items() if k != "id"}), where="list")
    server.poison(victims[2], json.dumps({**items[20], "created_at": "last tuesday"}), where="list")
    server.poison(victims[3], json.dumps({**items[30], "guest_message": "hi \ud83d"}).replace("\\\\ud83d", "\\ud83d"),
                  where="list")
    server.poison(victims[4], json.dumps({**items[40], "created_at": None}), where="list")
    with _client(server) as c:
        with pytest.warns(UserWarning, match="5 escalations could not be read"):
            frame = fetch_escalations(client=c)
    assert len(frame) == len(items) - 5
    assert not set(frame["id"]) & set(victims)
    errors = frame.attrs["errors"]
    assert len(errors) == 5
    text = " | ".join(errors["error"])
    for what in ("not an object", "no id", "created_at 'last tuesday'", "broken character", "created_at None"):
        assert what in text, (what, text)
    # Runs whose escalation record was unreadable are named where the record said so.
    assert items[20]["agent_run_id"] in set(errors["agent_run_id"])


def test_an_escalation_listing_that_breaks_off_keeps_the_pages_before(server):
    items = _escalations(server)
    assert len(items) > 100  # two pages
    server.inject(200, match=r"^/v1/escalations$", skip=1, body='{"data": "nope"}')
    with _client(server) as c:
        with pytest.warns(UserWarning, match="1 escalation listing error"):
            frame = fetch_escalations(client=c)
    assert len(frame) == 100  # the first page, as the message says
    assert "page 2 has a page without a data list" in frame.attrs["errors"]["error"].iloc[0]


def test_the_cli_report_keeps_good_escalations_and_exits_partial(server, tmp_path):
    items = _escalations(server)
    server.poison(items[5]["id"], json.dumps({**items[5], "created_at": "soon"}), where="list")
    env = {**os.environ, "CONDUIT_API_TOKEN": server.token, "CONDUIT_BASE_URL": server.base_url,
           "CONDUIT_WORKSPACE_ID": server.data.workspace_id, "CONDUIT_NOTEBOOK_CACHE": str(tmp_path / "c.sqlite")}
    out = tmp_path / "r.html"
    done = subprocess.run([sys.executable, "-m", "conduit_notebook.cli", "report", "--traces", "none",
                           "--since", (DEMO_END.replace(day=1)).strftime("%Y-%m-%d"), "--until", "2026-11-30",
                           "--out", str(out), "--rpm", "60000"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    page = out.read_text()
    assert "<h2 id='escalations'>" in page and "created_at 'soon' is not a time" in page
