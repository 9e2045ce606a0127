"""The Parquet lake past one laptop: append throughput, file count, DuckDB against pandas, peak
memory.

    nice python benchmarks/bench_lake.py [--runs 20000000] [--workspaces 20] [--dir /tmp/conduit-lake]

1. Nightly appends: ``--nights`` syncs of every workspace (``--per-night`` runs each) through
   ``write_lake``, the same runs re-sent the next night as a sync with ``overlap`` would (so
   each night merges its month's file again): runs appended per second, files after each night.
2. A synthetic lake of ``--runs`` runs over ``--workspaces`` workspaces and 12 months
   (generated, not fetched: ``write_lake`` of one frame per workspace and month).
3. In fresh processes (their own peak RSS, VmHWM): ``Lake.summarize(by=["workspace_id",
   "agent_name"])``, ``cost_breakdown``, ``rates`` and the daily ``series`` on DuckDB with a
   ``memory_limit``, over the whole lake; and on the slice pandas can hold (``--slice``
   workspaces), ``read_lake`` + the pandas functions against DuckDB on the same slice (ratio).
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import machine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AGENTS = ["Reservations", "Check-in", "Billing", "Concierge", "Housekeeping"]
DISPOSITIONS = ["resolved", "escalated", "awaiting_guest", "handed_off", "no_action_needed"]
STATUSES = ["completed", "failed", "running"]


def _texts(prefix: str, numbers: np.ndarray) -> pd.Series:
    """prefix + number, made by Arrow (a Python f-string per run is minutes at 20 M)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    joined = pc.binary_join_element_wise(pa.scalar(prefix), pc.cast(pa.array(numbers), pa.string()), "")
    return pd.Series(joined.to_numpy(zero_copy_only=False), dtype=object)


