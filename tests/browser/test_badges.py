"""Badges in a real headless Chromium: a page embedding both badges as ``<img>`` shows them, at their size."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from localsite.site import LocalSite
from tests.browser.conftest import person_user_agent
from tests.localsite.helpers import tag_counts

STYLES = ("flat", "flat-square", "for-the-badge")


def embedding_page(site: LocalSite, tag: str) -> str:
    """An HTML page as a README renders it: the counting and the read-only badge, in each style."""
    images = []
    for style in STYLES:
        images.append(f'<p><img id="counting-{style}" src="{site.url}tags/{tag}/badge.svg?style={style}" alt="c"></p>')
        images.append(f'<p><img id="showing-{style}" src="{site.url}counts/{tag}/badge.svg?style={style}" alt="s"></p>')
    images.append(f'<p><img id="invalid" src="{site.url}tags/{tag}/badge.svg?color=%3Cscript%3E" alt="e"></p>')
    return "<!doctype html><html lang='en'><body>" + "".join(images) + "</body></html>"


def rendered_size(page: Any, element_id: str) -> tuple[int, int]:
    """The image's natural size once Chromium decoded it (0 x 0 when it failed to load or to parse)."""
    image = page.locator(f"#{element_id}")
    image.wait_for()
    page.wait_for_function(f"document.getElementById('{element_id}').complete")
    return tuple(image.evaluate("i => [i.naturalWidth, i.naturalHeight]"))


def test_a_page_embedding_both_badges_shows_them(site: LocalSite, browser: Any) -> None:
    # GIVEN a page that embeds the counting and the read-only badge of a new tag, in every style
    tag = f"badge-{uuid.uuid4().hex[:8]}"
    context = browser.new_context(java_script_enabled=True, user_agent=person_user_agent(browser))
    try:
        page = context.new_page()
        page.set_content(embedding_page(site, tag), wait_until="load")
        # THEN Chromium draws each badge at the size its SVG declares, flat ones 20 px high, the big one 28
        for style in STYLES:
            for kind in ("counting", "showing"):
                width, height = rendered_size(page, f"{kind}-{style}")
                assert width > 40 and height == (28 if style == "for-the-badge" else 20), (kind, style, width)
                box = page.locator(f"#{kind}-{style}").bounding_box()
                assert box is not None and box["width"] > 0 and box["height"] > 0
        # ... an invalid option still gives an image that draws (it says what is wrong)
        width, height = rendered_size(page, "invalid")
        assert width > 40 and height == 20
        # ... and the three counting badges counted three visits; the read-only ones none
        assert tag_counts(site).get(f"tag#{tag}") == 3
        if os.environ.get("BADGE_SCREENSHOT"):
            page.screenshot(path=os.environ["BADGE_SCREENSHOT"])
    finally:
        context.close()


@pytest.mark.parametrize("style", STYLES)
def test_a_badge_opened_on_its_own_draws(site: LocalSite, browser: Any, style: str) -> None:
    context = browser.new_context(java_script_enabled=False, user_agent=person_user_agent(browser))
    try:
        page = context.new_page()
        response = page.goto(f"{site.url}counts/hello/badge.svg?style={style}&label=h%C3%A9llo%20%3C%26%3E")
        assert response is not None and response.status == 200
        assert response.headers["content-type"] == "image/svg+xml; charset=utf-8"
        # An SVG document that failed to parse shows Chromium's XML error page instead of the svg element.
        svg = page.locator("svg").first
        assert svg.get_attribute("aria-label") == "héllo <&>: 0"
        box = svg.bounding_box()
        assert box is not None and box["width"] > 40
    finally:
        context.close()
