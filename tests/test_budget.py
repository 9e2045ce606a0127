"""The trace budget over real HTTP: every run from list pages, traces for a stratified sample,
estimates from it, traces on demand, unfinished runs, and no trace request twice."""

from __future__ import annotations

import html
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest

from conduit_notebook import (
    ConduitClient,
    DispositionReview,
    RunInspector,
    demo,
    fetch,
    fetch_runs,
    tool_stats,
    traces,
)
from conduit_notebook.demo import RecordSet
from conduit_notebook.sampling import strata_codes

TRACE = r"/runs/[^/]+$"
PAGES = r"/runs$"
END = datetime(2026, 11, 20, tzinfo=UTC)


def test_all_runs_and_a_stratified_sample_within_the_budget(server, client):
    frames = fetch_runs(client=client, details=60)
    assert len(frames.runs) == server.data.n  # every run, from the list pages
    traced = frames.runs["trace_weight"].notna().to_numpy()
    codes = strata_codes(frames.runs)
    assert set(codes[traced]) == set(codes)  # every agent x disposition x status represented
    assert 60 <= traced.sum() <= 60 + codes.max() + 1 == 60 + len(frames.trace_strata)
    assert server.count(TRACE) == traced.sum() == frames.traced
    assert f"{frames.traced} of {server.data.n} runs" in repr(frames)
    assert set(frames.tool_calls["agent_run_id"].astype(object)) <= set(frames.runs.loc[traced, "id"])
    assert frames.runs.loc[~traced, "response"].isna().all()
    assert frames.runs["trace_weight"].sum() == pytest.approx(server.data.n)
    # The same budget again: no trace request, the same sample.
    server.reset_log()
    again = fetch_runs(client=client, details=60)
    assert server.count(TRACE) == 0 and again.stats.detail_requests == 0
    assert set(again.runs.loc[again.runs["trace_weight"].notna(), "id"]) == set(frames.runs.loc[traced, "id"])
    # The same seed takes the same runs in another cache; another seed, others.
    same = fetch_runs(client=client, details=60, cache=False)
    other = fetch_runs(client=client, details=60, seed=1, cache=False)
    ids = set(frames.runs.loc[traced, "id"])
    assert set(same.runs.loc[same.runs["trace_weight"].notna(), "id"]) == ids
    assert set(other.runs.loc[other.runs["trace_weight"].notna(), "id"]) != ids


def test_auto_traces_what_fits_and_says_so_once(server, client, monkeypatch, capsys):
    everything = fetch_runs(client=client, cache=False)  # 450 traces fit in 2 min at 60,000/min
    assert everything.complete and everything.details == "auto" and server.count(TRACE) == server.data.n
    monkeypatch.setattr(traces, "AUTO_TRACE_SECONDS", 0.1)  # 100 traces at 60,000 a minute
    monkeypatch.setattr(fetch, "_TOLD", set())
    server.reset_log()
    frames = fetch_runs(client=client, since="30d")
    told = capsys.readouterr().err
    assert 100 <= frames.traced < len(frames.runs) and server.count(TRACE) == frames.traced
    assert f"traces for {frames.traced:,} of {len(frames.runs):,} runs" in told
    assert "a stratified sample within the budget" in told and "frames.fetch_traces()" in told
    # The command that fetches the rest asks the same workspace at the same pace.
    assert f"`conduit-notebook sync --since 30d --base-url {server.base_url} --rpm 60000`" in told
    server.reset_log()
    again = fetch_runs(client=client, since="30d")
    assert server.count(TRACE) == 0 and again.traced == frames.traced
    assert capsys.readouterr().err == ""  # said once


def _true_tool_counts(data) -> Counter:
    counts: Counter = Counter()
    for i in range(data.n):
        counts.update(call["name"] for call in data.record(i)["tool_trace"] or [])
    return counts


def test_tool_totals_from_a_ten_percent_sample_are_within_15_percent():
    with demo.serve(runs=3000, agents=4, seed=5, end=END) as server:
        client = ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000)
        frames = fetch_runs(client=client, details=300, cache=False)
        assert server.count(TRACE) == frames.traced < 330
        truth = _true_tool_counts(server.data)
    estimate = tool_stats(frames.tool_calls, frames.runs)
    assert estimate.attrs["estimated_from"] == frames.traced
    assert estimate["calls"].sum() == pytest.approx(sum(truth.values()), rel=0.15)
    total = sum(truth.values())
    for tool, calls in truth.items():
        row = estimate.loc[tool]
        if calls >= 0.1 * total:  # the tools that make most calls
            assert row["calls"] == pytest.approx(calls, rel=0.15), tool
        assert row["calls_low"] <= row["calls"] <= row["calls_high"]
    # Inside the 95% intervals for nearly every tool.
    inside = sum(estimate.loc[t, "calls_low"] <= c <= estimate.loc[t, "calls_high"] for t, c in truth.items())
    assert inside >= len(truth) - 2


