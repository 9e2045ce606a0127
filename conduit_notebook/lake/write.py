"""Appending to a lake: :func:`write_lake` upserts runs, their tool calls and messages.

Each write merges what it brings into the months it touches: for every (workspace, month) it
reads that month's file, keeps each run once (the latest ``completed_at`` wins; at equal times
a record with its trace beats one without, then the later write wins), keeps the tool calls of
the record that won, and writes the month again as one file; then it removes the files it
merged. So a nightly sync leaves one file per workspace and month (compaction is part of the
write), and the same run written twice is one row.

Atomic: each file is written to a hidden temporary name and renamed into place (see
:func:`.layout.write_atomically`), tool calls and messages before runs, old files removed last.
A crash at any point leaves every file whole; at worst a month has two files holding the same
runs, which readers resolve by the same rule and the next write merges into one.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..frames import json_text
from ..storage import frame_to_table
from .layout import (
    LAKE_TABLES,
    MONTH_NONE,
    SCHEMA_FILE,
    SCHEMA_VERSION,
    LakeFile,
    lake_files,
    new_seq,
    read_schema,
    temp_files,
    workspace_folder,
    write_atomically,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, one writer at a time by convention
    fcntl = None  # type: ignore[assignment]

__all__ = ["LakeFrames", "LakeWrite", "write_lake"]

_META_KEY = b"conduit_notebook"
_SEQ = "_lake_seq"  # which write a row came from, while merging (never written)
LOCK_FILE = ".lock"


class LakeFrames(Protocol):
    """What :func:`write_lake` takes: a :class:`RunFrames`, or anything with its frames."""

    runs: pd.DataFrame
    tool_calls: pd.DataFrame


@dataclass
class LakeWrite:
    """What one :func:`write_lake` did: rows it brought per table, and the files it wrote and
    removed (``months``: the (workspace, month) files rewritten)."""

    path: Path
    rows: dict[str, int] = field(default_factory=dict)
    months: list[tuple[str, str]] = field(default_factory=list)
    files_written: int = 0
    files_removed: int = 0


def _months(created: pa.ChunkedArray | pa.Array) -> pa.Array:
    """"YYYY-MM" of each timestamp (UTC), null where there is none."""
    return pc.strftime(created, format="%Y-%m")


def _pandas_metadata(frame: pd.DataFrame) -> bytes:
    """The ``pandas`` schema metadata of ``frame`` (with the lake's two key columns), so that a
    plain ``pandas.read_parquet`` of a file gives nullable ints, strings and categoricals."""
    empty = frame.iloc[:0].copy()
    empty.attrs = {}  # (a fetch's errors ride in attrs: not metadata)
    for name in empty.columns:
        if empty[name].dtype == object:
            empty[name] = pd.array([], dtype="string[pyarrow]")
    empty["workspace_id"] = pd.Categorical([])
    empty["month"] = pd.array([], dtype="string[pyarrow]")
    return pa.Schema.from_pandas(empty, preserve_index=False).metadata[b"pandas"]


def _plain_table(messages: pd.DataFrame, kind: str) -> pa.Table:
    """Messages or escalations as a table (objects as JSON text), with their dtypes noted."""
    frame = messages.copy()
    frame.attrs = {}
    for name in frame.columns:  # fields the API added that hold objects: as JSON text
        if frame[name].dtype == object:
            frame[name] = json_text(frame[name].tolist())
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {"kind": kind, "dtypes": {c: str(messages[c].dtype) for c in messages.columns}, "json": []}
    return table.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})


def _keyed(table: pa.Table, workspace: pa.Array, month: pa.Array, frame: pd.DataFrame) -> pa.Table:
    """``table`` with ``workspace_id`` and ``month`` set, and pandas metadata beside ours."""
    dictionary = pa.dictionary(pa.int32(), pa.string())
    workspace = workspace.cast(pa.string()).dictionary_encode().cast(dictionary)
    if "workspace_id" in table.column_names:
        table = table.set_column(table.column_names.index("workspace_id"), "workspace_id", workspace)
    else:
        table = table.append_column("workspace_id", workspace)
    table = table.append_column("month", month.cast(pa.string()))
    meta = dict(table.schema.metadata or {})
    meta[b"pandas"] = _pandas_metadata(frame)
    return table.replace_schema_metadata(meta)


def _workspaces(runs: pd.DataFrame, workspace: str | None) -> pa.Array:
    ids = runs["workspace_id"].astype(object) if "workspace_id" in runs else pd.Series([None] * len(runs))
    values = ids.where(ids.notna(), workspace).tolist()
    missing = sum(v is None for v in values)
    if missing:
        raise ValueError(f"workspace must name the workspace of the {missing} run(s) without a workspace_id "
                         "(write_lake(frames, path, workspace='...'), or sync --lake with CONDUIT_WORKSPACE_ID)")
    bad = sorted({str(v) for v in values if "/" in str(v) or str(v) in ("", ".", "..")})
    if bad:
        raise ValueError(f"workspace_id must be usable as a folder name; got {bad[:3]}")
    return pa.array(values, pa.string())


def _incoming(frames: LakeFrames, workspace: str | None, escalations: pd.DataFrame | None) -> dict[str, pa.Table]:
    """The frames as the lake's tables, each row with its workspace and month."""
    runs = frames.runs
    if workspace is None and "workspace_id" in runs and runs["workspace_id"].nunique() == 1:
        workspace = str(runs["workspace_id"].dropna().iloc[0])  # what a fetch's other tables belong to
    run_ws = _workspaces(runs, workspace)
    run_table = frame_to_table(runs, "runs")
    tables = {"runs": _keyed(run_table, run_ws, _months(run_table["created_at"]), runs)}
    # A tool call or a message goes where its run goes; a call of an unknown run, by its own time.
    ids = pa.array(runs["id"].astype(str).array)
    calls = frames.tool_calls
    call_table = frame_to_table(calls, "tool_calls")
    position = pc.index_in(call_table["agent_run_id"].cast(pa.string()), value_set=ids)
    ws = pc.take(run_ws, position)
    ws = pc.if_else(pc.is_null(position), pa.scalar(workspace, pa.string()), ws)
    tables["tool_calls"] = _keyed(call_table, ws, _months(call_table["created_at"]), calls)
    messages = getattr(frames, "messages", None)
    if messages is not None and len(messages):
        by_conversation = dict(zip(runs["conversation_id"].astype(object), run_ws.to_pylist(), strict=False))
        ws = pa.array([by_conversation.get(c, workspace) for c in messages["conversation_id"].astype(object)],
                      pa.string())
        table = _plain_table(messages, "messages")
        tables["messages"] = _keyed(table, ws, _months(table["created_at"]), messages)
    if escalations is not None and len(escalations):
        by_run = dict(zip(runs["id"].astype(object), run_ws.to_pylist(), strict=False))
        ws = pa.array([by_run.get(r, workspace) for r in escalations["agent_run_id"].astype(object)], pa.string())
        table = _plain_table(escalations, "escalations")
        tables["escalations"] = _keyed(table, ws, _months(table["created_at"]), escalations)
    for name, table in tables.items():
        if pc.any(pc.is_null(table["workspace_id"])).as_py():
            raise ValueError(f"workspace must name the workspace of {name} whose run is not in frames.runs")
    return tables


def _with_seq(table: pa.Table, seq: str) -> pa.Table:
    return table.append_column(_SEQ, pa.array(np.full(table.num_rows, seq, dtype=object), pa.string()))


def _merged_metadata(tables: list[pa.Table]) -> dict[bytes, bytes]:
    """Our metadata over every table merged (columns in first-seen order), and the newest
    pandas metadata."""
    dtypes: dict[str, str] = {}
    json_columns: list[str] = []
    kind = None
    for table in tables:
        meta = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
        kind = meta.get("kind", kind)
        for name, dtype in meta.get("dtypes", {}).items():
            dtypes.setdefault(name, dtype)
        json_columns += [c for c in meta.get("json", []) if c not in json_columns]
    ours = {"kind": kind, "dtypes": dtypes, "json": json_columns, "version": 1,
            "lake_version": SCHEMA_VERSION}
    out = {_META_KEY: json.dumps(ours).encode()}
    pandas_meta = (tables[-1].schema.metadata or {}).get(b"pandas")
    if pandas_meta:
        out[b"pandas"] = pandas_meta
    return out


def _plain(kind: pa.DataType) -> pa.DataType:
    kind = kind.value_type if pa.types.is_dictionary(kind) else kind
    return pa.string() if pa.types.is_large_string(kind) else kind


def concat(tables: list[pa.Table]) -> pa.Table:
    """``tables`` as one; a column typed differently in two of them (a categorical written
    once as text) is decoded to its plain type first, then types are promoted as Arrow does."""
    kinds: dict[str, set[pa.DataType]] = {}
    for table in tables:
        for f in table.schema:
            kinds.setdefault(f.name, set()).add(f.type)
    clash = {name for name, types in kinds.items() if len(types) > 1}
    if clash:
        fixed = []
        for table in tables:
            for name in clash & set(table.column_names):
                i = table.column_names.index(name)
                table = table.set_column(i, name, table[name].cast(_plain(table.schema.field(name).type)))
            fixed.append(table)
        tables = fixed
    return pa.concat_tables(tables, promote_options="permissive")


def winners(keys: pd.DataFrame, key: str, order: list[str]) -> np.ndarray:
    """Positions of the row that wins for each ``key``: the last by ``order`` (missing first)."""
    ranked = keys.assign(_pos=np.arange(len(keys))).sort_values(order, kind="stable", na_position="first")
    return np.sort(ranked.drop_duplicates(key, keep="last")["_pos"].to_numpy())


def run_order(table: pa.Table) -> pd.DataFrame:
    """The columns that decide which record of a run wins: completed_at, has a trace, write seq."""
    has_trace = (table["trace_weight"] if "trace_weight" in table.column_names
                 else table["tool_call_count"] if "tool_call_count" in table.column_names else None)
    return pd.DataFrame({
        "id": table["id"].cast(pa.string()).to_pandas(),
        "completed_at": table["completed_at"].to_pandas() if "completed_at" in table.column_names else pd.NaT,
        "has_trace": pc.is_valid(has_trace).to_pandas() if has_trace is not None else False,
        _SEQ: table[_SEQ].to_pandas(),
    })


def merge_month(parts: dict[str, list[pa.Table]]) -> dict[str, pa.Table]:
    """One month's tables from its files and the write (each with ``_lake_seq``): each run once,
    the calls of the record that won, each message once."""
    out: dict[str, pa.Table] = {}
    kept = None
    if parts.get("runs"):
        runs = concat(parts["runs"])
        runs = runs.take(winners(run_order(runs), "id", ["completed_at", "has_trace", _SEQ]))
        kept = runs.select(["id", _SEQ])
        out["runs"] = runs.drop_columns([_SEQ]).replace_schema_metadata(_merged_metadata(parts["runs"]))
    if parts.get("tool_calls"):
        calls = concat(parts["tool_calls"])
        if kept is not None:  # the calls of the winning record of each run, none of the others
            pair = pc.binary_join_element_wise(calls["agent_run_id"].cast(pa.string()), calls[_SEQ], "\x1f")
            wanted = pc.binary_join_element_wise(kept["id"].cast(pa.string()), kept[_SEQ], "\x1f")
            calls = calls.filter(pc.is_in(pair, value_set=wanted))
        out["tool_calls"] = calls.drop_columns([_SEQ]).replace_schema_metadata(
            _merged_metadata(parts["tool_calls"]))
    for name in ("messages", "escalations"):  # each once, the latest write's record
        if parts.get(name):
            table = concat(parts[name])
            order = pd.DataFrame({"id": table["id"].cast(pa.string()).to_pandas(), _SEQ: table[_SEQ].to_pandas()})
            table = table.take(winners(order, "id", [_SEQ]))
            out[name] = table.drop_columns([_SEQ]).replace_schema_metadata(_merged_metadata(parts[name]))
    return out


def _split(table: pa.Table) -> dict[tuple[str, str], pa.Table]:
    """``table``'s rows by (workspace, month name)."""
    keys = pd.DataFrame({"ws": table["workspace_id"].cast(pa.string()).to_pandas(),
                         "month": table["month"].to_pandas().fillna(MONTH_NONE)})
    out = {}
    for key, rows in keys.groupby(["ws", "month"], sort=True).indices.items():
        ws, month = cast(tuple[Any, Any], key)
        out[(str(ws), str(month))] = table.take(pa.array(rows))
    return out


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One writer at a time: a second sync of the same lake waits for the first."""
    root.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(root / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_schema(root: Path, tables: dict[str, pa.Table]) -> None:
    schema = read_schema(root) or {"version": SCHEMA_VERSION, "tables": {}}
    schema["version"] = SCHEMA_VERSION
    schema["layout"] = "<table>/workspace_id=<id>/<YYYY-MM|none>.<seq>.parquet"
    for name, table in tables.items():
        columns = schema["tables"].setdefault(name, {})
        for f in table.schema:
            columns.setdefault(f.name, str(f.type))
    text = json.dumps(schema, indent=1, sort_keys=True)
    write_atomically(root / SCHEMA_FILE, lambda p: p.write_text(text, encoding="utf-8"))


def write_lake(frames: LakeFrames, path: str | os.PathLike[str], *, workspace: str | None = None,
               escalations: pd.DataFrame | None = None) -> LakeWrite:
    """Upsert ``frames`` (runs, tool calls and, if any, messages) and ``escalations``
    (:func:`conduit_notebook.fetch_escalations`: each once, its latest status) into the lake at
    ``path``.

    Writing the same runs again, or a later fetch of them, leaves each run once with its latest
    record; see the module docstring for the rule and :mod:`conduit_notebook.lake` for the
    layout. ``workspace`` names the workspace of runs without a ``workspace_id``.

    >>> write_lake(fetch_runs(since="1d"), "lake/")     # nightly
    >>> frames = read_lake("lake/", since="30d")
    """
    if not hasattr(frames, "runs") or not hasattr(frames, "tool_calls"):
        raise TypeError(f"frames must be a RunFrames (or have .runs and .tool_calls); got {type(frames).__name__}")
    root = Path(path).expanduser()
    with _locked(root):
        read_schema(root)  # refuses a lake of a later version before touching it
        for leftover in temp_files(root):  # a crashed write's half files
            leftover.unlink(missing_ok=True)
        seq = new_seq()
        incoming = _incoming(frames, workspace, escalations)
        result = LakeWrite(root, rows={name: t.num_rows for name, t in incoming.items()})
        buckets: dict[tuple[str, str], dict[str, pa.Table]] = {}
        for name, table in incoming.items():
            for key, part in _split(table).items():
                buckets.setdefault(key, {})[name] = part
        _write_schema(root, incoming)
        for (ws, month), new in sorted(buckets.items()):
            _write_month(root, ws, month, new, seq, result)
    return result


def _write_month(root: Path, ws: str, month: str, new: dict[str, pa.Table], seq: str, result: LakeWrite) -> None:
    """Merge one (workspace, month) with its files; write it; remove the files merged."""
    old = [f for name in LAKE_TABLES for f in lake_files(root, name, [ws]) if f.month == month]
    parts: dict[str, list[pa.Table]] = {}
    for f in old:
        parts.setdefault(f.table, []).append(_with_seq(pq.read_table(f.path), f.seq))
    for name, table in new.items():
        parts.setdefault(name, []).append(_with_seq(table, seq))
    merged = merge_month(parts)
    for name in ("tool_calls", "messages", "escalations", "runs"):  # runs last: they decide which calls count
        if name in merged:
            target = workspace_folder(root, name, ws) / f"{month}.{seq}.parquet"
            write_atomically(target, _parquet_writer(merged[name].combine_chunks()))
            result.files_written += 1
    _remove(old, result)
    result.months.append((ws, month))


def _parquet_writer(table: pa.Table) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        pq.write_table(table, path, compression="zstd", coerce_timestamps="us", allow_truncated_timestamps=True)
    return write


def _remove(files: list[LakeFile], result: LakeWrite) -> None:
    for f in files:
        f.path.unlink(missing_ok=True)
        result.files_removed += 1
