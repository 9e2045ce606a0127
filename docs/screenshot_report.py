"""A screenshot of the HTML report: `conduit-notebook report --demo`, then Debian's Chromium,
headless, on the file (a static page needs no driver). Writes docs/report.png.

    python docs/screenshot_report.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.html"
        subprocess.run([sys.executable, "-m", "conduit_notebook.cli", "report", "--demo", "--out", str(report)],
                       check=True)
        subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--no-first-run", "--disable-quic", "--hide-scrollbars", "--window-size=1200,2400",
                        f"--screenshot={DOCS / 'report.png'}", report.as_uri()],
                       check=True, capture_output=True, timeout=120)
    print(DOCS / "report.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