def test_opening_a_run_without_a_trace_makes_exactly_one_request(server, client, tmp_path):
    frames = fetch_runs(client=client, details=30)
    runs = frames.runs
    untraced = runs.loc[runs["trace_weight"].isna() & (runs["status"] == "completed"), "id"].astype(object)
    run_id = untraced.iloc[0]
    record = server.data.record(server.data.position(run_id))
    before = frames.traced
    server.reset_log()
    inspector = RunInspector(frames, run_id)
    # Its trace, and its conversation's messages (one thread: the run is shown in context).
    assert server.count(TRACE) == 1 and server.count(r"/messages$") == 1 and server.count() == 2
    assert html.escape(record["response"]) in inspector.controls["texts"].value  # the inspector escapes text
    assert f"({len(record['tool_trace'])} call" in inspector.controls["trace"].children[0].value
    assert frames.traced == before + 1  # added to the frames, weights recomputed
    assert frames.runs["trace_weight"].sum() == pytest.approx(len(runs))
    inspector.show(runs.loc[runs["trace_weight"].notna(), "id"].iloc[0])
    inspector.show(run_id)
    assert server.count(TRACE) == 1  # a trace at hand costs nothing
    # The review widget fetches the runs it shows in the same way.
    sample = frames.runs[frames.runs["trace_weight"].isna()].head(3)
    server.reset_log()
    review = DispositionReview(frames, sample=sample, store=str(tmp_path / "reviews.csv"))
    assert server.count(TRACE) == 1 and review.current == sample["id"].iloc[0]
    review.judge("correct")
    assert server.count(TRACE) == 2


def test_fetch_traces_adds_the_chosen_runs(server, client):
    frames = fetch_runs(client=client, details=False)
    assert frames.traced == 0 and frames.tool_calls.empty and server.count(TRACE) == 0
    chosen = frames.runs["id"].iloc[:12]
    frames.fetch_traces(chosen)
    assert server.count(TRACE) == 12 and frames.traced == 12
    expected = sum(len(server.data.record(server.data.position(i))["tool_trace"] or []) for i in chosen)
    assert len(frames.tool_calls) == expected
    assert set(frames.tool_calls["agent_run_id"].astype(object)) <= set(chosen)
    with pytest.raises(ValueError, match="run_ids must be ids of runs in these frames"):
        frames.fetch_traces(["nope"])


def _workspace_with_unfinished_runs():
    source = demo.DemoData(runs=320, agents=1, seed=11, end=END)
    records = source.records()
    # Three older runs still running (their traces would change), as in a real workspace.
    stuck = [i for i, r in enumerate(records) if r["status"] == "completed"][150:153]
    early = [dict(r) for r in records]
    for i in stuck:
        early[i] = dict(records[i], status="running", disposition=None, completed_at=None, response=None,
                        tool_trace=(records[i]["tool_trace"] or [])[:1])
    return source.agents, records, early, stuck


@pytest.mark.parametrize("details", [True, False])
def test_unfinished_runs_are_not_re_requested_and_finished_ones_are_picked_up(details):
    agents, records, early, stuck = _workspace_with_unfinished_runs()
    with demo.serve_records(agents, early) as server:
        client = ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000)
        first = fetch_runs(client=client, details=details)
        assert server.count(TRACE) == (320 if details else 0)
        server.reset_log()
        second = fetch_runs(client=client, details=details)  # nothing changed
        assert server.count(TRACE) == 0  # list pages only, with details=False too
        assert second.stats.requests == server.count() == 1 + server.count(PAGES)
        assert server.count(PAGES) <= 4  # the first page, and the running/accepted lists
        assert len(second.runs) == 320
        # Two of the stuck runs finish.
        server.data = RecordSet(agents, [records[i] if i in stuck[:2] else r for i, r in enumerate(early)])
        server.reset_log()
        third = fetch_runs(client=client, details=details)
    fetched = {r.path.rsplit("/", 1)[1] for r in server.requests if r.path.count("/") == 5}
    assert fetched == ({records[i]["id"] for i in stuck[:2]} if details else set())
    rows = third.runs.set_index("id")
    for i in stuck[:2]:
        assert rows.loc[records[i]["id"], "status"] == "completed"
        assert rows.loc[records[i]["id"], "disposition"] == records[i]["disposition"]
    assert rows.loc[records[stuck[2]]["id"], "status"] == "running"
    assert first.runs["id"].is_unique and third.runs["id"].is_unique
    # Listing went down to the oldest finished run and no further.
    assert server.count(PAGES) <= 2 + int(np.ceil((stuck[1] + 1) / 100))


