"""The run cache's segments as bytes: runs and tool calls written together as compressed Arrow
tables, read back, concatenated, and each run's newest copy picked (:mod:`conduit_notebook.cache`)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["concat_tables", "from_bytes", "heal_total_tokens", "latest", "to_bytes"]

_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")


def to_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _read_pool() -> pa.MemoryPool:
    """The pool for decompressed segments: jemalloc gives memory back sooner than mimalloc (the
    default), which kept ~50 MB more at the peak of reopening 100,000 runs."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # pragma: no cover - a pyarrow built without jemalloc
        return pa.default_memory_pool()


def from_bytes(blob: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(blob), memory_pool=_read_pool()).read_all()


def concat_tables(tables: list[pa.Table]) -> pa.Table:
    """Concatenate segment tables whose columns may differ (fields the API added later)."""
    if len(tables) == 1:
        return tables[0]
    metas = [json.loads(t.schema.metadata[b"conduit_notebook"]) for t in tables]
    merged = dict(metas[0])
    merged["dtypes"] = {k: v for m in metas for k, v in m["dtypes"].items()}
    merged["json"] = sorted({c for m in metas for c in m["json"]})
    table = pa.concat_tables(tables, promote_options="permissive").unify_dictionaries()
    return table.replace_schema_metadata({b"conduit_notebook": json.dumps(merged).encode()})


def heal_total_tokens(runs: pd.DataFrame) -> pd.DataFrame:
    """Caches written by early versions stored ``total_tokens`` 0 for a run without
    ``token_usage``: missing numbers stay missing (never 0), so such a 0 is read as missing."""
    if {"total_tokens", "input_tokens", "output_tokens"} <= set(runs.columns):
        wrong = (runs["total_tokens"] == 0) & runs["input_tokens"].isna() & runs["output_tokens"].isna()
        if wrong.any():
            runs.loc[wrong.fillna(False).to_numpy(), "total_tokens"] = pd.NA
    return runs


def _last_of_each(keys: list[pa.Array | pa.ChunkedArray]) -> np.ndarray:
    """Row numbers of the last row of each distinct key, in row order."""
    n = len(keys[0])
    table = pa.table({f"k{i}": k for i, k in enumerate(keys)} | {"row": pa.array(np.arange(n))})
    last = table.group_by([f"k{i}" for i in range(len(keys))], use_threads=False).aggregate([("row", "max")])
    return np.sort(last.column("row_max").to_numpy())


def latest(runs: pa.Table, calls: pa.Table, run_segments: np.ndarray, call_segments: np.ndarray,
           wanted: pa.Array | None, *, unique: bool) -> tuple[pa.Table, pa.Table]:
    """Each run once (its newest copy, and that copy's tool calls), of ``wanted`` ids or all;
    ``unique`` says that no run has two copies (the index knows: no hashing of ids needed).

    A cache written before runs were deduplicated may hold a run twice, even in one segment:
    it heals here, on read, and for good at the next compaction."""
    if unique and wanted is None:
        return runs, calls
    keep = np.ones(runs.num_rows, dtype=bool)
    if not unique:
        keep[:] = False
        keep[_last_of_each([runs["id"]])] = True
    if wanted is not None:
        keep &= pc.is_in(runs["id"], value_set=wanted).to_numpy(zero_copy_only=False)
    runs = runs.filter(pa.array(keep))
    if calls.num_rows:
        # A call belongs to the kept copy of its run: same run id, same segment.
        def key(ids: Any, segments: np.ndarray) -> pa.Array:
            return pc.binary_join_element_wise(pc.cast(ids, pa.string()),
                                               pa.array(segments.astype(str)), "|")
        run_keys = key(runs["id"], run_segments[keep])
        call_keys = key(calls["agent_run_id"], call_segments)
        mask = pc.is_in(call_keys, value_set=run_keys)
        calls = calls.filter(mask)
        if not unique and calls.num_rows:  # one copy's calls, if a segment held two
            calls = calls.take(_last_of_each([call_keys.filter(mask), calls["step"]]))
    return runs, calls

