"""The ``conduit-notebook`` command line.

``conduit-notebook summary --demo`` prints a summary of the runs of a demo workspace;
``conduit-notebook summary`` does the same against the API named by CONDUIT_API_TOKEN and
CONDUIT_BASE_URL. ``conduit-notebook serve-demo`` serves the demo workspace until Ctrl-C.

Exit codes: 0 done, 2 bad arguments, 3 authentication or permission, 1 any other API error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import ExitStack

from .errors import AuthenticationError, ConduitError, PermissionDeniedError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_AUTH = 0, 1, 2, 3


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _add_demo_options(parser: argparse.ArgumentParser, *, default_runs: int) -> None:
    parser.add_argument("--runs", type=_positive_int, default=default_runs,
                        help=f"demo runs to generate (default {default_runs})")
    parser.add_argument("--agent-count", type=_positive_int, default=3, dest="agent_count",
                        help="demo agents (default 3, at most 18)")
    parser.add_argument("--seed", type=int, default=0, help="demo data seed (default 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conduit-notebook",
        description="Analyse Conduit AI-agent runs: summaries, reports and a local demo server.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    summary = commands.add_parser(
        "summary", help="print a summary of runs per agent",
        description="Print runs, statuses, dispositions, durations, tokens and cost per agent.",
    )
    summary.add_argument("--demo", action="store_true",
                         help="use a built-in demo server instead of the Conduit API")
    summary.add_argument("--since", default=None,
                         help="only runs created since: a span such as 7d, 12h, or an ISO date "
                              "(default: every run)")
    summary.add_argument("--rpm", type=_positive_int, default=None,
                         help="requests per minute to stay under (default 120; 3000 with --demo, "
                              "whose server has no limit)")
    _add_demo_options(summary, default_runs=2000)

    serve = commands.add_parser(
        "serve-demo", help="serve a demo Conduit workspace on 127.0.0.1 until Ctrl-C",
        description="Serve a local Conduit-compatible API with synthetic hospitality runs.",
    )
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks one)")
    serve.add_argument("--rate-limit", type=_positive_int, default=None, dest="rate_limit",
                       help="answer 429 above this many requests per minute (default: no limit)")
    _add_demo_options(serve, default_runs=2000)
    return parser


def _summary(args: argparse.Namespace) -> int:
    from .client import ConduitClient
    from .demo import serve
    from .fetch import fetch_runs, parse_time
    from .report import print_summary

    since = parse_time(args.since, "--since")  # before any server starts or request goes
    with ExitStack() as stack:
        if args.demo:
            server = stack.enter_context(
                serve(runs=args.runs, agents=min(args.agent_count, 18), seed=args.seed))
            client = ConduitClient(server.token, base_url=server.base_url,
                                   requests_per_minute=args.rpm or 3000)
            print(f"Demo server at {server.base_url}: {args.runs} runs, "
                  f"{args.agent_count} agents (seed {args.seed})", file=sys.stderr)
        else:
            client = ConduitClient(requests_per_minute=args.rpm or 120)
        stack.enter_context(client)
        # Summaries need no traces: one request per 100 runs. A demo workspace is gone when the
        # command ends, so it stays out of the cache.
        frames = fetch_runs(client=client, since=since, details=False,
                            cache=False if args.demo else None)
        print_summary(frames.runs, requests=frames.stats.requests)
    return EXIT_OK


def _serve_demo(args: argparse.Namespace) -> int:
    from .demo import DemoData, DemoServer

    server = DemoServer(
        DemoData(runs=args.runs, agents=min(args.agent_count, 18), seed=args.seed),
        port=args.port, requests_per_minute=args.rate_limit,
    )
    print(f"Conduit demo server: {server.base_url}  ({args.runs} runs, {args.agent_count} agents)")
    print("Use it with:")
    print(f"  export CONDUIT_BASE_URL={server.base_url}")
    print(f"  export CONDUIT_API_TOKEN={server.token}")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nStopped.")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"summary": _summary, "serve-demo": _serve_demo}
    try:
        return handlers[args.command](args)
    except (AuthenticationError, PermissionDeniedError) as exc:
        print(f"conduit-notebook: {exc}", file=sys.stderr)
        return EXIT_AUTH
    except ConduitError as exc:
        print(f"conduit-notebook: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ValueError as exc:
        print(f"conduit-notebook: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("conduit-notebook: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
