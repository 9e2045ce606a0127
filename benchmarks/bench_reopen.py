"""Reopening the cache: 100,000 cached runs with traces into frames, against Parquet and JSON.

    python benchmarks/bench_reopen.py [--runs 100000] [--repeat 3]

Baselines, measured in the same process, interleaved:

- Parquet -> pandas: the very same two tables (runs, tool calls with ``input``/``output`` as
  JSON text) written as two Parquet files and read back with ``pandas.read_parquet``;
- ``json.loads`` of the same records as one JSON document (the parse alone, no DataFrame),
  with the garbage collector paused;
- ``orjson.loads`` of the same document, GC paused: the fastest JSON parse in Python, the
  strongest form of that baseline.

Targets (issue 12): the cache within 2x of Parquet -> pandas, at least 4x faster than json.loads.
Peak memory: a fresh process that only reopens the cache, its peak RSS (VmHWM), against a fresh
process that only imports pandas and pyarrow; target <= 350 MB for 100,000 runs with traces.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pandas as pd
from _common import best_of, machine

from conduit_notebook import RunCache
from conduit_notebook.demo import DemoData

SOURCE = "http://bench#"
ROOT = Path(__file__).resolve().parents[1]
PEAK = """
import sys, gc
sys.path.insert(0, {root!r})
import pandas, pyarrow
from conduit_notebook import RunCache
if {reopen}:
    with RunCache({path!r}) as store:
        runs, calls = store.load({source!r})
    assert len(runs) == {runs}
for line in open("/proc/self/status"):
    if line.startswith(("VmHWM", "VmRSS")):
        print(line.split()[0], int(line.split()[1]) // 1024)
"""


def peak_mb(path: Path, runs: int, reopen: bool) -> dict[str, int]:
    code = PEAK.format(root=str(ROOT), path=str(path), source=SOURCE, runs=runs, reopen=reopen)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {k.rstrip(":"): int(v) for k, v in (line.split() for line in out.splitlines())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    records = DemoData(runs=args.runs, agents=6, seed=0).records()
    document = json.dumps(records)
    n_calls = sum(len(r["tool_trace"] or []) for r in records)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.sqlite"
        started = time.perf_counter()
        with RunCache(path) as store:
            for start in range(0, len(records), 200):  # as a fetch writes: 200 traces at a time
                store.put(SOURCE, records[start:start + 200], detailed=True)
            store.compact(SOURCE, force=True)
        written = time.perf_counter() - started
        size = path.stat().st_size
        print(f"cache: {args.runs:,} runs written in {written:.1f} s, {size / 1e6:.1f} MB on disk "
              f"(the JSON document: {len(document) / 1e6:.1f} MB)")
        del records  # every contender runs with the same objects alive: the document only

        with RunCache(path) as store:
            runs, calls = store.load(SOURCE)
        runs.to_parquet(Path(tmp) / "runs.parquet")
        calls.to_parquet(Path(tmp) / "calls.parquet")
        del runs, calls

        def reopen():
            with RunCache(path) as store:
                runs, calls = store.load(SOURCE)
            return len(runs), len(calls)

        def parquet():
            return (len(pd.read_parquet(Path(tmp) / "runs.parquet")),
                    len(pd.read_parquet(Path(tmp) / "calls.parquet")))

        def parse():
            gc.disable()
            try:
                return len(json.loads(document))
            finally:
                gc.enable()

        def parse_orjson():
            gc.disable()
            try:
                return len(orjson.loads(document))
            finally:
                gc.enable()

        ours, pq, js, oj = [], [], [], []
        for _ in range(args.repeat):  # interleaved: drift hits every contender alike
            ours.append(best_of(reopen, 1)[0])
            pq.append(best_of(parquet, 1)[0])
            js.append(best_of(parse, 1)[0])
            oj.append(best_of(parse_orjson, 1)[0])
        result = reopen()
        assert result == (args.runs, n_calls) and parquet() == result
        base = peak_mb(path, args.runs, reopen=False)
        peak = peak_mb(path, args.runs, reopen=True)
    print(f"json.loads of the records (GC paused): {min(js):.3f} s (runs: {', '.join(f'{t:.3f}' for t in js)})")
    print(f"orjson.loads of the records (GC paused): {min(oj):.3f} s (runs: {', '.join(f'{t:.3f}' for t in oj)})")
    print(f"Parquet -> pandas, same tables:        {min(pq):.3f} s (runs: {', '.join(f'{t:.3f}' for t in pq)})")
    print(f"cache -> runs + tool_calls:            {min(ours):.3f} s (runs: {', '.join(f'{t:.3f}' for t in ours)}; "
          f"{args.runs:,} runs, {n_calls:,} tool calls)")
    ratios_pq = [o / p for o, p in zip(ours, pq, strict=False)]
    ratios_js = [j / o for o, j in zip(ours, js, strict=False)]
    print(f"cache / Parquet: {min(ratios_pq):.2f}-{max(ratios_pq):.2f}x the time (target <= 2x)")
    print(f"json.loads / cache: {min(ratios_js):.1f}-{max(ratios_js):.1f}x faster (target >= 4x)")
    ratios_oj = [j / o for o, j in zip(ours, oj, strict=False)]
    print(f"orjson.loads / cache: {min(ratios_oj):.1f}-{max(ratios_oj):.1f}x faster")
    print(f"peak RSS of a process reopening the cache: {peak['VmHWM']} MB (held after: {peak['VmRSS']} MB; "
          f"imports alone: {base['VmHWM']} MB; target <= 350 MB)")


if __name__ == "__main__":
    main()
