"""The report as PDF (`ivr-report --format pdf`): the same self-contained HTML, printed by
Debian's Chromium in headless mode (`--print-to-pdf`).

Why Chromium: the PDF is then the HTML report itself (one renderer for the plots, the tables
and the Korean text; tables run over pages as in a browser's print), with the Noto CJK font
embedded so the text can be searched and copied. matplotlib's PdfPages, tried first, either
draws Korean as glyph pictures with no text (its Type 3 fonts) or embeds the CFF-based Noto CJK
as a font type it is not (Type 42: "Mismatch between font type and embedded font file" in
poppler); weasyprint would be a new PyPI dependency on pango. Chromium is a Debian package the
project installs anyway (the web desk).

The HTML is written to a private temporary directory (0700) and read from there; Chromium gets
its own throwaway profile, so a browser already running for the web desk is not disturbed.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ivr.report.reader import ReportError

log = logging.getLogger(__name__)

#: The browsers tried, in order (Debian's package installs `chromium`).
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
#: A busy 2-core machine prints a year's report in a few seconds; a hung browser is stopped.
TIMEOUT = 180.0


def find_browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path is not None:
            return path
    raise ReportError(
        "no Chromium to print the PDF: install Debian's chromium (tools/bootstrap.sh)"
    )


def html_to_pdf(page: str, out: Path, timeout: float = TIMEOUT) -> None:
    """Print `page` (a whole HTML document) to `out` (written 0600)."""
    browser = find_browser()
    with tempfile.TemporaryDirectory(prefix="ivr-report-") as tmp:
        src, pdf = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        src.write_text(page, encoding="utf-8")
        cmd = [
            browser,
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
        ]
        if os.geteuid() == 0:
            # Chromium refuses root without it; the page is our own file, nothing fetched.
            cmd.append("--no-sandbox")
        cmd.append(src.as_uri())
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ReportError(f"Chromium did not print the PDF within {timeout:.0f} s") from None
        if done.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
            tail = (done.stderr or "").strip().splitlines()[-3:]
            raise ReportError(f"Chromium could not print the PDF (exit {done.returncode}): {tail}")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(pdf, out)
    os.chmod(out, 0o600)
