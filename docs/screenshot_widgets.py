"""Screenshots of the widgets in a real browser: Voilà runs docs/notebooks/widgets.ipynb, and
Debian's Chromium, driven by Playwright, saves docs/explorer.png, docs/review.png and
docs/review-thread.png (the run's guest conversation in the review), then presses "c" with the
mouse over the review's run and prints the review's progress before and after, and what the
page logged to its console.

    apt-get install -y chromium
    pip install voila playwright ipykernel && python -m ipykernel install --user --name python3
    python docs/screenshot_widgets.py

(Playwright's own browser download is not used: it is pointed at /usr/bin/chromium.)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent
NOTEBOOK = DOCS / "notebooks" / "widgets.ipynb"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    port = free_port()
    voila = subprocess.Popen(
        [sys.executable, "-m", "voila", str(NOTEBOOK), "--no-browser", f"--port={port}",
         "--Voila.ip=127.0.0.1", "--VoilaConfiguration.file_allowlist=['.*']"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        with sync_playwright() as p:
            # Chromium without a preloaded library (libfaketime, for a run of the tests at a faked
            # time: tests/README.md) which it does not start under; Voila keeps it.
            env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, env=env)
            # Tall enough that nothing is scrolled out of view (Voilà skips painting what is).
            page = browser.new_page(viewport={"width": 1400, "height": 3200})
            console: list[str] = []  # what the page logs (a widget model not found, ...)
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            for _ in range(60):
                try:
                    page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle", timeout=120_000)
                    break
                except Exception:  # noqa: BLE001 - Voilà still starting
                    time.sleep(1)
            page.wait_for_selector(".conduit-run-explorer .widget-select-multiple", timeout=120_000)
            page.wait_for_selector(".conduit-disposition-review", timeout=120_000)
            page.wait_for_timeout(2000)  # let the images of the plots arrive
            explorer = page.locator(".conduit-run-explorer").first
            # A real click: open the first tool call of the run in the explorer's inspector.
            explorer.locator(".conduit-run-inspector .lm-TabBar-tab, .conduit-run-inspector .p-Collapse-header, "
                             ".conduit-run-inspector .jupyter-widget-Collapse-header").first.click()
            page.wait_for_timeout(1500)
            explorer.screenshot(path=str(DOCS / "explorer.png"))
            # A real click in the browser: the Tokens tab, then the explorer again.
            page.get_by_text("Tokens", exact=True).first.click()
            page.wait_for_timeout(2500)
            explorer.screenshot(path=str(DOCS / "explorer_tokens_tab.png"))
            review = page.locator(".conduit-disposition-review").first
            review.screenshot(path=str(DOCS / "review.png"))
            # The run in its conversation: the thread the review shows beside the run.
            review.locator(".conduit-thread").first.screenshot(path=str(DOCS / "review-thread.png"))
            # The shortcuts: the mouse over the run, a real key press; the review moves on.
            progress = review.locator(".widget-html").first
            before = progress.inner_text()
            review.locator(".conduit-run-inspector").first.hover()
            page.wait_for_timeout(300)
            page.keyboard.press("c")
            page.wait_for_timeout(2000)
            print("progress before 'c':", " ".join(before.split()))
            print("progress after 'c':", " ".join(progress.inner_text().split()))
            print("cells after 'c':", page.locator(".jp-Cell, .jp-OutputArea").count())
            for line in console:
                print("console", line)
            browser.close()
    finally:
        voila.terminate()
        voila.wait(timeout=20)
    for name in ("explorer.png", "explorer_tokens_tab.png", "review.png", "review-thread.png"):
        print(DOCS / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
