"""``runs.conduit.summarize()``, ``calls.conduit.plot_tool_usage()``: the analysis and plot
functions as a pandas accessor on the frames from :func:`conduit_notebook.fetch_runs`.

It keeps no state and only delegates; it checks in ``__init__`` that the frame is a runs frame
or a tool-calls frame, and a method for the other kind says so.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from . import analysis, plots

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

    def plot_duration(self, **kwargs: Any) -> Any:
        return plots.plot_duration(self._runs("plot_duration"), **kwargs)

    def plot_tokens(self, **kwargs: Any) -> Any:
        return plots.plot_tokens(self._runs("plot_tokens"), **kwargs)

    def plot_cost(self, **kwargs: Any) -> Any:
        return plots.plot_cost(self._runs("plot_cost"), **kwargs)

    def plot_dispositions(self, **kwargs: Any) -> Any:
        return plots.plot_dispositions(self._runs("plot_dispositions"), **kwargs)

    def plot_duration_vs_tokens(self, **kwargs: Any) -> Any:
        return plots.plot_duration_vs_tokens(self._runs("plot_duration_vs_tokens"), **kwargs)

    # tool calls
    def tool_stats(self, runs: pd.DataFrame | None = None) -> pd.DataFrame:
        return analysis.tool_stats(self._calls("tool_stats"), runs)

    def plot_tool_usage(self, **kwargs: Any) -> Any:
        return plots.plot_tool_usage(self._calls("plot_tool_usage"), **kwargs)
