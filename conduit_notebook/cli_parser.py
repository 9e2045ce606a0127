"""The ``conduit-notebook`` command line's arguments: the parser and the checks of each value.

Standard library only, so that ``--help`` and ``--version`` are instant.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import __version__

__all__ = ["build_parser"]


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
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="nothing on stderr but errors (no progress, notes or warnings)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # After the command too (``report --quiet``); SUPPRESS: absent there, the one above holds.
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="nothing on stderr but errors (no progress, notes or warnings)")
    for add in (_add_report, _add_summary, _add_sync, _add_cache, _add_serve_demo):
        add(commands, quiet)
    return parser


def _add_report(commands: Any, quiet: argparse.ArgumentParser) -> None:
    report = commands.add_parser(
        "report", parents=[quiet], help="write a self-contained HTML report",
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


def _add_summary(commands: Any, quiet: argparse.ArgumentParser) -> None:
    summary = commands.add_parser(
        "summary", parents=[quiet], help="print a summary of runs per agent",
        description="Print runs, statuses, dispositions, durations, tokens and cost per agent.",
    )
    _add_fetch_options(summary, since=None)
    summary.add_argument("--format", choices=("text", "csv", "json"), default="text",
                         help="text: a table for people (default); csv or json: the same table for programs "
                              "(one row per agent and a total, shares in percent)")
    _add_demo_options(summary, default_runs=2000)


def _add_sync(commands: Any, quiet: argparse.ArgumentParser) -> None:
    sync = commands.add_parser(
        "sync", parents=[quiet], help="fill the cache ahead of a session",
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


def _add_cache(commands: Any, quiet: argparse.ArgumentParser) -> None:
    cache = commands.add_parser("cache", parents=[quiet], help="see or empty the local cache",
                                description="See or empty the local run cache.")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    cache_commands.add_parser("info", help="where the cache is, its size, what it holds")
    clear = cache_commands.add_parser("clear", help="forget every cached run")
    clear.add_argument("--source", default=None, help="only this API source (as cache info lists it)")


def _add_serve_demo(commands: Any, quiet: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve-demo", parents=[quiet], help="serve a demo Conduit workspace on 127.0.0.1 until Ctrl-C",
        description="Serve a local Conduit-compatible API with synthetic hospitality runs.",
    )
    serve.add_argument("--port", type=_port, default=8765, help="port (default 8765; 0 picks one)")
    serve.add_argument("--rate-limit", type=_positive_int, default=None, dest="rate_limit",
                       help="answer 429 above this many requests per minute (default: no limit)")
    serve.add_argument("--runs-per-day", type=_positive_int, default=None, dest="runs_per_day",
                       help="a busy workspace: this many runs a day over --days (instead of --runs)")
    serve.add_argument("--days", type=_positive_int, default=28, help="days the runs spread over (default 28)")
    _add_demo_options(serve, default_runs=2000)
