"""``GET /tags/{tag}/badge.svg``: counts one visit, like the visit page, and shows the new count as a badge.

Never cached anywhere (GitHub's image proxy included), so every view of a README counts. A ``HEAD`` reads.
"""

from __future__ import annotations

from functions.badge import TEMPLATES, SVG, Badge, BadgeOptions, badge_handler
from functions.counting import count_visit
from functions.web import Request


@badge_handler(SVG, counting=True)
def handler(request: Request) -> Badge:
    """Lambda handler ``(event, context) -> response`` for a tag's counting badge."""
    tag = request.tag()
    options = BadgeOptions.of(request)  # the tag and every option are validated before anything is written
    visit = count_visit(request, tag)
    return Badge(options, visit.visits, visit.today)
