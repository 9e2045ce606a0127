"""The product at awkward moments: its clock (``times.utc_now``) set to just after midnight UTC,
half a minute before it, the first of a month and the night Europe's clocks go forward, with
demo data ending then. A day that has only begun (its runs still running, no cost yet) is a day
in every table and plot alike, and windows such as ``since="7d"`` are counted from the clock.

The whole suite under a faked system clock: tests/README.md.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from conduit_notebook import (  # noqa: E402
    ConduitClient,
    demo,
    escalation_summary,
    fetch_escalations,
    fetch_runs,
    plot_cost,
    runs_frame,
    summarize,
)
from conduit_notebook.report import html_report  # noqa: E402
from conduit_notebook.times import parse_time  # noqa: E402

MOMENTS = {
    "00:05": datetime(2026, 11, 30, 0, 5, tzinfo=UTC),
    "23:59:30": datetime(2026, 11, 29, 23, 59, 30, tzinfo=UTC),
    "month-start": datetime(2027, 3, 1, 0, 5, tzinfo=UTC),
    "dst-night": datetime(2027, 3, 28, 0, 30, tzinfo=UTC),  # 01:30 in Berlin, before 02:00
}


@pytest.fixture(params=list(MOMENTS.values()), ids=list(MOMENTS))
def now(request, clock):
    clock.now = request.param
    return request.param


@pytest.fixture
def workspace(now):
    # No `end`: the demo data ends at the clock's now, as it does for a user.
    with demo.serve(runs=300, agents=2, seed=3) as server:
        yield server


def _created(server) -> pd.Series:
    return pd.to_datetime(pd.Series({r["id"]: r["created_at"] for r in server.data.summaries()}), utc=True)


def test_the_clock_is_what_spans_and_the_demo_read(now, workspace):
    assert workspace.data.end == now.replace(second=0)
    assert parse_time("7d") == pd.Timestamp(now - timedelta(days=7))
    assert _created(workspace).max() <= pd.Timestamp(now)


def test_windows_are_counted_from_the_clock(now, workspace):
    created = _created(workspace)
    with ConduitClient(workspace.token, base_url=workspace.base_url, requests_per_minute=60_000) as client:
        for since, back in (("1d", timedelta(days=1)), ("7d", timedelta(days=7))):
            frames = fetch_runs(client=client, since=since, details=False, cache=False, progress=False)
            cut = pd.Timestamp(now - back)
            assert sorted(frames.runs["id"]) == sorted(created.index[created >= cut]), since
        # Today as a date, a date string and a span reaching back to midnight: the same runs.
        midnight = pd.Timestamp(now.date(), tz="UTC")
        today = sorted(created.index[created >= midnight])
        seconds = int((pd.Timestamp(now) - midnight).total_seconds())
        for since in (now.date(), now.strftime("%Y-%m-%d"), f"{seconds}s"):
            frames = fetch_runs(client=client, since=since, until=now.date(), details=False, cache=False,
                                progress=False)
            assert sorted(frames.runs["id"]) == today, since


def _bar_days(ax) -> set[pd.Timestamp]:
    """The days the bars stand on (each plot has its own figure since plots stopped drawing over
    plt.gca(): this test had read three plots' bars off one shared Axes)."""
    xs = [p.get_x() for p in ax.patches]
    return {pd.Timestamp(matplotlib.dates.num2date(x)).round("min").tz_convert("UTC") for x in xs}


@pytest.mark.parametrize("tz", [None, "Europe/Berlin"])
def test_daily_tables_and_plots_keep_a_day_that_has_only_begun(now, workspace, tz):
    data = workspace.data
    runs = runs_frame(data.records(), agent_names={a["id"]: a["name"] for a in data.agents})
    local = runs["created_at"].dt.tz_convert(tz or "UTC")
    day = pd.Timestamp(now).tz_convert(tz or "UTC").normalize()
    today = local >= day
    if now.hour == 0:  # the seed has runs in the first minutes, none finished yet
        assert today.any() and runs.loc[today, "total_cost"].isna().all()
    daily = summarize(runs, freq="D", tz=tz)
    assert daily["runs"].sum() == len(runs)
    assert daily.index.max() == day and daily["runs"].iloc[-1] == today.sum()
    days = set(daily.index.tz_convert("UTC"))
    # plot_tokens and plot_dispositions draw stacked areas, not bars: they were never checked here
    # (the three plots shared one Axes, whose bars were plot_cost's), and are left out.
    for ax in (plot_cost(runs, freq="D", tz=tz),):
        assert _bar_days(ax) == days, ax.get_title()
        plt.close(ax.figure)


def test_report_and_backlog_age_read_the_clock(clock):
    now = clock.now = MOMENTS["00:05"]  # one moment: a report takes seconds to draw
    with demo.serve(runs=300, agents=2, seed=3) as workspace, ConduitClient(
            workspace.token, base_url=workspace.base_url, requests_per_minute=60_000) as client:
        frames = fetch_runs(client=client, details=False, cache=False, progress=False)
        escalations = fetch_escalations(client=client)
    page = html_report(frames, escalations=escalations)
    assert f"generated {now:%Y-%m-%d %H:%M} UTC" in page
    pd.testing.assert_frame_equal(escalation_summary(escalations, frames.runs),
                                  escalation_summary(escalations, frames.runs, as_of=now))


def test_no_test_reads_the_machines_date():
    # The product's "now" is the clock fixture's; a test reading the machine's date instead
    # would pass or fail by the hour (demo data: pass end=DEMO_END).
    reads = re.compile(r"\b(datetime|date|Timestamp)\.(now|utcnow|today)\(")
    found = [f"{path.name}:{number}" for path in sorted(Path(__file__).parent.glob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1) if reads.search(line)]
    assert not found

