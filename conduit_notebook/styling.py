"""Tables in a notebook printed as the report prints them: :func:`style_table` wraps a frame
so that Jupyter shows each metric in its own format (4.9%, $0.0125, 12.3 s), p-values in three
significant digits, missing values as "–", in cells that do not wrap (HTML, as the report's
tables; text in a terminal). No jinja2 needed, as a pandas Styler would.

>>> style_table(summarize(runs, by="agent_name"))   # the last line of a cell: shown formatted
"""

from __future__ import annotations

import pandas as pd

from .formatting import METRIC_FORMATS, PERCENT, SECONDS, USD_PER_RUN, WHOLE, format_table, text_table

__all__ = ["FormattedTable", "style_table"]

#: How columns not in METRIC_FORMATS print, by what their name ends or starts with.
_BY_SUFFIX = (("_rate", PERCENT), ("share", PERCENT), ("_share_low", PERCENT), ("_share_high", PERCENT),
              ("share_low", PERCENT), ("share_high", PERCENT), ("_s", SECONDS), ("cost_per_run", USD_PER_RUN),
              ("_cost", USD_PER_RUN), ("calls", WHOLE), ("calls_low", WHOLE), ("calls_high", WHOLE))


def _spec(column: str) -> str | None:
    if column in METRIC_FORMATS:
        return METRIC_FORMATS[column]
    if column in ("p", "p_value", "p_holm") or column.startswith("p_value"):
        return "{:.3g}"
    base = column.removesuffix("_low").removesuffix("_high").removesuffix("_with").removesuffix("_without")
    if base in METRIC_FORMATS:
        return METRIC_FORMATS[base]
    return next((spec for suffix, spec in _BY_SUFFIX if base.endswith(suffix)), None)


class FormattedTable:
    """A frame shown formatted: ``frame`` is the numbers, unchanged."""

    def __init__(self, frame: pd.DataFrame, formats: dict[str, str]) -> None:
        self.frame, self.formats = frame, formats

    def _repr_html_(self) -> str:
        table = format_table(self.frame, self.formats)
        return f"<div class='conduit-table' style='white-space:nowrap'>{table}</div>".replace(
            "<table ", "<table style='white-space:nowrap' ", 1)

    def __repr__(self) -> str:
        return text_table(self.frame, self.formats)


def style_table(table: pd.DataFrame, formats: dict[str, str] | None = None) -> FormattedTable:
    """``table`` shown as the report prints it: each known metric column in its format
    (``formats`` adds or overrides ``{column: str.format spec}``), p-values as 0.0123, "–" for
    missing, and no cell wrapped (a p-value or an interval stays on one line). The numbers stay
    in ``.frame``."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a DataFrame, got {type(table).__name__}")
    specs = {str(c): s for c in table.columns
             if pd.api.types.is_numeric_dtype(table[c]) and (s := (formats or {}).get(str(c)) or _spec(str(c)))}
    return FormattedTable(table, specs)
