"""Where a lake keeps what: tables, folders, file names, the schema file. Written by
:mod:`.write`, read by :mod:`.read` and the SQL engines.

Layout (hive-partitioned by workspace, one file per month and workspace)::

    <lake>/_schema.json                                  version, tables, columns
    <lake>/runs/workspace_id=<ws>/2026-11.<seq>.parquet  runs created in November 2026
    <lake>/runs/workspace_id=<ws>/none.<seq>.parquet     runs without created_at
    <lake>/tool_calls/workspace_id=<ws>/<month>.<seq>.parquet
    <lake>/messages/workspace_id=<ws>/<month>.<seq>.parquet
    <lake>/escalations/workspace_id=<ws>/<month>.<seq>.parquet

Every file also holds ``workspace_id`` and ``month`` as columns (``month`` "YYYY-MM", a null
string for runs without a timestamp), so a file read alone says where it belongs. The month is
in the file name and the files' statistics, not in a ``month=`` folder: pyarrow (and so plain
``pandas.read_parquet``) reads a hive null partition as a dictionary holding a null, which it
cannot unify with the other months (``ArrowInvalid: Cannot yet unify dictionaries with nulls``),
and a string sentinel such as ``month=unknown`` would turn the column into text in DuckDB and
Polars. ``<seq>`` orders writes: the time of the write in nanoseconds, then a random tag.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LAKE_TABLES",
    "MONTH_NONE",
    "SCHEMA_FILE",
    "SCHEMA_VERSION",
    "LakeFile",
    "lake_files",
    "new_seq",
    "read_schema",
    "temp_files",
    "write_atomically",
    "workspace_folder",
]

#: The version of the lake's layout and columns. A reader refuses a lake of a later version.
SCHEMA_VERSION = 1
SCHEMA_FILE = "_schema.json"
#: The tables of a lake, each a folder of the lake.
LAKE_TABLES = ("runs", "tool_calls", "messages", "escalations")
#: The file-name month of rows without a timestamp (their ``month`` column is null).
MONTH_NONE = "none"
#: Temporary files start with "." and do not end in .parquet: no reader (pyarrow, DuckDB's and
#: Polars' globs) ever sees a half-written file.
_TEMP_PREFIX = ".partial-"
_FILE = re.compile(r"^(?P<month>\d{4}-\d{2}|none)\.(?P<seq>\d{20}-[0-9a-f]{8})\.parquet$")


@dataclass(frozen=True)
class LakeFile:
    """One data file of a lake: its table, workspace, month ("YYYY-MM" or "none") and write seq."""

    path: Path
    table: str
    workspace: str
    month: str
    seq: str


def new_seq() -> str:
    """A write's sequence tag: later writes sort after earlier ones."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


def workspace_folder(root: Path, table: str, workspace: str) -> Path:
    return root / table / f"workspace_id={workspace}"


def lake_files(root: Path, table: str, workspaces: list[str] | None = None) -> list[LakeFile]:
    """The data files of ``table`` (of these workspaces, or all), oldest write first."""
    base = root / table
    if not base.is_dir():
        return []
    found = []
    for folder in sorted(base.iterdir()):
        name = folder.name
        if not folder.is_dir() or not name.startswith("workspace_id="):
            continue
        workspace = name.partition("=")[2]
        if workspaces is not None and workspace not in workspaces:
            continue
        for path in folder.iterdir():
            match = _FILE.match(path.name)
            if match:
                found.append(LakeFile(path, table, workspace, match["month"], match["seq"]))
    return sorted(found, key=lambda f: (f.seq, f.workspace, f.month))


def temp_files(root: Path) -> list[Path]:
    """Files a crashed write left behind (never read; the next write removes them)."""
    return [p for table in LAKE_TABLES for p in (root / table).glob(f"*/{_TEMP_PREFIX}*")]


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(temp_path)``, then rename the temporary file to ``path``: a reader sees the
    whole file or none of it, whatever happens mid-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f"{_TEMP_PREFIX}{uuid.uuid4().hex}-{path.name}.tmp")
    try:
        write(temp)
        with open(temp, "rb") as handle:  # on disk before the rename makes it visible
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()


def read_schema(root: Path) -> dict | None:
    """The lake's ``_schema.json`` (None for a new lake); refuses a lake of a later version."""
    path = root / SCHEMA_FILE
    if not path.exists():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    version = schema.get("version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ValueError(f"{root} is a lake of schema version {version!r}; this conduit-notebook reads "
                         f"versions up to {SCHEMA_VERSION}: upgrade conduit-notebook")
    return schema

