"""The README's and docs/' examples run (issue 20 item 7): every ```python block of a page runs,
in order and in one namespace per page, against a demo server; a block after a line
``<!-- not run: why -->`` is skipped (it needs a real token, an extra package or your own code).

The names a page uses without defining them (``frames``, ``runs``, ``calls``, ``escalations``,
``last_week``, ``week_before``, ``run_id``, ``results``, ``client``) are what a reader has by then:
they are made here from the same demo workspace, the way the pages make them."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from conduit_notebook import ConduitClient, fetch_escalations, fetch_runs, filter_runs

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)\n```", re.S)


def blocks(page: Path) -> list[tuple[int, str, bool]]:
    """(line, code, runs) for each python block of ``page``."""
    text = page.read_text(encoding="utf-8")
    return [(text[:m.start("code")].count("\n") + 1, m.group("code"), not m.group("before").startswith("<!-- not run"))
            for m in BLOCK.finditer(text)]


def test_the_block_reader_finds_blocks_and_the_ones_not_run(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("text\n```python\nx = 1\n```\n<!-- not run: needs a token -->\n```python\ny\n```\n")
    assert blocks(page) == [(3, "x = 1", True), (7, "y", False)]


@pytest.fixture
def reader(server, monkeypatch, tmp_path):
    """What a reader of the pages has: a token (the demo server's), a working folder, and the
    frames the pages build on."""
    monkeypatch.setenv("CONDUIT_API_TOKEN", server.token)
    monkeypatch.setenv("CONDUIT_BASE_URL", server.base_url)
    monkeypatch.chdir(tmp_path)
    # The demo server has no rate limit: the pages' clients are not paced (at 120 a minute the
    # pages' 240-trace fetches alone would take minutes).
    monkeypatch.setitem(ConduitClient.__init__.__kwdefaults__, "requests_per_minute", 60_000)
    frames = fetch_runs(since="14d", progress=False)
    runs = frames.runs
    middle = runs["created_at"].min() + (runs["created_at"].max() - runs["created_at"].min()) / 2
    verdicts = runs.head(12)
    results = pd.DataFrame({"agent_run_id": verdicts["id"].astype(str), "agent_id": verdicts["agent_id"].astype(str),
                            "disposition": verdicts["disposition"].astype(object), "verdict": "correct",
                            "reviewed_disposition": None, "note": "", "reviewer": "ana",
                            "reviewed_at": pd.Timestamp("2026-11-20", tz="UTC")})
    return {"frames": frames, "runs": runs, "calls": frames.tool_calls, "client": ConduitClient(),
            "escalations": fetch_escalations(since="14d"), "run_id": str(runs["id"].iloc[0]),
            "last_week": filter_runs(runs, since=middle), "week_before": filter_runs(runs, until=middle),
            "results": results, "pd": pd}


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_the_examples_of_a_page_run(page, reader):
    namespace = dict(reader)
    ran = 0
    for line, code, runs in blocks(page):
        if not runs:
            continue
        try:
            exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
        except Exception as error:  # the page and line, then the error
            raise AssertionError(f"{page.relative_to(ROOT)} line {line}: {type(error).__name__}: {error}") from error
        ran += 1
        plt.close("all")
    namespace["client"].close()
    assert ran == sum(runs for _, _, runs in blocks(page))
