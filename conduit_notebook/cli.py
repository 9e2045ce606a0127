"""The ``conduit-notebook`` command line.

- ``report [--demo] [--agents ...] [--since 7d] [--until ...] [--base-url URL] [--out report.html]``:
  fetch (through the cache)
  and write a self-contained HTML report; on the built-in demo server with ``--demo``. Without
  ``--demo`` and without ``CONDUIT_API_TOKEN`` it exits 3 (a cron job that lost its token must
  not publish demo numbers).
- ``summary``: the same runs as a table in the terminal.
- ``sync [--follow]``: fill the cache ahead of a session (for a nightly cron), or keep it
  current, new runs and traces within a budget per pass, until stopped. ``--lake DIR`` also
  upserts the runs and escalations into a Parquet lake; ``--config sync.toml`` syncs every
  workspace of the file into its lake (docs/lake.md).
- ``cache info`` / ``cache clear``: see and empty the cache.
- ``serve-demo``: a local Conduit-compatible server until Ctrl-C.

Every argument is checked before the first request (times, ``--out`` writable, ``--base-url``,
the port), and a bad one exits 2 with a message; so does an agent the workspace does not have.
Progress goes to stderr. Exit codes: 0 done, 1 an API error, 2 bad arguments, 3 authentication
or permission, 4 partial (some runs or pages are in the errors table).

This module imports only the standard library at start, so that ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import ExitStack

from .errors import AuthenticationError, ConduitError, PermissionDeniedError, UnknownAgentError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_AUTH, EXIT_PARTIAL = 0, 1, 2, 3, 4


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _traces(text: str) -> bool | int | str:
    """``--traces``: auto, all, none, or a number of runs."""
    forms: dict[str, bool | str] = {"auto": "auto", "all": True, "none": False}
    if text in forms:
        return forms[text]
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected auto, all, none or a whole number of runs >= 1, got {text!r}") from None


def _add_traces_option(parser: argparse.ArgumentParser, *, default: str) -> None:
    parser.add_argument("--traces", type=_traces, default=_traces(default), metavar="auto|all|none|N",
                        help=f"which runs get their trace (one request each): auto = all when they fit in about "
                             f"2 minutes of the pace, else a stratified sample that does; all; none; or a sample "
                             f"of N runs (default {default})")


def _interval(text: str) -> float:
    from .follow import check_interval

    try:
        return check_interval(text, "a pause")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535 (0 picks a free one), got {text!r}")
    return value


def _add_demo_options(parser: argparse.ArgumentParser, *, default_runs: int) -> None:
    parser.add_argument("--runs", type=_positive_int, default=default_runs,
                        help=f"demo runs to generate (default {default_runs})")
    parser.add_argument("--agent-count", type=_positive_int, default=3, dest="agent_count",
                        help="demo agents (default 3, at most 18)")
    parser.add_argument("--seed", type=int, default=0, help="demo data seed (default 0)")


def _add_fetch_options(parser: argparse.ArgumentParser, *, since: str | None) -> None:
    parser.add_argument("--demo", action="store_true",
                        help="use a built-in demo server (without it, CONDUIT_API_TOKEN must be set)")
    parser.add_argument("--agents", nargs="+", default=None, metavar="AGENT",
                        help="agent ids or names (default: every agent)")
    parser.add_argument("--since", default=since,
                        help="runs created since: a span such as 7d or 12h, a day such as 2026-11-28 (from its "
                             f"start), or an ISO timestamp (default: {since or 'all'})")
    parser.add_argument("--until", default=None,
                        help="runs created until: the same forms; a day means to its end (default: now)")
    parser.add_argument("--base-url", default=None, dest="base_url",
                        help="the API's base URL (default: $CONDUIT_BASE_URL, else https://api.conduit.ai)")
    parser.add_argument("--rpm", type=_positive_int, default=None,
                        help="requests per minute to stay under (default 120; the built-in demo server has no "
                             "limit, so it is not paced)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the local cache")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conduit-notebook",
        description="Analyse Conduit AI-agent runs: reports, summaries, the cache and a local demo server.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    report = commands.add_parser(
        "report", help="write a self-contained HTML report",
        description="Fetch runs with their traces (through the cache) and write an HTML report: "
                    "plots, tables by agent and disposition, top tools, outliers, cost per resolved run.",
    )
    _add_fetch_options(report, since="7d")
    report.add_argument("--out", default="report.html", help="the HTML file to write (default report.html)")
    report.add_argument("--reviews", default=None, metavar="CSV",
                        help="a disposition review store (DispositionReview's CSV file): adds the review's accuracy")
    report.add_argument("--judge", default=None, metavar="CSV",
                        help="with --reviews: a judge's verdict on the runs (CSV: agent_run_id, prediction = "
                             "True/False or a probability that the disposition is right): adds the "
                             "judge-assisted accuracy beside the human-only one")
    _add_traces_option(report, default="auto")
    _add_demo_options(report, default_runs=2000)

    summary = commands.add_parser(
        "summary", help="print a summary of runs per agent",
        description="Print runs, statuses, dispositions, durations, tokens and cost per agent.",
    )
    _add_fetch_options(summary, since=None)
    _add_demo_options(summary, default_runs=2000)

    sync = commands.add_parser(
        "sync", help="fill the cache ahead of a session",
        description="Fetch runs with their traces into the local cache (for a nightly cron).",
    )
    _add_fetch_options(sync, since="30d")
    _add_traces_option(sync, default="all")
    sync.add_argument("--follow", action="store_true",
                      help="keep going until stopped: every --interval seconds, list new runs and fetch up to "
                           "--per-pass more traces (a growing stratified sample, then all)")
    sync.add_argument("--interval", type=_interval, default=60.0,
                      help="seconds between passes with --follow (default 60, at most a day); after a failed "
                           "pass the wait doubles, up to 15 minutes")
    sync.add_argument("--per-pass", type=_positive_int, default=None, dest="per_pass",
                      help="traces fetched per pass with --follow (default: what fits in 2 minutes of the pace)")
    sync.add_argument("--passes", type=_positive_int, default=None,
                      help="stop after this many passes with --follow (default: until Ctrl-C)")
    sync.add_argument("--lake", default=None, metavar="DIR",
                      help="also upsert the runs into the Parquet lake DIR (each run once; docs/lake.md)")
    sync.add_argument("--config", default=None, metavar="TOML",
                      help="sync every workspace of this file into its lake, each at its own pace (docs/lake.md)")
    _add_demo_options(sync, default_runs=2000)

    cache = commands.add_parser("cache", help="see or empty the local cache",
                                description="See or empty the local run cache.")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    cache_commands.add_parser("info", help="where the cache is, its size, what it holds")
    clear = cache_commands.add_parser("clear", help="forget every cached run")
    clear.add_argument("--source", default=None, help="only this API source (as cache info lists it)")

    serve = commands.add_parser(
        "serve-demo", help="serve a demo Conduit workspace on 127.0.0.1 until Ctrl-C",
        description="Serve a local Conduit-compatible API with synthetic hospitality runs.",
    )
    serve.add_argument("--port", type=_port, default=8765, help="port (default 8765; 0 picks one)")
    serve.add_argument("--rate-limit", type=_positive_int, default=None, dest="rate_limit",
                       help="answer 429 above this many requests per minute (default: no limit)")
    serve.add_argument("--runs-per-day", type=_positive_int, default=None, dest="runs_per_day",
                       help="a busy workspace: this many runs a day over --days (instead of --runs)")
    serve.add_argument("--days", type=_positive_int, default=28, help="days the runs spread over (default 28)")
    _add_demo_options(serve, default_runs=2000)
    return parser


class MissingTokenError(Exception):
    """No ``CONDUIT_API_TOKEN`` and no ``--demo``: exit 3, never a report on demo data."""


def _check_token(args: argparse.Namespace) -> None:
    import os

    # A blank token (``export CONDUIT_API_TOKEN=``) is no token either.
    if not args.demo and not os.environ.get("CONDUIT_API_TOKEN", "").strip():
        raise MissingTokenError(
            "CONDUIT_API_TOKEN is not set: export CONDUIT_API_TOKEN=<a read token of the workspace> "
            "(Settings > API Tokens), or pass --demo for the built-in demo workspace")


def _check_fetch_args(args: argparse.Namespace) -> dict:
    """Every fetch argument, read and checked before any server starts or request goes."""
    from urllib.parse import urlsplit

    from .times import parse_time

    since = parse_time(args.since, "--since")
    until = parse_time(args.until, "--until", end_of_day=True)
    if since is not None and until is not None and since > until:
        raise ValueError(f"--since ({since:%Y-%m-%d %H:%M} UTC) is after --until ({until:%Y-%m-%d %H:%M} UTC)")
    if args.base_url is not None:
        if args.demo:
            raise ValueError("--base-url and --demo do not go together: --demo starts its own server")
        parts = urlsplit(args.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"--base-url must be an http(s) URL such as https://api.conduit.ai; got {args.base_url!r}")
    _check_token(args)
    return {"since": since, "until": until}


def _check_out(path_text: str):
    """``--out`` as a path that can be written, checked before the fetch (not after it)."""
    import os
    from pathlib import Path

    out = Path(path_text).expanduser()
    if out.is_dir():
        raise ValueError(f"--out must be a file path, not a directory: {out}")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"--out: the folder {folder} does not exist; create it or choose another path")
    # Try it: os.access says yes to root on read-only mounts and pseudo file systems.
    existed = out.exists()
    try:
        with open(out, "a"):
            pass
    except OSError as exc:
        raise ValueError(f"--out: {out} cannot be written ({exc.strerror or 'permission denied'}); "
                         "choose another path") from None
    if not existed:
        os.unlink(out)
    return out


def _connect(args: argparse.Namespace, stack: ExitStack, *, cache_dir: str | None = None):
    """Start the demo server if asked (or if there is no token); the client and the cache.
    Call :func:`_check_fetch_args` first: nothing here should fail on an argument."""
    from .client import ConduitClient
    from .demo import DEMO_REQUESTS_PER_MINUTE, serve

    demo = args.demo
    if demo:
        server = stack.enter_context(serve(runs=args.runs, agents=min(args.agent_count, 18), seed=args.seed))
        # The built-in server has no rate limit: pacing against it would only sleep.
        client = ConduitClient(server.token, base_url=server.base_url,
                               requests_per_minute=args.rpm or DEMO_REQUESTS_PER_MINUTE)
        print(f"Demo server at {server.base_url}: {args.runs} runs, {args.agent_count} agents "
              f"(seed {args.seed})", file=sys.stderr)
    else:
        client = ConduitClient(base_url=args.base_url, requests_per_minute=args.rpm or 120)
    stack.enter_context(client)
    # A demo workspace is gone when the command ends, so it stays out of the cache.
    cache: bool | str | None = False if (demo or args.no_cache) else None
    if cache_dir is not None and demo:
        cache = f"{cache_dir}/runs.sqlite"  # sync --follow on the demo: a cache for this command only
    return client, cache


def _fetch(args: argparse.Namespace, *, details: bool | int | str, stack: ExitStack, escalations: bool = False):
    """Check the arguments, connect (see :func:`_connect`) and fetch (and the workspace's
    escalations, if asked)."""
    window = _check_fetch_args(args)  # before any server starts or request goes
    from .fetch import fetch_runs

    client, cache = _connect(args, stack)
    frames = fetch_runs(args.agents, client=client, since=window["since"], until=window["until"], details=details,
                        cache=cache, progress=sys.stderr.isatty())
    if not escalations:
        return frames
    return frames, _fetch_escalations(client, window["since"])


def _fetch_escalations(client, since):
    """The workspace's escalations since ``since``, or None (with a message) if the API refuses."""
    from .errors import ConduitError
    from .escalations import fetch_escalations

    import warnings

    try:
        with warnings.catch_warnings():  # unreadable ones go to the report's Errors section
            warnings.filterwarnings("ignore", message="fetch_escalations: ", category=UserWarning)
            return fetch_escalations(client=client, since=since)
    except (ConduitError, ValueError) as exc:
        print(f"conduit-notebook: escalations left out of the report: {exc}", file=sys.stderr)
        return None


