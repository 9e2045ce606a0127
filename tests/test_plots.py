"""The plots: what was drawn (bar sizes, line data, colours), rendered with Agg."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import matplotlib
import matplotlib.dates

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from conduit_notebook import (  # noqa: E402
    DISPOSITION_COLORS,
    cost_breakdown,
    disposition_colors,
    plot_cost,
    plot_dispositions,
    plot_duration,
    plot_duration_vs_tokens,
    plot_tokens,
    plot_tool_usage,
    runs_frame,
    summarize,
    tool_calls_frame,
)
from conduit_notebook.demo import DemoData  # noqa: E402

from .analysis_data import run  # noqa: E402
from .conftest import DEMO_END  # noqa: E402

#: Demo data ends at a fixed moment, so that no test depends on the date or the time of day.
END = DEMO_END


@pytest.fixture(scope="module")
def demo_frames():
    data = DemoData(runs=1500, agents=4, seed=2, end=END)
    names = {a["id"]: a["name"] for a in data.agents}
    return runs_frame(data.records(), agent_names=names), tool_calls_frame(data.records())


def rendered(ax) -> bytes:
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"
    return buffer.getvalue()


def test_cost_bars_equal_the_breakdown(demo_frames):
    runs, _ = demo_frames
    ax = plot_cost(runs, by="agent_name")
    widths = {t.get_text(): p.get_width() for t, p in zip(ax.get_yticklabels(), ax.patches, strict=False)}
    expected = cost_breakdown(runs, by="agent_name")["total_cost"]
    assert widths == pytest.approx({str(k): v for k, v in expected.items()})
    assert ax.get_xlabel().startswith("cost (USD)")
    assert any("/resolved" in t.get_text() and "\\$" in t.get_text() for t in ax.texts)
    rendered(ax)


def test_cost_over_time_stacks_to_the_daily_totals(demo_frames):
    runs, _ = demo_frames
    ax = plot_cost(runs, by="agent_name", freq="D")
    heights: dict[float, float] = {}
    for patch in ax.patches:
        heights[patch.get_x()] = heights.get(patch.get_x(), 0.0) + patch.get_height()
    daily = summarize(runs, freq="D")["total_cost"]
    assert sorted(heights.values()) == pytest.approx(sorted(daily.to_numpy()))
    assert {t.get_text() for t in ax.get_legend().get_texts()} == set(runs["agent_name"].dropna().astype(str))
    rendered(ax)


def test_cost_over_time_keeps_a_day_whose_runs_have_no_cost_yet():
    # Five minutes after midnight: today's runs are still running (no cost). The plot used to
    # drop today while summarize() kept it, so the test above failed between 00:00 and the
    # first finished run of the day.
    data = DemoData(runs=400, agents=2, seed=3, end=datetime(2026, 11, 20, 0, 5, tzinfo=UTC))
    runs = runs_frame(data.records())
    today = runs["created_at"] >= pd.Timestamp("2026-11-20", tz="UTC")
    assert today.any() and runs.loc[today, "total_cost"].isna().all()
    ax = plot_cost(runs, by="agent_id", freq="D")
    starts = {round(p.get_x(), 6) for p in ax.patches}
    assert len(starts) == len(summarize(runs, freq="D"))
    assert round(matplotlib.dates.date2num(pd.Timestamp("2026-11-20", tz="UTC")), 6) in starts


def test_token_bars_split_input_and_output(demo_frames):
    runs, _ = demo_frames
    ax = plot_tokens(runs, by="agent_name")
    sums = runs.groupby("agent_name", observed=True)[["input_tokens", "output_tokens"]].sum()
    inputs, outputs = (c for c in ax.containers)
    assert (inputs.get_label(), outputs.get_label()) == ("input", "output")
    assert all(p.get_x() == 0 for p in inputs.patches)
    by_name = {}
    for label, patch in zip([t.get_text() for t in ax.get_yticklabels()] * 2, ax.patches, strict=False):
        by_name.setdefault(label, []).append(patch)
    for name, (inp, out) in by_name.items():
        assert inp.get_width() == sums.loc[name, "input_tokens"]
        assert out.get_width() == sums.loc[name, "output_tokens"] and out.get_x() == inp.get_width()
    assert len(by_name) == len(sums) and ax.get_xlabel() == "tokens"
    # A label inside a bar sits on one colour: white, ending where the input segment ends.
    inside = [t for t in ax.texts if t.get_ha() == "right"]
    assert inside and {t.get_color() for t in inside} == {"white"}
    assert sorted(t.get_position()[0] for t in inside) == sorted(
        sums.loc[[t for t in sums.index if sums.loc[t].sum() > 0], "input_tokens"].nlargest(len(inside)).tolist())
    over_time = plot_tokens(runs, freq="D", ax=plt.figure().gca())
    assert len(over_time.collections) == 2 and over_time.get_ylabel() == "tokens"


def test_dispositions_counts_and_colours(demo_frames):
    runs, _ = demo_frames
    ax = plot_dispositions(runs, freq="W", normalize=False)
    expected = (runs.dropna(subset=["disposition"])
                .groupby([pd.Grouper(key="created_at", freq="W", label="left", closed="left"), "disposition"],
                         observed=True).size())
    drawn = {c.get_label(): c for c in ax.containers}
    for (week, disposition), count in expected.items():
        container = drawn[disposition]
        bar = next(b for b in container.patches if np.isclose(b.get_x(), matplotlib.dates.date2num(week)))
        assert bar.get_height() == count
        assert to_hex(bar.get_facecolor()) == to_hex(DISPOSITION_COLORS[disposition])
    shares = plot_dispositions(runs, freq="D", ax=plt.figure().gca())
    assert shares.get_ylim() == (0, 1) and len(shares.collections) == runs["disposition"].nunique()


def test_dispositions_redrawn_on_a_cleared_axes_reuse_their_right_axis(demo_frames):
    runs, _ = demo_frames
    ax = plot_dispositions(runs, freq="D")
    weight = next(a for a in ax.figure.axes if a is not ax)
    ax.cla()
    plot_dispositions(runs[runs["agent_name"] == "Billing"], freq="D", ax=ax)
    assert ax.figure.axes == [ax, weight]  # not a second twin over the first
    (line,) = weight.lines
    counts = runs[runs["agent_name"] == "Billing"].dropna(subset=["disposition"]).groupby(
        pd.Grouper(key="created_at", freq="D")).size()
    assert list(line.get_ydata()) == [*counts.to_numpy(), counts.to_numpy()[-1]]
    assert weight.yaxis.get_ticks_position() == "right" and weight.yaxis.get_label_position() == "right"


def test_duration_marks_and_ecdf(demo_frames):
    runs, _ = demo_frames
    seconds = runs["duration_ms"].dropna().astype(float) / 1000
    ax = plot_duration(runs)
    vertical = [line.get_xdata()[0] for line in ax.lines]
    assert vertical == pytest.approx([np.percentile(seconds, 50), np.percentile(seconds, 90)])
    assert len(ax.patches) == 1  # one filled histogram
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "duration (s)"
    ecdf = plot_duration(runs, by="agent_name", kind="ecdf", marks=False, ax=plt.figure().gca())
    steps = [line for line in ecdf.lines]
    assert len(steps) == runs["agent_name"].nunique()
    first = steps[0]
    assert first.get_ydata()[-1] == 1.0 and np.all(np.diff(first.get_xdata()) >= 0)
    # One vertex per distinct duration, at the share of the group's runs up to it.
    group = seconds[runs.loc[seconds.index, "agent_name"] == first.get_label().split(" (")[0]]
    assert list(first.get_xdata()) == sorted(group.unique())
    assert first.get_ydata() == pytest.approx([(group <= x).mean() for x in first.get_xdata()])
    assert ecdf.get_ylabel() == "share of runs"


def test_tool_usage_bars_equal_the_counts(demo_frames):
    _, calls = demo_frames
    ax = plot_tool_usage(calls, top=5)
    widths = {t.get_text(): p.get_width() for t, p in zip(ax.get_yticklabels(), ax.patches, strict=False)}
    counts = calls["name"].value_counts()
    assert len(widths) == 6 and "other" in widths  # the top 5, then the rest
    for name in counts.index[:5]:
        assert widths[name] == counts[name]
    assert widths["other"] == counts.iloc[5:].sum()
    split = plot_tool_usage(calls, by="disposition", ax=plt.figure().gca())
    assert sum(p.get_width() for p in split.patches) == len(calls)


def test_scatter_points_and_colour_scale(demo_frames):
    runs, _ = demo_frames
    ax = plot_duration_vs_tokens(runs)
    points = sum(len(c.get_offsets()) for c in ax.collections)
    valid = (runs["total_tokens"].notna() & runs["duration_ms"].notna() & (runs["duration_ms"] > 0)).sum()
    assert points == valid
    capped = plot_duration_vs_tokens(runs, max_points=200, ax=plt.figure().gca())
    assert sum(len(c.get_offsets()) for c in capped.collections) == 200
    by_cost = plot_duration_vs_tokens(runs, by="total_cost", ax=plt.figure().gca())
    assert len(by_cost.figure.axes) == 2  # the colour bar
    assert "USD" in by_cost.figure.axes[1].get_ylabel()


def test_forty_groups_read_as_top_n_plus_other():
    records = [run(i, f"agent{i % 40:02d}", cost=0.01 * (1 + i % 40)) for i in range(400)]
    runs = runs_frame(records)
    ax = plot_cost(runs, by="agent_id", top=8)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 9 and labels[0] == "other"  # bars are drawn bottom-up
    assert sum(p.get_width() for p in ax.patches) == pytest.approx(runs["total_cost"].sum())


@pytest.mark.parametrize("draw", [
    lambda r, c: plot_duration(r), lambda r, c: plot_tokens(r), lambda r, c: plot_tokens(r, freq="D"),
    lambda r, c: plot_cost(r), lambda r, c: plot_cost(r, freq="D"), lambda r, c: plot_dispositions(r),
    lambda r, c: plot_tool_usage(c), lambda r, c: plot_duration_vs_tokens(r),
])
def test_empty_frames_say_so(draw):
    ax = draw(runs_frame([]), tool_calls_frame([]))
    assert any(t.get_text().startswith("no ") for t in ax.texts)
    rendered(ax)


def test_one_colour_per_disposition_everywhere():
    colors = disposition_colors(["resolved", "refund_requested", "other"])
    assert colors["resolved"] == DISPOSITION_COLORS["resolved"]
    assert colors["refund_requested"] == disposition_colors(["refund_requested"])["refund_requested"]
    assert colors["other"] != colors["resolved"]


def test_axes_are_returned_and_kwargs_reach_matplotlib(demo_frames):
    runs, _ = demo_frames
    fig, ax = plt.subplots()
    assert plot_cost(runs, ax=ax, alpha=0.3) is ax
    assert all(p.get_alpha() == 0.3 for p in ax.patches)


def test_accessor_delegates_and_checks_the_frame(demo_frames):
    runs, calls = demo_frames
    pd.testing.assert_frame_equal(runs.conduit.summarize(by="agent_name"), summarize(runs, by="agent_name"))
    assert calls.conduit.tool_stats(runs).index[0] == calls["name"].value_counts().index[0]
    via_accessor = runs.conduit.plot_cost(ax=plt.figure().gca())
    direct = plot_cost(runs, ax=plt.figure().gca())
    assert [p.get_width() for p in via_accessor.patches] == [p.get_width() for p in direct.patches] != []
    with pytest.raises(AttributeError, match="works on a tool-calls frame"):
        runs.conduit.tool_stats()
    with pytest.raises(AttributeError, match="needs a runs frame"):
        _ = pd.DataFrame({"x": [1]}).conduit


KWARGS_PLOTS = {
    "plot_duration": lambda r, c, **kw: plot_duration(r, by="agent_name", **kw),
    "plot_duration_ecdf": lambda r, c, **kw: plot_duration(r, kind="ecdf", **kw),
    "plot_tokens": lambda r, c, **kw: plot_tokens(r, by="agent_name", **kw),
    "plot_tokens_daily": lambda r, c, **kw: plot_tokens(r, freq="D", **kw),
    "plot_cost": lambda r, c, **kw: plot_cost(r, **kw),
    "plot_cost_daily": lambda r, c, **kw: plot_cost(r, freq="D", **kw),
    "plot_dispositions": lambda r, c, **kw: plot_dispositions(r, normalize=False, **kw),
    "plot_tool_usage": lambda r, c, **kw: plot_tool_usage(c, **kw),
    "plot_tool_usage_by": lambda r, c, **kw: plot_tool_usage(c, by="disposition", **kw),
    "plot_duration_vs_tokens": lambda r, c, **kw: plot_duration_vs_tokens(r, **kw),
}


@pytest.mark.parametrize("name", list(KWARGS_PLOTS))
def test_color_and_label_pass_through_to_matplotlib(demo_frames, name):
    runs, calls = demo_frames
    ax = KWARGS_PLOTS[name](runs, calls, color="#123456", label="mine")
    artists = [*ax.patches, *ax.lines, *ax.collections]
    colored = [a for a in artists if a.get_label() == "mine"]
    colored += [p for c in ax.containers if c.get_label() == "mine" for p in c.patches]
    assert colored, name
    for artist in colored:
        color = artist.get_facecolor() if hasattr(artist, "get_facecolor") else artist.get_color()
        color = color[0] if np.ndim(color) == 2 else color
        if isinstance(artist, matplotlib.lines.Line2D):
            color = artist.get_color()
        assert to_hex(color) == "#123456", (name, artist)


def test_dispositions_take_colors_and_stackplot_kwargs(demo_frames):
    runs, _ = demo_frames
    ax = plot_dispositions(runs, colors={"resolved": "#000000"}, alpha=0.5)
    resolved = next(c for c in ax.collections if c.get_label() == "resolved")
    assert to_hex(resolved.get_facecolor()[0]) == "#000000" and resolved.get_alpha() == 0.5
    bars = plot_dispositions(runs, normalize=False, colors=["#111111"], ax=plt.figure().gca())
    assert to_hex(bars.containers[0].patches[0].get_facecolor()) == "#111111"


def test_by_and_top_everywhere(demo_frames):
    runs, calls = demo_frames
    ax = plot_duration_vs_tokens(runs, by="agent_name", top=2)
    assert [t.get_text() for t in ax.get_legend().get_texts()][-1] == "other"
    assert len(ax.get_legend().get_texts()) == 3
    with pytest.warns(DeprecationWarning, match="by="):
        plot_duration_vs_tokens(runs, hue="agent_name", ax=plt.figure().gca())
    split = plot_tool_usage(calls, by="disposition", top_by=2, ax=plt.figure().gca())
    assert [t.get_text() for t in split.get_legend().get_texts()][-1] == "other"
    assert len(split.get_legend().get_texts()) == 3


def test_day_buckets_follow_tz(demo_frames):
    runs, _ = demo_frames
    tz = "America/New_York"
    local = summarize(runs, freq="D", tz=tz)
    assert str(local.index.tz) == tz and (local.index.hour == 0).all()
    by_hand = runs.assign(day=runs["created_at"].dt.tz_convert(tz).dt.floor("D")).groupby("day").size()
    assert list(local["runs"]) == list(by_hand.to_numpy())
    assert list(local["runs"]) != list(summarize(runs, freq="D")["runs"])
    ax = plot_cost(runs, by=None, freq="D", tz=tz)
    heights = sorted(p.get_height() for p in ax.patches)
    assert heights == pytest.approx(sorted(local["total_cost"].to_numpy()))
    first = matplotlib.dates.num2date(min(p.get_x() for p in ax.patches))
    assert first == local.index[0]
    with pytest.raises(ValueError, match="tz must be a time zone name"):
        summarize(runs, freq="D", tz="Mars/Olympus")
