"""The ``conduit-notebook`` command line.

- ``report [--demo] [--agents ...] [--since 7d] [--until ...] [--base-url URL] [--out report.html]``:
  fetch (through the cache)
  and write a self-contained HTML report; on the built-in demo server with ``--demo``. Without
  ``--demo`` and without ``CONDUIT_API_TOKEN`` it exits 3 (a cron job that lost its token must
  not publish demo numbers).
- ``summary [--format text|csv|json]``: the same runs as a table in the terminal, or for programs.
- ``sync [--follow]``: fill the cache ahead of a session (for a nightly cron), or keep it
  current, new runs and traces within a budget per pass, until stopped. ``--lake DIR`` also
  upserts the runs and escalations into a Parquet lake; ``--config sync.toml`` syncs every
  workspace of the file into its lake (docs/lake.md).
- ``cache info`` / ``cache clear``: see and empty the cache.
- ``serve-demo``: a local Conduit-compatible server until Ctrl-C.

Every argument is checked before the first request (times, ``--out`` writable, ``--base-url``,
the port), and a bad one exits 2 with a message; so does an agent the workspace does not have.
Progress, notes and warnings (one line each, no Python source line) go to stderr; ``--quiet``
leaves only errors there. ``--version`` prints the version; ``python -m conduit_notebook`` is the
same command. Exit codes: 0 done, 1 an API error, 2 bad arguments, 3 authentication
or permission, 4 partial (some runs or pages are in the errors table).

This module imports only the standard library at start, so that ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import io
import sys
import warnings
from collections.abc import Sequence
from contextlib import ExitStack, redirect_stderr

from .cli_parser import build_parser
from .errors import AuthenticationError, ConduitError, PermissionDeniedError, UnknownAgentError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_AUTH, EXIT_PARTIAL = 0, 1, 2, 3, 4


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
        _note(args, f"Demo server at {server.base_url}: {args.runs} runs, {args.agent_count} agents "
                    f"(seed {args.seed})")
    else:
        client = ConduitClient(base_url=args.base_url, requests_per_minute=args.rpm or 120)
    stack.enter_context(client)
    # A demo workspace is gone when the command ends, so it stays out of the cache.
    cache: bool | str | None = False if (demo or args.no_cache) else None
    if cache_dir is not None and demo:
        cache = f"{cache_dir}/runs.sqlite"  # sync --follow on the demo: a cache for this command only
    return client, cache


def _note(args: argparse.Namespace, message: str) -> None:
    """Progress and notes go to stderr, unless ``--quiet``."""
    if not args.quiet:
        print(message, file=sys.stderr)


def _progress(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() and not args.quiet


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line of the command's own voice, without Python's source line."""
    print(f"conduit-notebook: warning: {message}", file=sys.stderr)


def _fetch(args: argparse.Namespace, *, details: bool | int | str, stack: ExitStack, escalations: bool = False):
    """Check the arguments, connect (see :func:`_connect`) and fetch (and the workspace's
    escalations, if asked)."""
    window = _check_fetch_args(args)  # before any server starts or request goes
    from .fetch import fetch_runs

    client, cache = _connect(args, stack)
    with ExitStack() as quiet:
        if args.quiet:  # fetch_runs' own note on a trace sample goes to stderr too
            quiet.enter_context(redirect_stderr(io.StringIO()))
        frames = fetch_runs(args.agents, client=client, since=window["since"], until=window["until"],
                            details=details, cache=cache, progress=_progress(args))
    if not escalations:
        return frames
    before = client.stats.requests
    found = _fetch_escalations(client, window["since"])
    frames.stats.requests += client.stats.requests - before  # the count the CLI prints: every request made
    return frames, found


def _fetch_escalations(client, since):
    """The workspace's escalations since ``since``, or None (with a message) if the API refuses."""
    import warnings

    from .errors import ConduitError
    from .escalations import fetch_escalations

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
    _note(args, f"Wrote {out} ({len(frames.runs):,} runs, {frames.traced:,} with traces, "
          f"{len(frames.tool_calls):,} tool calls, {frames.stats.requests:,} requests, "
          f"{frames.stats.elapsed_s:.1f} s)")
    return _outcome(frames)


def _summary(args: argparse.Namespace) -> int:
    from .report import print_summary, summary_table

    with ExitStack() as stack:
        frames = _fetch(args, details=False, stack=stack)
    if args.format == "text":
        print_summary(frames.runs, requests=frames.stats.requests)
    else:
        _print_table(summary_table(frames.runs) if len(frames.runs) else None, args.format)
    return _outcome(frames)


def _print_table(table, form: str) -> None:
    """``summary --format csv|json``: the text table's rows and columns, for programs."""
    import pandas as pd

    if table is None:
        table = pd.DataFrame(columns=["runs"])
    table = table.rename_axis("agent").reset_index()
    if form == "csv":
        table.to_csv(sys.stdout, index=False, lineterminator="\n")
    else:
        print(table.to_json(orient="records", indent=1))


def _sync(args: argparse.Namespace) -> int:
    if args.config is not None:
        from .lake.sync import sync_workspaces

        table = sync_workspaces(args.config, progress=_progress(args))
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
            _note(args, f"Lake {written.path}: {written.rows.get('runs', 0):,} runs upserted into "
                        f"{len(written.months)} month file(s)")
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
                              cache=cache, progress=_progress(args))

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
    with warnings.catch_warnings():
        if args.quiet:
            warnings.simplefilter("ignore")
        warnings.showwarning = _show_warning  # restored by catch_warnings
        return _run(handlers[args.command], args)


def _run(handler, args: argparse.Namespace) -> int:
    """The command, with each error it can end on as a message and an exit code."""
    try:
        return handler(args)
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
