"""``GET /``: what the site is, the site-wide total and a few example tags. One ``GetItem`` per request."""

from __future__ import annotations

from functions.store import get_store
from functions.web import COUNT_CACHE_CONTROL, EXAMPLE_TAGS, PAGE_TEMPLATES, Page, Request, load_templates, page_handler

TEMPLATES = ("home.html", *PAGE_TEMPLATES)
"""Every template this function renders, loaded and compiled at import (Lambda's init)."""
load_templates(TEMPLATES)


@page_handler(COUNT_CACHE_CONTROL)
def handler(request: Request) -> Page:
    """Lambda handler ``(event, context) -> response`` for the home page."""
    examples = [
        {"tag": tag, "visit_href": request.link("tags", tag), "count_href": request.link("counts", tag)}
        for tag in EXAMPLE_TAGS
    ]
    return Page("home.html", {"total": get_store().read_total(), "examples": examples})
