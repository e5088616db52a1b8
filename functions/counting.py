"""Whether a request adds a visit, and what it then shows: the one rule the visit page and the counting badge share.

Every counting route calls ``count_visit`` and nothing else to count, so the rules about what counts (a ``HEAD``
never writes; bots and repeat visitors, where the stack says so, are shown the count without adding to it) live
here once. In order:
0. a ``HEAD`` (uptime monitors, ``curl -I``): one read, no write;
1. a self-identified bot (``functions.bots``), unless the stack sets ``countBots``: one read, no write;
2. with a unique-visitor window (``functions.visitors``), a visitor already counted for this tag inside it: the
   marker's failed conditional write, then one read;
3. otherwise one visit is added (the window's marker first, when there is a window).
The source address and User-Agent come from ``requestContext.identity``, as API Gateway fills it; they are used
here and never stored, logged or returned. Each counted visit logs one line, ``VISIT_COUNTED_MESSAGE`` with its
tag: the stack's visits metric counts those lines.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from functions import rules, visitors
from functions.bots import is_bot
from functions.log import VISIT_COUNTED_MESSAGE, get_logger, log_event
from functions.store import get_store
from functions.web import Request

HEAD_REASON = "head"
"""``Visit.reason`` for a ``HEAD``: answered like a ``GET``, never counted."""
BOT = "bot"
"""``Visit.reason`` for a request whose User-Agent says it is a bot."""
REPEAT = "repeat"
"""``Visit.reason`` for a visitor already counted for this tag within the window."""

_logger = get_logger(__name__)


@dataclass(frozen=True)
class Visit:
    """What one request to a counting route did."""

    tag: str
    """The normalized tag."""
    visits: int
    """The tag's count after this request (its new count when ``counted``)."""
    counted: bool
    """Whether this request added a visit."""
    today: int = 0
    """The tag's visits on the current UTC day, this one included when counted."""
    reason: str | None = None
    """Why it was not counted (``BOT``, ``REPEAT``; ``None`` when it was)."""
    window_minutes: int = 0
    """The stack's unique-visitor window (0: off), for saying how long a repeat stays uncounted."""

    @property
    def note(self) -> str | None:
        """Plain words for a visitor on why this request was not counted (``None`` when it was)."""
        if self.reason == BOT:
            return "not counted: looks like a bot"
        if self.reason == REPEAT:
            unit = "minute" if self.window_minutes == 1 else "minutes"
            return f"already counted within {self.window_minutes} {unit}"
        return None


def _identity(request: Request) -> Mapping[str, Any]:
    context = request.event.get("requestContext") or {}
    return context.get("identity") or {}


def _shown(tag: str, reason: str, minutes: int = 0) -> Visit:
    """A request that does not count: one read of the tag, to show its count as of now."""
    counts = get_store().read_tag(tag)
    return Visit(tag, counts.visits, counted=False, today=counts.today, reason=reason, window_minutes=minutes)


def count_visit(request: Request, tag: str) -> Visit:
    """Count one visit to a normalized ``tag`` for this request, or say why not."""
    if request.method == "HEAD":
        return _shown(tag, HEAD_REASON)  # what a GET would show, as of now
    identity = _identity(request)
    user_agent = identity.get("userAgent")
    minutes = rules.window_minutes()
    if not rules.count_bots() and is_bot(user_agent):
        return _shown(tag, BOT, minutes)
    store = get_store()
    if minutes:
        digest = visitors.visitor_digest(rules.visitor_key(), tag, identity.get("sourceIp"), user_agent)
        if not visitors.claim(store.client, store.table_name, digest, minutes):
            return _shown(tag, REPEAT, minutes)
    counts = store.record_visit(tag)
    # Only once the visit is written: the metric counts visits the table holds (and the stream will carry).
    log_event(_logger, logging.INFO, VISIT_COUNTED_MESSAGE, tag=tag)
    return Visit(tag, counts.visits, counted=True, today=counts.today, window_minutes=minutes)
