"""``GET /counts/{tag}``: a tag's visits, today's, its last days and the site-wide total, in one ``BatchGetItem``.

Never writes.
"""

from __future__ import annotations

from functions import links
from functions.chart import bar_chart
from functions.snippets import badge_snippets
from functions.store import get_store
from functions.web import COUNT_CACHE_CONTROL, PAGE_TEMPLATES, Page, Request, load_templates, page_handler

TEMPLATES = ("count.html", "chart.html", "badge_snippets.html", *PAGE_TEMPLATES)
"""Every template this function renders, loaded and compiled at import (Lambda's init)."""
load_templates(TEMPLATES)


@page_handler(COUNT_CACHE_CONTROL)
def handler(request: Request) -> Page:
    """Lambda handler ``(event, context) -> response`` for a tag's count page."""
    tag = request.tag()
    counts, total = get_store().read_counts(tag)
    snippets = badge_snippets(request, tag)
    return Page(
        "count.html",
        {
            "tag": tag,
            "visits": counts.visits,
            "today": counts.today,
            "chart": bar_chart(counts.days),
            "total": total.visits,
            "visit_href": request.link(links.VISIT, tag=tag),
            "badge_snippets": snippets,
        },
        images=(snippets["preview"],),
    )
