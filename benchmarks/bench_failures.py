"""Traces that fail: what an API answering 5xx to every trace costs, with and without the
client's breaker for persistent server errors (issue 23).

    python benchmarks/bench_failures.py [--runs 80]

The demo server answers 500 (no Retry-After) to every trace request. Baseline: a client whose
``server_error_patience`` is too large to ever open (every run retried ``max_retries`` times);
ours: the default (30 errors in a row). Both in this process, one after the other; the figures
are request counts (exact) and wall time (its ratio). Every run must stay in ``runs`` and every
trace failure be a row of ``errors`` in both.
"""

from __future__ import annotations

import argparse
import time
import warnings

from _common import machine

from conduit_notebook import ConduitClient, demo, fetch_runs

TRACE = r"/runs/[^/]+$"


def one(runs: int, patience: int) -> tuple[int, float, int, int]:
    with demo.serve(runs=runs, agents=2, seed=1) as server:
        server.inject(500, times=-1, match=TRACE)
        with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000,
                           server_error_patience=patience) as client:
            started = time.monotonic()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                frames = fetch_runs(client=client, cache=False, progress=False, details=True)
            took = time.monotonic() - started
        return server.count(), took, len(frames.runs), len(frames.errors)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=80)
    args = parser.parse_args()
    print(machine())
    base = one(args.runs, 10**9)
    ours = one(args.runs, 30)
    for label, (requests, took, kept, errors) in (("no breaker", base), ("breaker (30 in a row)", ours)):
        print(f"{label:>22}: {requests:5,} requests, {took:6.1f} s, runs kept {kept}, error rows {errors}")
    print(f"requests: {base[0] / ours[0]:.1f}x fewer; time: {base[1] / ours[1]:.1f}x shorter")


if __name__ == "__main__":
    main()
