"""Tables in a notebook printed as the report prints them: :func:`style_table` wraps a frame
so that Jupyter shows each metric in its own format (4.9%, $0.0125, 12.3 s), p-values in three
significant digits, missing values as "–", in cells that do not wrap (HTML, as the report's
tables; text in a terminal). No jinja2 needed, as a pandas Styler would.

>>> style_table(summarize(runs, by="agent_name"))   # the last line of a cell: shown formatted
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from .deprecation import keyword_only_after
from .formatting import METRIC_FORMATS, PERCENT, SECONDS, USD_PER_RUN, WHOLE, format_table, format_value, text_table

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
    """A frame shown formatted: ``frame`` is the numbers, unchanged. ``formats`` gives a column's
    spec; ``row_formats`` a row's (by index label) for the ``row_columns``, in a table whose
    rows are metrics (:func:`conduit_notebook.compare`: a rate in %, a cost in $)."""

    def __init__(self, frame: pd.DataFrame, formats: dict[str, str], row_formats: dict[Any, str] | None = None,
                 row_columns: Sequence[str] = ()) -> None:
        self.frame, self.formats = frame, formats
        self.row_formats, self.row_columns = dict(row_formats or {}), [c for c in row_columns if c in frame]

    def _shown(self) -> tuple[pd.DataFrame, dict[str, str]]:
        """The frame with the row-formatted cells as text, and the column formats left to apply."""
        if not self.row_formats:
            return self.frame, self.formats
        shown = self.frame.astype({c: object for c in self.row_columns})
        for label, spec in self.row_formats.items():
            for column in self.row_columns:
                shown.at[label, column] = format_value(self.frame.at[label, column], spec)
        return shown, {c: s for c, s in self.formats.items() if c not in self.row_columns}

    def _repr_html_(self) -> str:
        table = format_table(*self._shown())
        return f"<div class='conduit-table' style='white-space:nowrap'>{table}</div>".replace(
            "<table ", "<table style='white-space:nowrap' ", 1)

    def __repr__(self) -> str:
        return text_table(*self._shown())


@keyword_only_after("table", moved=("formats",))
def style_table(table: pd.DataFrame, *, formats: dict[str, str] | None = None) -> FormattedTable:
    """``table`` shown as the report prints it: each known metric column in its format
    (``formats`` adds or overrides ``{column: str.format spec}``), an interval's ``ci_low`` /
    ``ci_high`` in the format of the estimate left of them, p-values as 0.0123, "–" for missing,
    and no cell wrapped (a p-value or an interval stays on one line). A table whose rows are
    metrics (``compare``'s, indexed by ``metric``) prints each row in its metric's format. The
    numbers stay in ``.frame``."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a DataFrame, got {type(table).__name__}")
    specs: dict[str, str] = {}
    last: str | None = None  # the format of the nearest column to the left with one
    for c in table.columns:
        name = str(c)
        if not pd.api.types.is_numeric_dtype(table[c]):
            continue
        spec = (formats or {}).get(name) or _spec(name)
        if spec is None and name in ("ci_low", "ci_high"):
            spec = last
        if spec is not None:
            specs[name] = spec
            if name not in ("ci_low", "ci_high", "p", "p_value", "p_holm") and not name.startswith("p_value"):
                last = spec
    if table.index.name != "metric":
        return FormattedTable(table, specs)
    rows = {label: _spec("share" if str(label).startswith("disposition:") else str(label)) or "{:.4g}"
            for label in table.index if str(label) != "disposition_mix"}
    return FormattedTable(table, specs, rows, ["a", "b", "difference", "ci_low", "ci_high"])
