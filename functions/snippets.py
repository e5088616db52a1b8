"""Copy-paste snippets (Markdown and HTML) for a tag's badges, with absolute URLs for the site as it was reached.

The count page shows them (``templates/badge_snippets.html``). A README needs absolute URLs: they are built
from the request (API Gateway's domain and stage, or a custom domain and its base path; see
``web.Request.site_url``) and the definition's route table, never from a hard-coded path.
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


def badge_snippets(request: Request, tag: str) -> dict[str, Any]:
    """The count page's badge section: one entry per badge (Markdown, HTML, image URL), and the JSON's URLs."""
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
    return {"badges": badges, "endpoint": endpoint, "shields": SHIELDS_ENDPOINT + quote(endpoint, safe="")}
