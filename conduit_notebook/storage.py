"""Frames <-> Arrow tables, for the local cache and for Parquet exports.

A frame becomes an Arrow table column by column: strings and categoricals stay Arrow strings
and dictionaries, timestamps stay UTC, nullable integers stay nullable. Columns of arbitrary
JSON (a tool call's ``input`` and ``output``, unknown fields holding objects) are stored as JSON
text, which DuckDB, Spark and Dask read as such, and decoded in one pass when read back: one
``json.loads`` of the whole column, not one a value. The schema's metadata names those columns
and every column's pandas dtype, so :func:`table_to_frame` gives back the same dtypes.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .frames import (
    RUN_COLUMNS,
    STRING,
    TOOL_CALL_COLUMNS,
    _category_order,
    _pandas_type,
    _UNSORTED,
    gc_paused,
)

__all__ = ["frame_to_table", "table_to_frame"]

_META_KEY = b"conduit_notebook"
_KINDS = {"runs": RUN_COLUMNS, "tool_calls": TOOL_CALL_COLUMNS}
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def _dtype_name(dtype: Any) -> str:
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
        if column.dtype == object:
            json_columns.append(name)
            arrays[name] = pa.array(
                [None if v is None else _encode(v) for v in column.tolist()], type=pa.large_string()
            )
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


def _decode_json(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """A column of JSON texts -> Python values, with a single json.loads over the whole column."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], pa.large_string())
    if len(column) == 0:
        return []
    texts = pc.fill_null(column.cast(pa.large_string()), "null")
    one = pa.LargeListArray.from_arrays(pa.array([0, len(texts)], type=pa.int64()), texts)
    document = pc.binary_join(one, pa.scalar(",", pa.large_string()))[0].as_py()
    with gc_paused():
        return json.loads(f"[{document}]")


def table_to_frame(table: pa.Table, kind: str | None = None) -> pd.DataFrame:
    """An Arrow table written by :func:`frame_to_table` -> the frame, with the same dtypes."""
    raw = (table.schema.metadata or {}).get(_META_KEY)
    meta = json.loads(raw) if raw else {"kind": kind, "dtypes": {}, "json": []}
    kind = kind or meta.get("kind")
    schema = _KINDS.get(kind, {})
    json_columns = [c for c in meta.get("json", []) if c in table.column_names]
    plain = table.drop_columns(json_columns)
    # Partition columns (Parquet datasets) come back as plain strings or dictionaries.
    frame = plain.to_pandas(types_mapper=_pandas_type, split_blocks=True, self_destruct=False)
    dtypes = meta.get("dtypes", {})
    for name in frame.columns:
        want = dtypes.get(name) or _dtype_name(schema.get(name, frame[name].dtype))
        column = frame[name]
        if want == "category":
            if not isinstance(column.dtype, pd.CategoricalDtype):
                column = column.astype("category")
            if name not in _UNSORTED:
                column = column.cat.set_categories(_category_order(name, column.cat.categories))
            frame[name] = column
        elif want == "string" and not isinstance(column.dtype, pd.StringDtype):
            frame[name] = column.astype(STRING)
        elif want == "timestamp":
            frame[name] = pd.to_datetime(column, utc=True).astype(pd.DatetimeTZDtype("ns", "UTC"))
        elif want in ("Int64", "int64", "float64", "boolean") and str(column.dtype) != want:
            frame[name] = column.astype(want)
    for name in json_columns:
        values = _decode_json(table.column(name))
        array = np.empty(len(values), dtype=object)
        array[:] = values
        frame[name] = array
    # The written order; columns that were not written (partition keys such as "date") go.
    written = list(dtypes) or table.column_names
    return frame[[c for c in written if c in frame.columns]]
