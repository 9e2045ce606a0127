"""Issue 21, item 12 (notebook side): analysis tables shown in a notebook as the report prints
them, p-values on one line."""

from __future__ import annotations

import re

import pytest

from conduit_notebook import compare, cost_breakdown, runs_frame, style_table, summarize
from conduit_notebook.demo import DemoData

from .conftest import DEMO_END


@pytest.fixture(scope="module")
def runs():
    data = DemoData(runs=400, agents=3, seed=2, end=DEMO_END)
    return runs_frame(data.records(), agent_names={a["id"]: a["name"] for a in data.agents})


def test_tables_show_percent_dollars_and_seconds_and_keep_the_numbers(runs):
    table = summarize(runs, by="agent_name")
    shown = style_table(table)
    assert shown.frame is table
    html = shown._repr_html_()
    rate = table["failure_rate"].iloc[0]
    assert f">{rate:.1%}<" in html and f">{table['failure_rate'].iloc[0]}<" not in html
    cost = cost_breakdown(runs, by="agent_name")
    html = style_table(cost)._repr_html_()
    assert f">${cost['cost_per_run'].iloc[0]:,.4f}<" in html and "white-space:nowrap" in html
    assert f"{cost['cost_per_run'].iloc[0]:,.4f}" in repr(style_table(cost))


def test_p_values_print_in_three_digits_on_one_line(runs):
    table = compare(runs.iloc[::2], runs.iloc[1::2], n_boot=200)
    html = style_table(table)._repr_html_()
    shown = re.findall(r"<td>([^<]*)</td>", html)
    assert f"{table['p_holm'].dropna().iloc[0]:.3g}" in shown
    assert all(f"{p:.3g}" in shown for p in table["p_value"].dropna())
    assert not [p for p in table["p_value"].dropna() if len(str(p)) > 6 and str(p) in shown]  # no 0.4623871
    assert "<table style='white-space:nowrap'" in html


def test_style_table_refuses_what_is_not_a_frame():
    with pytest.raises(TypeError, match="table must be a DataFrame"):
        style_table([1, 2])


def test_a_compare_table_prints_each_row_in_its_metrics_format(runs):
    """compare's rows are metrics: a rate's a, b, difference and interval in %, a cost's in $
    (a whole column in one format printed 0.0461 beside $ amounts), a negative amount as -$."""
    table = compare(runs.iloc[::2], runs.iloc[1::2], n_boot=200)
    shown = repr(style_table(table))
    rate = table.loc["escalation_rate"]
    line = next(x for x in shown.splitlines() if x.startswith("escalation_rate"))
    assert f"{rate['a']:.1%}" in line and f"{rate['ci_low']:.1%}" in line
    cost = table.loc["cost_per_run"]
    line = next(x for x in shown.splitlines() if x.startswith("cost_per_run"))
    assert f"${cost['a']:,.4f}" in line
    low = cost["ci_low"]
    assert (f"-${-low:,.4f}" if low < 0 else f"${low:,.4f}") in line and "$-" not in shown
    share = table.loc["disposition:escalated"]
    assert f"{share['b']:.1%}" in next(x for x in shown.splitlines() if x.startswith("disposition:escalated"))
    assert style_table(table).frame is table  # the numbers unchanged


def test_an_interval_prints_in_its_estimates_format(runs):
    from conduit_notebook import repeat_rates, tool_calls_frame

    data = DemoData(runs=400, agents=3, seed=2, end=DEMO_END)
    calls = tool_calls_frame(data.records())
    rates = repeat_rates(calls, runs)
    html = style_table(rates)._repr_html_()
    assert f">{rates['share'].iloc[0]:.1%}<" in html
    assert f">{rates['ci_low'].iloc[0]:.1%}<" in html and f">{rates['ci_high'].iloc[0]:.1%}<" in html
