"""The Parquet lake (conduit_notebook.lake): upsert, atomic writes, slices, other readers."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conduit_notebook import cli, fetch_runs
from conduit_notebook.lake import SCHEMA_VERSION, read_lake, write_lake
from conduit_notebook.lake import write as lake_write


@pytest.fixture(scope="module")
def fetched(_shared_server):
    from conduit_notebook import ConduitClient

    with ConduitClient(_shared_server.token, base_url=_shared_server.base_url,
                       requests_per_minute=60_000) as client:
        return fetch_runs(client=client, cache=False, progress=False)


@pytest.fixture
def frames(fetched):
    """A copy of the demo workspace's runs, free to change."""
    from dataclasses import replace

    return replace(fetched, runs=fetched.runs.copy(), tool_calls=fetched.tool_calls.copy())


def _by_id(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.sort_values("id", ignore_index=True)


def _files(root, table="runs"):
    return sorted(p.name for p in (root / table).rglob("*.parquet"))


def test_written_twice_every_run_once_with_its_dtypes(frames, tmp_path):
    first = frames.to_lake(tmp_path)
    files = _files(tmp_path)
    assert first.rows == {"runs": 450, "tool_calls": len(frames.tool_calls)}
    second = write_lake(frames, tmp_path)
    assert second.files_removed == first.files_written  # the months were merged, not added to
    assert len(_files(tmp_path)) == len(files) == frames.runs["created_at"].dt.strftime("%Y-%m").nunique()
    back = read_lake(tmp_path)
    assert len(back.runs) == 450 and back.runs["id"].is_unique
    pd.testing.assert_frame_equal(_by_id(back.runs), _by_id(frames.runs), check_categorical=False)
    assert back.runs.dtypes.equals(frames.runs.dtypes)
    assert back.tool_calls.dtypes.equals(frames.tool_calls.dtypes)
    assert len(back.tool_calls) == len(frames.tool_calls)


def test_resync_latest_record_wins_and_brings_its_tool_calls(frames, tmp_path):
    runs = frames.runs
    target = runs.loc[(runs["tool_call_count"] > 1) & runs["completed_at"].notna(), "id"].iloc[0]
    frames.to_lake(tmp_path)
    later = frames.runs[frames.runs["id"] == target].copy()
    later["completed_at"] += pd.Timedelta(minutes=5)
    later["disposition"] = "escalated"
    later_calls = frames.tool_calls[frames.tool_calls["agent_run_id"] == target].iloc[:1].copy()
    stale = frames.runs[frames.runs["id"] == target].copy()
    stale["completed_at"] -= pd.Timedelta(minutes=5)
    stale["disposition"] = "stale"
    for runs_part, calls_part in ((later, later_calls), (stale, later_calls.iloc[:0])):
        write_lake(type(frames)(runs=runs_part, tool_calls=calls_part, agents=frames.agents,
                                errors=frames.errors), tmp_path)
    back = read_lake(tmp_path)
    row = back.runs[back.runs["id"] == target]
    assert len(back.runs) == 450 and len(row) == 1
    assert row["disposition"].iloc[0] == "escalated"  # the older record written later lost
    calls = back.tool_calls[back.tool_calls["agent_run_id"] == target]
    assert len(calls) == 1  # the winning record's trace, not the old one's
    others = back.tool_calls[back.tool_calls["agent_run_id"] != target]
    assert len(others) == len(frames.tool_calls[frames.tool_calls["agent_run_id"] != target])


def test_a_record_without_its_trace_does_not_replace_one_with_it(frames, tmp_path):
    frames.to_lake(tmp_path)
    bare = frames.runs.copy()
    bare["trace_weight"] = float("nan")  # the same runs listed again, without traces
    write_lake(type(frames)(runs=bare, tool_calls=frames.tool_calls.iloc[:0], agents=frames.agents,
                            errors=frames.errors), tmp_path)
    back = read_lake(tmp_path)
    assert back.runs["trace_weight"].notna().all() and len(back.tool_calls) == len(frames.tool_calls)


def test_crash_after_the_new_files_leaves_each_run_once_and_the_next_write_repairs(frames, tmp_path, monkeypatch):
    frames.to_lake(tmp_path)
    changed = frames.runs.copy()
    changed["completed_at"] += pd.Timedelta(seconds=1)
    changed["disposition"] = "escalated"

    def crash(files, result):
        raise KeyboardInterrupt("killed after the rename, before the old files went")

    monkeypatch.setattr(lake_write, "_remove", crash)
    with pytest.raises(KeyboardInterrupt):
        write_lake(type(frames)(runs=changed, tool_calls=frames.tool_calls, agents=frames.agents,
                                errors=frames.errors), tmp_path)
    monkeypatch.undo()
    months = frames.runs["created_at"].dt.strftime("%Y-%m")
    first = months.min()  # months are written in order: the first was written, its old file kept
    assert len(_files(tmp_path)) == months.nunique() + 1
    back = read_lake(tmp_path)
    assert len(back.runs) == 450 and back.runs["id"].is_unique
    expected = frames.runs["disposition"].astype(str).where(months != first, "escalated")
    got = back.runs.set_index("id")["disposition"].astype(str)
    assert got.loc[frames.runs["id"]].tolist() == expected.tolist()  # that month's new records, once each
    assert len(back.tool_calls) == len(frames.tool_calls)
    write_lake(type(frames)(runs=changed, tool_calls=frames.tool_calls, agents=frames.agents,
                            errors=frames.errors), tmp_path)  # the next sync merges it again
    assert len(_files(tmp_path)) == months.nunique()
    again = read_lake(tmp_path)
    assert len(again.runs) == 450 and (again.runs["disposition"] == "escalated").all()
    assert len(again.tool_calls) == len(frames.tool_calls)


def test_crash_mid_file_is_never_read_and_is_cleaned_up(frames, tmp_path, monkeypatch):
    frames.to_lake(tmp_path)
    real = pq.write_table
    calls = []

    def torn(table, where, **kwargs):
        calls.append(where)
        if len(calls) == 2:  # the runs file: half written, then the process dies
            with open(where, "wb") as handle:
                handle.write(b"PAR1 torn")
            raise KeyboardInterrupt("killed mid-write")
        return real(table, where, **kwargs)

    monkeypatch.setattr(lake_write.pq, "write_table", torn)
    changed = frames.runs.copy()
    changed["completed_at"] += pd.Timedelta(seconds=1)
    with pytest.raises(KeyboardInterrupt):
        write_lake(type(frames)(runs=changed, tool_calls=frames.tool_calls, agents=frames.agents,
                                errors=frames.errors), tmp_path)
    monkeypatch.undo()
    back = read_lake(tmp_path)
    assert len(back.runs) == 450 and len(back.tool_calls) == len(frames.tool_calls)
    frames.to_lake(tmp_path)
    assert not list(tmp_path.rglob(".partial-*"))


def test_run_without_a_timestamp_goes_to_a_typed_null_month(frames, tmp_path):
    frames.runs.loc[frames.runs.index[:2], "created_at"] = pd.NaT
    frames.to_lake(tmp_path)
    assert any(name.startswith("none.") for name in _files(tmp_path))
    glob = f"{tmp_path}/runs/**/*.parquet"
    kind, nulls = duckdb.sql(f"SELECT typeof(month), count(*) FILTER (month IS NULL) FROM read_parquet('{glob}', "
                             "hive_partitioning=true) GROUP BY 1").fetchall()[0]
    assert (kind, nulls) == ("VARCHAR", 2)
    assert len(read_lake(tmp_path).runs) == 450
    assert len(read_lake(tmp_path, since="2020-01-01").runs) == 448  # a window leaves them out


def test_slices_by_workspace_and_time(frames, tmp_path):
    other = frames.runs.copy()
    other["workspace_id"] = "ws_other"
    other["id"] = "o" + other["id"]
    calls = frames.tool_calls.copy()
    calls["agent_run_id"] = ("o" + calls["agent_run_id"].astype(str)).astype("category")
    frames.to_lake(tmp_path)
    write_lake(type(frames)(runs=other, tool_calls=calls, agents=frames.agents, errors=frames.errors), tmp_path)
    assert len(read_lake(tmp_path).runs) == 900
    only = read_lake(tmp_path, workspaces="ws_other", since="2026-11-15", until="2026-11-18")
    created = frames.runs["created_at"]
    expected = int(((created >= "2026-11-15") & (created < "2026-11-19")).sum())
    assert len(only.runs) == expected and set(only.runs["workspace_id"].astype(str)) == {"ws_other"}
    assert set(only.tool_calls["agent_run_id"].astype(str)) <= set(only.runs["id"].astype(str))
    with pytest.raises(ValueError, match="workspaces must be"):
        read_lake(tmp_path, workspaces=[""])


def test_duckdb_polars_and_plain_pandas_read_the_same_counts_and_sums(frames, tmp_path):
    polars = pytest.importorskip("polars")
    frames.to_lake(tmp_path)
    frames.to_lake(tmp_path)
    runs = frames.runs
    expected = runs.groupby(["workspace_id", "agent_id"], observed=True).agg(
        n=("id", "size"), cost=("total_cost", "sum"), tokens=("total_tokens", "sum"))
    expected.index = expected.index.set_levels([lvl.astype(str) for lvl in expected.index.levels])
    plain = pd.read_parquet(tmp_path / "runs")
    assert str(plain["total_tokens"].dtype) == "Int64" and str(plain["duration_ms"].dtype) == "Int64"
    assert isinstance(plain["created_at"].dtype, pd.DatetimeTZDtype)
    one_file = pd.read_parquet(next((tmp_path / "runs").rglob("*.parquet")))
    assert {"workspace_id", "month"} <= set(one_file.columns) and str(one_file["input_tokens"].dtype) == "Int64"
    glob = f"{tmp_path}/runs/**/*.parquet"
    types = {r[0]: r[1] for r in duckdb.sql(
        f"DESCRIBE SELECT * FROM read_parquet('{glob}', hive_partitioning=true)").fetchall()}
    assert (types["total_tokens"], types["created_at"], types["month"], types["total_cost"]) == (
        "BIGINT", "TIMESTAMP WITH TIME ZONE", "VARCHAR", "DOUBLE")
    schema = polars.scan_parquet(glob, hive_partitioning=True).collect_schema()
    assert schema["total_tokens"] == polars.Int64 and schema["created_at"] == polars.Datetime("us", "UTC")
    assert schema["month"] == polars.String
    duck = duckdb.sql(f"SELECT workspace_id, agent_id, count(*) n, sum(total_cost) cost, sum(total_tokens) tokens "
                      f"FROM read_parquet('{glob}', hive_partitioning=true) GROUP BY ALL").df()
    pol = (polars.scan_parquet(glob, hive_partitioning=True)
           .group_by(["workspace_id", "agent_id"])
           .agg(n=polars.len(), cost=polars.col("total_cost").sum(), tokens=polars.col("total_tokens").sum())
           .collect().to_pandas())
    pan = plain.groupby(["workspace_id", "agent_id"], observed=True).agg(
        n=("id", "size"), cost=("total_cost", "sum"), tokens=("total_tokens", "sum")).reset_index()
    for got in (duck, pol, pan):
        got = got.astype({"workspace_id": str, "agent_id": str}).set_index(["workspace_id", "agent_id"]).sort_index()
        assert got["n"].astype(int).tolist() == expected.sort_index()["n"].tolist()
        assert got["tokens"].astype(int).tolist() == expected.sort_index()["tokens"].astype(int).tolist()
        assert got["cost"].to_numpy() == pytest.approx(expected.sort_index()["cost"].to_numpy(), rel=1e-12)


def test_schema_is_versioned_and_a_later_version_is_refused(frames, tmp_path):
    frames.to_lake(tmp_path)
    schema = json.loads((tmp_path / "_schema.json").read_text())
    assert schema["version"] == SCHEMA_VERSION and "total_tokens" in schema["tables"]["runs"]
    meta = json.loads(pq.read_schema(next((tmp_path / "runs").rglob("*.parquet"))).metadata[b"conduit_notebook"])
    assert meta["lake_version"] == SCHEMA_VERSION
    schema["version"] = SCHEMA_VERSION + 1
    (tmp_path / "_schema.json").write_text(json.dumps(schema))
    with pytest.raises(ValueError, match="schema version"):
        read_lake(tmp_path)
    with pytest.raises(ValueError, match="schema version"):
        frames.to_lake(tmp_path)


def test_runs_without_a_workspace_need_one(frames, tmp_path):
    frames.runs["workspace_id"] = pd.NA
    with pytest.raises(ValueError, match="workspace must name"):
        frames.to_lake(tmp_path)
    frames.to_lake(tmp_path, workspace="ws_paris")
    assert set(read_lake(tmp_path).runs["workspace_id"].astype(str)) == {"ws_paris"}
    with pytest.raises(FileNotFoundError, match="path must be a lake"):
        read_lake(tmp_path / "nothing")


def test_cli_sync_lake_twice_keeps_each_run_once(tmp_path, capsys):
    for _ in range(2):
        assert cli.main(["sync", "--demo", "--runs", "120", "--traces", "none", "--lake", str(tmp_path)]) == 0
    assert "120 runs upserted" in capsys.readouterr().err
    back = read_lake(tmp_path)
    assert len(back.runs) == 120 and back.runs["id"].is_unique
    from conduit_notebook.lake import read_escalations

    assert len(read_escalations(tmp_path)) == (back.runs["disposition"] == "escalated").sum() > 0
    assert cli.main(["sync", "--demo", "--follow", "--lake", str(tmp_path)]) == 2



def test_sync_config_fetches_each_workspace_into_one_lake_and_resumes(_shared_server, tmp_path, monkeypatch, capsys):
    from conduit_notebook import demo
    from conduit_notebook.lake.sync import load_sync_config, sync_workspaces
    from tests.conftest import DEMO_END

    with demo.serve(runs=150, agents=2, seed=7, end=DEMO_END) as second:
        assert second.workspace_id != _shared_server.workspace_id
        monkeypatch.setenv("TOKEN_A", _shared_server.token)
        monkeypatch.setenv("TOKEN_B", second.token)
        config = tmp_path / "sync.toml"
        config.write_text(f'lake = "lake"\nsince = "60d"\ntraces = "all"\n'
                          f'[[workspaces]]\nid = "{_shared_server.workspace_id}"\ntoken_env = "TOKEN_A"\nrpm = 60000\n'
                          f'base_url = "{_shared_server.base_url}"\n'
                          f'[[workspaces]]\nid = "{second.workspace_id}"\ntoken_env = "TOKEN_B"\nrpm = 50000\n'
                          f'base_url = "{second.base_url}"\n'
                          f'[[workspaces]]\nid = "ws_unset"\ntoken_env = "TOKEN_NOT_SET"\n')
        first = sync_workspaces(config, progress=False)
        assert first["runs"].tolist()[:2] == [450, 150], first["problem"].tolist()
        assert first["problem"].tolist()[2] == "environment variable TOKEN_NOT_SET is not set"
        lake = tmp_path / "lake"
        back = read_lake(lake)
        assert back.runs.groupby("workspace_id", observed=True).size().to_dict() == {
            _shared_server.workspace_id: 450, second.workspace_id: 150}
        assert len(read_lake(lake, workspaces=second.workspace_id).runs) == 150
        assert first["problem"].iloc[:2].isna().all()
        from conduit_notebook.lake import read_escalations

        theirs = read_escalations(lake, workspaces=second.workspace_id)
        assert len(theirs) > 0 and set(theirs["agent_run_id"]) <= set(back.runs["id"])
        assert len(read_escalations(lake)) == len(theirs) + len(read_escalations(lake, workspaces=_shared_server.workspace_id))
        # Resumed: from two days before each workspace's newest run, every trace from the cache.
        second.reset_log()
        assert cli.main(["sync", "--config", str(config)]) == 4  # partial: ws_unset still has its problem
        again = read_lake(lake)
        assert len(again.runs) == 600 and again.runs["id"].is_unique
        assert second.count(r"/runs/[^/]+$") == 0 and second.count(r"/runs$") >= 1
    for bad, message in (('lake = "x"\n', "at least one"),
                         ('lake = "x"\n[[workspaces]]\nid = "w"\ntoken_env = "tok-123"\n', "never the token"),
                         ('lake = "x"\nlimit = 3\n[[workspaces]]\nid = "w"\ntoken_env = "T"\n', "unknown keys")):
        config.write_text(bad)
        with pytest.raises(ValueError, match=message):
            load_sync_config(config)


def test_messages_are_kept_once_each_with_their_dtypes(client, tmp_path):
    frames = fetch_runs(client=client, details=False, cache=False, progress=False)
    ids = frames.runs["id"].iloc[:20]
    got = frames.fetch_messages(ids, progress=False)
    assert len(got) > 0
    frames.to_lake(tmp_path)
    frames.to_lake(tmp_path)  # again: still once each
    back = read_lake(tmp_path).messages
    assert len(back) == len(frames.messages) and back["id"].is_unique
    assert list(back.columns) == list(frames.messages.columns)
    pd.testing.assert_frame_equal(back.sort_values("id", ignore_index=True),
                                  frames.messages.sort_values("id", ignore_index=True), check_categorical=False)


def test_escalations_are_upserted_with_their_latest_status(frames, client, tmp_path):
    from conduit_notebook import escalation_quality, fetch_escalations
    from conduit_notebook.lake import read_escalations

    escalations = fetch_escalations(client=client)
    assert len(escalations) > 5 and (escalations["status"] == "pending").any()
    write_lake(frames, tmp_path, escalations=escalations)
    later = escalations.copy()
    pending = later["status"] == "pending"
    later["status"] = later["status"].astype(object).where(~pending, "dismissed").astype("category")
    write_lake(type(frames)(runs=frames.runs.iloc[:0], tool_calls=frames.tool_calls.iloc[:0], agents=frames.agents,
                            errors=frames.errors), tmp_path, escalations=later, workspace=str(frames.runs["workspace_id"].iloc[0]))
    back = read_escalations(tmp_path)
    assert len(back) == len(escalations) and back["id"].is_unique and not (back["status"] == "pending").any()
    def kinds(frame):
        return {k: "category" if isinstance(v, pd.CategoricalDtype) else str(v) for k, v in frame.dtypes.items()}
    assert kinds(back) == kinds(escalations)
    runs = read_lake(tmp_path).runs
    expected = escalation_quality(frames.runs, later)
    pd.testing.assert_frame_equal(escalation_quality(runs, back), expected, check_categorical=False)
