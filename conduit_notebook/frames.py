"""Conduit JSON records -> typed pandas DataFrames. Pure functions, no I/O.

>>> from conduit_notebook import runs_frame, tool_calls_frame
>>> runs = runs_frame(records)             # one row per run
>>> calls = tool_calls_frame(records)      # one row per tool call, in trace order

Timestamps are tz-aware UTC, low-cardinality strings are categoricals, counts are nullable
integers (a run without ``token_usage`` has missing counts, never 0). Fields the API adds
later become columns of their own; nothing is dropped. An empty input gives empty frames with
the same columns and dtypes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .columns import (
    ARROW_KIND,
    CATEGORY,
    FLOAT,
    INT,
    JSON_TEXT,
    STRING,
    TIMESTAMP,
    all_dicts,
    arrow_column,
    as_records,
    bulk,
    decode_json,
    empty_frame,
    infer_extra,
    json_text,
    make_frame,
    read_struct,
    to_text,
)
from .schema import DETAIL_COLUMNS

try:  # several times faster than json for the many small values of tool calls
    import orjson
except ImportError:  # pragma: no cover - a dependency; json does the same, slower
    orjson = None  # type: ignore[assignment]  # every use checks for None first

__all__ = [
    "AGENT_COLUMNS",
    "DETAIL_COLUMNS",
    "ERROR_COLUMNS",
    "JSON_TEXT",
    "RUN_COLUMNS",
    "TOOL_CALL_COLUMNS",
    "agent_labels",
    "agents_frame",
    "decode_json",
    "errors_frame",
    "runs_frame",
    "tool_calls_frame",
]


#: The runs table: column -> dtype, in order. Unknown top-level fields follow these.
RUN_COLUMNS: dict[str, Any] = {
    "id": STRING,
    "run_id": STRING,
    "agent_id": CATEGORY,
    "agent_name": CATEGORY,
    "workspace_id": CATEGORY,
    "status": CATEGORY,
    "disposition": CATEGORY,
    "disposition_reason": CATEGORY,
    "error": STRING,
    "created_at": TIMESTAMP,
    "completed_at": TIMESTAMP,
    "duration_ms": INT,
    "input_tokens": INT,
    "output_tokens": INT,
    "total_tokens": INT,
    "total_cost": FLOAT,
    "tool_call_count": INT,
    "contact_id": CATEGORY,
    "conversation_id": CATEGORY,
    "trigger_id": CATEGORY,
    "trigger_event_id": STRING,
    "session_id": STRING,
    "trace_id": STRING,
    "response": STRING,
    "reflection": STRING,
}

#: The tool-call table: column -> dtype. Extra keys of trace items follow ``output``.
#: ``agent_run_id`` repeats for every call of a run, so it is a categorical too.
TOOL_CALL_COLUMNS: dict[str, Any] = {
    "agent_run_id": CATEGORY,
    "agent_id": CATEGORY,
    "step": "int32",
    "name": CATEGORY,
    "input": JSON_TEXT,
    "output": JSON_TEXT,
    "created_at": TIMESTAMP,
    "status": CATEGORY,
    "disposition": CATEGORY,
}
_PARENT_COLUMNS = ("created_at", "status", "disposition")

AGENT_COLUMNS: dict[str, Any] = {
    "id": STRING,
    "name": STRING,
    "description": STRING,
    "workspace_id": STRING,
    "enabled": "boolean",
    "operation_mode": CATEGORY,
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
    "trigger_count": INT,
}

ERROR_COLUMNS: dict[str, Any] = {
    "agent_id": STRING,
    "agent_run_id": STRING,
    "status_code": INT,
    "error": STRING,
    "attempts": INT,
}

# Keys of a record that do not become a column of the same name.
_USAGE = {"input_tokens": "input", "output_tokens": "output"}
_DERIVED = {"input_tokens", "output_tokens", "total_tokens", "tool_call_count"}
_KNOWN_RUN_KEYS = (set(RUN_COLUMNS) - _DERIVED) | {"token_usage", "tool_trace"}
_KNOWN_CALL_KEYS = {"name", "input", "output"}







# What pa.array() reads of a run in one pass, in C++: every known scalar, the usage and the tool
# names. Numbers are read as floats and checked to be whole afterwards (a struct conversion would
# silently truncate 1.5 to 1).
_RUN_STRUCT = pa.struct(
    [(name, ARROW_KIND[dtype]) for name, dtype in RUN_COLUMNS.items() if name not in _DERIVED]
    + [("token_usage", pa.struct([("input", pa.float64()), ("output", pa.float64())]))]
)








































def agent_labels(names: Mapping[Any, Any]) -> dict[Any, Any]:
    """Agent ids -> the labels the ``agent_name`` column shows: each agent's name, and where two
    agents share one, the name and the end of the id (``"Front desk (…4f2a1c)"``), so that a
    table or a plot grouped by name never merges two agents. Missing names stay missing."""
    counts: dict[Any, int] = {}
    for name in names.values():
        if isinstance(name, str):
            counts[name] = counts.get(name, 0) + 1
    labels = {}
    for agent_id, name in names.items():
        if isinstance(name, str) and counts[name] > 1:
            text = str(agent_id)
            labels[agent_id] = f"{name} (…{text[-6:]})" if len(text) > 6 else f"{name} ({text})"
        else:
            labels[agent_id] = name
    if len(set(v for v in labels.values() if v is not None)) < sum(v is not None for v in labels.values()):
        # Ids that end alike: the whole id.
        labels = {a: (f"{n} ({a})" if isinstance(n, str) and counts[n] > 1 else n) for a, n in names.items()}
    return labels


@bulk
def runs_frame(
    records: Iterable[Mapping[str, Any]],
    *,
    agent_names: Mapping[str, str | None] | None = None,
) -> pd.DataFrame:
    """One row per run, from the API's run records (list summaries or full records).

    Columns are :data:`RUN_COLUMNS` in order, then any field the API added (kept, not dropped).
    ``agent_names`` maps agent ids to names for the ``agent_name`` column. Summaries leave the
    detail-only columns empty.

    >>> runs = runs_frame(client.iter_runs(agent_id))
    >>> runs.groupby("disposition", observed=True)["total_cost"].sum()
    """
    records = as_records(records, "runs_frame")
    if not records:
        return empty_frame(RUN_COLUMNS)
    struct = read_struct(records, _RUN_STRUCT)
    if struct is not None:
        field = struct.field
        # pc.struct_field keeps a null token_usage null (StructArray.field would give 0s).
        usage = {k: pc.struct_field(field("token_usage"), k) for k in ("input", "output")}
    else:
        def field(name: str) -> list[Any]:
            return [r.get(name) for r in records]
        raw = [r.get("token_usage") for r in records]
        usages = [u if isinstance(u, Mapping) else {} for u in raw]
        usage = {k: arrow_column([u.get(k) for u in usages], INT) for k in ("input", "output")}
        usage = {k: v.cast(pa.float64()) for k, v in usage.items()}
    # Counted in Python: reading the traces into Arrow just to count them costs more.
    trace_lengths = pa.array([len(t) if type(t) is list else None
                              for t in (r.get("tool_trace") for r in records)], type=pa.int64())
    arrays: dict[str, pa.Array] = {}
    for name, dtype in RUN_COLUMNS.items():
        if name in _USAGE:
            arrays[name] = arrow_column(usage[_USAGE[name]], dtype)
        elif name == "total_tokens":
            arrays[name] = arrow_column(pc.add(usage["input"], usage["output"]), dtype)
        elif name == "tool_call_count":
            arrays[name] = trace_lengths.cast(pa.int64())
        else:
            arrays[name] = arrow_column(field(name), dtype)
    if agent_names:
        ids = arrays["agent_id"]
        names = pa.array([agent_names.get(i) for i in ids.dictionary.to_pylist()], type=pa.string())
        given = arrays["agent_name"].cast(pa.string())
        named = pc.take(names, ids.indices)
        arrays["agent_name"] = pc.coalesce(given, named).dictionary_encode()
    extra_keys = sorted(set().union(*records) - _KNOWN_RUN_KEYS)
    objects = {key: infer_extra([r.get(key) for r in records]) for key in extra_keys}
    return make_frame(arrays, objects, [*RUN_COLUMNS, *extra_keys])


_CALL_PARENT_STRUCT = pa.struct(
    [("id", pa.string()), ("agent_id", pa.string()), ("created_at", pa.string()),
     ("status", pa.string()), ("disposition", pa.string())]
)


def _known_fields(items: list[Mapping[str, Any]]) -> tuple[list[Any], list[Any], list[Any], bool]:
    """Names, inputs and outputs of trace items, at C speed when every item has all three
    (the last value says whether they did)."""
    try:
        columns = [list(map(itemgetter(key), items)) for key in ("name", "input", "output")]
        return columns[0], columns[1], columns[2], True
    except KeyError:
        columns = [[item.get(key) for item in items] for key in ("name", "input", "output")]
        return columns[0], columns[1], columns[2], False




@bulk
def tool_calls_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per tool call, in trace order, from full run records (``get_run``'s).

    Columns are :data:`TOOL_CALL_COLUMNS`: the run's ``id`` as ``agent_run_id`` (Conduit's own
    name for that key), ``agent_id``, the 0-based ``step``, the tool ``name``, its ``input`` and
    ``output`` as JSON text (:data:`JSON_TEXT`; ``decode_json(calls["input"])`` or
    ``calls.conduit.input_json()`` gives the Python values), any extra keys a trace item carries (an error, a duration),
    and the parent run's ``created_at``, ``status`` and ``disposition``.

    >>> calls = tool_calls_frame(records)
    >>> calls.merge(runs, left_on="agent_run_id", right_on="id")
    """
    records = as_records(records, "tool_calls_frame")
    traces: list[Sequence[Any]] = [t if type(t) is list else () for t in (r.get("tool_trace") for r in records)]
    counts = np.fromiter(map(len, traces), dtype=np.int64, count=len(traces))
    total = int(counts.sum())
    if total == 0:
        return empty_frame(TOOL_CALL_COLUMNS)
    items = list(chain.from_iterable(traces))
    if not all_dicts(items):
        items = [i if isinstance(i, Mapping) else {"output": i} for i in items]
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    struct = read_struct(records, _CALL_PARENT_STRUCT)

    with_calls = pa.array(counts > 0)
    parent_among = pa.array(np.repeat(np.arange(int((counts > 0).sum())), counts[counts > 0]))

    def parent_column(name: str, dtype: Any) -> pa.Array:
        values = struct.field(name) if struct is not None else pa.array(
            [to_text(r.get(name)) for r in records], type=pa.string())
        # Only runs with calls: a run id category with no rows would be noise in value_counts.
        column = arrow_column(values.filter(with_calls), dtype)
        if isinstance(column, pa.DictionaryArray):  # repeat the codes, not the strings
            return pa.DictionaryArray.from_arrays(column.indices.take(parent_among), column.dictionary)
        return column.take(parent_among)

    arrays = {
        "agent_run_id": parent_column("id", CATEGORY),
        "agent_id": parent_column("agent_id", CATEGORY),
    }
    for key in _PARENT_COLUMNS:
        arrays[key] = parent_column(key, TOOL_CALL_COLUMNS[key])
    names, inputs, outputs, complete = _known_fields(items)
    arrays["name"] = arrow_column(names, CATEGORY)
    objects: dict[str, Any] = {
        "step": (np.arange(total, dtype=np.int64) - starts).astype(np.int32),
        "input": json_text(inputs),
        "output": json_text(outputs),
    }
    # Extra keys (an error, a duration) are usually on a few items: find and read those only.
    # When every item has name, input and output, an item with other keys has more than three.
    if complete:
        odd = [j for j, item in enumerate(items) if len(item) != 3]
    else:
        odd = [j for j, item in enumerate(items) if item.keys() != _KNOWN_CALL_KEYS]
    extra_keys = sorted(set().union(*(items[j] for j in odd)) - _KNOWN_CALL_KEYS - set(TOOL_CALL_COLUMNS))
    if extra_keys:
        for key in extra_keys:
            values: list[Any] = [None] * total
            for j in odd:
                values[j] = items[j].get(key)
            objects[key] = infer_extra(values)
    order = ["agent_run_id", "agent_id", "step", "name", "input", "output", *extra_keys,
             *_PARENT_COLUMNS]
    return make_frame(arrays, objects, order)


