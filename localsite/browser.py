"""Headless Chromium for the browser tests and the README's screenshot: the system's Chromium, never a download.

``CHROMIUM`` names the executable if it is not ``/usr/bin/chromium`` (or ``chromium`` on the PATH).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def chromium_path() -> str | None:
    """The Chromium executable to drive, or ``None`` if there is none.

    A ``CHROMIUM`` that names no executable file is an error (``FileNotFoundError``), not a reason to use
    another Chromium than the one asked for.
    """
    asked = os.environ.get("CHROMIUM")
    if asked:
        if not _executable(asked):
            raise FileNotFoundError(f"CHROMIUM={asked} is not an executable file; fix the path or unset CHROMIUM")
        return asked
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and _executable(candidate):
            return candidate
    return None


def launch(playwright: Any) -> Any:
    """A headless Chromium browser from a started ``sync_playwright()``."""
    path = chromium_path()
    if path is None:
        raise FileNotFoundError("no Chromium found: install it (apt-get install chromium) or set CHROMIUM")
    return playwright.chromium.launch(executable_path=path, headless=True, args=list(CHROMIUM_ARGS))
