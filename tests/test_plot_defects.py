"""Issue 21, item 6: what a user saw in the plots at matplotlib's default size. Each test draws
as a script does (no ``ax``, then ``savefig`` without ``bbox_inches``) and reads the drawn texts'
extents from the renderer."""

from __future__ import annotations

import io
import itertools
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from conduit_notebook import (  # noqa: E402
    plot_change_points,
    plot_cost,
    plot_duration,
    plot_duration_vs_tokens,
    plot_tool_paths,
    plot_tool_usage,
    runs_frame,
    tool_calls_frame,
)
from conduit_notebook.demo import DemoData  # noqa: E402
from conduit_notebook.sampling import choose_traces, trace_weights  # noqa: E402

from .conftest import DEMO_END  # noqa: E402
from .test_plot_layout import _drawn_texts, _overlap  # noqa: E402


@pytest.fixture(scope="module")
def sample():
    """A 2,500-run workspace with 300 traces sampled (as fetch_runs(details=300) takes them)."""
    data = DemoData(runs=2500, agents=4, seed=4, end=DEMO_END)
    records = data.records()
    runs = runs_frame(records, agent_names={a["id"]: a["name"] for a in data.agents})
    calls = tool_calls_frame(records)
    traced = choose_traces(runs, np.zeros(len(runs), dtype=bool), 300, seed=1)
    sampled = runs.assign(trace_weight=trace_weights(runs, traced))
    return runs, calls, sampled, calls[calls["agent_run_id"].isin(set(runs["id"][traced]))]


def _saved(ax):
    """The figure drawn as savefig draws it, its renderer and every text in it."""
    fig = ax.get_figure(root=True)
    fig.savefig(io.BytesIO(), format="png")
    renderer = fig.canvas.get_renderer()
    return fig, renderer, [t for _, texts in _drawn_texts(fig) for t in texts]


def _outside(fig, renderer, texts):
    box = fig.bbox
    return [t.get_text() for t in texts
            if not (lambda e: e.x0 >= box.x0 - 1 and e.y0 >= box.y0 - 1 and e.x1 <= box.x1 + 1
                    and e.y1 <= box.y1 + 1)(t.get_window_extent(renderer))]


def test_tool_usage_of_a_sample_keeps_its_title_inside_the_figure(sample):
    _, _, sampled, seen = sample
    ax = plot_tool_usage(seen, runs=sampled)
    fig, renderer, texts = _saved(ax)
    assert tuple(fig.get_size_inches()) == tuple(plt.rcParams["figure.figsize"])
    assert "300 traced runs of 2,500" in ax.get_title().replace("\n", " ")
    assert _outside(fig, renderer, texts) == []


def test_tool_paths_labels_are_whole_names_distinct_and_uncovered(sample):
    runs, calls, sampled, seen = sample
    tools = set(calls["name"].astype(str))
    for ax in (plot_tool_paths(seen, runs=sampled), plot_tool_paths(calls, runs=runs)):
        fig, renderer, texts = _saved(ax)
        assert _outside(fig, renderer, texts) == []
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert len(set(labels)) == len(labels) == 10, labels
        for label in labels:  # every word is a whole tool name: none cut mid-word
            words = re.sub(r"\(\d+\)$|\(\d+ more\)|…|>|\(no tool calls\)", " ", label).split()
            assert set(words) <= tools, label
        ticks = ax.get_yticklabels()
        for a, b in itertools.combinations(ticks, 2):
            assert not _overlap(a.get_window_extent(renderer), b.get_window_extent(renderer)), (a, b)
        legend = ax.get_legend().get_window_extent(renderer)
        for text in [*ax.texts, *ticks, ax.xaxis.label]:  # the first bar's annotation included
            assert not _overlap(legend, text.get_window_extent(renderer)), text.get_text()


def _visible_major_labels(ax, axis):
    low, high = sorted(axis.get_view_interval())
    return [tick.label1.get_text() for tick in axis.get_major_ticks()
            if low <= tick.get_loc() <= high and tick.label1.get_text()]


