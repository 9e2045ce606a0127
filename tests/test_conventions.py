"""One argument convention for the whole API (issue 20 item 5; docs/api.md, "Conventions"), read
from the signatures: the data first and positional, every option by name, one name for each
idea (``since``/``until``, ``confidence``, ``as_of``, ``by``, ``seed``), and the old spellings
still working one release with a DeprecationWarning."""

from __future__ import annotations

import inspect
import warnings

import pandas as pd
import pytest

import conduit_notebook as cn
from conduit_notebook import (
    change_points,
    cost_breakdown,
    escalation_summary,
    filter_runs,
    metric_levels,
    outliers,
    plot_duration_vs_tokens,
    review_plan,
    review_sample,
    runs_frame,
    style_table,
    summarize,
)
from conduit_notebook.demo import DemoData
from conduit_notebook.escalations import escalations_frame

from .conftest import DEMO_END

P = inspect.Parameter

#: What may come first, by position: the data a function works on (frames, records, their
#: parts), or what a constructor is built from.
DATA = {"runs", "tool_calls", "calls_a", "calls_b", "runs_a", "runs_b", "escalations", "results", "table",
        "frames", "records", "agents", "rows", "texts", "names", "a", "b", "outcomes", "p_values", "first",
        "second", "path", "directory", "cache", "conversation_ids", "message", "token", "requests_per_minute",
        "correct", "judged", "population", "successes", "total", "messages"}

#: Where the convention gives way, and why.
EXCEPTIONS = {
    "run_thread": "the run is the subject: run_thread(run_id, runs, messages) reads as the question",
    "RunInspector": "the run shown is the subject: RunInspector(frames, run_id), as run_thread",
    "RunFrames": "a dataclass: its fields are its constructor (users get it from fetch_runs)",
    "wilson_interval": "a building block that takes the normal quantile z, as the callers compute it once "
                       "from confidence (stats.z_value); the user-facing functions take confidence",
}

#: Names that say the same thing as the convention's, and so are not used (old spellings are
#: accepted through conduit_notebook.deprecation, outside the signature).
FORBIDDEN = {"start": "since", "end": "until", "alpha": "confidence", "z": "confidence", "now": "as_of",
             "hue": "by", "random_state": "seed"}


def _public_callables():
    for name in sorted(cn.__all__):
        obj = getattr(cn, name)
        if inspect.isclass(obj):
            if issubclass(obj, Exception) or obj.__init__ is object.__init__:
                continue
            yield name, obj.__init__
        elif inspect.isfunction(obj):
            yield name, obj


def test_every_public_function_takes_its_data_by_position_and_the_rest_by_name():
    checked, wrong = 0, []
    for name, function in _public_callables():
        if name in EXCEPTIONS:
            continue
        parameters = [p for p in inspect.signature(function).parameters.values() if p.name != "self"]
        positional = [p.name for p in parameters if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
        checked += 1
        if any(p not in DATA for p in positional):
            wrong.append(f"{name}: {positional} by position (only data: {sorted(set(positional) - DATA)})")
    assert checked > 60 and not wrong, "\n".join(wrong)


def test_one_name_for_each_idea():
    wrong = []
    for name, function in _public_callables():
        if name in EXCEPTIONS:
            continue
        for p in inspect.signature(function).parameters.values():
            if p.name in FORBIDDEN and not (p.name == "alpha" and p.default is None):  # alpha=: deprecated
                wrong.append(f"{name}({p.name}=): say {FORBIDDEN[p.name]}")
            if p.name == "sample" and p.annotation not in ("pd.DataFrame | None", "pd.DataFrame"):
                wrong.append(f"{name}(sample=) must be a frame (the review sample), not {p.annotation}")
    assert not wrong, "\n".join(wrong)


def test_time_bounds_are_since_and_until_everywhere():
    bounds = {name: {p for p in inspect.signature(f).parameters if p in ("since", "until")}
              for name, f in _public_callables()}
    assert bounds["filter_runs"] == bounds["fetch_runs"] == bounds["read_lake"] == {"since", "until"}


@pytest.fixture(scope="module")
def runs():
    data = DemoData(runs=300, agents=3, seed=5, end=DEMO_END)
    return runs_frame(data.records(), agent_names={a["id"]: a["name"] for a in data.agents})


@pytest.mark.parametrize("old, new", [
    (lambda r: summarize(r, "agent_name"), lambda r: summarize(r, by="agent_name")),
    (lambda r: cost_breakdown(r, "disposition"), lambda r: cost_breakdown(r, by="disposition")),
    (lambda r: outliers(r, "total_cost", n=3), lambda r: outliers(r, column="total_cost", n=3)),
    (lambda r: review_sample(r, 20, seed=1), lambda r: review_sample(r, n=20, seed=1)),
    (lambda r: review_plan(r, 20), lambda r: review_plan(r, n=20)),
    (lambda r: change_points(r, "failure_rate"), lambda r: change_points(r, metric="failure_rate")),
    (lambda r: metric_levels(r, "failure_rate"), lambda r: metric_levels(r, metric="failure_rate")),
    (lambda r: filter_runs(r, start="2026-11-15", end="2026-11-17"),
     lambda r: filter_runs(r, since="2026-11-15", until="2026-11-17")),
    (lambda r: style_table(r[["total_cost"]], {"total_cost": "{:.2f}"}).formats,
     lambda r: style_table(r[["total_cost"]], formats={"total_cost": "{:.2f}"}).formats),
], ids=["summarize-by", "cost_breakdown-by", "outliers-column", "review_sample-n", "review_plan-n",
        "change_points-metric", "metric_levels-metric", "filter_runs-start-end", "style_table-formats"])
def test_old_spellings_still_work_and_warn(runs, old, new):
    with pytest.warns(DeprecationWarning, match="old spelling goes in the next release") as caught:
        before = old(runs)
    assert "by name" in str(caught[0].message) or "is now" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        after = new(runs)
    if isinstance(before, pd.DataFrame):
        pd.testing.assert_frame_equal(before, after)
    else:
        assert before == after


def test_renamed_keywords_warn_and_both_at_once_is_an_error(runs):
    data = DemoData(runs=300, agents=3, seed=5, end=DEMO_END)
    escalations = escalations_frame(data.escalations())
    with pytest.warns(DeprecationWarning, match="now= is now as_of="):
        old = escalation_summary(escalations, runs, now="2026-11-20")
    pd.testing.assert_frame_equal(old, escalation_summary(escalations, runs, as_of="2026-11-20"))
    with pytest.warns(DeprecationWarning, match="sample= is now max_points="):
        plot_duration_vs_tokens(runs, sample=50)
    with pytest.raises(TypeError, match="got both start= and since="):
        filter_runs(runs, start="2026-11-15", since="2026-11-15")
    with pytest.raises(TypeError, match="takes 1 positional argument"):
        summarize(runs, "agent_name", "D")
