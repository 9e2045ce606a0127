"""compare, tool paths, repeated calls, conversations and change points, on synthetic frames
with known effects, on records counted by hand, and on the demo data's planted patterns."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from conduit_notebook import (
    change_points,
    compare,
    compare_tools,
    contacts,
    conversations,
    fetch_runs,
    metric_levels,
    repeat_rates,
    repeated_calls,
    run_paths,
    runs_frame,
    tool_calls_frame,
    tool_paths,
    tool_transitions,
)
from conduit_notebook.demo import DemoData
from conduit_notebook.investigate import canonical_json
from conduit_notebook.stats import chi_square_sf, holm

END = datetime(2026, 11, 20, tzinfo=UTC)


def synthetic(n, *, seed, escalation=0.2, failure=0.05, cost_mu=-4.0, duration_mu=8.0,
              start="2026-10-01", days=28, step_day=None, step_to=None):
    """A runs frame with the columns the investigations use, drawn from known distributions:
    costs and durations log-normal (sigma 0.5), escalations Bernoulli (``step_to`` from
    ``step_day`` on)."""
    rng = np.random.default_rng(seed)
    created = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(rng.uniform(0, days * 86400, n), unit="s")
    day = ((created - pd.Timestamp(start, tz="UTC")) / pd.Timedelta(days=1)).to_numpy().astype(int)
    p = np.where((day >= step_day) if step_day is not None else False, step_to or escalation, escalation)
    failed = rng.random(n) < failure
    escalated = rng.random(n) < p
    cost = np.exp(rng.normal(cost_mu, 0.5, n))
    return pd.DataFrame({
        "id": [f"ar{seed}_{i}" for i in range(n)],
        "agent_id": pd.Categorical(np.where(np.arange(n) % 2, "ag_a", "ag_b")),
        "status": pd.Categorical(np.where(failed, "failed", "completed")),
        "disposition": pd.Categorical(np.where(failed, None, np.where(escalated, "escalated", "resolved"))),
        "created_at": created,
        "duration_ms": pd.array(np.round(np.exp(rng.normal(duration_mu, 0.5, n))).astype(np.int64), dtype="Int64"),
        "input_tokens": pd.array(np.round(cost * 1e5).astype(np.int64), dtype="Int64"),
        "output_tokens": pd.array(np.round(cost * 1e4).astype(np.int64), dtype="Int64"),
        "total_tokens": pd.array(np.round(cost * 1.1e5).astype(np.int64), dtype="Int64"),
        "total_cost": cost,
    })


def lognormal_mean(mu, sigma=0.5):
    return float(np.exp(mu + sigma**2 / 2))


# -- compare ---------------------------------------------------------------------------------------

def test_a_planted_difference_is_significant_with_the_truth_inside_its_interval():
    # 8,000 runs a side: means take the subset bootstrap path (5,000, rescaled).
    a = synthetic(8000, seed=1, escalation=0.20, cost_mu=-4.0, duration_mu=8.0)
    b = synthetic(8000, seed=2, escalation=0.26, cost_mu=-3.85, duration_mu=8.15)
    table = compare(a, b)
    truths = {
        "escalation_rate": 0.06,
        "cost_per_run": lognormal_mean(-3.85) - lognormal_mean(-4.0),
        "p50_duration_s": (np.exp(8.15) - np.exp(8.0)) / 1000,
        "resolution_rate": -0.06,
    }
    for metric, truth in truths.items():
        row = table.loc[metric]
        assert row["significant"], metric
        assert row["ci_low"] < truth < row["ci_high"], (metric, truth, row.to_dict())
    assert not table.loc["failure_rate", "significant"]
    assert table.loc["runs", "a"] == 8000 and np.isnan(table.loc["runs", "p_value"])
    assert table.loc["disposition_mix", "significant"]
    assert list(table.columns) == ["a", "b", "difference", "ci_low", "ci_high", "p_value", "p_holm",
                                   "significant", "method"]
    # Reproducible: the same seed, the same intervals.
    assert compare(a, b).equals(table)


def test_two_samples_of_one_distribution_give_no_significant_row():
    table = compare(synthetic(3000, seed=3), synthetic(3000, seed=4))
    assert not table["significant"].any(), table[["p_value", "p_holm"]]


def test_false_positives_and_coverage_by_simulation():
    """100 pairs from one distribution: the family-wise error after Holm stays near 5% or
    below; the intervals of escalation rate and cost per run cover the truth (0) about 95% of
    the time, and the differences are unbiased."""
    any_significant, covered, differences = 0, Counter(), defaultdict(list)
    sims = 100
    for k in range(sims):
        table = compare(synthetic(300, seed=1000 + 2 * k), synthetic(300, seed=1001 + 2 * k), n_boot=400, seed=k)
        any_significant += bool(table["significant"].any())
        for metric in ("escalation_rate", "cost_per_run", "p50_duration_s"):
            row = table.loc[metric]
            covered[metric] += bool(row["ci_low"] <= 0 <= row["ci_high"])
            differences[metric].append(row["difference"])
    assert any_significant / sims <= 0.10
    for metric in covered:
        assert 0.89 <= covered[metric] / sims <= 1.0, (metric, covered[metric])
    assert abs(np.mean(differences["escalation_rate"])) < 0.01
    assert abs(np.mean(differences["cost_per_run"])) < 0.0015


def test_holm_and_chi_square_by_hand():
    assert holm([0.01, 0.04, np.nan, 0.03]) == pytest.approx([0.03, 0.06, np.nan, 0.06], nan_ok=True)
    for x, df in ((3.841458820694124, 1), (5.991464547107979, 2), (7.814727903251178, 3), (11.070497693516351, 5)):
        assert chi_square_sf(x, df) == pytest.approx(0.05, abs=1e-9)


def test_compare_says_what_is_wrong():
    with pytest.raises(ValueError, match="alpha"), pytest.warns(DeprecationWarning):
        compare(synthetic(10, seed=1), synthetic(10, seed=2), alpha=5)
    with pytest.raises(ValueError, match="total_cost"):
        compare(synthetic(10, seed=1).drop(columns="total_cost"), synthetic(10, seed=2))


def calls_for(n, seed, p_lookup):
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        trace = [{"name": "reply", "input": {}, "output": {}}]
        if rng.random() < p_lookup:
            trace.insert(0, {"name": "lookup", "input": {"id": i}, "output": {}})
        records.append({"id": f"r{seed}_{i}", "agent_id": "ag", "tool_trace": trace})
    return tool_calls_frame(records)


def test_compare_tools_finds_a_tool_used_more_often():
    table = compare_tools(calls_for(1500, 1, 0.3), calls_for(1500, 2, 0.4))
    assert table.loc["lookup", "significant"]
    assert table.loc["lookup", "ci_low"] < 0.1 < table.loc["lookup", "ci_high"]
    assert table.loc["reply", "a"] == 1.0 and not table.loc["reply", "significant"]
    assert table.loc["lookup", "calls_per_run_a"] == 1.0


# -- paths, repeats, conversations against the JSON ------------------------------------------------

TOOLS = ["lookup", "search", "reply", "escalate"]


def traced_records(n=400, seed=7):
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        trace = []
        for _ in range(int(rng.integers(0, 6))):
            name = TOOLS[int(rng.integers(0, 4))]
            value = int(rng.integers(0, 2))
            # Key order varies; half the inputs are the same value in another order.
            payload = {"q": value, "k": 1} if rng.random() < 0.5 else {"k": 1, "q": value}
            trace.append({"name": name, "input": payload, "output": {"ok": True}})
        records.append({
            "id": f"ar{i}", "agent_id": f"ag_{i % 3}", "status": "completed",
            "disposition": ["resolved", "escalated", None][i % 3],
            "created_at": f"2026-11-{1 + i % 20:02d}T{i % 24:02d}:00:00Z", "duration_ms": 1000 + i,
            "token_usage": {"input": 10, "output": 1}, "total_cost": 0.001 * (i % 7),
            "contact_id": f"co{i % 40}", "conversation_id": f"cv{i % 55}",
            "tool_trace": trace,
        })
    return records


def test_paths_and_transitions_equal_counts_from_the_json():
    records = traced_records()
    runs, calls = runs_frame(records), tool_calls_frame(records)
    expected = Counter(" > ".join(c["name"] for c in r["tool_trace"]) or "(no tool calls)" for r in records)
    paths = tool_paths(calls, runs)
    assert dict(zip(paths["path"], paths["runs"], strict=False)) == dict(expected)
    assert paths["runs"].is_monotonic_decreasing and paths["share"].sum() == pytest.approx(1.0)
    # Without runs, runs without calls are invisible; a shuffled frame gives the same paths.
    expected.pop("(no tool calls)")
    shuffled = calls.sample(frac=1.0, random_state=1)
    assert dict(zip(*tool_paths(shuffled).pipe(lambda t: (t["path"], t["runs"])), strict=False)) == dict(expected)
    escalated = [r for r in records if r["disposition"] == "escalated"]
    first = paths.iloc[0]
    hand = [r for r in records if (" > ".join(c["name"] for c in r["tool_trace"]) or "(no tool calls)") == first["path"]]
    decided = [r for r in hand if r["disposition"]]
    assert first["disposition:escalated"] == pytest.approx(
        sum(r["disposition"] == "escalated" for r in decided) / len(decided))
    assert len(escalated) > 0
    pairs = Counter()
    for r in records:
        names = ["(start)", *[c["name"] for c in r["tool_trace"]], "(end)"]
        if len(names) > 2:
            pairs.update(zip(names[:-1], names[1:], strict=False))
    table = tool_transitions(calls)
    assert {(f, t): int(table.loc[f, t]) for f in table.index for t in table.columns if table.loc[f, t]} == dict(pairs)
    assert tool_transitions(calls, normalize=True).sum(axis=1).to_numpy() == pytest.approx(1.0)
    assert run_paths(calls, runs).loc[runs.index[0]] == (" > ".join(c["name"] for c in records[0]["tool_trace"])
                                                          or "(no tool calls)")


@pytest.mark.parametrize("as_text", [False, True], ids=["python-objects", "json-text"])
def test_repeats_equal_counts_from_the_json(as_text):
    records = traced_records()
    runs, calls = runs_frame(records), tool_calls_frame(records)
    # tool_calls_frame keeps input as JSON text, keys in the order they came; also as Python objects:
    if not as_text:
        calls["input"] = calls.conduit.input_json().to_numpy(dtype=object)
    expected = {}
    for r in records:
        seen = Counter((c["name"], json.dumps(c["input"], sort_keys=True)) for c in r["tool_trace"])
        expected.update({(r["id"], name, key): k for (name, key), k in seen.items() if k > 1})
    found = repeated_calls(calls, runs)
    got = {(row.agent_run_id, row.name, json.dumps(json.loads(row.input), sort_keys=True)): row.times
           for row in found.itertuples()}
    assert got == expected
    assert found["total_cost"].notna().all() and found["times"].is_monotonic_decreasing
    rates = repeat_rates(calls, runs)
    with_repeat = {r for r, _, _ in expected}
    by_agent = Counter(r["agent_id"] for r in records if r["id"] in with_repeat)
    totals = Counter(r["agent_id"] for r in records)
    for agent, row in rates.iterrows():
        assert row["runs"] == totals[agent] and row["runs_with_repeat"] == by_agent[agent]
        assert row["ci_low"] <= row["share"] <= row["ci_high"]


def test_canonical_json_ignores_key_order_and_storage():
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == canonical_json('{"a":[1,{"c":3,"d":2}],"b":1}')
    assert canonical_json("parking") == canonical_json('"parking"') == '"parking"'
    assert canonical_json(None) == canonical_json(float("nan")) == "null"


def test_conversations_and_contacts_equal_counts_from_the_json():
    records = traced_records()
    runs = runs_frame(records)
    threads = conversations(runs)
    by_thread = defaultdict(list)
    for r in records:
        by_thread[r["conversation_id"]].append(r)
    assert len(threads) == len(by_thread)
    for key, items in by_thread.items():
        row = threads.loc[key]
        ordered = sorted(items, key=lambda r: r["created_at"])
        assert row["runs"] == len(items)
        assert row["agents"] == len({r["agent_id"] for r in items})
        assert row["total_cost"] == pytest.approx(sum(r["total_cost"] for r in items))
        assert row["total_tokens"] == 11 * len(items)
        assert row["escalated"] == any(r["disposition"] == "escalated" for r in items)
        decided = [r for r in ordered if r["disposition"]]
        assert row["final_disposition"] == (decided[-1]["disposition"] if decided else None) or (
            pd.isna(row["final_disposition"]) and not decided)
        assert row["first_at"] == pd.Timestamp(ordered[0]["created_at"])
        assert row["last_at"] == pd.Timestamp(ordered[-1]["created_at"])
    people = contacts(runs)
    assert people["runs"].sum() == len(records) and len(people) == 40
    assert people.loc["co0", "conversations"] == len({r["conversation_id"] for r in records if r["contact_id"] == "co0"})
    assert threads["total_cost"].is_monotonic_decreasing


def test_missing_cost_stays_missing_in_a_conversation():
    records = [{"id": "a1", "agent_id": "ag", "status": "running", "created_at": "2026-11-01T00:00:00Z",
                "conversation_id": "cv1", "contact_id": "co1", "total_cost": None, "token_usage": None}]
    row = conversations(runs_frame(records)).iloc[0]
    assert np.isnan(row["total_cost"]) and pd.isna(row["total_tokens"]) and not row["escalated"]


# -- change points -----------------------------------------------------------------------------------

def test_a_planted_step_is_found_within_a_day_and_a_flat_series_gives_none():
    runs = synthetic(6000, seed=11, escalation=0.2, step_day=17, step_to=0.3)
    found = change_points(runs, metric="escalation_rate")
    assert len(found) == 1
    at = found.iloc[0]
    assert abs((at["at"] - pd.Timestamp("2026-10-18", tz="UTC")) / pd.Timedelta(days=1)) <= 1
    assert at["before"] == pytest.approx(0.2, abs=0.03) and at["after"] == pytest.approx(0.3, abs=0.03)
    assert change_points(synthetic(6000, seed=12), metric="escalation_rate").empty
    assert change_points(synthetic(6000, seed=12), metric="cost_per_run").empty
    levels = metric_levels(runs, metric="escalation_rate")
    assert levels["runs"].sum() == int(((runs["status"] == "completed") & runs["disposition"].notna()).sum())


def test_change_points_false_positive_rate_by_simulation():
    hits = sum(not change_points(synthetic(1500, seed=500 + k), metric="escalation_rate").empty
               + (not change_points(synthetic(1500, seed=500 + k), metric="p90_duration_s").empty)
               for k in range(40))
    assert hits / 80 <= 0.05


def test_change_points_per_group_and_for_cost():
    a = synthetic(4000, seed=21, cost_mu=-4.0)
    shifted = synthetic(4000, seed=22, cost_mu=-4.0)
    late = shifted["created_at"] >= pd.Timestamp("2026-10-11", tz="UTC")
    shifted.loc[late, "total_cost"] *= 1.5
    both = pd.concat([a.assign(agent_name="Steady"), shifted.assign(agent_name="Shifted")], ignore_index=True)
    found = change_points(both, metric="cost_per_run", by="agent_name")
    assert list(found["agent_name"]) == ["Shifted"]
    assert abs((found["at"].iloc[0] - pd.Timestamp("2026-10-11", tz="UTC")) / pd.Timedelta(days=1)) <= 1
    assert found["after"].iloc[0] / found["before"].iloc[0] == pytest.approx(1.5, rel=0.1)
    slower = shifted.assign(duration_ms=np.where(late, shifted["duration_ms"] * 1.4, shifted["duration_ms"]))
    found = change_points(slower, metric="p90_duration_s")
    assert len(found) == 1 and found["after"].iloc[0] / found["before"].iloc[0] == pytest.approx(1.4, rel=0.1)
    with pytest.raises(ValueError, match="metric must be one of"):
        change_points(a, metric="happiness")


# -- the demo's planted patterns ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def planted():
    frames = {}
    for plant in (True, False):
        data = DemoData(runs=3000, agents=4, seed=0, end=END, plant=plant)
        records = data.records()
        names = {a["id"]: a["name"] for a in data.agents}
        frames[plant] = (data, runs_frame(records, agent_names=names), tool_calls_frame(records))
    return frames


def test_the_demo_escalation_step_is_found_and_nothing_on_the_control(planted):
    data, runs, _ = planted[True]
    step = data.planted["escalation_step"]
    found = change_points(runs, metric="escalation_rate", by="agent_name")
    assert list(found["agent_name"]) == [step["agent"]]
    assert abs((found["at"].iloc[0] - pd.Timestamp(step["at"])) / pd.Timedelta(days=1)) <= 1
    assert found["after"].iloc[0] > found["before"].iloc[0] + 0.15
    _, control, _ = planted[False]
    assert change_points(control, metric="escalation_rate", by="agent_name").empty
    for metric in ("cost_per_run", "failure_rate", "p90_duration_s"):
        assert change_points(runs, metric=metric, by="agent_name").empty, metric
    agent = runs[runs["agent_name"] == step["agent"]]
    cut = pd.Timestamp(step["at"])
    table = compare(agent[agent["created_at"] < cut], agent[agent["created_at"] >= cut])
    assert table.loc["escalation_rate", "significant"]


def test_the_demo_repeated_calls_are_found_and_not_on_the_control(planted):
    data, runs, calls = planted[True]
    loop = data.planted["repeated_call"]
    found = repeated_calls(calls, runs)
    looping = found[(found["name"] == loop["tool"]) & (found["times"] >= 3)]
    # Every planted run is found; a run may also repeat a call by chance (a small input space:
    # one in 3,000 since the demo's times were redrawn), but hardly any.
    assert set(loop["run_ids"]) <= set(looping["agent_run_id"])
    assert len(set(looping["agent_run_id"]) - set(loop["run_ids"])) <= 0.02 * len(loop["run_ids"])
    _, control_runs, control_calls = planted[False]
    control = repeated_calls(control_calls, control_runs)
    chance = set(control.loc[(control["name"] == loop["tool"]) & (control["times"] >= 3), "agent_run_id"])
    assert len(chance) <= 0.02 * len(loop["run_ids"])  # the control has only the chance repeats
    rates = repeat_rates(calls, runs, repeats=found)
    assert rates.loc[loop["agent"], "share"] > repeat_rates(control_calls, control_runs).loc[loop["agent"], "share"] + 0.03


def test_the_demo_long_conversation_is_found_and_not_on_the_control(planted):
    data, runs, _ = planted[True]
    thread = data.planted["long_conversation"]
    threads = conversations(runs).sort_values("runs", ascending=False, kind="stable")
    assert threads.index[0] == thread["conversation_id"] and threads["runs"].iloc[0] == 15
    assert threads["runs"].iloc[1] < 15
    assert conversations(planted[False][1])["runs"].max() < 15


def test_investigations_over_http(client):
    frames = fetch_runs(client=client, since=None, progress=False)
    runs, calls = frames.runs, frames.tool_calls
    paths = tool_paths(calls, runs)
    assert paths["runs"].sum() == len(runs)
    assert conversations(runs)["runs"].sum() == runs["conversation_id"].notna().sum()
    found = repeated_calls(calls, runs)
    assert (found["times"] >= 2).all()


# -- plots -------------------------------------------------------------------------------------------

@pytest.fixture
def _agg():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def _png(ax):
    import io

    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"


def test_plot_compare_draws_each_interval_relative_to_a(_agg):
    from conduit_notebook import plot_compare

    table = compare(synthetic(3000, seed=1, escalation=0.2), synthetic(3000, seed=2, escalation=0.3))
    fig, ax = _agg.subplots(figsize=(9, 6))
    assert plot_compare(table, ax=ax, elinewidth=2) is ax
    shown = table[table["ci_low"].notna() & table["a"].ne(0)]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == list(shown.index)
    points = {}
    for container in ax.containers:
        x, y = container.lines[0].get_data()
        points.update(dict(zip(np.asarray(y).tolist(), np.asarray(x).tolist(), strict=False)))
    row = shown.index.get_loc("escalation_rate")
    assert points[len(shown) - 1 - row] == pytest.approx(100 * shown.loc["escalation_rate", "difference"]
                                                         / shown.loc["escalation_rate", "a"])
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert legend >= {"significant (Holm)", "not in the Holm family (the mix's parts)"}
    # The mix's parts have no p_holm: drawn hollow, not as "not significant" (a 10-point rise in
    # escalations looked like a grey non-result beside a red escalation_rate).
    hollow = [c for c in ax.containers if c.lines[0].get_markerfacecolor() == "white"]
    assert len(hollow) == 1
    assert len(hollow[0].lines[0].get_xdata()) == int(shown["p_holm"].isna().sum()) > 0
    _png(ax)


def test_plot_tool_paths_bars_are_the_path_counts(_agg, planted):
    from conduit_notebook import plot_tool_paths

    _, runs, calls = planted[True]
    ax = plot_tool_paths(calls, runs=runs, top=6)
    widths = np.zeros(6)
    for patch in ax.patches:
        widths[int(round(patch.get_y() + patch.get_height() / 2))] += patch.get_width()
    assert widths[::-1].tolist() == tool_paths(calls, runs)["runs"].head(6).tolist()
    assert ax.get_xlabel() == "runs"
    plain = plot_tool_paths(calls, top=3, ax=_agg.subplots()[1])
    assert [p.get_width() for p in plain.patches][::-1] == tool_paths(calls)["runs"].head(3).tolist()
    _png(ax)


def test_plot_change_points_draws_values_levels_and_marks(_agg, planted):
    from conduit_notebook import plot_change_points, plot_cost, plot_dispositions

    data, runs, _ = planted[True]
    ax = plot_change_points(runs, by="agent_name", ax=_agg.subplots(figsize=(11, 4))[1])
    marks = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(marks) == 1
    assert abs(matplotlib_date(marks[0].get_xdata()[0]) - pd.Timestamp(data.planted["escalation_step"]["at"])) <= pd.Timedelta(days=1)
    levels = metric_levels(runs, by="agent_name")
    check_in = levels[levels["agent_name"] == "Check-in"]
    drawn = [line for line in ax.lines if line.get_label() == "Check-in"][0]
    assert np.asarray(drawn.get_ydata(), dtype=float) == pytest.approx(check_in["value"].to_numpy())
    changes = change_points(runs, by="agent_name")
    for plot in (plot_cost, plot_dispositions):
        marked = plot(runs, freq="D", changes=changes, ax=_agg.subplots()[1])
        assert [line.get_label() for line in marked.lines if line.get_linestyle() == "--"] == ["change point"]
    _png(ax)


def matplotlib_date(value):
    import matplotlib.dates

    if isinstance(value, (float, np.floating)):
        return pd.Timestamp(matplotlib.dates.num2date(value))
    return pd.Timestamp(value)


def test_tool_paths_weight_traced_runs_back_to_the_window(_agg):
    """Four runs, two traced: r1 (weight 3, path a) and r2 (weight 1, path b). The estimate for
    the window of four runs is 3 runs on path a and 1 on path b; untraced runs are not counted
    as runs without tool calls."""
    from conduit_notebook import plot_tool_paths

    runs = synthetic(4, seed=5)
    runs["id"] = ["r1", "r2", "r3", "r4"]
    runs["disposition"] = pd.Categorical(["escalated", "resolved", "resolved", "resolved"])
    calls = pd.DataFrame({"agent_run_id": ["r1", "r2"], "name": ["a", "b"], "step": [0, 0]})
    full = tool_paths(calls, runs)
    assert "note" not in full.attrs and full.loc[full["path"] == "(no tool calls)", "runs"].item() == 2
    runs["trace_weight"] = [3.0, 1.0, np.nan, np.nan]
    table = tool_paths(calls, runs).set_index("path")
    assert list(table.index) == ["a", "b"]
    assert table["runs"].tolist() == [3.0, 1.0] and table["share"].tolist() == [0.75, 0.25]
    assert table.loc["a", "disposition:escalated"] == 1.0 and table.loc["b", "disposition:resolved"] == 1.0
    assert table.attrs["note"] == "estimated from 2 traced runs"
    runs["trace_weight"] = 1.0  # every trace present: unchanged
    assert tool_paths(calls, runs).equals(full)
    runs["trace_weight"] = [3.0, 1.0, np.nan, np.nan]
    ax = plot_tool_paths(calls, runs=runs)
    assert "estimated from 2 traced runs" in " ".join(ax.get_title().split())  # the title wraps
    assert sorted(p.get_width() for p in ax.patches if p.get_width() > 0) == [1.0, 3.0]


def test_compare_takes_confidence_and_alpha_is_deprecated():
    a, b = synthetic(400, seed=1), synthetic(400, seed=2, escalation=0.3)
    table = compare(a, b, confidence=0.9, n_boot=200)
    with pytest.warns(DeprecationWarning, match="confidence=1 - alpha"):
        old = compare(a, b, alpha=0.1, n_boot=200)
    pd.testing.assert_frame_equal(table, old)
    wide = compare(a, b, confidence=0.99, n_boot=200)
    row, wider = table.loc["escalation_rate"], wide.loc["escalation_rate"]
    assert wider["ci_low"] < row["ci_low"] and wider["ci_high"] > row["ci_high"]
    with pytest.raises(ValueError, match="confidence must be a number between 0 and 1"):
        compare(a, b, confidence=95)
    calls = pd.DataFrame({"agent_run_id": ["r1", "r2", "r3"], "name": ["x", "x", "y"]})
    with pytest.warns(DeprecationWarning):
        assert compare_tools(calls, calls, confidence=0.9).equals(compare_tools(calls, calls, alpha=0.1))


def test_holms_family_holds_one_test_per_distinct_question():
    a, b = synthetic(600, seed=31), synthetic(600, seed=32, escalation=0.26)
    table = compare(a, b, n_boot=200)
    family = ["escalation_rate", "failure_rate", "resolution_rate", "p50_duration_s", "p90_duration_s",
              "tokens_per_run", "cost_per_run", "cost_per_resolved_run", "disposition_mix"]
    assert table.attrs["family"] == family
    assert table.loc[family, "p_holm"].to_numpy() == pytest.approx(holm(table.loc[family, "p_value"].to_numpy()))
    shares = [r for r in table.index if r.startswith("disposition:")]
    assert shares and table.loc[shares, "p_holm"].isna().all() and not table.loc[shares, "significant"].any()
    assert table.loc[shares, "p_value"].notna().all()  # still shown, as the mix's follow-ups
    everything = compare(a, b, n_boot=200, family="all")
    assert everything.attrs["family"] == [r for r in everything.index if r != "runs"]
    alone = compare(a, b, n_boot=200, family=["escalation_rate"])
    assert alone.loc["escalation_rate", "p_holm"] == alone.loc["escalation_rate", "p_value"]
    with pytest.raises(ValueError, match="family must be 'distinct', 'all'"):
        compare(a, b, family="some")
    with pytest.raises(ValueError, match="escalation"):
        compare(a, b, family=["escalation"])


def test_a_bootstrap_rows_interval_and_p_value_agree():
    """Heavy-tailed costs (log-normal sigma 2) skew the bootstrap: a p-value from its standard
    error disagreed with the percentile interval (3 of these 12 pairs); the inverted one cannot."""
    for k in range(12):
        a, b = synthetic(200, seed=70 + k), synthetic(200, seed=170 + k)
        a["total_cost"] = np.exp(np.random.default_rng(k).normal(-4, 2.0, len(a)))
        b["total_cost"] = np.exp(np.random.default_rng(100 + k).normal(-4, 2.0, len(b)))
        for confidence in (0.95, 0.9):
            table = compare(a, b, n_boot=400, seed=k, confidence=confidence)
            rows = table[table["method"].str.startswith("bootstrap")]
            excludes = (rows["ci_low"] > 0) | (rows["ci_high"] < 0)
            assert (excludes == (rows["p_value"] < 1 - confidence)).all(), (k, rows)


def test_a_mean_dominated_by_a_few_runs_says_so():
    a, b = synthetic(400, seed=61), synthetic(400, seed=62)
    b.loc[b.index[:3], "total_cost"] = 50.0  # three runs hold nearly all of b's cost
    table = compare(a, b, n_boot=200)
    assert "a few runs dominate: the top 5 of b hold" in table.loc["cost_per_run", "method"]
    assert "dominate" not in table.loc["tokens_per_run", "method"]