def test_a_log_axis_over_less_than_two_decades_has_several_labels(sample):
    runs = sample[0].copy()
    runs["duration_ms"] = pd.array(np.linspace(3_000, 40_000, len(runs)).round(), dtype="Int64")
    ax = plot_duration(runs)
    _saved(ax)
    assert len(_visible_major_labels(ax, ax.xaxis)) >= 3, _visible_major_labels(ax, ax.xaxis)
    narrow = runs.assign(duration_ms=pd.array(np.linspace(2_000, 6_000, len(runs)).round(), dtype="Int64"),
                         total_tokens=pd.array(np.linspace(1_500, 4_000, len(runs)).round(), dtype="Int64"))
    ax = plot_duration_vs_tokens(narrow)
    _saved(ax)
    for axis in (ax.xaxis, ax.yaxis):
        assert len(_visible_major_labels(ax, axis)) >= 3, _visible_major_labels(ax, axis)


def test_a_partial_last_day_is_greyed_not_drawn_as_a_spike(sample):
    runs = sample[0]
    last = runs["created_at"].max().floor("D")
    partial = runs[runs["created_at"] < last + pd.Timedelta(hours=4)]
    ax = plot_change_points(partial, metric="escalation_rate", by="agent_name")
    assert "greyed" in ax.get_title()
    agents = set(partial["agent_name"].astype(str))
    dots = [line for line in ax.lines if line.get_label() in agents]
    assert len(dots) == 4
    ending = [line for line in dots if pd.Timestamp(line.get_xdata()[-1]) == last]
    assert ending
    for line in ending:  # each agent's dots: the last, partial day is off the line
        assert np.isnan(np.asarray(line.get_ydata(), dtype=float)[-1])


def test_a_plot_without_ax_draws_on_a_new_figure(sample):
    runs = sample[0]
    first = plot_cost(runs)
    second = plot_cost(runs)
    assert first.figure is not second.figure
    assert len(first.patches) == len(second.patches) > 0
    mine = plt.figure().gca()
    plot_duration(runs)
    assert not mine.lines and not mine.patches


@pytest.mark.parametrize("plot", ["cost", "tokens"])
def test_a_partial_last_day_is_greyed_in_sums_over_time(plot):
    """Issue 21 item 6 ("grey the partial last day everywhere"): cost and tokens per day drew
    today's hours so far as a whole day, a drop that is not there (the gallery's last day at
    $1.6 against about $3.5). The window here ends at 15:00; cut at midnight, nothing is greyed."""
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Rectangle

    from conduit_notebook import plot_tokens

    data = DemoData(runs=1500, agents=3, seed=6, end=DEMO_END)
    runs = runs_frame(data.records(), agent_names={a["id"]: a["name"] for a in data.agents})
    draw = (lambda r: plot_cost(r, freq="D")) if plot == "cost" else (lambda r: plot_tokens(r, freq="D"))

    def veils(ax):  # white at 0.6: a patch over an area chart, a collection over bars
        return [p for p in [*ax.patches, *ax.collections] if (isinstance(p, (Rectangle, PolyCollection))
                and p.get_alpha() == 0.6 and tuple(np.ravel(p.get_facecolor())[:3]) == (1.0, 1.0, 1.0))]

    ax = draw(runs)
    assert "a part of the day only" in ax.get_title()
    veiled = veils(ax)
    assert len(veiled) == 1
    last_day = pd.Timestamp(DEMO_END).floor("D").tz_localize(None)
    xs = (veiled[0].get_x() if isinstance(veiled[0], Rectangle)
          else veiled[0].get_paths()[0].vertices[:, 0].min())
    assert matplotlib.dates.num2date(xs).replace(tzinfo=None) <= last_day  # it reaches the partial day
    plt.close("all")
    whole_days = runs[runs["created_at"] < pd.Timestamp(DEMO_END).floor("D")]
    ax = draw(whole_days)
    assert "part of the day" not in ax.get_title() and not veils(ax)
