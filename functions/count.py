"""``GET /counts/{tag}``: a tag's visits and the site-wide total, in one ``BatchGetItem``. Never writes."""

from __future__ import annotations

from functions.store import get_store
from functions.web import COUNT_CACHE_CONTROL, PAGE_TEMPLATES, Page, Request, load_templates, page_handler

TEMPLATES = ("count.html", *PAGE_TEMPLATES)
"""Every template this function renders, loaded and compiled at import (Lambda's init)."""
load_templates(TEMPLATES)


@page_handler(COUNT_CACHE_CONTROL)
def handler(request: Request) -> Page:
    """Lambda handler ``(event, context) -> response`` for a tag's count page."""
    tag = request.tag()
    visits, total = get_store().read_counts(tag)
    return Page(
        "count.html",
        {"tag": tag, "visits": visits, "total": total, "visit_href": request.link("tags", tag)},
    )
