"""The trace budget on a busy workspace, and two processes sharing one workspace's pace.

    python benchmarks/bench_budget.py [--runs-per-day 1000] [--speedup 25]

Time runs faster than real by --speedup: the demo server and the client pace at 120 x speedup
requests a minute (a sliding window of 60 s / speedup at the server), and "auto" gets 2 minutes / speedup
of that pace, i.e. the same 240 traces it gets at the real 120 a minute. So every request count
is what a real fetch makes, and every time is the real one divided by --speedup.

Scenario 1: the first fetch of a week, cold cache, with details="auto" against details=True
(the baseline, measured in the same process): time to the first frames, the ratio, requests.
Then the same "auto" fetch again (cache warm): requests.

Scenario 2: two processes on the same workspace, sharing one cache location (so one pace file),
against a server at its limit, each fetching traces; then the same without sharing
(shared_pace=False), as before this change: 429s and time against the ideal.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import machine

from conduit_notebook import ConduitClient, demo, fetch_runs, traces

END = datetime(2026, 11, 20, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


def first_fetch(args: argparse.Namespace, tmp: Path) -> None:
    rpm = 120 * args.speedup
    traces.AUTO_TRACE_SECONDS = 120.0 / args.speedup  # the traces "auto" takes at the real 120 a minute
    with demo.serve(runs_per_day=args.runs_per_day, days=14, agents=6, seed=0, end=END,
                    requests_per_minute=rpm, rate_window=60.0 / args.speedup) as server:
        since = datetime(2026, 11, 13, tzinfo=UTC)
        results = {}
        for details in ("auto", True):
            server.reset_log()
            client = ConduitClient(server.token, base_url=server.base_url, requests_per_minute=rpm,
                                   shared_pace=False)
            started = time.monotonic()
            frames = fetch_runs(client=client, since=since, details=details, cache=tmp / f"{details}.sqlite",
                                progress=False)
            took = time.monotonic() - started
            results[details] = (took, frames, server.count(), server.count(status=429))
            print(f"  details={details!r}: {len(frames.runs):,} runs, {frames.traced:,} traced, "
                  f"{frames.stats.requests:,} requests ({frames.stats.list_requests:,} list, "
                  f"{frames.stats.detail_requests:,} trace), {results[details][3]} refused; {took:.1f} s "
                  f"(ideal at this pace {frames.stats.requests / (rpm - 2) * 60:.1f} s; at 120 a minute: "
                  f"{frames.stats.requests / 118:.1f} min)")
        ratio = results[True][0] / results["auto"][0]
        print(f"  time to the first frames, True / auto = {ratio:.1f}x; requests "
              f"{results[True][1].stats.requests:,} / {results['auto'][1].stats.requests:,}")
        server.reset_log()
        client = ConduitClient(server.token, base_url=server.base_url, requests_per_minute=rpm, shared_pace=False)
        again = fetch_runs(client=client, since=since, details="auto", cache=tmp / "auto.sqlite", progress=False)
        print(f"  'auto' again (warm cache): {again.stats.requests} requests ({again.stats.detail_requests} "
              f"trace), {again.stats.elapsed_s:.2f} s; traced {again.traced:,}")
        run_id = again.runs.loc[again.runs["trace_weight"].isna(), "id"].iloc[0]
        again.trace_source.client = client
        server.reset_log()
        started = time.monotonic()
        again.fetch_trace(run_id)  # what RunInspector does when a run without its trace is opened
        print(f"  opening a run without its trace: {server.count()} request, {time.monotonic() - started:.2f} s "
              f"(frames of {len(again.runs):,} runs updated); traced now {again.traced:,}")
        n = results[True][1].runs.shape[0]
        pages = results[True][1].stats.list_requests
        print(f"  at 5,000 runs a day, a week = {5000 * 7:,} runs: list pages ~{math.ceil(5000 * 7 / 100) + 6}, "
              f"'auto' ~{math.ceil(5000 * 7 / 100) + 6 + 240 + 1:,} requests, True ~{5000 * 7 + 350 + 7:,} "
              f"(here: {n:,} runs, {pages} list requests)")


_WORKER = """
import sys, time, threading
from conduit_notebook import ConduitClient
base_url, token, agent, start, shared = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[6]
ids = sys.argv[5].split(",")
client = ConduitClient(token, base_url=base_url, requests_per_minute=float(sys.argv[7]), max_retries=10,
                       shared_pace=True if shared == "1" else False)
time.sleep(max(0.0, start - time.time()))
threads = [threading.Thread(target=lambda c=ids[k::8]: [client.get_run(agent, i) for i in c]) for k in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
"""


def two_processes(args: argparse.Namespace, tmp: Path, shared: bool) -> None:
    rpm, n = 120 * args.speedup, args.per_process
    env = dict(os.environ, PYTHONPATH=str(ROOT), CONDUIT_NOTEBOOK_CACHE=str(tmp / f"two{shared}" / "runs.sqlite"))
    env.pop("CONDUIT_API_TOKEN", None)
    with demo.serve(runs=2 * n + 100, agents=1, seed=2, end=END, requests_per_minute=rpm,
                    rate_window=60.0 / args.speedup) as server:
        agent = server.data.agents[0]["id"]
        ids = [server.data.summary(int(i))["id"] for i in server.data.agent_rows(agent)[:2 * n]]
        start = time.time() + 5.0
        procs = [subprocess.Popen([sys.executable, "-c", _WORKER, server.base_url, server.token, agent, str(start),
                                   ",".join(chunk), "1" if shared else "0", str(rpm)], env=env)
                 for chunk in (ids[:n], ids[n:])]
        for p in procs:
            p.wait()
        stamps = [r.at for r in server.requests]
        ok, refused = server.count(status=200), server.count(status=429)
    ideal = (ok - 1) / (rpm / 60)
    span = max(stamps) - min(stamps)
    print(f"  {'shared pace' if shared else 'each process alone (before)'}: {ok} answered, {refused} refused "
          f"with 429; {span:.2f} s against an ideal {ideal:.2f} s: x{span / ideal:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs-per-day", type=int, default=1000, dest="runs_per_day")
    parser.add_argument("--speedup", type=int, default=25)
    parser.add_argument("--per-process", type=int, default=300, dest="per_process")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        print(f"scenario 1: first fetch of a week, {args.runs_per_day:,} runs a day, 6 agents, "
              f"time x{args.speedup}")
        first_fetch(args, Path(tmp))
        print(f"scenario 2: two processes, {args.per_process} traces each, server at its limit")
        two_processes(args, Path(tmp), shared=True)
        two_processes(args, Path(tmp), shared=False)


if __name__ == "__main__":
    main()
