"""Print a report to PDF with headless Chromium (Playwright driving the system's ``chromium``).

The HTML report is opened from a temporary file, its Plotly charts are awaited (they
draw in the browser), and Chromium's own print engine writes the PDF, so the PDF
shows exactly what the HTML shows. Needs the ``playwright`` Python package (no
browser download: it drives the installed Chromium, e.g. Debian's ``/usr/bin/chromium``).
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

from gemmawatch.errors import MissingDependencyError, UserError

__all__ = ["CHROMIUM", "available", "find_chromium", "print_pdf", "write_pdf"]

#: Where Debian/Ubuntu install Chromium; else ``chromium`` / ``chromium-browser`` on PATH.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
#: Page width the charts are drawn at; with :data:`SCALE` it fills an A4 page between the margins.
VIEWPORT = {"width": 1040, "height": 1400}
SCALE = 0.7
MARGINS: dict[str, str] = {"top": "12mm", "bottom": "12mm", "left": "10mm", "right": "10mm"}


def find_chromium() -> str | None:
    """Path of a Chromium binary, or None."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    return shutil.which("chromium") or shutil.which("chromium-browser")


def available() -> bool:
    """Whether :func:`print_pdf` can run here (Playwright and Chromium installed)."""
    return importlib.util.find_spec("playwright") is not None and find_chromium() is not None


def write_pdf(html: str, path: Path, *, chromium: str | None = None, timeout_s: float = 90.0) -> None:
    """Write ``html`` (a self-contained report) to ``path`` as an A4 PDF (see :func:`print_pdf`).

    Raises:
        MissingDependencyError: Playwright or Chromium is not installed (with the install line).
        UserError: ``path`` cannot be written, or the page did not render within ``timeout_s``.
    """
    pdf = print_pdf(html, chromium=chromium, timeout_s=timeout_s)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pdf)
    except OSError as exc:
        raise UserError(f"Cannot write --pdf {path}: {exc.strerror or exc}. Fix: pick a writable path") from exc


def print_pdf(html: str, *, chromium: str | None = None, timeout_s: float = 90.0) -> bytes:
    """``html`` printed to an A4 PDF by headless Chromium, once its charts have drawn.

    Raises:
        MissingDependencyError: Playwright or Chromium is not installed (with the install line).
        UserError: The page did not render within ``timeout_s``, or Chromium failed.
    """
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise MissingDependencyError(
            "--pdf needs Playwright. Fix: pip install 'gemmawatch[pdf]' (Playwright; it drives the system Chromium; "
            "no browser download needed), or open the HTML report and print it"
        ) from exc
    browser_path = chromium or find_chromium()
    if browser_path is None:
        raise MissingDependencyError(
            "--pdf needs Chromium. Fix: apt-get install -y chromium, or open the HTML report and print it"
        )
    timeout_ms = timeout_s * 1000
    with tempfile.TemporaryDirectory(prefix="gemmawatch-report-") as tmp:
        source = Path(tmp) / "report.html"
        source.write_text(html, encoding="utf-8")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
                    page.goto(source.as_uri(), timeout=timeout_ms)
                    # Every chart placeholder holds a drawn Plotly figure before printing.
                    page.wait_for_function(
                        "Array.from(document.querySelectorAll('.chart')).every(d => d.querySelector('.main-svg'))",
                        timeout=timeout_ms,
                    )
                    pdf = page.pdf(format="A4", print_background=True, scale=SCALE, margin=MARGINS)  # type: ignore[arg-type]
                finally:
                    browser.close()
        except PlaywrightError as exc:
            raise UserError(f"Printing the report with {browser_path} failed: {str(exc).splitlines()[0]}") from exc
    return pdf
