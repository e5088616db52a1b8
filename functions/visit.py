"""``GET /tags/{tag}``: counts one visit (``functions.counting``) and shows its number, or why it did not count."""

from __future__ import annotations

from functions import links
from functions.counting import count_visit
from functions.web import PAGE_TEMPLATES, VISIT_CACHE_CONTROL, Page, Request, load_templates, page_handler

TEMPLATES = ("visit.html", *PAGE_TEMPLATES)
"""Every template this function renders, loaded and compiled at import (Lambda's init)."""
load_templates(TEMPLATES)


@page_handler(VISIT_CACHE_CONTROL)
def handler(request: Request) -> Page:
    """Lambda handler ``(event, context) -> response`` for a tag's visit page."""
    tag = request.tag()  # validated before anything is written
    visit = count_visit(request, tag)
    return Page(
        "visit.html",
        {"tag": tag, "number": visit.visits, "note": visit.note, "count_href": request.link(links.COUNT, tag=tag)},
    )
