"""``python -m localsite.screenshot``: a picture of the pages for the README (``docs/screenshot.png``).

Starts a throwaway local site, visits a few tags over the last days (the functions' clock,
``functions.history.utc_today``, is set back a day at a time), waits for the stream to bring the total up to
date, and photographs a tag's count page in headless Chromium (scripts off, as the pages need none).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

from definition import ROOT, stack_settings
from functions import history
from localsite.browser import launch
from localsite.site import LocalSite

DEFAULT_OUTPUT = ROOT / "docs" / "screenshot.png"
VISITS = {"serverless": 3, "caf%C3%A9": 2, "hello": 1}
"""Visits to each tag today."""
DAILY = (1, 0, 2, 3, 2, 4, 1, 0, 0, 2, 5, 3, 2, 1, 3, 4, 6, 2, 1, 0, 2, 3, 5, 4, 2, 3, 6, 5, 4)
"""Visits to ``serverless`` on each of the days before today, oldest first."""
PAGE = "counts/serverless"


BROWSER_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
"""The visits are a person's: urllib's own User-Agent is a bot's, and bots are not counted."""


def _visit(site: LocalSite, tag: str) -> None:
    request = Request(f"{site.url}tags/{tag}", headers={"User-Agent": BROWSER_USER_AGENT})
    with urlopen(request) as response:  # noqa: S310 - our own 127.0.0.1 site
        response.read()


def take(output: Path, browser: Any = None, width: int = 820, height: int = 760) -> Path:
    """Write the screenshot to ``output`` and return its path (``browser``: a launched one, or ``None``)."""
    with tempfile.TemporaryDirectory() as state, LocalSite(stack_settings("dev"), port=0, state_dir=state) as site:
        today = history.utc_today()
        real_clock = history.utc_today
        try:
            for days_ago, times in zip(range(len(DAILY), 0, -1), DAILY):
                history.utc_today = lambda now=None, day=today - timedelta(days=days_ago): day  # type: ignore[misc]
                for _ in range(times):
                    _visit(site, "serverless")
        finally:
            history.utc_today = real_clock  # type: ignore[assignment]
        for tag, times in VISITS.items():
            for _ in range(times):
                _visit(site, tag)
        if not site.drain(timeout=30):
            raise RuntimeError("the stream did not catch up")
        if browser is not None:
            _photograph(browser, f"{site.url}{PAGE}", output, width, height)
            return output
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            own = launch(playwright)
            try:
                _photograph(own, f"{site.url}{PAGE}", output, width, height)
            finally:
                own.close()
    return output


def _photograph(browser: Any, url: str, output: Path, width: int, height: int) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto(url)
        output.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(output))
    finally:
        context.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Take the screenshot; print where it went."""
    parser = argparse.ArgumentParser(prog="python -m localsite.screenshot", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    print(take(args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
