"""Two fetches of one workspace through one cache at the same time (two `sync --follow`, a
notebook beside a sync) ask for each trace once: a trace is claimed in the cache before it is
asked for, and the other fetch reads it from there (issue 23, minor: 36% duplicate requests)."""

from __future__ import annotations

import os
import threading
from collections import Counter

from conduit_notebook import ConduitClient, RunCache, demo, fetch_runs
from conduit_notebook import traces as traces_module

from .conftest import DEMO_END

TRACE = r"^/v1/agents/[^/]+/runs/[^/]+$"


def test_two_fetches_through_one_cache_ask_for_each_trace_once(tmp_path):
    path = tmp_path / "runs.sqlite"
    with demo.serve(runs=400, agents=2, seed=9, end=DEMO_END) as server:
        results, errors = {}, []
        barrier = threading.Barrier(2)

        def run(name):
            try:
                with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=3_000,
                                   shared_pace=False) as client:
                    barrier.wait()
                    results[name] = fetch_runs(client=client, details=True, cache=RunCache(path), progress=False)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not errors, errors
        asked = Counter(r.path for r in server.requests if r.path.count("/") == 5)
        finished = sum(1 for i in range(server.data.n) if server.data.status[i] in ("completed", "failed"))
        assert max(asked.values()) == 1, asked.most_common(3)  # no trace asked twice
        assert len(asked) >= finished
        for frames in results.values():  # and both have every trace
            assert frames.traced == len(frames.runs) == server.data.n


def test_a_claim_of_a_process_that_died_runs_out(tmp_path, monkeypatch):
    monkeypatch.setattr(traces_module, "CLAIM_SECONDS", 0.5)
    path = tmp_path / "runs.sqlite"
    with demo.serve(runs=60, agents=1, seed=9, end=DEMO_END) as server:
        with RunCache(path) as store:
            run_id = str(server.data.ids[5])
            assert store.claim(f"{server.base_url}#", run_id, f"{os.getpid()}-another-fetch", 0.5)
        with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000) as client:
            frames = fetch_runs(client=client, details=True, cache=path, progress=False)
        assert frames.traced == len(frames.runs)  # fetched here once the claim ran out
        assert server.count(rf"/runs/{run_id}$") == 1


def test_a_claim_of_a_killed_process_is_taken_over_at_once(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "runs.sqlite"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has ended
    with RunCache(path) as store:
        assert store.claim("src", "ar_1", f"{pid}-fetch", 3600)
        assert store.claim("src", "ar_1", f"{os.getpid()}-mine", 60)  # its claim is not honoured
        assert not store.claim("src", "ar_1", f"{os.getpid()}-other", 60)  # a live one is



def test_a_claim_left_by_an_ended_fetch_of_this_process_is_taken_over_at_once(tmp_path, monkeypatch):
    # sync --follow on a full disk: a pass claims traces, fails, and its release cannot be written
    # either; the next pass (the same process, another owner) waited CLAIM_SECONDS (120 s) for
    # its own dead claims before fetching them.
    import sqlite3

    import pytest

    from conduit_notebook.errors import CacheError

    path = tmp_path / "runs.sqlite"
    with RunCache(path) as store:
        assert store.claim("src", "ar_1", f"{os.getpid()}-pass1", 3600)
        with monkeypatch.context() as m:
            def full_disk(self):
                raise sqlite3.OperationalError("database or disk is full")
            m.setattr(RunCache, "_transaction", full_disk)
            with pytest.raises(CacheError):
                store.release(f"{os.getpid()}-pass1")
    with RunCache(path) as store:
        assert store.claim("src", "ar_1", f"{os.getpid()}-pass3", 60)  # the ended pass's claim is not honoured
        assert not store.claim("src", "ar_1", f"{os.getpid()}-pass4", 60)  # a going one still is
