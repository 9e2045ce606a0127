"""The run cache's file: what a file holds (ours, an older cache, another application's),
creating it with safe permissions, its tables, and what to say when it cannot be used."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import CacheError
from .paths import CACHE_ENV, default_cache_path

__all__ = ["APPLICATION_ID", "SCHEMA", "SCHEMA_VERSION", "CacheInfo", "check_tables", "check_version", "file_kind",
           "looks_like_ours", "not_ours", "prepare_file", "problem", "removable"]

SCHEMA_VERSION = "1"
#: SQLite's application_id of a conduit-notebook cache ("CNNB"): how a file is known to be ours.
APPLICATION_ID = 0x434E4E42
_SQLITE_HEADER = b"SQLite format 3\x00"
_OUR_TABLES = {"meta", "segments", "runs", "coverage"}
# Columns the code reads; a file whose tables lack one is not a cache this version can use.
REQUIRED_COLUMNS = {
    "segments": {"segment", "source", "n_runs", "n_calls", "runs", "calls"},
    "runs": {"source", "id", "agent_id", "created_ms", "status", "detailed", "segment", "fingerprint"},
    "coverage": {"source", "agent_id", "status_key", "lo", "hi"},
}
_FIX = ("Run `conduit-notebook cache clear` (or clear_cache()) to start a fresh cache, or pass "
        "cache=False (or another file) to fetch_runs.")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    segment INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    written_at REAL NOT NULL,
    n_runs INTEGER NOT NULL,
    n_calls INTEGER NOT NULL,
    runs BLOB NOT NULL,
    calls BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    created_ms INTEGER,
    status TEXT,
    detailed INTEGER NOT NULL,
    segment INTEGER NOT NULL,
    fingerprint TEXT,
    PRIMARY KEY (source, id)
);
CREATE INDEX IF NOT EXISTS runs_by_agent ON runs (source, agent_id, created_ms);
CREATE INDEX IF NOT EXISTS runs_by_segment ON runs (segment);
CREATE TABLE IF NOT EXISTS threads (
    source TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    fetched_ms INTEGER NOT NULL,
    last_ms INTEGER,
    n_messages INTEGER NOT NULL,
    messages BLOB NOT NULL,
    PRIMARY KEY (source, conversation_id)
);
CREATE TABLE IF NOT EXISTS claims (
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    owner TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE TABLE IF NOT EXISTS coverage (
    source TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    status_key TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL
);
"""



def file_kind(path: Path) -> str:
    """What ``path`` holds, from its first 100 bytes (SQLite's header): ``missing``, ``empty``,
    ``ours`` (a SQLite file marked with :data:`APPLICATION_ID`), ``sqlite`` (unmarked: an older
    cache or another application's), ``foreign`` (another application's mark) or ``other``."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(100)
    except FileNotFoundError:
        return "missing"
    except IsADirectoryError:
        return "other"
    if not header:
        return "empty"
    if len(header) < 100 or not header.startswith(_SQLITE_HEADER):
        return "other"
    application_id = int.from_bytes(header[68:72], "big")
    return "ours" if application_id == APPLICATION_ID else ("sqlite" if application_id == 0 else "foreign")


def looks_like_ours(path: Path) -> bool:
    """An unmarked SQLite file is taken as a cache of an older version only when it has the
    cache's tables and its meta row (or no table at all); opened read-only, nothing is written."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables - {"sqlite_sequence"}:
                return True
            if not _OUR_TABLES <= tables:
                return False
            return conn.execute("SELECT 1 FROM meta WHERE key = 'schema_version'").fetchone() is not None
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def removable(path: Path) -> bool:
    """Whether ``cache clear`` may delete ``path``: a file marked as a conduit-notebook cache, or
    one in the toolkit's own cache directory (nothing else writes there). Never another file."""
    kind = file_kind(path)
    if kind in ("missing", "empty", "ours"):
        return True
    try:
        return path.resolve().parent == default_cache_path().resolve().parent and kind != "foreign"
    except OSError:
        return False


