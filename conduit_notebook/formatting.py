"""How numbers are printed, in one place: dollars, durations, token counts, percentages, and
tables of metrics (HTML for the report and the explorer, text for the terminal). A missing
value prints as "–", never as 0.

>>> usd(1234.5), usd(0.012482)
('$1,234.50', '$0.0125')
>>> compact(1_200_000), format_metric("failure_rate", 0.049)
('1.2M', '4.9%')
"""

from __future__ import annotations

import html
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "COUNT",
    "METRIC_FORMATS",
    "MISSING",
    "PERCENT",
    "SECONDS",
    "SUMMARY_FORMATS",
    "USD",
    "USD_PER_RUN",
    "WHOLE",
    "compact",
    "format_metric",
    "format_table",
    "format_value",
    "html_value",
    "is_missing",
    "text_table",
    "usd",
    "usd_decimals",
]

#: What a missing number prints as.
MISSING = "–"

# str.format specs by kind of number.
COUNT = "{:,}"            # runs, calls: a float column's 3.0 prints as 3
WHOLE = "{:,.0f}"         # tokens and other large numbers, rounded
PERCENT = "{:.1%}"        # a rate or share (0.049 -> 4.9%)
SECONDS = "{:.1f}"        # a duration in seconds
USD = "${:,.2f}"          # a total cost
USD_PER_RUN = "${:,.4f}"  # a cost per run: cents and their fractions

#: How each metric is printed, in the report, the explorer and the terminal (the names of
#: :data:`conduit_notebook.metrics.GLOSSARY`).
METRIC_FORMATS: dict[str, str] = {
    "runs": COUNT, "share": PERCENT, "failure_rate": PERCENT,
    "p50_duration_s": SECONDS, "p90_duration_s": SECONDS, "p99_duration_s": SECONDS,
    "input_tokens": COUNT, "output_tokens": COUNT, "total_tokens": COUNT,
    "tokens_per_run": WHOLE, "output_token_share": PERCENT,
    "total_cost": USD, "cost_per_run": USD_PER_RUN, "cost_share": PERCENT,
    "resolved_runs": COUNT, "cost_per_resolved_run": USD_PER_RUN,
    "escalation_rate": PERCENT, "resolution_rate": PERCENT,
    "came_back_rate": PERCENT, "came_back_escalated_rate": PERCENT, "dismissed_rate": PERCENT,
}
#: The columns of :func:`conduit_notebook.summarize` and :func:`conduit_notebook.cost_breakdown`.
SUMMARY_FORMATS = METRIC_FORMATS


def is_missing(value: Any) -> bool:
    """None, NaN, NaT or pd.NA."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array is a value, not a missing one
        return False


def format_value(value: Any, spec: str = "{}") -> str:
    """``value`` formatted with the str.format ``spec``; "–" when missing."""
    if is_missing(value):
        return MISSING
    if spec == COUNT and isinstance(value, (float, np.floating)):
        value = int(round(float(value)))
    text = spec.format(value).replace("$-", "-$", 1)  # a negative amount: "-$0.0009", not "$-0.0009"
    # A value that rounds to zero prints as zero: "-0.0%" or "-$0.0000" reads as a loss.
    return text.replace("-", "", 1) if "-" in text and not any(c in "123456789" for c in text) else text


def format_metric(name: str, value: Any) -> str:
    """``value`` as the tables print metric ``name`` ("–" when missing)."""
    return format_value(value, METRIC_FORMATS.get(name, "{}"))


def usd_decimals(value: float) -> int:
    """Decimals that show what matters of an amount: cents from $1, else four places."""
    return 2 if abs(value) >= 1 else 4


def usd(value: float, decimals: int | None = None) -> str:
    """Dollars: ``$1,234.50``, ``$0.0125`` (decimals by :func:`usd_decimals` unless given)."""
    if is_missing(value):
        return MISSING
    places = usd_decimals(value) if decimals is None else decimals
    sign = "-" if round(value, places) < 0 else ""  # no "-$0.0000"
    return f"{sign}${abs(value):,.{places}f}"


def compact(value: float, _pos: Any = None) -> str:
    """A large count in few characters: 500k, 1.2M (a matplotlib tick formatter too)."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}" if value else "0"


def html_value(value: Any, unit: str = "", digits: int = 0) -> str:
    """One value for an HTML page: a number with its unit, a UTC time, or escaped text."""
    if is_missing(value):
        return MISSING
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d %H:%M:%S} UTC"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{value:,.{digits}f}{unit}"
    return html.escape(str(value))


def format_table(frame: pd.DataFrame, formats: dict[str, str] | None = None, index: bool = True) -> str:
    """A frame as an HTML table, each column in ``formats`` printed with its spec."""
    if frame.empty:
        return "<p class='note'>Nothing to show.</p>"
    styled = frame.copy()
    for column, spec in (formats or {}).items():
        if column in styled:
            styled[column] = styled[column].map(partial(format_value, spec=spec))
    return f"<div style='overflow-x:auto'>{styled.to_html(index=index, escape=True, border=0, na_rep=MISSING)}</div>"


def text_table(frame: pd.DataFrame, formats: dict[str, str]) -> str:
    """A frame as text for a terminal, each column in ``formats`` printed with its spec."""
    formatters = {column: partial(format_value, spec=spec) for column, spec in formats.items() if column in frame}
    return frame.to_string(formatters=formatters, na_rep=MISSING)
