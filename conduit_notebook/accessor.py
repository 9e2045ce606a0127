"""``runs.conduit.summarize()``, ``calls.conduit.plot_tool_usage()``: the analysis and plot
functions as a pandas accessor on the frames from :func:`conduit_notebook.fetch_runs`; and
``calls.conduit.input_json()``: a tool call's input (or output) as Python values, decoded from
the JSON text the frame holds.

It keeps no state and only delegates; it checks in ``__init__`` that the frame is a runs frame
or a tool-calls frame, and a method for the other kind says so.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from . import analysis
from .frames import JSON_TEXT, decode_json

_RUNS = ("id", "status", "created_at")
_CALLS = ("agent_run_id", "name")


@pd.api.extensions.register_dataframe_accessor("conduit")
class ConduitAccessor:
    """``frame.conduit.<function>(...)`` for the functions of :mod:`conduit_notebook.analysis`
    and :mod:`conduit_notebook.plots`."""

    def __init__(self, frame: pd.DataFrame) -> None:
        columns = set(frame.columns)
        if set(_CALLS) <= columns:
            self._kind = "tool_calls"
        elif set(_RUNS) <= columns:
            self._kind = "runs"
        else:
            missing_runs = [c for c in _RUNS if c not in columns]
            missing_calls = [c for c in _CALLS if c not in columns]
            raise AttributeError(
                "the .conduit accessor needs a runs frame (missing: "
                f"{', '.join(missing_runs)}) or a tool-calls frame (missing: {', '.join(missing_calls)})"
            )
        self._frame = frame

    def _runs(self, name: str) -> pd.DataFrame:
        if self._kind != "runs":
            raise AttributeError(f".conduit.{name}() works on a runs frame; this is a tool-calls frame")
        return self._frame

    def _calls(self, name: str) -> pd.DataFrame:
        if self._kind != "tool_calls":
            raise AttributeError(f".conduit.{name}() works on a tool-calls frame; this is a runs frame")
        return self._frame

    # runs
    def summarize(self, by: Any = None, **kwargs: Any) -> pd.DataFrame:
        return analysis.summarize(self._runs("summarize"), by, **kwargs)

    def cost_breakdown(self, by: Any = "agent_name", **kwargs: Any) -> pd.DataFrame:
        return analysis.cost_breakdown(self._runs("cost_breakdown"), by, **kwargs)

    def outliers(self, column: str = "duration_ms", **kwargs: Any) -> pd.DataFrame:
        return analysis.outliers(self._runs("outliers"), column, **kwargs)

    def review_sample(self, n: int = 50, **kwargs: Any) -> pd.DataFrame:
        return analysis.review_sample(self._runs("review_sample"), n, **kwargs)

    # plots: imported on first use, as matplotlib.pyplot is slow to import
    def plot_duration(self, **kwargs: Any) -> Any:
        from . import plots

        return plots.plot_duration(self._runs("plot_duration"), **kwargs)

    def plot_tokens(self, **kwargs: Any) -> Any:
        from . import plots

        return plots.plot_tokens(self._runs("plot_tokens"), **kwargs)

    def plot_cost(self, **kwargs: Any) -> Any:
        from . import plots

        return plots.plot_cost(self._runs("plot_cost"), **kwargs)

    def plot_dispositions(self, **kwargs: Any) -> Any:
        from . import plots

        return plots.plot_dispositions(self._runs("plot_dispositions"), **kwargs)

    def plot_duration_vs_tokens(self, **kwargs: Any) -> Any:
        from . import plots

        return plots.plot_duration_vs_tokens(self._runs("plot_duration_vs_tokens"), **kwargs)

    # tool calls
    def tool_stats(self, runs: pd.DataFrame | None = None) -> pd.DataFrame:
        return analysis.tool_stats(self._calls("tool_stats"), runs)

    def plot_tool_usage(self, **kwargs: Any) -> Any:
        from . import plots

        return plots.plot_tool_usage(self._calls("plot_tool_usage"), **kwargs)

    # JSON text -> Python values
    def json(self, column: str) -> pd.Series:
        """A column of JSON text (``input``, ``output``, or a field the API added that holds
        objects) as Python values (dicts, lists, strings...), with the frame's index.

        >>> calls[calls["name"] == "get_reservation"].conduit.json("output").str.get("status")
        """
        if column not in self._frame.columns:
            raise KeyError(f"no column {column!r}; JSON text columns here: {', '.join(self.json_columns()) or 'none'}")
        if self._frame[column].dtype != JSON_TEXT:
            raise TypeError(f"column {column!r} is {self._frame[column].dtype}, not JSON text; "
                            f"JSON text columns here: {', '.join(self.json_columns()) or 'none'}")
        return decode_json(self._frame[column])

    def json_columns(self) -> list[str]:
        """The columns that hold JSON text."""
        return [name for name, dtype in self._frame.dtypes.items() if dtype == JSON_TEXT]

    def input_json(self) -> pd.Series:
        """Each tool call's ``input`` as Python values: ``calls.conduit.json("input")``."""
        self._calls("input_json")
        return self.json("input")

    def output_json(self) -> pd.Series:
        """Each tool call's ``output`` as Python values: ``calls.conduit.json("output")``."""
        self._calls("output_json")
        return self.json("output")

    def json_normalize(self, column: str, keys: list[str] | None = None, **kwargs: Any) -> pd.DataFrame:
        """The objects of a JSON text column as columns (``pd.json_normalize``), with the frame's
        index; ``keys`` keeps only those (dotted paths for nested keys, e.g. ``"guest.name"``).

        >>> calls.conduit.json_normalize("input", ["reservation_id"])
        """
        values = self.json(column)
        objects = [v if isinstance(v, dict) else {} for v in values]
        flat = pd.json_normalize(objects, **kwargs)
        flat.index = self._frame.index
        if keys is not None:
            flat = flat.reindex(columns=list(keys))
        return flat
