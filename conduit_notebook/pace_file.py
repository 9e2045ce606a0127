"""The shared pace's file: one GCRA slot per workspace in a small SQLite file beside the run
cache, so that every process of a workspace on this machine keeps one pace
(:class:`~conduit_notebook.pacing.RateLimiter` takes its turns through :class:`SharedPace`)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

__all__ = ["LOCK_WAIT_S", "PACE_APPLICATION_ID", "PACE_FILE", "PaceUnavailable", "SharedPace"]

#: The file holding the shared pace slots, beside the run cache.
PACE_FILE = "pace.sqlite"
#: A shared slot or pause further ahead than this (seconds) is stale (the clock was stepped
#: back): it is dropped, with a warning. No pause the client takes is this long.
_STALE_AHEAD = 120.0
#: How long a turn waits for another process holding the pace file before pacing alone.
LOCK_WAIT_S = 30.0
#: SQLite's application_id of the pace file ("CNNP").
PACE_APPLICATION_ID = 0x434E4E50


class PaceUnavailable(Exception):
    """The shared pace file cannot be used right now (locked by a stopped process, the disk full,
    not this toolkit's file): the limiter paces this process on its own and says so once."""


class SharedPace:
    """Pace slots shared by every process on this machine: one row per workspace in a small
    SQLite file (``pace.sqlite`` beside the run cache), holding the generic cell rate
    algorithm's theoretical arrival time and a pause deadline, in wall-clock seconds.

    Each request takes its turn in one ``BEGIN IMMEDIATE`` transaction, so two notebooks and a
    ``sync`` of the same workspace together keep one pace instead of each using the whole limit.
    The file is marked as this toolkit's (SQLite ``application_id``); one deleted while in use is
    made again, a garbled one of ours is rebuilt (it holds only slots), and a slot or pause more
    than :data:`_STALE_AHEAD` seconds ahead (left by a clock stepped back) is dropped, with a
    warning. A file that is locked for :data:`LOCK_WAIT_S` seconds, full or not ours raises
    :class:`PaceUnavailable`, and the limiter goes on alone.

    >>> shared = SharedPace("~/.cache/conduit-notebook/pace.sqlite")
    >>> limiter.share(shared, "https://api.conduit.ai#j57...")
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._told: set[str] = set()
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        kind = _pace_kind(self.path)
        if kind == "broken":  # ours, garbled: it holds nothing but slots
            for file in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
                file.unlink(missing_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        elif kind == "foreign":
            raise PaceUnavailable(f"{self.path} is not a conduit-notebook pace file; it is left as it is")
        conn = sqlite3.connect(self.path, timeout=LOCK_WAIT_S, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_S * 1000)}")
            conn.execute("PRAGMA synchronous = OFF")  # a lost slot after a crash costs nothing
            ready = (kind == "ours" and conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pace'").fetchone() is not None)
            if not ready:  # a new file: its mark and table, once (the mark in the file's header, before WAL)
                conn.execute(f"PRAGMA application_id = {PACE_APPLICATION_ID}")
                conn.execute("CREATE TABLE IF NOT EXISTS pace (key TEXT PRIMARY KEY, tat REAL NOT NULL, "
                             "paused_until REAL NOT NULL)")
                conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            conn.close()
            if "locked" in str(exc) or "busy" in str(exc):
                raise PaceUnavailable(f"{self.path} is locked by another process (stopped while holding "
                                      f"it?) for {LOCK_WAIT_S:g} s") from exc
            raise
        return conn

    def __repr__(self) -> str:
        return f"SharedPace({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _row(self, key: str, now: float) -> tuple[float, float]:
        row = self._conn.execute("SELECT tat, paused_until FROM pace WHERE key = ?", (key,)).fetchone()
        if row is None:
            return now, 0.0
        if row[0] > now + _STALE_AHEAD or row[1] > now + _STALE_AHEAD:
            if key not in self._told:
                self._told.add(key)
                warnings.warn(f"{self.path}: a pace slot {max(row[0], row[1]) - now:,.0f} s ahead of the clock "
                              "(the clock was stepped back?) was dropped; requests go at the pace from now",
                              UserWarning, stacklevel=5)
            return now, 0.0
        return float(row[0]), float(row[1])

    def _in_transaction(self, work: Callable[[], float]) -> float:
        """``work`` in one write transaction; a failure of the file becomes PaceUnavailable (the
        cause named: locked, disk full) or, for a file deleted or garbled, the file is made again
        and the work done once more."""
        for attempt in range(2):
            with self._lock:
                try:
                    if not self.path.exists():
                        raise sqlite3.DatabaseError("the pace file was deleted")
                    self._conn.execute("BEGIN IMMEDIATE")
                    try:
                        result = work()
                        self._conn.execute("COMMIT")
                        return result
                    except BaseException:
                        if self._conn.in_transaction:  # a failed COMMIT may have ended it already
                            self._conn.execute("ROLLBACK")
                        raise
                except sqlite3.OperationalError as exc:
                    if "locked" in str(exc) or "busy" in str(exc):
                        raise PaceUnavailable(f"{self.path} is locked by another process (stopped while "
                                              f"holding it?) for {LOCK_WAIT_S:g} s") from exc
                    if "disk is full" in str(exc) or "disk I/O" in str(exc):
                        raise PaceUnavailable(f"{self.path}: the disk is full") from exc
                    if attempt:
                        raise PaceUnavailable(f"{self.path}: {exc}") from exc
                except sqlite3.DatabaseError as exc:
                    if attempt:
                        raise PaceUnavailable(f"{self.path}: {exc}") from exc
                self._conn.close()
                self._conn = self._open()  # deleted or garbled: made again, then once more
        raise AssertionError("unreachable")

    def reserve(self, key: str, now: float, interval: float, burst: int) -> float:
        """Take the next turn for ``key``; return the wall-clock time at which to send."""
        def work() -> float:
            tat, paused = self._row(key, now)
            start = max(now, paused)
            tat = max(tat, start)
            send_at = max(start, tat - (burst - 1) * interval)
            self._conn.execute("INSERT OR REPLACE INTO pace VALUES (?, ?, ?)", (key, tat + interval, paused))
            return send_at
        return self._in_transaction(work)

    def pause(self, key: str, until: float, interval: float) -> None:
        """Hold every process of ``key`` until the wall-clock time ``until``; no burst after it."""
        def work() -> float:
            tat, paused = self._row(key, time.time())
            paused = max(paused, until)
            self._conn.execute("INSERT OR REPLACE INTO pace VALUES (?, ?, ?)",
                               (key, max(tat, paused + interval), paused))
            return paused
        self._in_transaction(work)

    def paused_until(self, key: str) -> float:
        try:
            with self._lock:
                row = self._conn.execute("SELECT paused_until FROM pace WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise PaceUnavailable(f"{self.path}: {exc}") from exc
        if row is None or row[0] > time.time() + _STALE_AHEAD:
            return 0.0
        return float(row[0])


def _pace_kind(path: Path) -> str:
    """``new`` (empty), ``ours``, ``broken`` (ours, or unmarked with our table, but unreadable) or
    ``foreign``, from the file's header and, for an unmarked file, its tables."""
    with open(path, "rb") as handle:
        header = handle.read(100)
    if not header:
        return "new"
    if not header.startswith(b"SQLite format 3\x00") or len(header) < 100:
        return "foreign"
    marked = int.from_bytes(header[68:72], "big")
    if marked not in (0, PACE_APPLICATION_ID):
        return "foreign"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc):
            return "ours"
        return "broken" if marked == PACE_APPLICATION_ID else "foreign"
    if marked == PACE_APPLICATION_ID or tables <= {"pace"}:
        return "ours"
    return "foreign"
