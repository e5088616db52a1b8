"""Copy-paste snippets for a tag: Markdown and HTML for its badges, and a few lines of plain script for a web page
that shows the count as text (the counting JSON, with the counting badge for readers without scripts).

The count page shows them as text to copy (``templates/badge_snippets.html``, escaped: the page itself runs no
script). A README needs absolute URLs: they are built from the request (API Gateway's domain and stage, or a custom
domain and its base path; see ``web.Request.site_url``) and the definition's route table, never from a hard-coded
path.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from functions import links
from functions.web import Request

SHIELDS_ENDPOINT = "https://img.shields.io/endpoint?url="

BADGES = (
    (
        "counting",
        links.VISIT_BADGE,
        "Counting badge",
        "Counts a visit each time it is shown (GitHub's image proxy fetches it for every view of a README).",
    ),
    (
        "showing",
        links.COUNT_BADGE,
        "Read-only badge",
        "Shows the count without adding to it.",
    ),
)


SCRIPT_ELEMENT_ID = "tag-counter"
"""The id of the element the script snippet writes the count into."""


def script_snippet(counting_json: str, badge: str, alt: str) -> str:
    """HTML for a web page: an element the script fills with the count from ``counting_json`` (each load counts
    one visit), and, for a reader without scripts, the counting badge instead (which counts that visit).

    The script groups the count by thousands in English (``74,606``), as the pages and badges do
    (``web.format_count``)."""
    return "\n".join(
        (
            f'<span id="{SCRIPT_ELEMENT_ID}"></span>',
            "<script>",
            f'  fetch("{counting_json}")',
            '    .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))',
            f'    .then((count) => {{ document.getElementById("{SCRIPT_ELEMENT_ID}").textContent = '
            'count.visits.toLocaleString("en-US"); });',
            "</script>",
            f'<noscript><img src="{badge}" alt="{alt}"></noscript>',
        )
    )


def badge_snippets(request: Request, tag: str) -> dict[str, Any]:
    """The count page's snippets: one entry per badge (Markdown, HTML, image URL), the script for a web page, the
    JSON's URLs, and the read-only badge the page shows (``preview``)."""
    page = request.absolute_link(links.COUNT, tag=tag)
    badges = []
    for key, route, title, description in BADGES:
        image = request.absolute_link(route, tag=tag)
        alt = f"visits to {tag}"
        badges.append(
            {
                "id": key,
                "title": title,
                "description": description,
                "url": image,
                "markdown": f"[![{alt}]({image})]({page})",
                "html": f'<a href="{page}"><img src="{image}" alt="{alt}"></a>',
            }
        )
    endpoint = request.absolute_link(links.COUNT_BADGE_JSON, tag=tag)
    counting_json = request.absolute_link(links.VISIT_JSON, tag=tag)
    return {
        "badges": badges,
        "endpoint": endpoint,
        "shields": SHIELDS_ENDPOINT + quote(endpoint, safe=""),
        "script": script_snippet(counting_json, request.absolute_link(links.VISIT_BADGE, tag=tag), f"visits to {tag}"),
        "counting_json": counting_json,
        "reading_json": request.absolute_link(links.COUNT_JSON, tag=tag),
        # Shown on the count page itself: the read-only badge, so that looking at the page adds no visit. Absolute,
        # as the page's policy names it (``web.page_policy``).
        "preview": request.absolute_link(links.COUNT_BADGE, tag=tag),
        "preview_alt": f"visits to {tag}",
    }
