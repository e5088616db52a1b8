"""``GET /tags/{tag}``: counts one visit (one atomic ``UpdateItem``) and shows its number. Never cached."""

from __future__ import annotations

from functions.counting import count_visit
from functions import links
from functions.web import VISIT_CACHE_CONTROL, Page, Request, page_handler


@page_handler(VISIT_CACHE_CONTROL)
def handler(request: Request) -> Page:
    """Lambda handler ``(event, context) -> response`` for a tag's visit page."""
    tag = request.tag()  # validated before anything is written
    visit = count_visit(request, tag)
    return Page("visit.html", {"tag": tag, "number": visit.visits, "count_href": request.link(links.COUNT, tag=tag)})
