"""Screenshots of the HTML report: `conduit-notebook report --demo`, then Debian's Chromium,
headless, on the file (a static page needs no driver). Writes docs/report.png (1,400 px wide),
docs/report-phone.png (390 px), docs/report-phone-dark.png (390 px, dark mode) and
docs/report-print.png (the first page of the PDF Chromium prints, via pdftoppm).

    python docs/screenshot_report.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
CHROMIUM = ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", "--hide-scrollbars"]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.html"
        subprocess.run([sys.executable, "-m", "conduit_notebook.cli", "report", "--demo", "--out", str(report)],
                       check=True)
        shots = {"report.png": ["--window-size=1400,2400"],
                 "report-phone.png": ["--window-size=390,2400"],
                 "report-phone-dark.png": ["--window-size=390,2400", "--force-dark-mode",
                                           "--blink-settings=preferredColorScheme=0"]}
        for name, options in shots.items():
            subprocess.run([*CHROMIUM, *options, f"--screenshot={DOCS / name}", report.as_uri()],
                           check=True, capture_output=True, timeout=120)
            print(DOCS / name)
        pdf = Path(tmp) / "report.pdf"
        subprocess.run([*CHROMIUM, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", report.as_uri()],
                       check=True, capture_output=True, timeout=120)
        for page in (1, 2):
            subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", str(page), "-l", str(page), "-singlefile", str(pdf),
                            str(DOCS / f"report-print-{page}")], check=True, timeout=120)
            print(DOCS / f"report-print-{page}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
