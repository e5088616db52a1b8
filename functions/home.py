"""``GET /``: what the site is, the site-wide total, today's visits, the last days and a few example tags.

One ``GetItem`` per request.
"""

from __future__ import annotations

from functions import links
from functions.chart import bar_chart
from functions.store import get_store
from functions.web import COUNT_CACHE_CONTROL, EXAMPLE_TAGS, PAGE_TEMPLATES, Page, Request, load_templates, page_handler

TEMPLATES = ("home.html", "chart.html", *PAGE_TEMPLATES)
"""Every template this function renders, loaded and compiled at import (Lambda's init)."""
load_templates(TEMPLATES)


@page_handler(COUNT_CACHE_CONTROL)
def handler(request: Request) -> Page:
    """Lambda handler ``(event, context) -> response`` for the home page."""
    examples = [
        {
            "tag": tag,
            "visit_href": request.link(links.VISIT, tag=tag),
            "count_href": request.link(links.COUNT, tag=tag),
        }
        for tag in EXAMPLE_TAGS
    ]
    badge = {
        "markdown": f"![visits]({request.absolute_link(links.VISIT_BADGE, tag=EXAMPLE_TAGS[0])})",
        "count_href": request.link(links.COUNT, tag=EXAMPLE_TAGS[0]) + "#badges",
    }
    paths = {
        "visit": links.shown_path(links.VISIT, tag="<your tag>"),
        "count": links.shown_path(links.COUNT, tag="<your tag>"),
    }
    total = get_store().read_total()
    values = {
        "total": total.visits,
        "today": total.today,
        "chart": bar_chart(total.days),
        "examples": examples,
        "badge": badge,
        "paths": paths,
    }
    return Page("home.html", values)
