"""Parquet datasets for going past one machine: DuckDB, Spark, Dask and pandas read them.

>>> frames.to_parquet("conduit-runs/")              # runs/ and tool_calls/, by date and agent
>>> frames = read_parquet("conduit-runs/")          # back, with the same dtypes (runframes.py)
>>> duckdb.sql("SELECT agent_id, sum(total_cost) FROM 'conduit-runs/runs/**/*.parquet' GROUP BY 1")

Layout: ``<directory>/runs/date=YYYY-MM-DD/agent_id=<id>/*.parquet`` and the same under
``tool_calls/`` (a tool call is filed under its run's date). ``input`` and ``output`` are JSON
text columns.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from .frames import newest_first, runs_frame, tool_calls_frame
from .storage import frame_to_table, table_to_frame

__all__ = ["Tables", "read_tables", "to_parquet"]

_PARTITIONING = ds.partitioning(pa.schema([("date", pa.string()), ("agent_id", pa.string())]),
                                flavor="hive")
_DATASETS = ("runs", "tool_calls")


def _with_partition_keys(table: pa.Table) -> pa.Table:
    date = pc.strftime(table["created_at"], format="%Y-%m-%d")
    date = pc.fill_null(date, "unknown")
    agent = pc.fill_null(pc.cast(table["agent_id"], pa.string()), "unknown")
    index = table.column_names.index("agent_id")
    table = table.set_column(index, "agent_id", agent)
    return table.append_column("date", date)


class Tables(Protocol):
    """What :func:`to_parquet` writes: a :class:`RunFrames`, or anything with its two frames."""

    runs: pd.DataFrame
    tool_calls: pd.DataFrame


def to_parquet(frames: Tables, directory: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``frames.runs`` and ``frames.tool_calls`` as hive-partitioned Parquet datasets."""
    root = Path(directory).expanduser()
    targets = {name: root / name for name in _DATASETS}
    existing = [p for p in targets.values() if p.exists() and any(p.iterdir())]
    if existing and not overwrite:
        raise FileExistsError(
            f"{root} already holds a conduit-notebook export ({', '.join(p.name for p in existing)}); "
            "pass overwrite=True to replace it, or choose another directory"
        )
    for path in existing:
        shutil.rmtree(path)
    for name, frame in (("runs", frames.runs), ("tool_calls", frames.tool_calls)):
        table = _with_partition_keys(frame_to_table(frame, name))
        ds.write_dataset(table, targets[name], format="parquet", partitioning=_PARTITIONING,
                         basename_template="part-{i}.parquet", existing_data_behavior="error")
        targets[name].mkdir(parents=True, exist_ok=True)  # an empty table writes no file: still readable
    return root


def read_tables(directory: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs and tool calls of an export written by :func:`to_parquet`, with their dtypes
    (:func:`conduit_notebook.read_parquet` wraps them in a :class:`RunFrames`)."""
    root = Path(directory).expanduser()
    tables = {}
    for name in _DATASETS:
        path = root / name
        if not path.is_dir():
            raise FileNotFoundError(
                f"{path} not found: directory must be one written by RunFrames.to_parquet, "
                f"holding runs/ and tool_calls/"
            )
        dataset = ds.dataset(path, format="parquet", partitioning=_PARTITIONING)
        if not dataset.files:  # nothing was written: an empty table (frames fetched without traces)
            tables[name] = runs_frame([]) if name == "runs" else tool_calls_frame([])
            continue
        table = dataset.to_table()
        # Every file carries the same metadata; a dataset may not pass it on.
        if dataset.files and not table.schema.metadata:
            first = ds.dataset(dataset.files[0], format="parquet")
            table = table.replace_schema_metadata(first.schema.metadata)
        tables[name] = table_to_frame(table, name)
    return newest_first(tables["runs"], tables["tool_calls"])
