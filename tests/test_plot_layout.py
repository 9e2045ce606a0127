"""Every plot as a user saves it outside Jupyter (``ax.figure.savefig``, no ``bbox_inches``):
every text inside the figure, no overlapping tick labels, no legend over a bar or a label, and
names with a ``$`` drawn literally."""

from __future__ import annotations

import io
import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from conduit_notebook import (  # noqa: E402
    compare,
    plot_change_points,
    plot_compare,
    plot_cost,
    plot_dispositions,
    plot_duration,
    plot_duration_vs_tokens,
    plot_tokens,
    plot_tool_paths,
    plot_tool_usage,
    runs_frame,
    tool_calls_frame,
)
from conduit_notebook.demo import DemoData  # noqa: E402

from .conftest import DEMO_END as END  # noqa: E402


@pytest.fixture(scope="module")
def frames():
    data = DemoData(runs=2500, agents=6, seed=4, end=END)
    names = {a["id"]: a["name"] for a in data.agents}
    # Names as real workspaces have them: long, and with dollars that mathtext would choke on.
    first = data.agents[0]["id"]
    names[first] = "Upsell $ offers & late check-out (pay $5)"
    runs = runs_frame(data.records(), agent_names=names)
    calls = tool_calls_frame(data.records())
    calls["name"] = calls["name"].cat.rename_categories(lambda n: "charge_$card" if n == "get_folio" else n)
    runs["disposition"] = runs["disposition"].cat.rename_categories(
        lambda d: "refund_$$_issued" if d == "spam" else d)
    calls["disposition"] = calls["disposition"].astype(object).replace("spam", "refund_$$_issued")
    return runs, calls


PLOTS = {
    "duration": lambda r, c, ax: plot_duration(r, ax=ax),
    "duration_by_agent": lambda r, c, ax: plot_duration(r, by="agent_name", ax=ax),
    "duration_ecdf": lambda r, c, ax: plot_duration(r, by="disposition", kind="ecdf", ax=ax),
    "tokens_by_agent": lambda r, c, ax: plot_tokens(r, by="agent_name", ax=ax),
    "tokens_daily": lambda r, c, ax: plot_tokens(r, freq="D", ax=ax),
    "cost_by_agent": lambda r, c, ax: plot_cost(r, by="agent_name", ax=ax),
    "cost_daily": lambda r, c, ax: plot_cost(r, by="agent_name", freq="D", ax=ax),
    "cost_hourly_paris": lambda r, c, ax: plot_cost(r, by="disposition", freq="h", tz="Europe/Paris",
                                                    ax=ax),
    "dispositions_share": lambda r, c, ax: plot_dispositions(r, freq="D", ax=ax),
    "dispositions_weekly": lambda r, c, ax: plot_dispositions(r, freq="W", normalize=False, ax=ax),
    "tools": lambda r, c, ax: plot_tool_usage(c, ax=ax),
    "tools_by_disposition": lambda r, c, ax: plot_tool_usage(c, by="disposition", ax=ax),
    "scatter": lambda r, c, ax: plot_duration_vs_tokens(r, ax=ax),
    "scatter_by_agent": lambda r, c, ax: plot_duration_vs_tokens(r, by="agent_name", ax=ax),
    "scatter_by_cost": lambda r, c, ax: plot_duration_vs_tokens(r, by="total_cost", ax=ax),
    "compare": lambda r, c, ax: plot_compare(compare(r.iloc[::2], r.iloc[1::2], n_boot=200), ax=ax),
    "tool_paths": lambda r, c, ax: plot_tool_paths(c, runs=r, ax=ax),
    "change_points": lambda r, c, ax: plot_change_points(r, by="agent_name", ax=ax),
}


def _drawn_texts(fig):
    """Every non-empty visible text of the figure that was drawn: titles, axis labels, tick
    labels within the view, annotations, legends."""
    for ax in fig.axes:
        texts = [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label, *ax.texts,
                 ax.xaxis.get_offset_text(), ax.yaxis.get_offset_text()]
        for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            lo, hi = min(lo, hi), max(lo, hi)
            for tick in axis.get_major_ticks():
                if lo - 1e-9 <= tick.get_loc() <= hi + 1e-9:
                    texts += [tick.label1, tick.label2]
        legend = ax.get_legend()
        if legend is not None:
            texts += [*legend.get_texts(), legend.get_title()]
        yield ax, [t for t in texts if t.get_visible() and t.get_text().strip()]


