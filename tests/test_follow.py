"""``sync --follow`` left running overnight: an outage, a 429 storm, a full disk and a kill -9 do
not end it or lose its work; only 401/403 do (issue 23, items 5 and 11)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from conduit_notebook import RunCache, cli, retry
from conduit_notebook import client as client_module
from conduit_notebook.follow import FOLLOW_BACKOFF_CAP, check_interval, follow_delay

from .conftest import DEMO_END

TRACE = r"/runs/[^/]+$"
SINCE = (DEMO_END - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")  # the whole demo window


def test_follow_delay_doubles_after_failed_passes_up_to_a_cap():
    assert follow_delay(60, 0) == 60 and follow_delay(0, 0) == 0
    assert [follow_delay(60, k) for k in (1, 2, 3, 4, 5)] == [60, 120, 240, 480, FOLLOW_BACKOFF_CAP]
    assert follow_delay(0, 1) == 1 and follow_delay(0, 3) == 4  # no interval: from a second
    assert follow_delay(0.5, 3) == 2
    assert follow_delay(3600, 9) == 3600  # never shorter than the interval asked for
    assert follow_delay(60, 10_000) == FOLLOW_BACKOFF_CAP  # no overflow
    with pytest.raises(ValueError, match="interval must be a finite number"):
        follow_delay(float("inf"), 0)


@pytest.mark.parametrize("value", ["inf", "1e300", "-1", "nan", "soon"])
def test_a_bad_interval_exits_2_with_a_message(value, capsys):
    with pytest.raises(ValueError, match="from 0 to 86400"):
        check_interval(value)
    with pytest.raises(SystemExit) as info:
        cli.main(["sync", "--demo", "--follow", "--interval", value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--interval" in err and "seconds from 0 to 86400" in err and "Traceback" not in err


@pytest.fixture
def workspace(server, monkeypatch, tmp_path):
    """The CLI pointed at the test's demo server, with a cache file of its own."""
    monkeypatch.setenv(client_module.TOKEN_ENV, server.token)
    monkeypatch.setenv("CONDUIT_BASE_URL", server.base_url)
    path = tmp_path / "follow" / "runs.sqlite"
    monkeypatch.setenv("CONDUIT_NOTEBOOK_CACHE", str(path))
    return path


def _complete(server, path):
    """Every listed run is in the cache, with its trace, once."""
    ids = [str(i) for i in server.data.ids]
    with RunCache(path) as store:
        found = store.lookup(f"{server.base_url}#", ids)
        runs, _ = store.load(f"{server.base_url}#")
    return len(found), sum(c.detailed for c in found.values()), len(runs), runs["id"].is_unique