def test_hand_picked_traces_are_kept_out_of_the_estimate(server, client):
    frames = fetch_runs(client=client, details=60, seed=2)
    before = frames.runs.set_index(frames.runs["id"].astype(object))["trace_weight"]
    estimate = tool_stats(frames.tool_calls, frames.runs)
    picked = frames.runs.loc[frames.runs["trace_weight"].isna(), "id"].astype(object).iloc[:15]
    frames.fetch_traces(picked)
    after = frames.runs.set_index(frames.runs["id"].astype(object))["trace_weight"]
    assert (after[list(picked)] == 0).all()  # traced by hand: shown, weight 0
    sampled = before.dropna().index
    assert np.allclose(after[sampled], before[sampled])  # the random sample keeps its weights
    assert set(frames.tool_calls["agent_run_id"].astype(object)) >= set(picked) & set(
        frames.tool_calls["agent_run_id"].astype(object))
    again = tool_stats(frames.tool_calls, frames.runs)
    assert np.allclose(again["calls"].reindex(estimate.index), estimate["calls"])
    frames.fetch_traces()  # all the rest: a census, every weight 1
    assert (frames.runs["trace_weight"] == 1).all()


def test_a_budget_below_one_trace_per_stratum_is_raised_and_said(server, client):
    with pytest.warns(UserWarning, match=r"details=1 is 1 traces, fewer than the (\d+) strata.*raised"):
        frames = fetch_runs(client=client, details=1, cache=False)
    strata = len(np.unique(strata_codes(frames.runs)))
    assert frames.traced == strata == server.count(TRACE)


def test_a_seed_without_a_sample_is_warned_about(server, client):
    with pytest.warns(UserWarning, match="seed=5 has no effect with details=True"):
        fetch_runs(client=client, details=True, seed=5, max_runs=20)


def test_a_429_does_not_shrink_the_budget(server, monkeypatch):
    """The budget comes from the configured pace: a fetch slowed by 429s takes the same sample
    as one that was not, so the same call again (a new process, at full pace) asks for no trace."""
    monkeypatch.setattr(traces, "AUTO_TRACE_SECONDS", 0.1)  # 100 traces at 60,000 a minute
    # Two refusals of the first list page: the first costs the burst, the second slows the pace.
    server.inject(429, times=2, match=PAGES, retry_after=0.05)
    with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000) as client:
        frames = fetch_runs(client=client)
        assert client.limiter.requests_per_minute < 59_000  # slowed by the 429s
    assert server.count(PAGES, status=429) == 2
    assert frames.traced == server.count(TRACE) == 100
    server.reset_log()
    with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000) as client:
        again = fetch_runs(client=client)
    assert server.count(TRACE) == 0 and again.traced == frames.traced


def test_hand_picked_traces_once_cached_get_no_weight_in_a_later_fetch(server, client):
    # Issue 24 item 3: the cached hand-picked traces took random-sample weights in the next
    # fetch (and the sampler drew fewer runs in their strata): +260% bias in the audit.
    first = fetch_runs(client=client, details=60, seed=2)
    weights = first.runs.set_index(first.runs["id"].astype(object))["trace_weight"]
    first_estimate = tool_stats(first.tool_calls, first.runs)["calls"]
    # 40 untraced runs of the biggest stratum (a stratum traced whole would be a census, weight 1).
    stratum = strata_codes(first.runs)
    biggest = stratum == np.bincount(stratum).argmax()
    picked = list(first.runs.loc[biggest & first.runs["trace_weight"].isna().to_numpy(), "id"].astype(object)
                  .iloc[:40])
    assert len(picked) == 40 and biggest.sum() > 60
    first.fetch_traces(picked)
    server.reset_log()
    later = fetch_runs(client=client, details=60, seed=2)
    assert server.count(TRACE) == 0  # the same draw, every trace of it in the cache
    after = later.runs.set_index(later.runs["id"].astype(object))["trace_weight"]
    assert (after[picked] == 0).all()  # at hand, shown, but not drawn
    sampled = weights.dropna().index
    assert np.allclose(after[sampled], weights[sampled])
    assert int((after > 0).sum()) == len(sampled)
    estimate = tool_stats(later.tool_calls, later.runs)["calls"]
    assert np.allclose(estimate.reindex(first_estimate.index), first_estimate)
