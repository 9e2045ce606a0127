"""The shared pace file survives what a night can do to it (issue 23, items 4, 6, 7 and a minor
one): a slot far ahead of the clock, a lock held by a stopped process, a full disk, a garbled
or deleted file, and a file that is not ours."""

from __future__ import annotations

import sqlite3
import time
import warnings

import pytest

from conduit_notebook import pace_file
from conduit_notebook.pacing import PACE_APPLICATION_ID, PaceUnavailable, RateLimiter, SharedPace


def test_a_slot_ahead_of_the_clock_is_dropped_with_a_warning(tmp_path):
    shared = SharedPace(tmp_path / "pace.sqlite")
    now = time.time()
    shared.pause("ws", now + 3600, 0.5)  # left by a clock stepped back an hour
    with pytest.warns(UserWarning, match="ahead of the clock"):
        send_at = shared.reserve("ws", now, 0.5, 1)
    assert send_at == pytest.approx(now)  # not an hour's wait
    assert shared.paused_until("ws") == 0.0
    near = SharedPace(tmp_path / "p2.sqlite")
    near.pause("ws", now + 60, 0.5)  # a real pause (a 429's Retry-After) is kept
    assert near.reserve("ws", now, 0.5, 1) >= now + 60


def test_a_lock_held_by_a_stopped_process_makes_the_limiter_go_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(pace_file, "LOCK_WAIT_S", 0.3)
    path = tmp_path / "pace.sqlite"
    shared = SharedPace(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a process stopped while it held the file
    try:
        with pytest.raises(PaceUnavailable, match="locked by another process"):
            SharedPace(path).reserve("ws", time.time(), 0.5, 1)
        limiter = RateLimiter(600)
        limiter.share(shared, "ws")
        with pytest.warns(UserWarning, match="paces its requests on its own"):
            waited = limiter.acquire()
        assert waited < 1.0 and limiter._shared is None  # noqa: SLF001 - it went on alone
        limiter.acquire()  # and keeps going, without asking the file again
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_full_disk_names_the_cause_and_the_limiter_goes_on(tmp_path, monkeypatch):
    shared = SharedPace(tmp_path / "pace.sqlite")

    def full(*_args, **_kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    class Full:
        in_transaction = False

        def execute(self, sql, *args):
            if sql.startswith(("INSERT", "COMMIT")):
                full()
            return shared_conn.execute(sql, *args)

    shared_conn = shared._conn  # noqa: SLF001
    monkeypatch.setattr(shared, "_conn", Full())
    with pytest.raises(PaceUnavailable, match="disk is full") as caught:
        shared.reserve("ws", time.time(), 0.5, 1)
    assert "rollback" not in str(caught.value).lower()


def test_a_garbled_or_deleted_pace_file_of_ours_is_rebuilt(tmp_path):
    path = tmp_path / "pace.sqlite"
    shared = SharedPace(path)
    shared.reserve("ws", time.time(), 0.5, 1)
    assert int.from_bytes(path.read_bytes()[68:72], "big") == PACE_APPLICATION_ID
    path.unlink()  # deleted under a running process
    for file in (tmp_path / "pace.sqlite-wal", tmp_path / "pace.sqlite-shm"):
        file.unlink(missing_ok=True)
    shared.reserve("ws", time.time(), 0.5, 1)
    assert path.exists() and int.from_bytes(path.read_bytes()[68:72], "big") == PACE_APPLICATION_ID
    shared.close()
    data = bytearray(path.read_bytes())
    data[100:] = b"\x13" * (len(data) - 100)
    path.write_bytes(bytes(data))
    for file in (tmp_path / "pace.sqlite-wal", tmp_path / "pace.sqlite-shm"):
        file.unlink(missing_ok=True)
    again = SharedPace(path)  # a raw DatabaseError before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert again.reserve("ws", time.time(), 0.5, 1) > 0


def test_a_pace_file_that_is_not_ours_is_left_alone(tmp_path):
    path = tmp_path / "pace.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE accounts (id TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(PaceUnavailable, match="not a conduit-notebook pace file"):
        SharedPace(path)
    assert path.read_bytes() == before