def test_follow_goes_on_through_an_outage_a_429_storm_and_a_full_disk(server, workspace, monkeypatch, capsys):
    from conduit_notebook import cache as cache_module

    monkeypatch.setattr(retry, "RATE_LIMIT_COOLDOWN", 0.05)  # the breaker's minute, shortened
    # An outage of the agents endpoint for a pass (6 attempts), then a storm of 429s long
    # enough to open the client's breaker (20 in a row) ...
    server.inject(503, match=r"^/v1/agents$", times=6, retry_after=0.001)
    server.inject(429, times=21, retry_after=0.001)
    # ... then the disk fills up for the first two writes to the cache.
    real_put, writes = cache_module.RunCache.put, []

    def put(self, *args, **kwargs):
        writes.append(1)
        if len(writes) <= 2:
            raise sqlite3.OperationalError("database or disk is full")
        return real_put(self, *args, **kwargs)

    monkeypatch.setattr(cache_module.RunCache, "put", put)
    code = cli.main(["sync", "--follow", "--interval", "0.01", "--passes", "9", "--since", SINCE,
                     "--traces", "all", "--rpm", "60000"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    failed = [line for line in err.splitlines() if " failed (" in line and line.startswith("pass ")]
    assert any("APIStatusError" in line and "503" in line for line in failed), err
    assert any("RateLimitError" in line and "rate limit exhausted" in line for line in failed), err
    assert any("disk is full" in line for line in failed), err
    assert all("what earlier passes stored is kept" in line for line in failed)
    assert len(failed) == 8, err
    assert err.splitlines()[-1].startswith("pass 9: 450 runs, 450 with traces")  # the last pass is clean
    assert code == 0
    assert _complete(server, workspace) == (450, 450, 450, True)


def test_follow_ends_on_a_permanent_error(server, workspace, capsys):
    server.inject(401, times=-1, match=r"^/v1/agents$", body='{"error": "token revoked"}')
    code = cli.main(["sync", "--follow", "--interval", "0", "--since", SINCE, "--rpm", "60000"])
    assert code == 3 and server.count(r"^/v1/agents$") == 1  # not retried, no second pass
    assert "token revoked" in capsys.readouterr().err


def _spawn(server, path, *args):
    env = {**os.environ, "CONDUIT_API_TOKEN": server.token, "CONDUIT_BASE_URL": server.base_url,
           "CONDUIT_NOTEBOOK_CACHE": str(path)}
    return subprocess.Popen([sys.executable, "-m", "conduit_notebook.cli", "sync", "--follow", "--since", SINCE,
                             "--traces", "all", "--interval", "0.05", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_follow_killed_with_sigkill_resumes_from_the_cache(server, workspace):
    # Paced at 10 requests a second, so that the kill lands in the middle of the traces.
    first = _spawn(server, workspace, "--rpm", "600")
    try:
        deadline = time.monotonic() + 60
        while server.count(TRACE) < 60 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert server.count(TRACE) >= 60, first.communicate(timeout=5)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    runs, traced, rows, unique = _complete(server, workspace)
    assert runs == 450 and 0 < traced < 450 and rows == 450 and unique  # the kill kept what was written
    server.wait_idle()
    server.reset_log()
    second = _spawn(server, workspace, "--rpm", "60000", "--passes", "2")
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "pass 2: 450 runs, 450 with traces" in err and "Traceback" not in err
    # The restart fetched only the traces the cache did not have, each once.
    assert server.count(TRACE) == 450 - traced
    assert _complete(server, workspace) == (450, 450, 450, True)


def test_follow_stops_cleanly_on_sigterm(server, workspace):
    process = _spawn(server, workspace, "--rpm", "600")
    try:
        deadline = time.monotonic() + 60
        while server.count(TRACE) < 20 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert "stopped" in err and "Traceback" not in err
    assert process.returncode in (0, 4)


def test_follow_resumes_when_a_full_disk_frees_up(server, workspace):
    """A real write limit (RLIMIT_FSIZE: writes past 300 KB fail, as on a full disk) on the
    running process: its passes fail and are logged; once the limit is lifted (prlimit, from
    outside) the next pass completes the cache."""
    import resource

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, resource.RLIM_INFINITY))

    env = {**os.environ, "CONDUIT_API_TOKEN": server.token, "CONDUIT_BASE_URL": server.base_url,
           "CONDUIT_NOTEBOOK_CACHE": str(workspace)}
    process = subprocess.Popen([sys.executable, "-m", "conduit_notebook.cli", "sync", "--follow", "--since", SINCE,
                                "--traces", "all", "--interval", "0.2", "--rpm", "60000", "--passes", "5"],
                               env=env, stderr=subprocess.PIPE, text=True, preexec_fn=small_disk)
    lines = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if sum(" failed (" in seen for seen in lines) == 2:  # two passes met the full disk
                unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
                resource.prlimit(process.pid, resource.RLIMIT_FSIZE, unlimited)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    err = "".join(lines)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    passes = [line for line in lines if line.startswith("pass ")]
    assert [p.split()[1].rstrip(":") for p in passes] == ["1", "2", "3", "4", "5"]
    assert " failed (" in passes[0] and " failed (" in passes[1]
    assert passes[2].startswith("pass 3: 450 runs, 450 with traces") and "0 errors" in passes[2]
    assert all("(0 trace)" in p for p in passes[3:])  # nothing asked twice once stored
    assert _complete(server, workspace) == (450, 450, 450, True)
