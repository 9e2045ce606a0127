"""Checks on API records where they enter: what cannot be framed or cached is turned away with a
reason (it becomes a row of ``errors``), and a run listed twice is kept once, the newest copy.

>>> record_problem({"id": None})
'its id is null, not a string'
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

__all__ = ["MAX_NAME", "clean_name", "dedupe", "escalation_problem", "json_problem", "readable_time", "record_problem"]

#: An agent name longer than this many characters is cut (a label, not a document).
MAX_NAME = 200

_INT64 = 2**63
# Numbers that become nullable-integer or float columns.
_NUMBERS = ("duration_ms", "total_cost")
_USAGE = ("input", "output")


def _kind(value: Any) -> str:
    return "null" if value is None else {dict: "object", list: "list", str: "string",
                                         bool: "boolean"}.get(type(value), type(value).__name__)


def _too_big(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64


def record_problem(record: Any) -> str | None:
    """Why a run record cannot be framed or cached, or None if it can.

    Turned away: a record that is not a JSON object; an id or agent_id that is missing, null or
    not a string; a count or cost beyond a 64-bit integer, or not finite (``Infinity``); text with a broken character (a lone
    surrogate, as when an answer was cut inside an emoji); JSON nested too deeply to write back.
    """
    if not isinstance(record, Mapping):
        return f"the record is a JSON {_kind(record)}, not an object"
    for key in ("id", "agent_id"):
        value = record.get(key)
        if not isinstance(value, str) or not value:
            state = "missing" if key not in record else ("empty" if value == "" else _kind(value))
            return f"its {key} is {state}, not a string" if state != "empty" else f"its {key} is empty"
    usage = record.get("token_usage")
    numbers = [(k, record.get(k)) for k in _NUMBERS]
    if isinstance(usage, Mapping):
        numbers += [(f"token_usage.{k}", usage.get(k)) for k in _USAGE]
    for key, value in numbers:
        if _too_big(value):
            return f"its {key} is {value}, beyond a 64-bit integer"
        if isinstance(value, float) and not math.isfinite(value):
            return f"its {key} is {value}, not a finite number (Infinity and NaN are not JSON)"
    return json_problem(record)


def json_problem(record: Any) -> str | None:
    """Why a record cannot be written back as JSON (nested too deeply, a lone surrogate), or None."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        return "it is JSON nested too deeply to store"
    except UnicodeEncodeError:
        return "its text has a broken character (a lone surrogate: a text cut inside an emoji?)"
    except (TypeError, ValueError) as exc:  # pragma: no cover - JSON from the wire always dumps
        return f"it cannot be written back as JSON ({exc})"
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_name(value: Any) -> tuple[str | None, str | None]:
    """A name as a label can show it, and what was wrong with it (None if nothing): a number
    becomes its text, an object or a list no name (the id stands in), a broken character (a
    lone surrogate) U+FFFD, and a name over :data:`MAX_NAME` characters is cut."""
    if value is None or (isinstance(value, str) and value and len(value) <= MAX_NAME
                         and not _SURROGATE.search(value)):
        return value, None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None, f"is a JSON {_kind(value)}, not a string: shown by the agent's id"
    if not isinstance(value, str):
        return str(value), f"is a number ({value}), not a string: shown as text"
    if not value:
        return None, "is empty: shown by the agent's id"
    fixed, note = value, []
    if _SURROGATE.search(fixed):
        fixed = _SURROGATE.sub("\ufffd", fixed)
        note.append("has a broken character (a lone surrogate), shown as \ufffd")
    if len(fixed) > MAX_NAME:
        note.append(f"is {len(fixed):,} characters, cut to {MAX_NAME}")
        fixed = fixed[:MAX_NAME - 1] + "\u2026"
    return fixed, " and ".join(note)


def readable_time(value: Any) -> bool:
    """An ISO 8601 time that pandas can hold (years 1678 to 2261)."""
    if not isinstance(value, str):
        return False
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return 1678 <= stamp.year < 2262


def escalation_problem(record: Any) -> str | None:
    """Why an escalation record cannot be framed, or None if it can: not a JSON object, no
    string id, a created_at that is missing or not a time, a broken character in its text."""
    if not isinstance(record, Mapping):
        return f"the record is a JSON {_kind(record)}, not an object"
    if not isinstance(record.get("id"), str) or not record["id"]:
        return f"it has no id (id is {_kind(record.get('id')) if 'id' in record else 'missing'})"
    if not readable_time(record.get("created_at")):
        return f"its created_at {record.get('created_at')!r} is not a time"
    return json_problem(record)


R = TypeVar("R", bound=Mapping[str, Any])


def dedupe(records: Iterable[R]) -> list[R]:
    """Records by id, each once: the last copy (the newest seen) in the place of the first."""
    by_id: dict[Any, R] = {}
    for record in records:
        by_id[record.get("id")] = record
    return list(by_id.values())
