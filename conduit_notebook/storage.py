"""Frames <-> Arrow tables, for the local cache and for Parquet exports.

A frame becomes an Arrow table column by column: strings and categoricals stay Arrow strings
and dictionaries, timestamps stay UTC, nullable integers stay nullable. Columns of JSON text
(a tool call's ``input`` and ``output``, unknown fields holding objects: :data:`JSON_TEXT`) are
stored as they are, which DuckDB, Spark and Dask read as such, and come back as they went: no
decoding on the way in or out. The schema's metadata names those columns and every column's
pandas dtype, so :func:`table_to_frame` gives back the same dtypes.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pyarrow as pa

from .columns import JSON_TEXT, STRING, arrow_categorical, json_text, pandas_type
from .frames import RUN_COLUMNS, TOOL_CALL_COLUMNS

__all__ = ["frame_to_table", "table_to_frame"]

_META_KEY = b"conduit_notebook"
_KINDS = {"runs": RUN_COLUMNS, "tool_calls": TOOL_CALL_COLUMNS}


def _dtype_name(dtype: Any) -> str:
    if dtype == JSON_TEXT:
        return "json"
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "timestamp"
    return str(dtype)


def frame_to_table(frame: pd.DataFrame, kind: str) -> pa.Table:
    """A runs or tool-calls frame -> an Arrow table (JSON columns as text), with metadata."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    arrays, dtypes, json_columns = {}, {}, []
    for name in frame.columns:
        column = frame[name]
        dtypes[name] = _dtype_name(column.dtype)
        if column.dtype == JSON_TEXT:
            json_columns.append(name)
            arrays[name] = pa.array(column.array)
        elif column.dtype == object:  # values a user put in: as JSON text too
            json_columns.append(name)
            dtypes[name] = "json"
            arrays[name] = pa.array(json_text(column.tolist()))
        elif isinstance(column.dtype, pd.CategoricalDtype):
            arrays[name] = pa.array(column.array, type=pa.dictionary(pa.int32(), pa.string()))
        elif isinstance(column.dtype, pd.DatetimeTZDtype):
            arrays[name] = pa.array(column.dt.tz_convert("UTC").array, type=pa.timestamp("ns", tz="UTC"))
        else:
            # from_pandas: a missing float (NaN) is written as null, which is what SQL engines
            # understand (DuckDB would sum NaN into NaN).
            arrays[name] = pa.array(column.array, from_pandas=True)
    meta = {"kind": kind, "dtypes": dtypes, "json": json_columns, "version": 1}
    # One chunk per column: pandas columns read from many segments arrive in many chunks, and
    # a table of hundreds of small chunks is slow to write, read and unify.
    table = pa.table(arrays).combine_chunks()
    return table.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})


def table_to_frame(table: pa.Table, kind: str | None = None) -> pd.DataFrame:
    """An Arrow table written by :func:`frame_to_table` -> the frame, with the same dtypes."""
    raw = (table.schema.metadata or {}).get(_META_KEY)
    meta = json.loads(raw) if raw else {"kind": kind, "dtypes": {}, "json": []}
    kind = kind or meta.get("kind")
    schema = _KINDS.get(kind or "", {})
    json_columns = [c for c in meta.get("json", []) if c in table.column_names]
    dtypes = meta.get("dtypes", {})

    def wanted(name: str, dtype: Any) -> str:
        return dtypes.get(name) or _dtype_name(schema.get(name, dtype))

    categories = [c for c in table.column_names if c not in json_columns
                  and wanted(c, None) == "category"]
    plain = table.drop_columns(json_columns + categories)
    # Partition columns (Parquet datasets) come back as plain strings or dictionaries.
    frame = plain.to_pandas(types_mapper=pandas_type, split_blocks=True, self_destruct=False)
    if not plain.num_columns:
        frame = pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    for name in categories:
        frame[name] = arrow_categorical(table.column(name), name)
    for name in frame.columns:
        want = wanted(name, frame[name].dtype)
        column = frame[name]
        if want == "category":
            continue
        elif want == "string" and not isinstance(column.dtype, pd.StringDtype):
            frame[name] = column.astype(STRING)
        elif want == "timestamp":
            frame[name] = pd.to_datetime(column, utc=True).astype(pd.DatetimeTZDtype("ns", "UTC"))
        elif want in ("Int64", "int64", "float64", "boolean", "bool") and str(column.dtype) != want:
            frame[name] = column.astype(want)
    for name in json_columns:  # text stays text (files written before 0.2 held large_string)
        column = table.column(name)
        if column.type != pa.string():
            column = column.cast(pa.string())
        frame[name] = pd.array(column, dtype=JSON_TEXT)
    # The written order; columns that were not written (partition keys such as "date") go.
    written = list(dtypes) or table.column_names
    return frame[[c for c in written if c in frame.columns]]
