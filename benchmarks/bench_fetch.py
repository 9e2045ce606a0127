"""fetch_runs against a rate-limited demo server: pacing efficiency, runs lost, cache reuse.

    python benchmarks/bench_fetch.py [--runs 1200] [--rate 1200]

Scenario 1: the server allows --rate requests a minute (a 60-second sliding window, like
Conduit) and the client is configured with the same rate. Fetching N runs with details takes
N + pages + 1 requests; the ideal time is requests / rate. Target (issue 3): at most 1.1 times
the ideal, no run lost. Then the same fetch again: target at most 1 list request per agent.

Scenario 2: the server's real limit is half what the client was told (a plan with a lower limit);
the client meets 429s, waits them out, slows down, and loses nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import machine

from conduit_notebook import ConduitClient, demo, fetch_runs


def scenario(runs: int, server_rate: int, client_rate: int, window: float, cache: Path) -> None:
    with demo.serve(runs=runs, agents=3, seed=0, requests_per_minute=server_rate,
                    rate_window=window) as server:
        client = ConduitClient(server.token, base_url=server.base_url,
                               requests_per_minute=client_rate, max_retries=8)
        started = time.monotonic()
        frames = fetch_runs(client=client, cache=cache, progress=False)
        took = time.monotonic() - started
        answered = server.count(status=200)
        refused = server.count(status=429)
        ideal = answered / (server_rate / 60)
        lost = runs - len(frames.runs)
        print(f"  server limit {server_rate}/min, client told {client_rate}/min: {len(frames.runs):,} runs "
              f"with {len(frames.tool_calls):,} tool calls in {took:.1f} s")
        print(f"  {answered:,} requests answered, {refused} refused with 429; ideal at the server's "
              f"limit {ideal:.1f} s; time / ideal = {took / ideal:.3f} (target <= 1.1); "
              f"runs lost: {lost}, errors: {len(frames.errors)}")
        server.reset_log()
        again = fetch_runs(client=client, cache=cache, progress=False)
        pages = server.count(r"/runs$")
        traces = server.count(r"/runs/[^/]+$")
        print(f"  same fetch again: {again.stats.requests} requests ({server.count('/v1/agents$')} agents "
              f"list, {pages} run pages for {len(server.data.agents)} agents, {traces} traces of runs "
              f"still in progress), {again.stats.elapsed_s:.2f} s; "
              f"runs {len(again.runs):,}, identical: {again.runs.equals(frames.runs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1200)
    parser.add_argument("--rate", type=int, default=1200)
    parser.add_argument("--scenario", choices=["1", "2", "both"], default="both")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        if args.scenario in ("1", "both"):
            print("scenario 1: the client's pace matches the server's limit")
            scenario(args.runs, args.rate, args.rate, 60.0, Path(tmp) / "one.sqlite")
        if args.scenario in ("2", "both"):
            print("scenario 2: the real limit is half the configured pace (10-second window)")
            scenario(args.runs // 2, args.rate // 2, args.rate, 10.0, Path(tmp) / "two.sqlite")


if __name__ == "__main__":
    main()
