"""Issue 21, items 9 and 11: the report's numbers as a reader copies them, and its page off the
desktop (a phone, dark mode, print). The report is made from the demo server over HTTP."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from conduit_notebook import fetch_runs
from conduit_notebook.formatting import PERCENT, USD_PER_RUN, format_value, usd
from conduit_notebook.report import compare_html, html_report

from .conftest import DEMO_END


@pytest.fixture
def report(client):
    # A trace sample, so that the tools table shows estimates with their intervals.
    frames = fetch_runs(client=client, since="14d", details=60, cache=False, progress=False)
    assert frames.runs["trace_weight"].isna().any()
    return frames, html_report(frames)


def test_the_page_reads_on_a_phone_in_dark_mode_and_in_print(report):
    _, page = report
    assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in page
    assert "@media (max-width: 700px)" in page and "prefers-color-scheme: dark" in page
    assert "@media print" in page and "size: A4 landscape" in page
    assert "details::details-content" in page and "beforeprint" in page  # glossaries open in print
    # Plots carry their own size, so a desktop browser shows them unscaled (8 in at 90 dpi).
    sizes = re.findall(r"<img alt='plot' width='(\d+)' height='(\d+)'", page)
    assert sizes and ("720", "378") in sizes and len(sizes) == page.count("<img")


def test_copied_numbers_are_plain_text(report):
    _, page = report
    assert "\u00a0" not in page and "\u2060" not in page


def test_values_that_round_to_zero_have_no_sign():
    assert format_value(-0.00001, PERCENT) == "0.0%"
    assert format_value(-0.000001, USD_PER_RUN) == "$0.0000"
    assert usd(-0.000001) == "$0.0000" and usd(-0.5) == "-$0.5000"
    table = pd.DataFrame({"a": [0.0123], "b": [0.0123], "difference": [-1e-7], "ci_low": [-2e-7],
                          "ci_high": [1e-7], "p_holm": [0.9], "significant": [False]}, index=["cost_per_run"])
    text = compare_html(table)
    assert "−$0.0000" not in text and "−" not in text


def test_an_interval_leaving_zero_out_says_why_it_is_not_significant():
    table = pd.DataFrame({"a": [0.10, 0.10], "b": [0.14, 0.11], "difference": [0.04, 0.01],
                          "ci_low": [0.005, -0.02], "ci_high": [0.075, 0.04], "p_holm": [0.08, 0.6],
                          "significant": [False, False]}, index=["escalation_rate", "failure_rate"])
    text = compare_html(table)
    assert text.count("no, after Holm's adjustment") == 1
    assert "+4.0%" in text and "[+0.5%, +7.5%]" in text


def test_the_changes_table_prints_each_metric_in_its_format_and_draws_each():
    from types import SimpleNamespace

    from conduit_notebook import errors_frame, runs_frame, tool_calls_frame
    from conduit_notebook.demo import DemoData

    data = DemoData(runs=2500, agents=4, seed=4, end=DEMO_END)  # with the demo's planted escalation step
    records = data.records()
    runs = runs_frame(records, agent_names={a["id"]: a["name"] for a in data.agents})
    page = html_report(SimpleNamespace(runs=runs, tool_calls=tool_calls_frame(records), errors=errors_frame([]),
                                       source="test"))
    section = page[page.index("id='changes'"):page.index("id='compare'")]
    table = section[:section.index("<img")]
    rows = re.findall(r"<tr>(.*?)</tr>", table[table.index("<tbody>"):], flags=re.S)
    assert rows, "the demo has change points"
    for row in rows:
        cells = re.findall(r"<td>(.*?)</td>", row)
        metric, before, after = cells[0], cells[3], cells[4]
        assert not re.fullmatch(r"-?0\.\d{3,}", before) and not re.fullmatch(r"-?0\.\d{3,}", after), row
        if metric.endswith("_rate"):
            assert before.endswith("%") and after.endswith("%")
        if metric == "cost_per_run":
            assert before.startswith("$")
    metrics = {re.findall(r"<td>(.*?)</td>", row)[0] for row in rows}
    assert section.count("<img") == len(metrics)  # a chart per metric that changed


def test_an_empty_window_says_which_window(client):
    frames = fetch_runs(client=client, since=DEMO_END + pd.Timedelta(days=1), until=DEMO_END + pd.Timedelta(days=2),
                        cache=False, progress=False)
    assert len(frames.runs) == 0
    page = html_report(frames)
    assert "no runs in the window 2026-11-21 15:00 to 2026-11-22 15:00 UTC" in page
    assert "agents with runs<b>0</b>" in page
