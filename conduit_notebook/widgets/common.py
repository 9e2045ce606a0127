"""What the three widgets share: reading frames, showing a callback's exception in the
widget, and a plain pair of runs and tool calls to hand to a :class:`RunInspector`."""

from __future__ import annotations

import functools
import html
import traceback
from collections.abc import Callable
from typing import Any

import ipywidgets as w
import pandas as pd

__all__ = ["ErrorArea", "RunsAndCalls", "frames_parts", "guarded", "messages_fetcher"]


def frames_parts(frames: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``frames.runs`` and ``frames.tool_calls``; a TypeError when either is not a DataFrame."""
    runs = getattr(frames, "runs", None)
    calls = getattr(frames, "tool_calls", None)
    if not isinstance(runs, pd.DataFrame) or not isinstance(calls, pd.DataFrame):
        raise TypeError("frames must have .runs and .tool_calls DataFrames (the result of fetch_runs)")
    return runs, calls


def guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """Show an exception raised in a widget callback inside the widget."""
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - shown to the user, who can act on it
            self._show_error(exc)
            return None
    return wrapper


class UserHint(ValueError):
    """What the user has to do before a click can work (pick the right disposition first): a
    :func:`guarded` callback shows it as a hint, not as an "Error: ValueError"."""


class ErrorArea:
    """A widget's error line: :func:`guarded` callbacks show their exception there."""

    _errors: w.HTML
    last_error: BaseException | None

    def _show_error(self, exc: BaseException) -> None:
        if isinstance(exc, UserHint):
            self._errors.value = (f"<div style='color:#6b4e00;background:#fff4d6;padding:6px;border-radius:4px'>"
                                  f"{html.escape(str(exc))}</div>")
            self.last_error = exc
            return
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        self._errors.value = (f"<div style='color:#a40000;background:#fde8e8;padding:6px;border-radius:4px'>"
                              f"<b>Error:</b> {html.escape(detail)}</div>")
        self.last_error = exc

    def _clear_error(self) -> None:
        self._errors.value = ""


class RunsAndCalls:
    """Runs and their tool calls: frames as a :class:`RunInspector` takes them."""

    def __init__(self, runs: pd.DataFrame, tool_calls: pd.DataFrame) -> None:
        self.runs, self.tool_calls = runs, tool_calls


def messages_fetcher(frames: Any) -> Callable[[str], pd.DataFrame] | None:
    """One run's conversation messages, fetched by ``frames.fetch_messages`` (a RunFrames made by
    fetch_runs, which knows its workspace), or None for frames that cannot fetch."""
    fetch = getattr(frames, "fetch_messages", None)
    if fetch is None or getattr(frames, "trace_source", None) is None:
        return None

    def fetch_one(run_id: str) -> pd.DataFrame:
        before = len(frames.errors)
        messages = fetch([run_id], progress=False)
        failed = frames.errors.iloc[before:]  # a thread that failed is an errors row: say it here
        if len(failed):
            raise LookupError(str(failed["error"].iloc[-1]))
        return messages
    return fetch_one
