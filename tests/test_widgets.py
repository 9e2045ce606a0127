"""The widgets, headless: set control values, click buttons, read what they expose."""

from __future__ import annotations

import csv
import json
import math
from datetime import date

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from conduit_notebook import (  # noqa: E402
    DispositionReview,
    RunExplorer,
    RunInspector,
    cohen_kappa,
    escalation_quality,
    filter_runs,
    outcomes,
    review_report,
    review_sample,
    runs_frame,
    tool_calls_frame,
    wilson_interval,
)
from conduit_notebook.demo import DemoData  # noqa: E402

from .conftest import DEMO_END  # noqa: E402


class Frames:
    def __init__(self, runs, tool_calls):
        self.runs, self.tool_calls = runs, tool_calls


@pytest.fixture(scope="module")
def frames():
    data = DemoData(runs=1200, agents=3, seed=6, end=DEMO_END)
    names = {a["id"]: a["name"] for a in data.agents}
    records = data.records()
    return Frames(runs_frame(records, agent_names=names), tool_calls_frame(records))


def test_explorer_filters_follow_the_controls(frames):
    explorer = RunExplorer(frames)
    runs = frames.runs
    assert len(explorer.filtered) == len(runs)
    explorer.controls["agents"].value = ("Billing",)
    explorer.controls["dispositions"].value = ("escalated", "resolved")
    expected = runs[(runs["agent_name"] == "Billing") & runs["disposition"].isin(["escalated", "resolved"])]
    assert sorted(explorer.filtered["id"]) == sorted(expected["id"])
    assert set(explorer.filtered_tool_calls["agent_run_id"].astype(str)) <= set(expected["id"])
    assert len(explorer.filtered_tool_calls) == frames.tool_calls["agent_run_id"].isin(expected["id"]).sum()
    assert f"<b>{len(expected):,}</b> of {len(runs):,}" in explorer.controls["count"].value
    explorer.controls["text"].value = "with the property team"
    hits = expected[expected["response"].str.contains("with the property team", case=False, na=False)]
    assert len(explorer.filtered) == len(hits) > 0
    explorer.controls["text"].value = ""
    explorer.controls["duration"].value = (2.0, 5.0)
    seconds = expected["duration_ms"].astype(float) / 1000
    assert len(explorer.filtered) == ((seconds >= 2) & (seconds <= 5)).sum()
    day = expected["created_at"].dt.date.iloc[len(expected) // 2]
    explorer.controls["duration"].value = (explorer.controls["duration"].min, explorer.controls["duration"].max)
    explorer.controls["start"].value = day
    explorer.controls["end"].value = day
    assert (explorer.filtered["created_at"].dt.date == day).all() and len(explorer.filtered) > 0


def test_every_tab_follows_a_filter_change(frames):
    explorer = RunExplorer(frames)
    explorer.controls["agents"].value = ("Billing", "Check-in")
    for index, name in enumerate(RunExplorer.TABS):
        explorer.controls["tabs"].selected_index = index
        assert name not in explorer.stale_tabs
    shown = explorer.filtered
    summary = explorer.rendered["Summary"]
    assert list(summary.index) == ["Billing", "Check-in", "(all)"]
    assert summary.loc["(all)", "runs"] == len(shown)
    cost_ax = explorer.rendered["Cost"].axes[0]
    widths = {t.get_text(): p.get_width() for t, p in zip(cost_ax.get_yticklabels(), cost_ax.patches, strict=False)}
    expected = shown.groupby("agent_name", observed=True)["total_cost"].sum()
    assert widths == pytest.approx(expected.to_dict())
    tools_ax = explorer.rendered["Tools"].axes[0]
    assert sum(p.get_width() for p in tools_ax.patches) == len(explorer.filtered_tool_calls)
    # After: the filtered runs' outcomes, their later runs counted whatever the filter.
    after_ax = explorer.rendered["After"].axes[0]
    quality = escalation_quality(shown, outcomes_table=outcomes(frames.runs)).drop(index="(all)")
    assert [p.get_width() for p in after_ax.patches][:len(quality)] == pytest.approx(
        list(quality["came_back_escalated_rate"].fillna(0)))
    assert [t.get_text() for t in after_ax.get_yticklabels()] == ["Billing", "Check-in"]
    # Changing a filter redraws the visible tab now and the others when they are opened.
    explorer.controls["agents"].value = ("Billing",)
    assert explorer.stale_tabs == set(RunExplorer.TABS) - {RunExplorer.TABS[-1]}
    explorer.controls["tabs"].selected_index = RunExplorer.TABS.index("Cost")
    cost_ax = explorer.rendered["Cost"].axes[0]
    assert [t.get_text() for t in cost_ax.get_yticklabels()] == ["Billing"]


def test_explorer_selection_is_filter_runs_with_every_column(frames):
    # A filter change works on masks and a few columns; what it exposes is still whole.
    explorer = RunExplorer(frames)
    explorer.controls["agents"].value = ("Check-in",)
    explorer.controls["statuses"].value = ("completed", "failed")
    expected = filter_runs(frames.runs, agents=["Check-in"], statuses=["completed", "failed"],
                           since=explorer.controls["start"].value, until=explorer.controls["end"].value)
    pd.testing.assert_frame_equal(explorer.filtered, expected)
    calls = frames.tool_calls
    pd.testing.assert_frame_equal(explorer.filtered_tool_calls,
                                  calls[calls["agent_run_id"].astype(str).isin(set(expected["id"]))])
    newest = expected.sort_values("created_at", ascending=False, kind="stable")["id"].head(5)
    assert {value for _label, value in explorer.controls["runs"].options[:5]} == set(newest)


def test_explorer_tools_tab_weights_sampled_traces(frames):
    # The tabs draw from narrowed frames; the run ids that join calls to runs must stay.
    runs = frames.runs.assign(trace_weight=[2.0 if i % 2 else None for i in range(len(frames.runs))])
    traced = set(runs.loc[runs["trace_weight"].notna(), "id"])
    calls = frames.tool_calls[frames.tool_calls["agent_run_id"].astype(str).isin(traced)]
    explorer = RunExplorer(Frames(runs, calls))
    explorer.controls["tabs"].selected_index = RunExplorer.TABS.index("Tools")
    assert f"estimated from {len(traced):,} traced runs" in explorer.rendered["Tools"].axes[0].get_title()


def test_explorer_redraws_one_figure_per_tab_with_every_label_inside(frames, monkeypatch):
    from IPython.display import Image

    from conduit_notebook.widgets import explorer as explorer_module

    # A long name with dollars: the margins must follow the labels, not the other way round.
    long_name = "Billing $ and late check-out upsells (pay $5)"
    runs = frames.runs.assign(agent_name=frames.runs["agent_name"].cat.rename_categories({"Billing": long_name}))
    shown = []
    monkeypatch.setattr(explorer_module, "display", shown.append)
    explorer = RunExplorer(Frames(runs, frames.tool_calls))
    figures = {}
    for agents in [(long_name,), (long_name, "Check-in"), ("Check-in",), ()]:
        explorer.controls["tabs"].selected_index = 0
        explorer.controls["agents"].value = agents
        for index, name in enumerate(RunExplorer.TABS[1:], 1):
            explorer.controls["tabs"].selected_index = index
            fig = explorer.rendered[name]
            assert figures.setdefault(name, fig) is fig  # cleared and redrawn, not replaced
            assert len(fig.axes) == (2 if name == "Dispositions" else 1)  # the twin is reused
            # What the tab shows is the figure as PNG, at its size, every label inside.
            png = shown[-1]
            assert isinstance(png, Image) and png.data.startswith(b"\x89PNG")
            width, height = int.from_bytes(png.data[16:20], "big"), int.from_bytes(png.data[20:24], "big")
            assert (width, height) == (round(fig.bbox.width), round(fig.bbox.height))
            renderer = fig.canvas.get_renderer()
            for ax in fig.axes:
                box = ax.get_tightbbox(renderer)
                assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= width + 1 and box.y1 <= height + 1, (name, agents)
        shown_runs = explorer.filtered
        (line,) = figures["Dispositions"].axes[1].lines
        daily = shown_runs.dropna(subset=["disposition"]).groupby(pd.Grouper(key="created_at", freq="D")).size()
        assert list(line.get_ydata()[:-1]) == list(daily.to_numpy())


def test_a_redraw_pauses_the_garbage_collector_and_gives_it_back(frames, monkeypatch):
    import gc

    from conduit_notebook import plots

    seen = []
    draw = plots.plot_duration

    def watched(*args, **kwargs):
        seen.append(gc.isenabled())
        return draw(*args, **kwargs)

    monkeypatch.setattr(plots, "plot_duration", watched)
    explorer = RunExplorer(frames)
    explorer.controls["tabs"].selected_index = RunExplorer.TABS.index("Duration")
    explorer.controls["agents"].value = ("Billing",)
    assert seen == [False, False] and gc.isenabled()  # paused while drawing, on again after
    gc.disable()  # a user's choice stays as it is
    try:
        explorer.controls["agents"].value = ()
        assert not gc.isenabled()
    finally:
        gc.enable()
    monkeypatch.setattr(plots, "plot_duration", lambda *a, **k: 1 / 0)
    explorer.controls["agents"].value = ("Billing",)
    assert "ZeroDivisionError" in explorer.controls["errors"].value and gc.isenabled()


def test_explorer_takes_what_is_alive_out_of_the_collectors_walk(frames):
    import gc

    frozen = gc.get_freeze_count()
    RunExplorer(frames)
    assert gc.get_freeze_count() > frozen


def test_choosing_a_run_opens_the_inspector(frames):
    explorer = RunExplorer(frames)
    explorer.controls["dispositions"].value = ("escalated",)
    run_id = explorer.controls["runs"].options[3][1]
    explorer.controls["runs"].value = run_id
    inspector = explorer.inspector
    assert isinstance(inspector, RunInspector) and inspector.run_id == run_id
    assert "escalated" in inspector.controls["header"].value
    inspector.controls["next"].click()
    assert inspector.run_id == explorer.controls["runs"].options[4][1]


def test_inspector_shows_the_trace_in_order(frames):
    runs, calls = frames.runs, frames.tool_calls
    run_id = calls["agent_run_id"].astype(str).value_counts().index[0]
    inspector = RunInspector(frames, run_id)
    mine = calls[calls["agent_run_id"] == run_id].sort_values("step")
    assert [c["name"] for c in inspector.calls] == list(mine["name"].astype(str))
    # Numbered as the table numbers them: the title of each call says its step column.
    assert [c["step"] for c in inspector.calls] == list(mine["step"])
    assert [c["box"].get_title(0).split(":")[0] for c in inspector.calls] == [f"step {s}" for s in mine["step"]]
    first_input = inspector.calls[0]["input"].value
    assert "&quot;" in first_input or "{" in first_input  # pretty JSON, escaped
    row = runs.set_index("id").loc[run_id]
    assert str(row["disposition"]) in inspector.controls["header"].value
    assert inspector.controls["previous"].disabled is (inspector.run_ids.index(run_id) == 0)


def test_inspector_shows_a_calls_own_extra_keys_not_the_runs_columns_again(frames):
    runs, calls = frames.runs, frames.tool_calls.copy()
    # fetch_runs repeats the run's agent_name on every call: the header shows it already.
    calls["agent_name"] = "Billing"
    calls["latency_ms"] = pd.array([None] * len(calls), dtype="Int64")
    calls.at[calls.index[0], "latency_ms"] = 125  # a key only this trace item had
    inspector = RunInspector(Frames(runs, calls), str(calls["agent_run_id"].iloc[0]))
    assert inspector.calls[0]["extras"] == {"latency_ms": 125}
    assert all(c["extras"] == {} for c in inspector.calls[1:])


def test_long_payloads_are_cut_with_a_way_to_see_all(frames):
    runs, calls = frames.runs, frames.tool_calls.copy()
    big = {"rows": [{"n": i, "text": "x" * 40} for i in range(200)]}
    calls.at[calls.index[0], "output"] = json.dumps(big)  # JSON text, as fetched
    inspector = RunInspector(Frames(runs, calls), str(calls["agent_run_id"].iloc[0]))
    first = inspector.calls[0]
    view, button = first["output"], first["output_show_all"]
    assert first["input_show_all"] is None  # a short input has nothing more to show
    assert len(view.value) < 2000 and "…" in view.value
    button.value = True
    assert len(view.value) > 10_000


def test_select_run_opens_any_run_and_the_list_says_it_is_cut(frames):
    explorer = RunExplorer(frames)
    runs = frames.runs
    assert len(runs) > 200 and len(explorer.controls["runs"].options) == 200
    assert "the 200 newest of 1,200" in explorer.controls["runs_title"].value
    oldest = runs.sort_values("created_at")["id"].iloc[0]
    assert oldest not in {v for _label, v in explorer.controls["runs"].options}
    inspector = explorer.select_run(oldest)
    assert inspector.run_id == oldest and oldest in inspector.controls["header"].value
    # A run the filters leave out opens too; an id the frames lack is a KeyError.
    explorer.controls["dispositions"].value = ("escalated",)
    resolved = runs.loc[runs["disposition"] == "resolved", "id"].iloc[0]
    assert explorer.select_run(resolved).run_id == resolved
    assert "all " in explorer.controls["runs_title"].value or "newest of" in explorer.controls["runs_title"].value
    with pytest.raises(KeyError, match="ar_nope"):
        explorer.select_run("ar_nope")


def test_inspector_show_raises_for_an_unknown_run(frames):
    inspector = RunInspector(frames)
    with pytest.raises(KeyError, match="'nope' is not in these frames"):
        inspector.show("nope")
    with pytest.raises(KeyError):
        RunInspector(frames, "nope")


def test_review_saves_each_verdict_and_resumes(frames, tmp_path):
    store = tmp_path / "reviews.csv"
    review = DispositionReview(frames, store=str(store), reviewer="ana")
    first, second, third = list(review.sample["id"])[:3]
    review.controls["correct"].click()
    review.controls["right"].value = "handed_off"
    review.controls["note"].value = "guest asked for a person"
    review.controls["wrong"].click()
    review.controls["unsure"].click()
    rows = list(csv.DictReader(open(store)))
    assert [r["agent_run_id"] for r in rows] == [first, second, third]
    assert [r["verdict"] for r in rows] == ["correct", "wrong", "unsure"]
    assert rows[1]["reviewed_disposition"] == "handed_off" and rows[1]["note"] == "guest asked for a person"
    assert rows[0]["reviewed_disposition"] == rows[0]["disposition"]
    assert list(review.results["verdict"]) == ["correct", "wrong", "unsure"]
    # A kernel restart: a new widget on the same store resumes at the fourth run.
    again = DispositionReview(frames, store=str(store), reviewer="ana")
    assert again.position == 3 and again.current == list(review.sample["id"])[3]
    # Another reviewer starts at the beginning.
    assert DispositionReview(frames, store=str(store), reviewer="ben").position == 0


def test_errors_in_callbacks_show_in_the_widget(frames, tmp_path):
    review = DispositionReview(frames, store=str(tmp_path / "r.csv"), reviewer="ana")
    review.controls["wrong"].click()  # no right disposition given
    assert "Pick or type the right disposition" in review.controls["errors"].value
    assert review.position == 0 and review.results.empty
    review.controls["correct"].click()
    assert review.controls["errors"].value == "" and review.position == 1


def test_filter_runs_as_a_function(frames):
    runs = frames.runs
    out = filter_runs(runs, statuses=["failed"], until=date(2100, 1, 1))
    assert len(out) == (runs["status"] == "failed").sum()
    assert len(filter_runs(runs, text="ZZZ-not-there")) == 0


def test_wilson_interval_and_kappa_by_hand():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    a = pd.Series(["r", "r", "e", "e", "r", "e"])
    b = pd.Series(["r", "e", "e", "e", "r", "r"])
    # observed 4/6; expected (3/6*3/6 + 3/6*3/6) = 0.5; kappa = (0.667 - 0.5) / 0.5
    assert cohen_kappa(a, b) == pytest.approx((4 / 6 - 0.5) / 0.5)


def test_review_report(frames, tmp_path):
    store = tmp_path / "reviews.csv"
    ana = DispositionReview(frames, store=str(store), reviewer="ana")
    sample = ana.sample.reset_index(drop=True)
    right_2 = "escalated" if sample.loc[2, "disposition"] != "escalated" else "handed_off"
    right_1 = "spam" if sample.loc[1, "disposition"] != "spam" else "handed_off"
    for i in range(6):
        if i == 2:
            ana.judge("wrong", right=right_2)
        elif i == 5:
            ana.judge("unsure")
        else:
            ana.judge("correct")
    ben = DispositionReview(frames, store=str(store), reviewer="ben")
    for i in range(4):
        ben.judge("correct" if i != 1 else "wrong", right=right_1)
    report = review_report(ana.results, frames.runs)
    overall = report["accuracy"].loc["(all)"]
    # One run, one vote: runs 1 and 2 are ties between ana and ben (unsure), run 5 is unsure.
    assert overall["reviewed"] == 3 and overall["correct"] == 3 and overall["unsure"] == 3
    assert overall["accuracy"] == pytest.approx(1.0) and overall["ci_low"] < 1.0
    assert report["confusion"].to_numpy().sum() == 3
    assert report["kappa_runs"] == 4
    assert set(report["disagreements"]["agent_run_id"]) == {sample.loc[1, "id"], sample.loc[2, "id"]}
    labels_ana = [sample.loc[i, "disposition"] if i != 2 else right_2 for i in range(4)]
    labels_ben = [sample.loc[i, "disposition"] if i != 1 else right_1 for i in range(4)]
    assert report["kappa"] == pytest.approx(cohen_kappa(pd.Series(labels_ana), pd.Series(labels_ben)))


def test_review_refuses_wrong_with_the_recorded_disposition_and_confirms_new_ones(frames, tmp_path):
    review = DispositionReview(frames, store=str(tmp_path / "r.csv"), reviewer="ana")
    recorded = str(review.sample.iloc[0]["disposition"])
    assert recorded in review.controls["right"].options  # "should be" offers the known dispositions
    review.controls["right"].value = recorded.upper()
    review.controls["wrong"].click()
    assert "is the recorded disposition" in review.controls["errors"].value and review.position == 0
    review.controls["right"].value = "refund_needed"  # a typo, or a new disposition
    review.controls["wrong"].click()
    assert "not a disposition in these runs" in review.controls["errors"].value and review.position == 0
    review.controls["right"].value = "refund_needed"
    review.controls["wrong"].click()  # the second click confirms it
    assert review.position == 1 and review.results.iloc[0]["reviewed_disposition"] == "refund_needed"


def test_review_shows_the_interval_against_its_target(frames, tmp_path):
    sample = review_sample(frames.runs, margin=0.2, seed=1)
    review = DispositionReview(frames, sample=sample, store=str(tmp_path / "r.csv"), reviewer="ana")
    assert "target ±20.0 points" in review.interval.value and "no verdicts yet" in review.interval.value
    while review.current is not None and "target reached" not in review.interval.value:
        review.judge("correct")
    assert "target reached" in review.interval.value
    assert review.reached()["half_width"] <= 0.2 and review.position <= len(sample)


def test_review_resumes_after_a_torn_row_and_says_so(frames, tmp_path):
    store = tmp_path / "r.csv"
    review = DispositionReview(frames, store=str(store), reviewer="ana")
    review.judge("correct")
    review.judge("correct")
    with open(store, "ab") as handle:  # the kernel died in the middle of the third verdict
        handle.write(f"{list(review.sample['id'])[2]},ag,resolved,cor".encode())
    again = DispositionReview(frames, store=str(store), reviewer="ana")
    assert again.position == 2 and "1 row(s)" in again.interval.value
    again.judge("unsure")
    assert list(again.results["verdict"]) == ["correct", "correct", "unsure"]
