"""``GET /``: what the site is, the site-wide total, today's visits, the last days and a few example tags.

One ``GetItem`` per request.
"""

from __future__ import annotations

from functions.chart import bar_chart
from functions.store import get_store
from functions.web import COUNT_CACHE_CONTROL, EXAMPLE_TAGS, Page, Request, page_handler


@page_handler(COUNT_CACHE_CONTROL)
def handler(request: Request) -> Page:
    """Lambda handler ``(event, context) -> response`` for the home page."""
    examples = [
        {"tag": tag, "visit_href": request.link("tags", tag), "count_href": request.link("counts", tag)}
        for tag in EXAMPLE_TAGS
    ]
    total = get_store().read_total()
    return Page(
        "home.html",
        {"total": total.visits, "today": total.today, "chart": bar_chart(total.days), "examples": examples},
    )
