"""``GET /counts/{tag}/badge.svg``: a tag's count as a badge, without counting. One ``GetItem``, never a write."""

from __future__ import annotations

from functions.badge import SVG, Badge, BadgeOptions, badge_handler
from functions.store import get_store
from functions.web import Request


@badge_handler(SVG, counting=False)
def handler(request: Request) -> Badge:
    """Lambda handler ``(event, context) -> response`` for a tag's read-only badge."""
    tag = request.tag()
    options = BadgeOptions.of(request)
    counts = get_store().read_tag(tag)
    return Badge(options, counts.visits, counts.today)
