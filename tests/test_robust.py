"""Hostile servers, poisoned records and broken files, over real HTTP against the demo server:
nothing crashes as a whole, nothing hangs, every listed run is in ``runs`` or ``errors``."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

from conduit_notebook import (
    APIStatusError,
    APITimeoutError,
    ConduitClient,
    PaginationError,
    fetch_runs,
)

from .conftest import DEMO_END

TRACE = r"/runs/[^/]+$"
PAGES = r"/runs$"


def _client(server, **kwargs):
    options = dict(base_url=server.base_url, requests_per_minute=60_000, max_retries=2)
    return ConduitClient(server.token, **{**options, **kwargs})


def _agent(server):
    return server.data.agents[0]["id"]


def _n_runs(server, agent_id):
    return len(server.data.agent_rows(agent_id))


# -- the client ---------------------------------------------------------------------------------

def test_redirect_is_an_error_with_its_location(server, client):
    server.inject(302, match=r"/v1/agents$", body="", headers={"Location": "https://elsewhere.example/login"})
    with pytest.raises(APIStatusError) as info:
        list(client.iter_agents())
    assert info.value.status_code == 302 and "https://elsewhere.example/login" in str(info.value)
    assert server.count() == 1  # not retried, not followed


@pytest.mark.parametrize("bad", ["sk-abc\ndef", "sk-abc\rdef", "sk abc", "sk-\x00abc", "sk-\u2028x"])
def test_token_with_whitespace_or_control_characters_is_refused_without_echo(bad):
    with pytest.raises(ValueError) as info:
        ConduitClient(bad, base_url="http://127.0.0.1:9")
    assert "abc" not in str(info.value) and "token" in str(info.value)


def _frames(tb):
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def _chain(exc):
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def test_token_is_in_no_local_variable_of_a_traceback():
    token = "sk-live-secret-0123456789"
    # Nothing listens on port 9: a connection error, as with a dropped network.
    client = ConduitClient(token, base_url="http://127.0.0.1:9", max_retries=0, requests_per_minute=60_000)
    assert token not in repr(client) and token not in repr(client._auth)
    with pytest.raises(Exception) as info:
        list(client.iter_agents())
    checked = 0
    for exc in _chain(info.value):
        assert token not in str(exc)
        for frame in _frames(exc.__traceback__):
            if frame.f_code is test_token_is_in_no_local_variable_of_a_traceback.__code__:
                continue  # this test's own frame holds it, of course
            for name, value in frame.f_locals.items():
                checked += 1
                text = value if isinstance(value, (str, bytes)) else repr(value)
                text = text.decode(errors="replace") if isinstance(text, bytes) else text
                assert token not in text, f"{frame.f_code.co_name}: local {name!r} holds the token"
                if isinstance(value, dict):
                    assert not any(token in str(v) for v in value.values()), name
    assert checked > 10


def test_overall_deadline_ends_a_trickled_answer(server):
    # Each byte arrives within the read timeout; the whole answer would take minutes.
    server.inject(200, match=r"/v1/agents$", body=" " * 2000 + "{}", trickle=0.05)
    # Without the overall deadline the answer arrives whole after 100 s (no byte is ever later than
    # the 0.5 s read timeout) and nothing is raised: the error itself says the deadline cut it.
    with _client(server, timeout=0.5, max_retries=0) as client:
        with pytest.raises(APITimeoutError) as info:
            list(client.iter_agents())
    assert client.deadline == 1.0 and "1 s in all" in str(info.value)


@pytest.mark.parametrize("mode, what", [
    ("loop", "next_cursor it had sent before"),
    ("no_cursor", "has_more: true without a next_cursor"),
    ("empty_more", "empty page with has_more"),
    ("stale", "all listed before"),
])
def test_pagination_guards_stop_with_an_error(server, client, mode, what):
    agent_id = _agent(server)
    server.paginate(mode)
    got = []
    with pytest.raises(PaginationError) as info:
        for page in client.iter_run_pages(agent_id):
            got += page
    assert what in str(info.value)
    assert server.count(PAGES) <= 3 and 0 < len(got) <= 200  # stopped at once: a page or two, not a loop


def test_duplicated_items_across_pages_do_not_stop_a_listing(server, client):
    agent_id = _agent(server)
    server.paginate("duplicate")
    ids = [r["id"] for r in client.iter_runs(agent_id)]
    assert len(set(ids)) == _n_runs(server, agent_id) < len(ids)


def test_page_body_that_is_not_a_data_list_is_an_error(server, client):
    for body in ("[]", '{"data": null, "has_more": false}'):
        server.clear_faults()
        server.inject(200, match=PAGES, body=body)
        with pytest.raises(PaginationError) as info:
            list(client.iter_runs(_agent(server)))
        assert "without a data list" in str(info.value)


# -- fetch_runs: every listed run is in runs or errors ------------------------------------------

def _ids(server, agent_id=None):
    agents = [agent_id] if agent_id else [a["id"] for a in server.data.agents]
    return {server.data.summary(int(i))["id"] for a in agents for i in server.data.agent_rows(a)}


@pytest.mark.parametrize("cache", [False, True])
def test_a_run_listed_twice_is_one_row(server, client, tmp_path, cache):
    server.paginate("duplicate")
    frames = fetch_runs(client=client, cache=tmp_path / "c.sqlite" if cache else False, progress=False)
    assert frames.runs["id"].is_unique and set(frames.runs["id"]) == _ids(server)
    assert not frames.tool_calls.duplicated(["agent_run_id", "step"]).any()
    assert frames.errors.empty
    assert server.count(TRACE) == server.data.n  # each trace fetched once


def test_a_cache_holding_duplicates_heals(server, client, tmp_path, monkeypatch):
    import conduit_notebook.cache_store as cache_module

    path = tmp_path / "c.sqlite"
    server.paginate("duplicate")
    monkeypatch.setattr(cache_module, "dedupe", list)  # as caches were written before
    fetch_runs(client=client, cache=path, details=False, progress=False)
    monkeypatch.undo()
    server.clear_faults()
    for _ in range(2):  # a rerun works, and so does the one after it
        frames = fetch_runs(client=client, cache=path, progress=False)
        assert frames.runs["id"].is_unique and set(frames.runs["id"]) == _ids(server)
        assert not frames.tool_calls.duplicated(["agent_run_id", "step"]).any()
    calls = sum(len(server.data.record(server.data.position(i))["tool_trace"] or []) for i in _ids(server))
    assert len(frames.tool_calls) == calls


POISON = {
    "lone surrogate": '{"id": "%(id)s", "agent_id": "%(agent)s", "status": "completed", "response": "cut \\ud83d"}',
    "integer beyond 64 bits": '{"id": "%(id)s", "agent_id": "%(agent)s", "status": "completed", '
                              '"duration_ms": 9223372036854775808}',
    "null id": '{"id": null, "agent_id": "%(agent)s", "status": "completed"}',
    "numeric id": '{"id": 17, "agent_id": "%(agent)s", "status": "completed"}',
    "a list": '["%(id)s"]',
}
DEEP = '{"id": "%(id)s", "agent_id": "%(agent)s", "status": "completed", "x": ' + "[" * 5000 + "]" * 5000 + "}"


@pytest.mark.parametrize("where", ["list", "get"])
def test_poisoned_records_become_error_rows_and_the_rest_arrive(server, client, tmp_path, where):
    agent_id = _agent(server)
    rows = server.data.agent_rows(agent_id)
    templates = list(POISON.values()) + (["null", DEEP] if where == "get" else [])  # {"data": null}
    victims = [server.data.summary(int(rows[5 + 7 * k]))["id"] for k in range(len(templates))]
    for victim, template in zip(victims, templates, strict=False):
        server.poison(victim, template % {"id": victim, "agent": agent_id}, where=where)
    path = tmp_path / "c.sqlite"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".* traces failed", category=UserWarning)
        frames = fetch_runs(client=client, cache=path, progress=False)
    everything = _ids(server)
    # An unreadable summary leaves runs; an unreadable full record keeps the run's summary.
    kept = everything if where == "get" else everything - set(victims)
    assert set(frames.runs["id"]) == kept
    assert len(frames.errors) == len(victims)
    assert frames.errors["error"].str.contains("could not be read|cannot be read|instead of a run").all()
    if where == "get":
        assert set(frames.errors["agent_run_id"]) == set(victims)
        assert set(frames.runs.loc[frames.runs["trace_failed"], "id"]) == set(victims)
    # The rerun works from the cache; the poisoned runs are not in it, so they are asked again.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".* traces failed", category=UserWarning)
        again = fetch_runs(client=client, cache=path, progress=False)
    assert set(again.runs["id"]) == kept and len(again.errors) == len(victims)
    server.clear_faults()
    healed = fetch_runs(client=client, cache=path, progress=False)
    assert set(healed.runs["id"]) == everything and healed.errors.empty


def test_a_page_nested_too_deeply_ends_that_agents_listing(server, client):
    agent_id = _agent(server)
    victim = server.data.summary(int(server.data.agent_rows(agent_id)[150]))["id"]  # on page 2
    server.poison(victim, DEEP % {"id": victim, "agent": agent_id}, where="list")
    frames = fetch_runs(client=client, cache=False, progress=False, details=False)
    assert len(frames.errors) == 1 and "nested too deeply" in frames.errors["error"][0]
    assert frames.errors["agent_id"][0] == agent_id
    others = _ids(server) - _ids(server, agent_id)
    assert others < set(frames.runs["id"]) and len(set(frames.runs["id"]) - others) == 100


def test_go_zero_time_is_missing_not_a_crash(server, client):
    agent_id = _agent(server)
    victim = server.data.summary(int(server.data.agent_rows(agent_id)[3]))
    record = server.data.record(server.data.position(victim["id"]))
    record = {**record, "completed_at": "0001-01-01T00:00:00Z", "created_at": "0001-01-01T00:00:00Z"}
    server.poison(victim["id"], json.dumps(record), where="get")
    frames = fetch_runs(client=client, progress=False)
    row = frames.runs.set_index("id").loc[victim["id"]]
    assert pd.isna(row["completed_at"]) and pd.isna(row["created_at"]) and frames.errors.empty
    assert len(frames.runs) == server.data.n


@pytest.mark.parametrize("mode", ["loop", "no_cursor", "empty_more", "stale"])
def test_pagination_faults_end_a_listing_with_an_error_row(server, client, mode):
    server.paginate(mode)
    frames = fetch_runs(client=client, cache=False, progress=False, details=False)
    # A loop needs a third page to show; the others show on the second.
    bitten = [a["id"] for a in server.data.agents if _n_runs(server, a["id"]) > {"loop": 200, "stale": 0}.get(mode, 100)]
    assert bitten and sorted(frames.errors["agent_id"]) == sorted(bitten)
    assert frames.errors["agent_run_id"].isna().all()
    assert frames.errors["error"].str.contains("page").all()
    assert server.count(PAGES) <= 3 * len(server.data.agents)


def test_redirect_of_a_trace_is_an_error_row(server, client):
    server.inject(301, match=TRACE, times=2, body="", headers={"Location": "http://127.0.0.1:1/moved"})
    with pytest.warns(UserWarning, match="2 of 450 traces failed"):
        frames = fetch_runs(client=client, cache=False, progress=False)
    assert len(frames.runs) == server.data.n and len(frames.errors) == 2
    assert frames.runs["trace_failed"].sum() == 2
    assert frames.errors["error"].str.contains("http://127.0.0.1:1/moved").all()
    assert (frames.errors["status_code"] == 301).all()


def test_circuit_breaker_keeps_what_was_fetched(server):
    server.inject(429, match=TRACE, times=-1, retry_after=0.01, skip=40)
    with _client(server, max_retries=5, rate_limit_patience=4) as client:
        with pytest.warns(UserWarning, match="traces failed"):
            frames = fetch_runs(client=client, cache=False, progress=False)
    assert len(frames.runs) == server.data.n and frames.traced == 40  # failed traces keep their runs
    assert frames.trace_failures == len(frames.errors) == server.data.n - 40
    assert frames.errors["error"].str.contains("rate limit exhausted; retry after").all()
    # Four 429s in a row open the breaker; the requests in flight may meet one each, and a late
    # success among the first 40 restarts the count. Without it: 410 runs x 6 attempts.
    assert server.count(TRACE, status=429) <= 4 * 8 + 8


# -- the cache file -----------------------------------------------------------------------------

def test_a_damaged_cache_gives_a_clear_error_and_info_and_clear_still_work(server, client, tmp_path):
    from conduit_notebook import CacheError, RunCache, cache_info, clear_cache

    # Not a cache at all: refused and left alone (issue 23: `cache clear` deleted such files).
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheError) as info:
        fetch_runs(client=client, cache=path, progress=False)
    assert str(path) in str(info.value) and "not a conduit-notebook cache" in str(info.value)
    with pytest.raises(CacheError):
        clear_cache(path)
    assert path.read_bytes() == b"this is not a database" * 100
    # A cache of ours, damaged: a clear error, cache info says so, and clear replaces it.
    path.unlink()
    RunCache(path).close()
    data = bytearray(path.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)
    path.write_bytes(bytes(data))
    with pytest.raises(CacheError) as info:
        fetch_runs(client=client, cache=path, progress=False)
    message = str(info.value)
    assert str(path) in message and "cache clear" in message and info.value.path == path
    described = cache_info(path)
    assert described.problem and "cache clear" in repr(described) and described.size_bytes == len(data)
    assert clear_cache(path) == 0
    assert cache_info(path).problem is None
    frames = fetch_runs(client=client, cache=path, progress=False, details=False)
    assert len(frames.runs) == server.data.n
    with RunCache(path) as store:
        assert store.info().sources["runs"].sum() == server.data.n


def test_a_cache_from_a_newer_version_is_refused(tmp_path):
    import sqlite3

    from conduit_notebook import CacheError, RunCache

    path = tmp_path / "c.sqlite"
    RunCache(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    with pytest.raises(CacheError, match="newer conduit-notebook .schema 7"):
        RunCache(path)


def test_a_cache_with_a_foreign_schema_is_refused(tmp_path):
    import sqlite3

    from conduit_notebook import CacheError, RunCache

    path = tmp_path / "c.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (id TEXT)")
    with pytest.raises(CacheError, match="not a cache.*cache clear"):
        RunCache(path)


def test_cache_permissions_are_tightened(tmp_path, monkeypatch):
    import os
    import stat

    from conduit_notebook import RunCache

    monkeypatch.delenv("CONDUIT_NOTEBOOK_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with RunCache() as store:
        path = store.path
    assert str(path).startswith(str(tmp_path / "xdg"))
    os.chmod(path, 0o644)
    os.chmod(path.parent, 0o755)
    RunCache().close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_read_only_cache_says_so(tmp_path):
    import os

    from conduit_notebook import CacheError, RunCache

    path = tmp_path / "c.sqlite"
    RunCache(path).close()
    if os.geteuid() != 0:
        os.chmod(path, 0o400)
        with pytest.raises(CacheError, match="cannot be written"):
            RunCache(path)
        return
    # Root writes read-only files, so mount the folder read-only in a private mount namespace.
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare: no way to make the cache read-only")
    folder = str(tmp_path)
    probe = (f"from conduit_notebook import CacheError, RunCache\n"
             f"try:\n    RunCache({str(path)!r})\nexcept CacheError as exc:\n    print(exc)\n")
    script = (f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && "
              f"{sys.executable} -c \"$PROBE\"")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PROBE": probe}, timeout=60)
    if "mount" in done.stderr and done.returncode != 0:
        pytest.skip(f"cannot mount read-only here: {done.stderr.strip()}")
    assert "cannot be written" in done.stdout, done.stdout + done.stderr


def test_cli_cache_info_and_clear_work_on_a_damaged_file(_private_cache, capsys):
    from conduit_notebook import RunCache
    from conduit_notebook.cli import main

    _private_cache.parent.mkdir(parents=True, exist_ok=True)
    _private_cache.write_bytes(b"\x00garbage" * 512)  # not a cache: refused, kept
    assert main(["cache", "clear"]) == 1
    assert "not a conduit-notebook cache" in capsys.readouterr().err
    assert _private_cache.read_bytes() == b"\x00garbage" * 512
    _private_cache.unlink()
    RunCache(_private_cache).close()  # a cache of ours, then damaged
    data = bytearray(_private_cache.read_bytes())
    _private_cache.write_bytes(bytes(data[:100]) + b"\x00garbage" * 512)
    assert main(["cache", "info"]) == 0
    assert "PROBLEM" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert "replaced with an empty one" in capsys.readouterr().out
    assert main(["cache", "info"]) == 0
    assert "(empty)" in capsys.readouterr().out


def test_compaction_gives_free_pages_back(tmp_path):
    import sqlite3

    from conduit_notebook import RunCache
    from conduit_notebook.demo import DemoData

    records = DemoData(runs=300, agents=2, seed=3, end=DEMO_END).records()
    path = tmp_path / "c.sqlite"
    with RunCache(path) as store:
        for start in range(0, 300, 10):
            store.put("s", records[start:start + 10], detailed=True)
        store.put("s", records[:10], detailed=True)  # written again: the newer copy wins
        assert store.compact("s")
        runs, calls = store.load("s")
    assert runs["id"].is_unique and len(runs) == 300
    assert len(calls) == sum(len(r["tool_trace"] or []) for r in records)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == 1