def _overlap(a, b, slack=0.5):
    return (a.x0 + slack < b.x1 and b.x0 + slack < a.x1 and a.y0 + slack < b.y1 and b.y0 + slack < a.y1)


@pytest.mark.parametrize("name", list(PLOTS))
@pytest.mark.parametrize("figsize", [(6.4, 4.8), (9, 4.2)])
def test_every_text_stays_inside_the_saved_figure(frames, name, figsize):
    runs, calls = frames
    fig, ax = plt.subplots(figsize=figsize)  # no layout engine: as a script makes it
    PLOTS[name](runs, calls, ax)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")  # draws the figure; no bbox_inches="tight"
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for axes, texts in _drawn_texts(fig):
        assert texts
        for text in texts:
            extent = text.get_window_extent(renderer)
            inside = (extent.x0 >= box.x0 - 1 and extent.y0 >= box.y0 - 1
                      and extent.x1 <= box.x1 + 1 and extent.y1 <= box.y1 + 1)
            assert inside, f"{name}: {text.get_text()!r} at {extent} is outside the figure {box}"
        for axis in (axes.xaxis, axes.yaxis):
            labels = [t for t in texts if t in {tick.label1 for tick in axis.get_major_ticks()}]
            for a, b in itertools.combinations(labels, 2):
                ea, eb = a.get_window_extent(renderer), b.get_window_extent(renderer)
                assert not _overlap(ea, eb), f"{name}: tick labels {a.get_text()!r} and {b.get_text()!r} overlap"
        legend = axes.get_legend()
        if legend is not None:
            frame = legend.get_window_extent(renderer)
            for patch in axes.patches:
                if isinstance(patch, Rectangle) and patch.get_width() and patch.get_height():
                    assert not _overlap(frame, patch.get_window_extent(renderer)), f"{name}: legend covers a bar"
            for text in axes.texts:
                assert not _overlap(frame, text.get_window_extent(renderer)), f"{name}: legend covers {text}"


def test_dollar_names_are_drawn_literally(frames):
    runs, calls = frames
    ax = plot_cost(runs, by="agent_name")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert r"Upsell \$ offers & late check-out (pay \$5)" in labels
    ax = plot_tool_usage(calls, by="disposition", ax=plt.figure().gca())
    assert r"refund_\$\$_issued" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert r"charge_\$card" in [t.get_text() for t in ax.get_yticklabels()]


def test_share_over_time_shows_how_many_runs_each_bucket_holds(frames):
    runs, _ = frames
    # A thin last day: 6 runs against hundreds on the others.
    last = runs["created_at"] >= pd.Timestamp("2026-11-20", tz="UTC")
    thin = pd.concat([runs[~last], runs[last].head(6)])
    ax = plot_dispositions(thin, freq="D")
    weight = next(a for a in ax.figure.axes if a is not ax)
    (line,) = weight.lines
    counts = (thin.dropna(subset=["disposition"]).groupby(pd.Grouper(key="created_at", freq="D")).size())
    assert list(line.get_ydata()) == [*counts.to_numpy(), counts.to_numpy()[-1]]  # steps to the end
    assert "runs per day" in [t.get_text() for t in ax.get_legend().get_texts()][-1]
    assert "greyed" in ax.get_title()


def test_a_dollar_in_any_name_does_not_crash_the_report(frames):
    from types import SimpleNamespace

    from conduit_notebook import errors_frame
    from conduit_notebook.report import html_report

    runs, calls = frames
    text = html_report(SimpleNamespace(runs=runs, tool_calls=calls, errors=errors_frame([]), source="test"))
    assert "Upsell $ offers &amp; late check-out (pay $5)" in text  # the table shows the name as it is
    assert text.count("data:image/png;base64,") >= 8
