"""Time bounds as users write them: ``since``/``until`` of :func:`fetch_runs` and
``start``/``end`` of :func:`filter_runs` read the same values the same way.

A whole day (a ``datetime.date`` or a date string such as ``"2026-11-28"``) means that whole
day: as a lower bound its first moment, as an upper bound its last. A datetime or a
timestamp string is that instant (naive means UTC). A span (``"7d"``, ``"12h"``, ``"30m"``,
``"90s"``, ``"2w"``) is that long before now.

"Now" is :func:`utc_now`, the one clock behind every default that reads the current time (a
span, the demo data's ``end``, a backlog's age, a report's date): a test replaces it to run at
a chosen moment.

>>> parse_time("2026-11-28", "until", end_of_day=True)
Timestamp('2026-11-28 23:59:59.999999999+0000', tz='UTC')
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

__all__ = ["is_whole_day", "parse_time", "utc_now"]

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_SPAN_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DAY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")
TIME_FORMS = ("a datetime (naive means UTC), a date or a date string such as '2026-11-01' (the "
              "whole day), an ISO 8601 timestamp such as '2026-11-01T09:30:00Z', or a span back "
              "from now such as '7d', '12h', '30m'")


def utc_now() -> datetime:
    """The current time, UTC (tests replace this function to fix the moment)."""
    return datetime.now(UTC)


def is_whole_day(value: Any) -> bool:
    """True for a ``datetime.date`` (not a datetime) and for a bare date string."""
    if isinstance(value, str):
        return bool(_DAY.match(value))
    return isinstance(value, date) and not isinstance(value, datetime)


def _in_range(stamp: pd.Timestamp, name: str, value: Any) -> pd.Timestamp:
    """``stamp`` in nanoseconds (pandas reads '2999-01-01' in microseconds, and every comparison
    with a frame's times then overflows), or a ValueError naming ``name``."""
    try:
        return stamp.as_unit("ns")
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        raise ValueError(f"{name} must be between {pd.Timestamp.min:%Y-%m-%d} and {pd.Timestamp.max:%Y-%m-%d} "
                         f"(the times pandas holds); got {value!r}") from None


def parse_time(value: Any, name: str = "since", *, now: datetime | None = None,
               end_of_day: bool = False) -> pd.Timestamp | None:
    """A time bound -> a UTC timestamp (None stays None).

    A whole day (:func:`is_whole_day`) is its first moment, or with ``end_of_day`` its last;
    anything else is the instant it names. Anything unreadable (or out of range, such as
    ``"99999999999d"`` or ``"2999-01-01"``: pandas holds 1677-09-21 to 2262-04-11) raises
    ``ValueError`` naming ``name``.
    """
    if value is None:
        return None
    whole_day = is_whole_day(value)
    try:
        if whole_day:
            stamp = pd.Timestamp(str(value).strip())
        elif isinstance(value, str):
            span = _SPAN.match(value)
            if span:
                now = now or utc_now()
                amount, unit = float(span.group(1)), span.group(2).lower()
                return pd.Timestamp(now - timedelta(**{_SPAN_UNITS[unit]: amount})).tz_convert("UTC")
            stamp = pd.Timestamp(value.strip())
        elif isinstance(value, (datetime, pd.Timestamp)):
            stamp = pd.Timestamp(value)
        else:
            stamp = None
    except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime):
        stamp = None
    if stamp is None or pd.isna(stamp):
        raise ValueError(f"{name} must be {TIME_FORMS}; got {value!r}")
    stamp = _in_range(stamp, name, value)
    if whole_day:
        day = stamp.tz_localize("UTC")
        return day + pd.Timedelta(days=1) - pd.Timedelta(1, "ns") if end_of_day else day
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
