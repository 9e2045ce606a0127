"""Reopening the cache: 100,000 cached runs with traces into frames, against json.loads.

    python benchmarks/bench_reopen.py [--runs 100000]

Baseline: ``json.loads`` of the same records as one JSON document (the parse alone, before any
DataFrame is built). Target (issue 3): loading from the cache at least 3 times faster.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import best_of, machine
from conduit_notebook import RunCache
from conduit_notebook.demo import DemoData

SOURCE = "http://bench#"


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
            store.compact(SOURCE)
        written = time.perf_counter() - started
        size = path.stat().st_size
        print(f"cache: {args.runs:,} runs written in {written:.1f} s, {size / 1e6:.1f} MB on disk "
              f"(the JSON document: {len(document) / 1e6:.1f} MB)")
        del records  # both contenders run with the same objects alive: the document only

        def reopen():
            with RunCache(path) as store:
                runs, calls = store.load(SOURCE)
            return len(runs), len(calls)

        base_s, parsed = best_of(lambda: len(json.loads(document)), args.repeat)
        ours_s, (runs, calls) = best_of(reopen, args.repeat)
    assert runs == parsed == args.runs and calls == n_calls
    print(f"json.loads of the records:      {base_s:.3f} s")
    print(f"cache -> runs + tool_calls:     {ours_s:.3f} s ({runs:,} runs, {calls:,} tool calls)")
    print(f"speed-up: {base_s / ours_s:.1f}x (target >= 3x)")


if __name__ == "__main__":
    main()
