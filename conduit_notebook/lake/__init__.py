"""A Parquet lake of runs that a nightly job appends to, for one or many workspaces, read back
by this package, DuckDB, Polars, Spark or plain pandas.

>>> frames = fetch_runs(since="1d")
>>> frames.to_lake("lake/")                       # or: conduit-notebook sync --lake lake/
>>> frames = read_lake("lake/", since="30d")      # a RunFrames, only the slice read
>>> Lake("lake/").summarize(by="agent_name")     # the same numbers, computed by DuckDB
>>> duckdb.sql("SELECT workspace_id, count(*) FROM 'lake/runs/**/*.parquet' GROUP BY 1")

Writes upsert (each run once, its latest record) and are atomic; see :mod:`.write` for the
rule, :mod:`.layout` for the folders and files, docs/lake.md for the whole story.
"""

from __future__ import annotations

from .engine import Lake
from .layout import LAKE_TABLES, SCHEMA_VERSION
from .read import read_escalations, read_lake
from .write import LakeWrite, write_lake

__all__ = ["LAKE_TABLES", "SCHEMA_VERSION", "Lake", "LakeWrite", "read_escalations", "read_lake", "write_lake"]
