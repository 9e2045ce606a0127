"""How many cached runs with traces fit a laptop: peak memory of reopening and summarizing.

    python benchmarks/bench_scale.py [--runs 250000 500000 1000000] [--dir /tmp/conduit-scale]

For each size, a cache of that many runs with their traces is written once (100,000 demo runs
repeated with new ids, each copy 4 weeks earlier, as in bench_analysis.py; kept in --dir for the
next time), then a fresh process opens it, loads the runs and tool calls, and runs
``summarize(runs, by=["agent_name", "disposition"], freq="D")`` and ``tool_stats(calls, runs)``.
It reports that process's peak RSS (VmHWM) after each step and the seconds each step took.
Target (issue 12): 3,000,000 runs with traces reopen and summarize within 8 GB, measured or
extrapolated from a straight line through the peaks of the smaller sizes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import machine

SOURCE = "http://scale#"
BASE = 100_000
CHUNK = 25_000
ROOT = Path(__file__).resolve().parents[1]

MEASURE = """
import sys, time
sys.path.insert(0, {root!r})

def mb():
    return {{k: int(v.split()[0]) / 1000 for k, v in (line.split(":", 1) for line in open("/proc/self/status"))
             if k in ("VmHWM", "VmRSS")}}

from conduit_notebook import RunCache, summarize, tool_stats
steps = {{"imports": (0.0, mb())}}
started = time.perf_counter()
with RunCache({path!r}) as store:
    runs, calls = store.load({source!r})
steps["reopen"] = (time.perf_counter() - started, mb())
started = time.perf_counter()
summarize(runs, by=["agent_name", "disposition"], freq="D")
steps["summarize"] = (time.perf_counter() - started, mb())
started = time.perf_counter()
tool_stats(calls, runs)
steps["tool_stats"] = (time.perf_counter() - started, mb())
print(repr({{"runs": len(runs), "calls": len(calls), "steps": steps}}))
"""


def write_cache(path: Path, runs: int) -> None:
    from conduit_notebook import RunCache
    from conduit_notebook.demo import DemoData

    records = DemoData(runs=BASE, agents=6, seed=0).records()
    created = pd.to_datetime(pd.Series([r["created_at"] for r in records]), utc=True, format="ISO8601")
    started = time.perf_counter()
    with RunCache(path) as store:
        for k in range(max(1, runs // BASE)):
            stamps = (created - pd.Timedelta(days=28 * k)).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").tolist()
            for start in range(0, BASE, CHUNK):
                chunk = [{**r, "id": f"{r['id']}_{k}", "created_at": stamps[start + i]}
                         for i, r in enumerate(records[start:start + CHUNK])]
                store.put(SOURCE, chunk, detailed=True)
        store.compact(SOURCE, force=True)
    print(f"  wrote {runs:,} runs in {time.perf_counter() - started:.0f} s: {path.stat().st_size / 1e6:,.0f} MB")


def measure(path: Path) -> dict:
    code = MEASURE.format(root=str(ROOT), path=str(path), source=SOURCE)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return eval(out)  # noqa: S307 - our own subprocess's repr of a dict of numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, nargs="+", default=[250_000, 500_000, 1_000_000])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/conduit-scale"))
    parser.add_argument("--target", type=int, default=3_000_000)
    args = parser.parse_args()
    print(machine())
    args.dir.mkdir(parents=True, exist_ok=True)
    sizes, peaks = [], []
    for runs in args.runs:
        path = args.dir / f"runs-{runs}.sqlite"
        if not path.exists():
            write_cache(path, runs)
        result = measure(path)
        steps = result["steps"]
        print(f"{result['runs']:>10,} runs, {result['calls']:>10,} tool calls: "
              + ", ".join(f"{name} {seconds:.1f} s -> peak {m['VmHWM']:,.0f} MB"
                          for name, (seconds, m) in steps.items())
              + f"; held at the end {steps['tool_stats'][1]['VmRSS']:,.0f} MB")
        sizes.append(result["runs"])
        peaks.append(steps["tool_stats"][1]["VmHWM"])
    if len(sizes) >= 2:
        slope, intercept = np.polyfit(sizes, peaks, 1)
        fitted = np.polyval([slope, intercept], sizes)
        worst = max(abs(f - p) / p for f, p in zip(fitted, peaks, strict=False))
        at_target = slope * args.target + intercept
        print(f"peak RSS ~ {intercept:,.0f} MB + {slope * 1e6:,.0f} MB per million runs (largest miss of the "
              f"line: {worst:.1%}); at {args.target:,} runs: {at_target:,.0f} MB "
              f"({'within' if at_target <= 8000 else 'OVER'} 8 GB)")
    print(json.dumps({"sizes": sizes, "peaks_mb": peaks}))


if __name__ == "__main__":
    main()
