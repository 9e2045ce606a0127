"""runs_frame + tool_calls_frame against two baselines, on the same records, in one process.

    python benchmarks/bench_frames.py [--runs 100000] [--repeat 3]

Baselines:
- the naive pandas build: ``pd.json_normalize`` twice and ``pd.to_datetime``;
- a ~40-line pyarrow build (``pyarrow_build`` below): one ``pa.array(records, type=struct)`` pass
  for the runs, the tool calls flattened in Python with their input/output serialized by orjson,
  categoricals by ``dictionary_encode``: the strongest quick build we know.
The repetitions are interleaved (naive, pyarrow, ours; again) and the figures are medians.

Memory: the frames' deep memory (``memory_usage(deep=True)``, blind to the insides of Python
objects) and, in a fresh process for each builder, the peak RSS (VmHWM) while building and the
RSS held by the frames once the records are gone.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
from itertools import chain
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from _common import machine

from conduit_notebook import runs_frame, tool_calls_frame
from conduit_notebook.demo import DemoData


def naive(records):
    runs = pd.json_normalize(records)
    calls = pd.json_normalize([r for r in records if r["tool_trace"]], record_path="tool_trace",
                              meta=["id", "agent_id", "created_at", "status", "disposition"])
    for column in ("created_at", "completed_at"):
        runs[column] = pd.to_datetime(runs[column], utc=True, format="ISO8601")
    calls["created_at"] = pd.to_datetime(calls["created_at"], utc=True, format="ISO8601")
    return runs, calls


_TEXT = ["id", "run_id", "error", "created_at", "completed_at", "trigger_event_id", "session_id",
         "trace_id", "response", "reflection", "channel"]
_KEYS = ["agent_id", "workspace_id", "status", "disposition", "disposition_reason", "contact_id",
         "conversation_id", "trigger_id"]
_RUN = pa.struct([(n, pa.string()) for n in _TEXT + _KEYS]
                 + [("duration_ms", pa.int64()), ("total_cost", pa.float64()),
                    ("token_usage", pa.struct([("input", pa.int64()), ("output", pa.int64())]))])
_INTS = {pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int32Dtype(), pa.string(): pd.StringDtype("pyarrow")}


def pyarrow_build(records):
    """The same two tables with pyarrow alone, written the way one would in an afternoon."""
    table = pa.Table.from_struct_array(pa.array(records, type=_RUN))
    usage = table["token_usage"].combine_chunks()
    columns = {}
    for name in table.column_names:
        column = table[name]
        if name in ("created_at", "completed_at"):
            column = pc.cast(column, pa.timestamp("ns", "UTC"))
        elif name in _KEYS:
            column = pc.dictionary_encode(column)
        if name != "token_usage":
            columns[name] = column
    tokens_in, tokens_out = usage.field("input"), usage.field("output")
    columns.update(input_tokens=tokens_in, output_tokens=tokens_out, total_tokens=pc.add(tokens_in, tokens_out))
    runs = pa.table(columns)

    traces = [r["tool_trace"] or () for r in records]
    counts = np.fromiter(map(len, traces), dtype=np.int64, count=len(traces))
    calls = list(chain.from_iterable(traces))
    parent = np.repeat(np.arange(len(records)), counts)
    step = np.arange(len(calls)) - np.repeat(np.cumsum(counts) - counts, counts)
    tool_calls = pa.table({
        "agent_run_id": runs["id"].take(parent),
        "agent_id": runs["agent_id"].take(parent),
        "step": pa.array(step.astype(np.int32)),
        "name": pc.dictionary_encode(pa.array([c["name"] for c in calls], pa.string())),
        "input": pa.array([orjson.dumps(c["input"]).decode() for c in calls], pa.string()),
        "output": pa.array([orjson.dumps(c["output"]).decode() for c in calls], pa.string()),
        "created_at": runs["created_at"].take(parent),
        "status": runs["status"].take(parent),
        "disposition": runs["disposition"].take(parent),
    })
    return (runs.to_pandas(types_mapper=_INTS.get), tool_calls.to_pandas(types_mapper=_INTS.get))


def ours(records):
    return runs_frame(records), tool_calls_frame(records)


BUILDERS = {"naive": naive, "pyarrow": pyarrow_build, "ours": ours}


def deep_memory(frames) -> int:
    return int(sum(f.memory_usage(deep=True).sum() for f in frames))


def status_mb() -> dict[str, float]:
    with open("/proc/self/status") as status:
        return {line.split(":")[0]: int(line.split()[1]) / 1000 for line in status
                if line.startswith(("VmHWM", "VmRSS"))}


def peak(builder: str, runs: int) -> None:
    """In a fresh process: RSS with the records alive, peak while building, held after."""
    records = DemoData(runs=runs, agents=6, seed=0).records()
    before = status_mb()["VmRSS"]
    frames = BUILDERS[builder](records)
    del records
    gc.collect()
    after = status_mb()
    print(f"{before:.0f} {after['VmHWM']:.0f} {after['VmRSS']:.0f} {len(frames[0])}")


def measure_peaks(runs: int) -> dict[str, list[float]]:
    out = {}
    for name in BUILDERS:
        line = subprocess.run([sys.executable, __file__, "--runs", str(runs), "--peak", name],
                              capture_output=True, text=True, check=True, cwd=Path(__file__).parent).stdout
        out[name] = [float(v) for v in line.split()]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peak", choices=list(BUILDERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak:
        return peak(args.peak, args.runs)
    print(machine())
    started = time.perf_counter()
    data = DemoData(runs=args.runs, agents=6, seed=0)
    generated = time.perf_counter() - started
    records = data.records()
    built = time.perf_counter() - started
    n_calls = sum(len(r["tool_trace"] or ()) for r in records)
    print(f"demo data: {args.runs:,} runs generated in {generated:.2f} s, "
          f"full records in {built:.2f} s; {n_calls:,} tool calls ({n_calls / args.runs:.2f} a run)")

    times: dict[str, list[float]] = {name: [] for name in BUILDERS}
    memory: dict[str, int] = {}
    for _ in range(args.repeat):  # interleaved: the machine's load hits every builder alike
        for name, build in BUILDERS.items():
            gc.collect()
            started = time.perf_counter()
            frames = build(records)
            times[name].append(time.perf_counter() - started)
            assert len(frames[0]) == args.runs and len(frames[1]) == n_calls, name
            memory[name] = deep_memory(frames)
            del frames
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"medians of {args.repeat} interleaved runs")
    for name in BUILDERS:
        print(f"  {name:8s} {med[name]:7.3f} s (runs: {', '.join(f'{t:.2f}' for t in times[name])}), "
              f"deep memory {memory[name] / 1e6:7.1f} MB")
    print(f"ours: {med['naive'] / med['ours']:.1f}x faster than naive pandas, "
          f"{med['pyarrow'] / med['ours']:.2f}x the speed of the pyarrow build; deep memory "
          f"{memory['ours'] / memory['naive']:.3f} of naive, {memory['ours'] / memory['pyarrow']:.3f} of pyarrow")
    del records
    peaks = measure_peaks(args.runs)
    print("fresh process per builder (MB): RSS with the records | peak while building | held by the frames "
          "after the records are freed")
    for name, (before, high, held, _) in peaks.items():
        print(f"  {name:8s} {before:7.0f} | {high:7.0f} | {held:7.0f}")


if __name__ == "__main__":
    main()
