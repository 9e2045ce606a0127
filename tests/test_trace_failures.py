"""A run whose trace fails for good stays in ``runs`` (summary fields from the list page) and its
failure is a row of ``errors``; trace-based estimates treat the failed traces as non-response
(reweighted within strata) and say how many failed (issue 23, item 13)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from conduit_notebook import ConduitClient, fetch_runs, tool_stats
from conduit_notebook.frames import DETAIL_COLUMNS

TRACE = r"/runs/[^/]+$"


@pytest.fixture
def quick(server):
    """A client that retries a 5xx once, at once (the fault's Retry-After)."""
    with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000,
                       max_retries=1) as c:
        yield c


def _fail(server, ids):
    server.inject(500, times=-1, match="/runs/(" + "|".join(ids) + ")$", retry_after=0.001,
                  body='{"error": "trace store down"}')


def _every_fifth(server):
    return [str(server.data.ids[i]) for i in range(0, server.data.n, 5)]


def _biggest(server, share=0.2):
    """The runs with the most tool calls (the failures correlate with big traces)."""
    counts = [len(r.get("tool_trace") or []) for r in server.data.records()]
    order = np.argsort(counts, kind="stable")[::-1][: round(share * server.data.n)]
    return [str(server.data.ids[i]) for i in order]


@pytest.mark.parametrize("cache", [True, False])
def test_a_failed_trace_keeps_its_run(server, quick, cache, tmp_path):
    victims = _every_fifth(server)
    _fail(server, victims)
    with pytest.warns(UserWarning, match=f"{len(victims)} of {server.data.n} traces failed"):
        frames = fetch_runs(client=quick, details=True, progress=False,
                            cache=tmp_path / "c.sqlite" if cache else False)
    runs = frames.runs.set_index(frames.runs["id"].astype(object))
    truth = pd.DataFrame(server.data.summaries()).set_index("id")
    # Every listed run is in runs; the failures are in errors too.
    assert set(runs.index) == set(truth.index) and len(runs) == server.data.n
    assert sorted(frames.errors["agent_run_id"]) == sorted(victims)
    assert (frames.errors["status_code"] == 500).all()
    # Totals from the list pages are exact.
    assert runs["total_cost"].sum() == pytest.approx(truth["total_cost"].sum())
    assert runs["total_tokens"].sum() == sum((u or {}).get("input", 0) + (u or {}).get("output", 0)
                                             for u in truth["token_usage"])
    assert (runs.loc[victims, "disposition"].astype(object).fillna("-")
            == truth.loc[victims, "disposition"].fillna("-")).all()
    # The failed runs carry no trace: no weight, no detail fields, no tool calls; and say so.
    assert runs.loc[victims, "trace_weight"].isna().all()
    assert runs["trace_failed"].dtype == bool and set(runs.index[runs["trace_failed"]]) == set(victims)
    for column in DETAIL_COLUMNS:
        assert runs.loc[victims, column].isna().all(), column
    assert not frames.tool_calls["agent_run_id"].isin(victims).any()
    # The traced runs stand for their stratum (non-response reweighting within strata).
    assert runs["trace_weight"].sum() == pytest.approx(server.data.n)
    assert frames.trace_failures == len(victims)
    assert f"{len(victims)} failed" in repr(frames)


def test_the_next_fetch_retries_the_failed_traces(server, quick, tmp_path):
    victims = _every_fifth(server)[:10]
    _fail(server, victims)
    with pytest.warns(UserWarning, match="10 of"):
        fetch_runs(client=quick, details=True, progress=False, cache=tmp_path / "c.sqlite")
    server.clear_faults()
    server.reset_log()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = fetch_runs(client=quick, details=True, progress=False, cache=tmp_path / "c.sqlite")
    assert server.count(TRACE) == 10 and again.errors.empty
    assert not again.runs["trace_failed"].any() and (again.runs["trace_weight"] == 1).all()


