"""Whether a request adds a visit, and what it then shows: the one rule the visit page and the counting badge share.

Every counting route calls ``count_visit`` and nothing else to count, so the rules about what counts (a ``HEAD``
never writes; bots and repeat visitors, where the stack says so, are shown the count without adding to it) live
here once.
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.store import get_store
from functions.web import Request


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
    """Why it was not counted (``None`` when it was)."""


HEAD_REASON = "head"
"""A ``HEAD`` (uptime monitors, ``curl -I``) is answered like a ``GET`` but never counts."""


def count_visit(request: Request, tag: str) -> Visit:
    """Count one visit to a normalized ``tag`` for this request, or say why not."""
    if request.method == "HEAD":
        # One read, no write: the answer shows what a GET would, as of now.
        counts = get_store().read_tag(tag)
        return Visit(tag, counts.visits, counted=False, today=counts.today, reason=HEAD_REASON)
    counts = get_store().record_visit(tag)
    return Visit(tag, counts.visits, counted=True, today=counts.today)
