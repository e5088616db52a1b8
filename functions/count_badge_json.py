"""``GET /counts/{tag}/badge.json``: a tag's count as shields.io endpoint JSON, without counting (one ``GetItem``).

For ``https://img.shields.io/endpoint?url=<this URL>``: shields.io then draws the badge, in any of its styles.
"""

from __future__ import annotations

from functions.badge import JSON, Badge, BadgeOptions, badge_handler
from functions.store import get_store
from functions.web import Request


@badge_handler(JSON, counting=False)
def handler(request: Request) -> Badge:
    """Lambda handler ``(event, context) -> response`` for a tag's endpoint JSON."""
    tag = request.tag()
    options = BadgeOptions.of(request)
    counts = get_store().read_tag(tag)
    return Badge(options, counts.visits, counts.today)