def test_estimates_name_the_failed_traces_and_the_assumption(server, quick):
    """Failures concentrated on the biggest traces bias the reweighted estimate low: the table
    says how many traces failed and what the reweighting assumes, rather than staying silent."""
    victims = _biggest(server)
    _fail(server, victims)
    with pytest.warns(UserWarning, match="traces failed"):
        frames = fetch_runs(client=quick, details=True, progress=False, cache=False)
    truth = sum(len(r.get("tool_trace") or []) for r in server.data.records())
    with pytest.warns(UserWarning, match=rf"{len(victims)} of {server.data.n} runs' traces failed.*"
                                         r"missing at random within"):
        table = tool_stats(frames.tool_calls, frames.runs)
    assert table.attrs["trace_failures"] == len(victims)
    assert "non-response" in table.attrs["note"]
    estimate = table["calls"].sum()
    assert estimate < 0.9 * truth  # the bias the note warns about is real here
    # A slice without failures carries no note.
    clean = frames.runs[~frames.runs["trace_failed"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = tool_stats(frames.tool_calls, clean)
    assert quiet.attrs.get("trace_failures", 0) == 0


def test_the_report_says_how_many_traces_failed(server, quick):
    from conduit_notebook.report import html_report

    victims = _every_fifth(server)
    _fail(server, victims)
    with pytest.warns(UserWarning, match="traces failed"):
        frames = fetch_runs(client=quick, details=True, progress=False, cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the note is in the page, not a warning
        page = html_report(frames)
    assert f"{len(victims)} of {server.data.n} runs&#x27; traces failed" in page
    assert "missing at random" in page
    # Every failed run's error row is listed.
    assert all(v in page for v in victims)


def test_a_server_error_on_every_trace_opens_the_breaker(server):
    """5xx on every trace: a few dozen requests, not every retry of every run (issue 23, minor:
    482 requests for 80 runs); every run stays in runs, its trace failure in errors."""
    server.inject(500, times=-1, match=TRACE, retry_after=0.001)
    with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000,
                       max_retries=5) as c:
        with pytest.warns(UserWarning, match="450 of 450 traces failed"):
            frames = fetch_runs(client=c, cache=False, progress=False, details=True)
    assert len(frames.runs) == server.data.n and frames.trace_failures == server.data.n
    assert len(frames.errors) == server.data.n
    # 30 answers in a row open it; the 8 requests in flight may each meet one more.
    assert server.count(TRACE) <= 30 + 8 * 6
    assert frames.errors["error"].str.contains("server error \\(5xx; server_error_patience=30\\)").sum() > 400


def test_intermittent_server_errors_do_not_open_the_breaker(server):
    # Every third trace request fails once: never 30 in a row.
    for k in range(0, 60, 3):
        server.inject(503, times=1, match=TRACE, skip=k, retry_after=0.001)
    with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000,
                       max_retries=5) as c:
        frames = fetch_runs(client=c, cache=False, progress=False, details=True)
    assert frames.errors.empty and frames.traced == server.data.n


def test_fetch_traces_tries_the_failed_ones_again(server, quick):
    victims = _every_fifth(server)[:12]
    _fail(server, victims)
    with pytest.warns(UserWarning, match="12 of 450 traces failed"):
        frames = fetch_runs(client=quick, details=True, progress=False, cache=False)
    server.clear_faults()
    _fail(server, victims[:2])  # two fail again
    server.reset_log()
    with pytest.warns(UserWarning, match="2 of 12 traces failed"):
        frames.fetch_traces()
    assert server.count(TRACE) == 12 + 2  # the two retried once each (max_retries=1)
    assert set(frames.runs.loc[frames.runs["trace_failed"], "id"]) == set(victims[:2])
    assert frames.trace_failures == 2 and frames.traced == 448
    server.clear_faults()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frames.fetch_traces()
    assert frames.complete and not frames.runs["trace_failed"].any()
    assert (frames.runs["trace_weight"] == 1).all()
