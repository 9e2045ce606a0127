"""Who is fetching which trace: claims in the run cache's file, so that two processes following
the same workspace do not fetch one trace twice (:meth:`conduit_notebook.cache.RunCache.claim`)."""

from __future__ import annotations

import os
import sqlite3
import time

__all__ = ["alive", "mark_owner", "release_claims", "take_claim", "unmark_owner"]

# The claim owners of this process whose fetch is still going (claimed, not yet released).
_OWNERS_HERE: set[str] = set()


def alive(owner: str) -> bool:
    """Whether the fetch that made a claim (``"<pid>-..."``, on this machine: the cache is a
    local file) is still going: its process is running and, when that is this process, the fetch
    has not ended. A process killed mid-fetch, or a fetch of this one whose release failed (a full
    disk: ``sync --follow``'s next pass), leaves claims that no one honours."""
    pid = owner.split("-", 1)[0]
    if not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return owner in _OWNERS_HERE
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, as another user's process
    return True


def mark_owner(owner: str) -> None:
    """``owner``'s fetch, of this process, has begun."""
    _OWNERS_HERE.add(owner)


def unmark_owner(owner: str) -> None:
    """``owner``'s fetch is over: its claims are no longer honoured, even if left in the file."""
    _OWNERS_HERE.discard(owner)


def take_claim(conn: sqlite3.Connection, source: str, run_id: str, owner: str, now: float, seconds: float) -> bool:
    """Inside a write transaction: claim ``run_id`` for ``owner`` until ``now + seconds``; False
    when another owner holds a live claim on it."""
    row = conn.execute("SELECT owner, until FROM claims WHERE source = ? AND id = ?",
                       (source, run_id)).fetchone()
    if row is not None and row[0] != owner and row[1] > now and alive(row[0]):
        return False
    conn.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?)", (source, run_id, owner, now + seconds))
    return True


def release_claims(conn: sqlite3.Connection, owner: str) -> None:
    """Inside a write transaction: drop ``owner``'s claims and every claim that has run out."""
    conn.execute("DELETE FROM claims WHERE owner = ? OR until < ?", (owner, time.time()))
