"""The stack's counting rules as the functions read them: ``countBots`` and the unique-visitor window.

``definition.function_environment`` sets these variables on every function from ``definition.Settings``; the
local site sets the same. Read per request (a few microseconds), so a test or the local site that changes them
needs no rebuild. Standard library only: ``definition`` imports the names from here.
"""

from __future__ import annotations

import os

COUNT_BOTS_ENV = "COUNT_BOTS"
"""The stack's ``countBots`` (``true``/``false``, default false): whether self-identified bots count too."""
WINDOW_MINUTES_ENV = "UNIQUE_VISITOR_WINDOW_MINUTES"
"""The stack's ``uniqueVisitorWindowMinutes``; 0 or unset: every load counts."""
VISITOR_KEY_ENV = "VISITOR_KEY"
"""The per-stack secret the visitor hash is keyed with; set only on the functions that count, only with a window."""
MAX_WINDOW_MINUTES = 10_080
"""A week: a longer window would count a returning reader once, which is no longer a visit counter."""


class MissingVisitorKey(RuntimeError):
    """The window is on but the function has no ``VISITOR_KEY``: a deploy error, never a reason to count twice."""


def count_bots() -> bool:
    """Whether the stack counts self-identified bots (``COUNT_BOTS``; a value other than true/false is an error)."""
    raw = (os.environ.get(COUNT_BOTS_ENV) or "false").strip().lower()
    if raw not in ("true", "false"):
        raise ValueError(f"{COUNT_BOTS_ENV} must be true or false, got {raw!r}")
    return raw == "true"


def window_minutes() -> int:
    """The window's length in minutes from ``UNIQUE_VISITOR_WINDOW_MINUTES`` (0: off)."""
    raw = os.environ.get(WINDOW_MINUTES_ENV)
    if not raw:
        return 0
    minutes = int(raw)
    if not 0 <= minutes <= MAX_WINDOW_MINUTES:
        raise ValueError(f"{WINDOW_MINUTES_ENV} must be between 0 and {MAX_WINDOW_MINUTES}, got {minutes}")
    return minutes


def visitor_key() -> bytes:
    """The secret from ``VISITOR_KEY``; ``MissingVisitorKey`` when it is not set."""
    secret = os.environ.get(VISITOR_KEY_ENV)
    if not secret:
        raise MissingVisitorKey(f"{WINDOW_MINUTES_ENV} is set but {VISITOR_KEY_ENV} is not")
    return secret.encode("utf-8")
