"""RunFrames.to_parquet / read_parquet, and the same files read by DuckDB."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from conduit_notebook import fetch_runs, read_parquet


@pytest.fixture
def frames(server, client):
    return fetch_runs(client=client)


def test_round_trip_keeps_values_and_dtypes(frames, tmp_path):
    frames.to_parquet(tmp_path / "export")
    back = read_parquet(tmp_path / "export")
    pd.testing.assert_frame_equal(frames.runs, back.runs)
    pd.testing.assert_frame_equal(frames.tool_calls, back.tool_calls)
    # JSON inputs and outputs come back as JSON text, decoded on access.
    inputs = back.tool_calls.conduit.input_json()
    assert isinstance(inputs.iloc[0], (dict, str)) and inputs.index.equals(back.tool_calls.index)


def test_partitioned_by_date_and_agent(frames, tmp_path):
    frames.to_parquet(tmp_path)
    days = {p.name for p in (tmp_path / "runs").iterdir()}
    expected_days = {f"date={d:%Y-%m-%d}" for d in frames.runs["created_at"].dt.date.unique()}
    assert days == expected_days
    agents = {p.name for p in (tmp_path / "runs").glob("date=*/agent_id=*")}
    assert {a.split("=", 1)[1] for a in agents} == set(frames.runs["agent_id"].astype(str))
    assert list((tmp_path / "tool_calls").glob("date=*/agent_id=*/*.parquet"))


def test_duckdb_reads_the_same_rows_and_totals(frames, tmp_path):
    frames.to_parquet(tmp_path)
    runs_glob = str(tmp_path / "runs" / "**" / "*.parquet")
    calls_glob = str(tmp_path / "tool_calls" / "**" / "*.parquet")
    count, cost, tokens = duckdb.sql(
        f"SELECT count(*), sum(total_cost), sum(total_tokens) FROM read_parquet('{runs_glob}', hive_partitioning = true)"
    ).fetchall()[0]
    assert count == len(frames.runs)
    assert cost == pytest.approx(frames.runs["total_cost"].sum())
    assert tokens == int(frames.runs["total_tokens"].sum())
    per_agent = duckdb.sql(
        f"SELECT agent_id, count(*) AS n FROM read_parquet('{runs_glob}', hive_partitioning = true) GROUP BY 1"
    ).df().set_index("agent_id")["n"].to_dict()
    assert per_agent == frames.runs["agent_id"].astype(str).value_counts().to_dict()
    calls, names = duckdb.sql(
        f"SELECT count(*), count(DISTINCT name) FROM read_parquet('{calls_glob}', hive_partitioning = true)"
    ).fetchall()[0]
    assert calls == len(frames.tool_calls) and names == frames.tool_calls["name"].nunique()
    # input and output are JSON text that DuckDB can query.
    reservations = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{calls_glob}') "
        "WHERE name = 'get_reservation' AND json_extract_string(input, '$.reservation_id') LIKE 'res_%'"
    ).fetchall()[0][0]
    assert reservations == int((frames.tool_calls["name"] == "get_reservation").sum())


def test_existing_export_is_not_overwritten_by_accident(frames, tmp_path):
    frames.to_parquet(tmp_path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        frames.to_parquet(tmp_path)
    first_ten = frames.runs["id"].head(10)
    frames.tool_calls = frames.tool_calls[frames.tool_calls["agent_run_id"].isin(first_ten)]
    frames.runs = frames.runs.head(10)
    frames.to_parquet(tmp_path, overwrite=True)
    assert len(read_parquet(tmp_path).runs) == 10


def test_read_parquet_names_what_it_expects(tmp_path):
    with pytest.raises(FileNotFoundError, match="written by RunFrames.to_parquet"):
        read_parquet(tmp_path)
