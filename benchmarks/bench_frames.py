"""runs_frame + tool_calls_frame against the naive json_normalize baseline, on the same records.

    python benchmarks/bench_frames.py [--runs 100000]

Targets (issue 3): at least 8 times faster, and the two frames' deep memory at most half the
baseline's. Prints ratios, measured in this one process (absolute times drift between machines).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from _common import best_of, machine
from conduit_notebook import runs_frame, tool_calls_frame
from conduit_notebook.demo import DemoData


def baseline(records):
    runs = pd.json_normalize(records)
    calls = pd.json_normalize(records, record_path="tool_trace",
                              meta=["id", "agent_id", "created_at", "status", "disposition"])
    for column in ("created_at", "completed_at"):
        runs[column] = pd.to_datetime(runs[column], utc=True, format="ISO8601")
    calls["created_at"] = pd.to_datetime(calls["created_at"], utc=True, format="ISO8601")
    return runs, calls


def ours(records):
    return runs_frame(records), tool_calls_frame(records)


def deep_memory(frames) -> int:
    return int(sum(f.memory_usage(deep=True).sum() for f in frames))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    started = time.perf_counter()
    data = DemoData(runs=args.runs, agents=6, seed=0)
    generated = time.perf_counter() - started
    records = data.records()
    built = time.perf_counter() - started
    for r in records:  # the baseline's record_path needs a list in every record
        if r["tool_trace"] is None:
            r["tool_trace"] = []
    calls = sum(len(r["tool_trace"]) for r in records)
    print(f"demo data: {args.runs:,} runs generated in {generated:.2f} s, "
          f"full records in {built:.2f} s; {calls:,} tool calls ({calls / args.runs:.2f} a run)")

    base_s, base_frames = best_of(lambda: baseline(records), args.repeat)
    ours_s, our_frames = best_of(lambda: ours(records), args.repeat)
    base_mem, our_mem = deep_memory(base_frames), deep_memory(our_frames)
    assert len(our_frames[0]) == len(base_frames[0]) and len(our_frames[1]) == len(base_frames[1])
    print(f"baseline (json_normalize x2 + to_datetime): {base_s:.3f} s, {base_mem / 1e6:,.1f} MB")
    print(f"runs_frame + tool_calls_frame:              {ours_s:.3f} s, {our_mem / 1e6:,.1f} MB")
    print(f"speed-up: {base_s / ours_s:.1f}x (target >= 8x)")
    print(f"memory:   {our_mem / base_mem:.4f} of the baseline (target <= 0.5)")


if __name__ == "__main__":
    main()