def agents_frame(agents: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per agent: :data:`AGENT_COLUMNS` (``trigger_count`` counts its triggers)."""
    agents = as_records(agents, "agents_frame")
    if not agents:
        return empty_frame(AGENT_COLUMNS)
    arrays, objects = {}, {}
    for name, dtype in AGENT_COLUMNS.items():
        if name == "trigger_count":
            values = [len(a["triggers"]) if isinstance(a.get("triggers"), list) else None for a in agents]
        else:
            values = [a.get(name) for a in agents]
        if dtype == "boolean":
            objects[name] = pd.array([v if isinstance(v, bool) else None for v in values], dtype="boolean")
        else:
            arrays[name] = arrow_column(values, dtype)
    return make_frame(arrays, objects, list(AGENT_COLUMNS))


def errors_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per run or page that could not be fetched: :data:`ERROR_COLUMNS`."""
    rows = list(rows)
    if not rows:
        return empty_frame(ERROR_COLUMNS)
    arrays = {name: arrow_column([r.get(name) for r in rows], dtype) for name, dtype in ERROR_COLUMNS.items()}
    return make_frame(arrays, {}, list(ERROR_COLUMNS))


def newest_first(runs: pd.DataFrame, calls: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs newest first (ties by id); tool calls in their runs' order, then by step."""
    created = runs["created_at"]
    if created.is_monotonic_decreasing and created.notna().all():
        return runs, calls  # already in order (one compacted segment): nothing to do
    runs = runs.sort_values(["created_at", "id"], ascending=[False, True], kind="stable",
                            na_position="last", ignore_index=True)
    if len(calls):
        position = pd.Series(range(len(runs)), index=runs["id"].astype(object))
        order = calls["agent_run_id"].astype(object).map(position)
        calls = (calls.assign(_order=order.to_numpy())
                 .sort_values(["_order", "step"], kind="stable", ignore_index=True)
                 .drop(columns="_order"))
    return runs, calls

