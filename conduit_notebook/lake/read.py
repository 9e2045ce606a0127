"""Reading a slice of a lake back: :func:`read_lake` gives a :class:`RunFrames`.

Only what the slice needs is read: the workspaces' folders, the months' files (by file name)
and, inside them, the row groups whose ``created_at`` statistics meet the window (pyarrow's
predicate push-down). Each run comes back once, by the rule :mod:`.write` merges with (so a
lake a crash left with two files for a month reads the same as a whole one).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from ..frames import agents_frame, errors_frame, newest_first, runs_frame, tool_calls_frame
from ..messages import messages_frame, with_message_dtypes
from ..runframes import RunFrames
from ..storage import table_to_frame
from ..times import parse_time
from .layout import MONTH_NONE, LakeFile, lake_files, read_schema
from .write import merge_month

__all__ = ["check_workspaces", "lake_months", "plain_frame", "read_escalations", "read_lake"]

_SEQ = "_lake_seq"


def check_workspaces(workspaces: Any) -> list[str] | None:
    """``workspaces`` as a list of ids (None: all), or a clear error."""
    if workspaces is None:
        return None
    values = [workspaces] if isinstance(workspaces, str) else list(workspaces)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"workspaces must be a workspace id or a list of them (None: every workspace); "
                         f"got {workspaces!r}")
    return values


def lake_months(files: list[LakeFile], since: pd.Timestamp | None, until: pd.Timestamp | None) -> list[LakeFile]:
    """The files whose month meets [since, until]; files of runs without a time only when the
    window is open at both ends."""
    if since is None and until is None:
        return files
    low = f"{since:%Y-%m}" if since is not None else "0000-00"
    high = f"{until:%Y-%m}" if until is not None else "9999-99"
    return [f for f in files if f.month != MONTH_NONE and low <= f.month <= high]


def _filter(since: pd.Timestamp | None, until: pd.Timestamp | None) -> ds.Expression | None:
    expression = None
    for bound, test in ((since, lambda f, v: f >= v), (until, lambda f, v: f <= v)):
        if bound is not None:
            term = test(ds.field("created_at"), pa.scalar(bound.value, pa.int64()).cast(pa.timestamp("ns", tz="UTC")))
            expression = term if expression is None else expression & term
    return expression


def _read(files: list[LakeFile], expression: ds.Expression | None) -> list[pa.Table]:
    tables = []
    for f in files:
        dataset = ds.dataset(f.path, format="parquet")
        table = dataset.to_table(filter=expression)  # row groups outside the window are skipped
        table = table.replace_schema_metadata(dataset.schema.metadata)
        tables.append(table.append_column(_SEQ, pa.array([f.seq] * table.num_rows, pa.string())))
    return tables


def plain_frame(table: pa.Table) -> pd.DataFrame:
    """Messages or escalations read back: the columns written (not the lake's keys), each with
    the dtype it had (fields the API added as they came)."""
    written = json.loads((table.schema.metadata or {}).get(b"conduit_notebook", b"{}")).get("dtypes", {})
    keep = [c for c in written if c in table.column_names]
    frame = table.select(keep).to_pandas()
    for name in keep:
        try:
            frame[name] = frame[name].astype(object if written[name] == "object" else written[name])
        except (TypeError, ValueError):  # a dtype this pandas does not know by name: as read
            pass
    return frame


def read_escalations(path: str | os.PathLike[str], *, workspaces: str | list[str] | None = None,
                     since: Any = None, until: Any = None) -> pd.DataFrame:
    """The escalations stored by ``write_lake(..., escalations=)`` or ``sync`` (created within
    ``since``/``until``, of ``workspaces``), each once with its latest status, with the dtypes of
    :func:`conduit_notebook.fetch_escalations`: what :func:`escalation_quality` takes."""
    from ..escalations import escalations_frame

    root = Path(path).expanduser()
    read_schema(root)
    start, end = parse_time(since, "since"), parse_time(until, "until", end_of_day=True)
    files = lake_months(lake_files(root, "escalations", check_workspaces(workspaces)), start, end)
    merged = merge_month({"escalations": _read(files, _filter(start, end))} if files else {})
    return plain_frame(merged["escalations"]) if "escalations" in merged else escalations_frame([])


def read_lake(path: str | os.PathLike[str], *, workspaces: str | list[str] | None = None,
              since: Any = None, until: Any = None) -> RunFrames:
    """The runs (created within ``since``/``until``, of ``workspaces``; None: all) of the lake
    at ``path``, with their tool calls and messages, as a :class:`RunFrames` with the package's
    dtypes. ``since``/``until`` as in :func:`fetch_runs` ("7d", "2026-11-01", a Timestamp); a
    window leaves out runs without ``created_at``.

    >>> frames = read_lake("lake/", workspaces=["ws_paris"], since="2026-11-01")
    >>> summarize(frames.runs, by="agent_name")
    """
    root = Path(path).expanduser()
    if not (root / "runs").is_dir():
        raise FileNotFoundError(f"path must be a lake written by write_lake or `sync --lake` (holding runs/); "
                                f"not found: {root / 'runs'}")
    read_schema(root)
    wanted = check_workspaces(workspaces)
    start = parse_time(since, "since")
    end = parse_time(until, "until", end_of_day=True)
    if start is not None and end is not None and start > end:
        raise ValueError(f"since must be before until; got since={since!r}, until={until!r}")
    expression = _filter(start, end)
    parts = {name: _read(lake_months(lake_files(root, name, wanted), start, end), expression)
             for name in ("runs", "tool_calls", "messages")}
    merged = merge_month({k: v for k, v in parts.items() if v})
    runs = table_to_frame(merged["runs"], "runs") if "runs" in merged else runs_frame([])
    calls = table_to_frame(merged["tool_calls"], "tool_calls") if "tool_calls" in merged else tool_calls_frame([])
    calls = calls[calls["agent_run_id"].astype(object).isin(set(runs["id"].astype(object)))]
    runs, calls = newest_first(runs, calls.reset_index(drop=True))
    messages = with_message_dtypes(plain_frame(merged["messages"])) if "messages" in merged else messages_frame([])
    return RunFrames(runs=runs, tool_calls=calls, agents=agents_frame([]), errors=errors_frame([]),
                     since=start, until=end, details=True, source=str(root), messages=messages)