def prepare_file(path: Path, *, ours: bool) -> None:
    """Create the file 0600 (its directory 0700); tighten an existing one that is looser."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if ours and directory.stat().st_mode & 0o077:
        os.chmod(directory, 0o700)  # the default directory holds nothing but this cache
    if not path.exists():
        # Created 0600 before SQLite opens it; SQLite gives its -wal and -shm files the
        # same permissions.
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if file.exists() and file.stat().st_mode & 0o077:
            os.chmod(file, 0o600)


def check_version(conn: sqlite3.Connection, path: Path) -> None:
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    if not has_meta:
        return
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = row[0] if row else SCHEMA_VERSION
    if not str(version).isdigit() or int(version) > int(SCHEMA_VERSION):
        raise CacheError(
            f"The run cache {path} was written by a newer conduit-notebook (schema "
            f"{version}; this version reads schema {SCHEMA_VERSION}). Upgrade conduit-notebook, "
            f"or use another file: pass cache='other.sqlite' or set {CACHE_ENV}.",
            path=path, reason="newer",
        )


def check_tables(conn: sqlite3.Connection, path: Path) -> None:
    for table, wanted in REQUIRED_COLUMNS.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if not wanted <= have:
            raise CacheError(
                f"The run cache {path} has a {table!r} table without the columns "
                f"{', '.join(sorted(wanted - have))}: it is not a cache this version can use. {_FIX}",
                path=path,
            )


def not_ours(path: Path) -> CacheError:
    return CacheError(
        f"{path} is not a conduit-notebook cache (another application's file, or not a "
        "cache at all): it was left as it is, and `cache clear` will not delete it. Point "
        f"{CACHE_ENV} (or cache=) at a file of its own, or leave it unset for the default.",
        path=path, reason="foreign")


def problem(path: Path, exc: BaseException, lock_wait_s: float) -> CacheError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return CacheError(
            f"The run cache {path} is locked by another process (a sync or another notebook "
            f"writing to it) and stayed locked for {lock_wait_s:g} s. Nothing was changed: try again when it "
            "has finished, or pass cache=False (or another file).", path=path, reason="locked")
    if getattr(exc, "errno", None) == 28 or "database or disk is full" in text:
        return CacheError(
            f"The disk holding the run cache {path} is full: what was stored is kept, the "
            "last write was not. Free some space, or pass cache=False (or a file on another "
            "disk).", path=path, reason="disk_full")
    # SQLite says "unable to open database file" when WAL cannot make its side files: ask the OS.
    read_only = path.exists() and not (os.access(path, os.W_OK)
                                            and os.access(path.parent, os.W_OK))
    if isinstance(exc, PermissionError) or read_only or "readonly" in text or "read-only" in text:
        what = ("cannot be written (read-only file or directory?). Check its permissions, or "
                "pass cache=False (or another file) to fetch_runs.")
        return CacheError(f"The run cache {path} {what}", path=path, reason="unwritable")
    what = f"cannot be read: it is damaged ({type(exc).__name__}: {text}). {_FIX}"
    return CacheError(f"The run cache {path} {what}", path=path, reason="damaged")


@dataclass(frozen=True)
class CacheInfo:
    """What :func:`cache_info` reports: the file, its size, one row per API source, and what
    is wrong with the file if it cannot be used (``problem``; None when it is fine)."""

    path: Path
    size_bytes: int
    sources: pd.DataFrame
    problem: str | None = None

    def __repr__(self) -> str:
        lines = [f"Conduit run cache: {self.path} ({self.size_bytes / 1e6:.1f} MB)"]
        if self.problem:
            lines.append(f"  PROBLEM: {self.problem}")
        elif self.sources.empty:
            lines.append("  (empty)")
        else:
            lines.append(self.sources.to_string(index=False))
        return "\n".join(lines)