def synthetic_runs(n: int, workspace: str, start: pd.Timestamp, days: int, seed: int) -> pd.DataFrame:
    """``n`` runs of one workspace spread over ``days`` from ``start``, with the package's dtypes."""
    rng = np.random.default_rng(seed)
    created = start + pd.to_timedelta(np.sort(rng.uniform(0, days * 86400, n)), unit="s")
    status = rng.choice(STATUSES, n, p=[0.93, 0.05, 0.02])
    done = status != "running"
    duration = np.where(done, rng.lognormal(8.5, 0.6, n).astype(np.int64), 0)
    tokens_in = rng.integers(500, 6000, n)
    tokens_out = rng.integers(50, 900, n)
    agent = rng.choice(len(AGENTS), n)
    frame = pd.DataFrame({
        "id": _texts(f"{workspace}_{seed}_", np.arange(n)).astype("string[pyarrow]"),
        "agent_id": pd.Categorical.from_codes(agent, [f"{workspace}_agent{a}" for a in range(len(AGENTS))]),
        "agent_name": pd.Categorical.from_codes(agent, AGENTS),
        "workspace_id": pd.Categorical.from_codes(np.zeros(n, dtype=int), [workspace]),
        "status": pd.Categorical(status),
        "disposition": pd.Categorical(np.where(status == "completed", rng.choice(DISPOSITIONS, n), None)),
        "created_at": created,
        "completed_at": pd.Series(created + pd.to_timedelta(duration, unit="ms")).where(done),
        "duration_ms": pd.array(np.where(done, duration, 0), dtype="Int64"),
        "input_tokens": pd.array(tokens_in, dtype="Int64"),
        "output_tokens": pd.array(tokens_out, dtype="Int64"),
        "total_tokens": pd.array(tokens_in + tokens_out, dtype="Int64"),
        "total_cost": (tokens_in * 3e-6 + tokens_out * 15e-6),
        "conversation_id": pd.Categorical.from_codes(rng.integers(0, max(n // 3, 1), n),
                                                     _texts(f"c{workspace}_{seed}_", np.arange(max(n // 3, 1)))),
    })
    frame.loc[~done, ["duration_ms"]] = pd.NA
    return frame


class Frames:
    """What write_lake takes: runs and (no) tool calls."""

    def __init__(self, runs: pd.DataFrame) -> None:
        from conduit_notebook import tool_calls_frame

        self.runs = runs
        self.tool_calls = tool_calls_frame([])


def nightly(root: Path, workspaces: int, nights: int, per_night: int) -> None:
    from conduit_notebook.lake import write_lake

    print(f"\n## 1. Nightly appends: {workspaces} workspaces x {per_night:,} runs a night, {nights} nights")
    start = pd.Timestamp("2026-11-01", tz="UTC")
    previous: dict[str, pd.DataFrame] = {}
    for night in range(nights):
        began = time.perf_counter()
        rows = 0
        for w in range(workspaces):
            ws = f"ws{w:02d}"
            fresh = synthetic_runs(per_night, ws, start + pd.Timedelta(days=night), 1, seed=night * 100 + w)
            batch = pd.concat([previous.get(ws, fresh.iloc[:0]), fresh], ignore_index=True)  # overlap: re-sent
            write_lake(Frames(batch), root)
            previous[ws] = fresh
            rows += len(batch)
        took = time.perf_counter() - began
        files = len(list((root / "runs").rglob("*.parquet")))
        print(f"night {night + 1}: {rows:,} runs sent ({per_night * workspaces:,} new) in {took:.1f} s = "
              f"{rows / took:,.0f} runs/s; {files} files")


def build(root: Path, runs: int, workspaces: int) -> float:
    from conduit_notebook.lake import write_lake

    per_file = runs // (workspaces * 12)
    began = time.perf_counter()
    for w in range(workspaces):
        for m in range(12):
            start = pd.Timestamp("2026-01-01", tz="UTC") + pd.DateOffset(months=m)
            write_lake(Frames(synthetic_runs(per_file, f"ws{w:02d}", start, 28, seed=w * 12 + m)), root)
    return time.perf_counter() - began


MEASURE = """
import sys, time
sys.path.insert(0, {root!r})
def mb():
    return next(int(l.split()[1]) / 1000 for l in open("/proc/self/status") if l.startswith("VmHWM"))
out = {{}}
if {engine!r} == "duckdb":
    from conduit_notebook.lake import Lake
    lake = Lake({path!r}, workspaces={workspaces!r}, memory_limit={limit!r})
    jobs = {{"summarize": lambda: lake.summarize(["workspace_id", "agent_name"]),
            "cost_breakdown": lambda: lake.cost_breakdown(["workspace_id", "agent_name"]),
            "rates": lambda: lake.rates("workspace_id"),
            "daily series": lambda: lake.series("escalation_rate", by="agent_name")}}
else:
    from conduit_notebook import summarize, cost_breakdown
    from conduit_notebook.lake import read_lake
    from conduit_notebook.investigate.changes import bucket_values
    started = time.perf_counter()
    runs = read_lake({path!r}, workspaces={workspaces!r}).runs
    out["read_lake"] = (time.perf_counter() - started, mb())
    jobs = {{"summarize": lambda: summarize(runs, by=["workspace_id", "agent_name"]),
            "cost_breakdown": lambda: cost_breakdown(runs, by=["workspace_id", "agent_name"]),
            "rates": lambda: summarize(runs, by="workspace_id")["failure_rate"],
            "daily series": lambda: bucket_values(runs, "escalation_rate", "D", "agent_name")}}
for name, job in jobs.items():
    started = time.perf_counter()
    job()
    out[name] = (time.perf_counter() - started, mb())
print(repr(out))
"""


def measure(path: Path, engine: str, workspaces: list[str] | None, limit: str) -> dict:
    code = MEASURE.format(root=str(ROOT), path=str(path), engine=engine, workspaces=workspaces, limit=limit)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return ast.literal_eval(done.stdout[done.stdout.rindex("{"):].strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20_000_000)
    parser.add_argument("--workspaces", type=int, default=20)
    parser.add_argument("--slice", type=int, default=2, help="workspaces pandas summarizes (what fits)")
    parser.add_argument("--nights", type=int, default=5)
    parser.add_argument("--per-night", type=int, default=5_000, dest="per_night")
    parser.add_argument("--memory-limit", default="1GB", dest="limit")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/conduit-lake-bench"))
    parser.add_argument("--reuse", action="store_true", help="query the lake a previous run left in --dir")
    args = parser.parse_args()
    print(f"# bench_lake ({machine()})")
    root = args.dir / "lake"
    if not args.reuse:
        shutil.rmtree(args.dir, ignore_errors=True)
        nightly(args.dir / "nightly", args.workspaces, args.nights, args.per_night)
        took = build(root, args.runs, args.workspaces)
        print(f"\n## 2. Synthetic lake: {args.runs:,} runs, {args.workspaces} workspaces x 12 months written in "
              f"{took:.0f} s ({args.runs / took:,.0f} runs/s)")
    files = list((root / "runs").rglob("*.parquet"))
    size = sum(f.stat().st_size for f in files) / 1e9
    print(f"lake: {len(files)} files, {size:.2f} GB")
    print(f"\n## 3. DuckDB (memory_limit {args.limit}) over every run, and DuckDB vs pandas on "
          f"{args.slice} workspaces")
    whole = measure(root, "duckdb", None, args.limit)
    part = [f"ws{w:02d}" for w in range(args.slice)]
    duck = measure(root, "duckdb", part, args.limit)
    pand = measure(root, "pandas", part, args.limit)
    print("| step | DuckDB, all runs: s (peak RSS MB) | DuckDB, slice: s | pandas, slice: s | pandas / DuckDB |")
    print("| --- | --- | --- | --- | --- |")
    if "read_lake" in pand:
        print(f"| read_lake (pandas) | | | {pand['read_lake'][0]:.2f} ({pand['read_lake'][1]:,.0f} MB) | |")
    for name in ("summarize", "cost_breakdown", "rates", "daily series"):
        (tw, mw), (td, _), (tp, mp) = whole[name], duck[name], pand[name]
        print(f"| {name} | {tw:.2f} ({mw:,.0f} MB) | {td:.2f} | {tp:.2f} ({mp:,.0f} MB) | {tp / td:.2f} |")


if __name__ == "__main__":
    main()