def _outcome(frames) -> int:
    if len(frames.errors):
        print(f"conduit-notebook: partial: {len(frames.errors)} run(s) or page(s) could not be fetched "
              "(see the Errors section); run again to retry them", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .report import html_report

    out = _check_out(args.out)
    reviews = None
    if args.reviews is not None:
        from .review import ReviewStore

        if not Path(args.reviews).is_file():
            raise ValueError(f"--reviews must be a review store (a CSV file written by DispositionReview); "
                             f"not found: {args.reviews}")
        reviews = ReviewStore(args.reviews).load()
    judge = None
    if args.judge is not None:
        from .ppi import read_predictions

        if args.reviews is None:
            raise ValueError("--judge needs --reviews: the judge corrects a review's human verdicts")
        judge = read_predictions(args.judge)
    with ExitStack() as stack:
        frames, escalations = _fetch(args, details=args.traces, stack=stack, escalations=True)
    unread = escalations.attrs.get("errors") if escalations is not None else None
    if unread is not None and len(unread):  # the report's Errors section lists them, and the exit says partial
        import pandas as pd

        frames.errors = pd.concat([frames.errors, unread], ignore_index=True)
    page = html_report(frames, escalations=escalations, reviews=reviews, judge=judge)
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:  # checked writable before the fetch, and yet: a full disk, /dev/full
        print(f"conduit-notebook: --out: {out} could not be written ({exc.strerror or exc}); the report "
              "was not saved (the runs are in the cache: run again with another --out)", file=sys.stderr)
        return EXIT_ERROR
    print(f"Wrote {out} ({len(frames.runs):,} runs, {frames.traced:,} with traces, "
          f"{len(frames.tool_calls):,} tool calls, {frames.stats.requests:,} requests, "
          f"{frames.stats.elapsed_s:.1f} s)", file=sys.stderr)
    return _outcome(frames)


def _summary(args: argparse.Namespace) -> int:
    from .report import print_summary

    with ExitStack() as stack:
        frames = _fetch(args, details=False, stack=stack)
    print_summary(frames.runs, requests=frames.stats.requests)
    return _outcome(frames)


def _sync(args: argparse.Namespace) -> int:
    if args.config is not None:
        from .lake.sync import sync_workspaces

        table = sync_workspaces(args.config, progress=sys.stderr.isatty())
        print(table.to_string(index=False))
        return EXIT_PARTIAL if (table["problem"].notna() | (table["errors"] > 0)).any() else EXIT_OK
    if not args.follow:
        with ExitStack() as stack:
            fetched = _fetch(args, details=args.traces, stack=stack, escalations=args.lake is not None)
        frames, escalations = fetched if args.lake is not None else (fetched, None)
        print(repr(frames))
        if args.lake is not None:
            from .lake import write_lake

            written = write_lake(frames, args.lake, escalations=escalations)
            print(f"Lake {written.path}: {written.rows.get('runs', 0):,} runs upserted into "
                  f"{len(written.months)} month file(s)", file=sys.stderr)
        return _outcome(frames)
    if args.lake is not None:
        raise ValueError("--lake works without --follow: run `sync --lake DIR` nightly (each run is kept once)")
    return _follow(args)


def _follow(args: argparse.Namespace) -> int:
    """``sync --follow``: pass after pass, new runs and ``--per-pass`` more traces, until
    stopped; a failed pass is logged and retried after a backoff (:mod:`conduit_notebook.follow`)."""
    import tempfile

    from .fetch import fetch_runs
    from .follow import follow
    from .traces import AUTO_TRACE_SECONDS

    per_pass = args.per_pass or round(AUTO_TRACE_SECONDS * (args.rpm or 120) / 60)
    _check_fetch_args(args)  # before any server starts or request goes
    with tempfile.TemporaryDirectory(prefix="conduit-follow-") as scratch, ExitStack() as stack:
        client, cache = _connect(args, stack, cache_dir=scratch)

        def fetch(target):
            return fetch_runs(args.agents, client=client, since=args.since, until=args.until, details=target,
                              cache=cache, progress=sys.stderr.isatty())

        return follow(fetch, interval=args.interval, per_pass=per_pass if args.traces is not False else False,
                      passes=args.passes, outcome=_outcome)


def _cache(args: argparse.Namespace) -> int:
    from .cache import cache_info, clear_cache

    if args.cache_command == "info":
        print(cache_info())
    else:
        info = cache_info()
        damaged = info.problem
        sources = [str(s) for s in info.sources["source"]] if len(info.sources) else []
        if args.source is not None and not damaged and args.source not in sources:
            raise ValueError(f"--source: the cache holds nothing from {args.source!r}; its sources are "
                             + (", ".join(map(repr, sources)) if sources else "none (it is empty)")
                             + " (conduit-notebook cache info lists them)")
        removed = clear_cache(source=args.source)
        print("The cache file could not be used; it was replaced with an empty one." if damaged
              else f"Removed {removed:,} cached runs.")
    return EXIT_OK


def _serve_demo(args: argparse.Namespace) -> int:
    from .demo import DemoData, DemoServer

    data = DemoData(runs=args.runs, agents=min(args.agent_count, 18), seed=args.seed, days=args.days,
                    runs_per_day=args.runs_per_day)
    try:
        server = DemoServer(data, port=args.port, requests_per_minute=args.rate_limit)
    except OSError as exc:  # the port is taken, or not ours to use
        raise ValueError(f"--port {args.port}: cannot listen on 127.0.0.1:{args.port} ({exc.strerror or exc}); "
                         "choose another port, or --port 0 for a free one") from None
    print(f"Conduit demo server: {server.base_url}  ({server.data.n:,} runs over {args.days} days, "
          f"{args.agent_count} agents)")
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
    handlers = {"report": _report, "summary": _summary, "sync": _sync, "cache": _cache,
                "serve-demo": _serve_demo}
    try:
        return handlers[args.command](args)
    except UnknownAgentError as exc:  # a bad --agents value, found out from the agent list
        print(f"conduit-notebook: --agents: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (AuthenticationError, PermissionDeniedError, MissingTokenError) as exc:
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
