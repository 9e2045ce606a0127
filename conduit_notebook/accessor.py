"""``runs.conduit.summarize()``, ``calls.conduit.plot_tool_usage()``: the analysis and plot
functions as a pandas accessor on the frames from :func:`conduit_notebook.fetch_runs`; and
``calls.conduit.input_json()``: a tool call's input (or output) as Python values, decoded from
the JSON text the frame holds.

It keeps no state and only delegates; it checks in ``__init__`` that the frame is a runs frame
or a tool-calls frame, and a method for the other kind says so.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any

import pandas as pd

from .frames import JSON_TEXT, decode_json

_RUNS = ("id", "status", "created_at")
_CALLS = ("agent_run_id", "name")

#: Every delegated method, from one table: name -> (module, the frame it takes first). The
#: method is the module's function with that frame passed first, so its signature, defaults and
#: docstring are the function's own and cannot drift (a hand-copied ``n=50`` once did).
METHODS: dict[str, tuple[str, str]] = {
    **dict.fromkeys(["summarize", "cost_breakdown", "outliers", "review_sample"], ("analysis", "runs")),
    **dict.fromkeys(["plot_duration", "plot_tokens", "plot_cost", "plot_dispositions",
                     "plot_duration_vs_tokens"], ("plots", "runs")),
    "tool_stats": ("analysis", "tool_calls"),
    "plot_tool_usage": ("plots", "tool_calls"),
}


class _Delegate:
    """A method of the accessor that calls ``module.name(frame, ...)``. The module is imported
    on first use (matplotlib.pyplot is slow to import); the bound method carries the function's
    name, docstring and signature without its first parameter (``help(runs.conduit.summarize)``)."""

    def __init__(self, module: str, kind: str) -> None:
        self.module, self.kind = module, kind

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def function(self) -> Any:
        return getattr(importlib.import_module(f".{self.module}", __package__), self.name)

    def __get__(self, accessor: ConduitAccessor | None, owner: type | None = None) -> Any:
        func = self.function()
        if accessor is None:
            return func
        frame = accessor._checked(self.name, self.kind)

        @functools.wraps(func)
        def method(*args: Any, **kwargs: Any) -> Any:
            return func(frame, *args, **kwargs)

        signature = inspect.signature(func)
        method.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=list(signature.parameters.values())[1:])
        return method


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

    def _checked(self, name: str, kind: str) -> pd.DataFrame:
        if self._kind != kind:
            wanted, this = ("runs", "tool-calls") if kind == "runs" else ("tool-calls", "runs")
            raise AttributeError(f".conduit.{name}() works on a {wanted} frame; this is a {this} frame")
        return self._frame

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *METHODS})

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
        return [str(name) for name, dtype in self._frame.dtypes.items() if dtype == JSON_TEXT]

    def input_json(self) -> pd.Series:
        """Each tool call's ``input`` as Python values: ``calls.conduit.json("input")``."""
        self._checked("input_json", "tool_calls")
        return self.json("input")

    def output_json(self) -> pd.Series:
        """Each tool call's ``output`` as Python values: ``calls.conduit.json("output")``."""
        self._checked("output_json", "tool_calls")
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


for _name, (_module, _kind) in METHODS.items():
    _delegate = _Delegate(_module, _kind)
    setattr(ConduitAccessor, _name, _delegate)
    _delegate.__set_name__(ConduitAccessor, _name)
