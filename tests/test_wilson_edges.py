"""A Wilson interval always holds its own rate: rounding once put the low end of 0 of n at
2.8e-17, above the rate, and `report --demo --runs 200` stopped on matplotlib's "'xerr' must
not contain negative values" while drawing the escalation quality plot."""

from __future__ import annotations

import pytest

from conduit_notebook.review import wilson_interval


@pytest.mark.parametrize("total", [1, 2, 3, 5, 7, 11, 13, 17, 40, 97, 1000, 2.5, 12.7])
def test_the_interval_of_none_or_all_starts_or_ends_at_the_rate(total):
    low, high = wilson_interval(0, total)
    assert low == 0.0 and high > 0.0
    low, high = wilson_interval(total, total)
    assert low < 1.0 and high == 1.0
    for successes in range(int(total) + 1):
        low, high = wilson_interval(successes, total)
        assert low <= successes / total <= high


def test_report_of_a_small_demo_draws_every_plot(tmp_path):
    from conduit_notebook.cli import main

    out = tmp_path / "r.html"
    assert main(["report", "--demo", "--no-cache", "--runs", "200", "--traces", "none", "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "came back" in page.lower() or "escalat" in page.lower()
