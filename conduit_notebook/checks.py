"""What the table functions check of the frames they are given, and how they read a column:
the runs table and not another of the toolkit's tables, the columns they need, numbers as floats
with missing values as NaN."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["float_values", "require_columns", "require_runs"]


def require_runs(frame: Any, what: str) -> None:
    """Raise a ValueError when ``frame`` is another of the toolkit's tables (the tool calls, the
    escalations), not the runs ``what`` needs: their columns overlap, the numbers would not."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} takes the runs table (fetch_runs(...).runs), got {type(frame).__name__}")
    if "agent_run_id" in frame and "id" not in frame:
        raise ValueError(f"{what} takes the runs table (frames.runs, one row per run); this is the tool-call "
                         "table (frames.tool_calls, one row per call)")
    if "agent_run_id" in frame and "reviewed_at" in frame:
        raise ValueError(f"{what} takes the runs table (frames.runs, one row per run); this is the escalations "
                         "table (fetch_escalations())")


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise a ValueError naming the columns ``frame`` lacks for ``what``."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} takes a DataFrame (fetch_runs(...).runs), got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing and {"id", "status", "created_at"} <= set(frame.columns):
        # A runs frame without the column asked for: a misspelt by= (or a column dropped), not
        # another table.
        known = ", ".join(str(c) for c in frame.columns[:12])
        raise ValueError(f"{what} needs the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}, which "
                         f"this runs frame lacks; its columns include {known}" + (", ..." if len(frame.columns) > 12 else ""))
    if missing:
        raise ValueError(
            f"{what} needs the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
            "pass the runs frame from fetch_runs() or runs_frame()"
        )


def float_values(series: pd.Series) -> np.ndarray:
    """The values as a float64 array, missing ones as NaN."""
    return series.astype("float64").to_numpy(na_value=np.nan) if series.dtype != "float64" else series.to_numpy()
