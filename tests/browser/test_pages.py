"""The pages in a real headless Chromium: the visitor's journey, error pages, no scripts, nothing external."""

from __future__ import annotations

import uuid
from typing import Any

from localsite.site import LocalSite
from tests.browser.conftest import Visitor


def only_local(visitor: Visitor, site: LocalSite) -> None:
    assert visitor.requests, "no request was recorded"
    assert all(url.startswith(f"{site.origin}/") for url in visitor.requests), visitor.requests


def test_visit_follow_the_link_and_see_the_total_catch_up(site: LocalSite, visitor: Visitor) -> None:
    page = visitor.page
    tag = f"journey-{uuid.uuid4().hex[:8]}"
    # GIVEN a visitor who opens a tag page twice
    page.goto(f"{site.url}tags/{tag}")
    response = page.reload()
    assert response is not None and response.status == 200
    assert page.locator("h1").inner_text() == "Your visit counts"
    assert page.locator("#visit-number").inner_text() == "2"
    # WHEN they follow the link to the tag's count page
    page.locator("#count-link").click()
    page.wait_for_load_state()
    # THEN they land on it, under the stage, and see the tag's count
    assert page.url == f"{site.url}counts/{tag}"
    assert page.locator("#tag-visits").inner_text() == "2"
    # ... and once the stream is processed, the site-wide total includes their visits
    assert site.drain()
    page.reload()
    shown_total = int(page.locator("#site-total").inner_text().replace(",", ""))  # grouped by thousands
    assert shown_total >= 2
    assert shown_total == sum_of_tags(site)
    # The link back adds a visit
    page.locator("#visit-link").click()
    page.wait_for_load_state()
    assert page.locator("#visit-number").inner_text() == "3"
    only_local(visitor, site)
    assert not [line for line in visitor.console if line.startswith("error")], visitor.console


def sum_of_tags(site: LocalSite) -> int:
    from tests.localsite.helpers import tag_counts

    return sum(tag_counts(site).values())


def test_an_invalid_tag_shows_the_400_page(site: LocalSite, visitor: Visitor) -> None:
    response = visitor.page.goto(f"{site.url}tags/not%20valid!")
    assert response is not None and response.status == 400
    assert visitor.page.locator("h1").inner_text() == "This is not a valid tag"
    assert "letters" in visitor.page.locator("body").inner_text()
    only_local(visitor, site)


def test_an_unknown_page_shows_the_404_page(site: LocalSite, visitor: Visitor) -> None:
    response = visitor.page.goto(f"{site.url}no/such/page")
    assert response is not None and response.status == 404
    assert visitor.page.locator("h1").inner_text() == "Page not found"
    # The page is no dead end: its link leads to the home page
    visitor.page.get_by_role("link", name="Go to the home page").click()
    visitor.page.wait_for_load_state()
    assert visitor.page.url == site.url
    assert visitor.page.locator("#site-total").count() == 1
    only_local(visitor, site)


def test_no_script_and_a_strict_policy_on_every_page(site: LocalSite, browser: Any) -> None:
    texts: dict[bool, list[str]] = {}
    for javascript in (False, True):
        tab = Visitor(browser, javascript)
        try:
            texts[javascript] = []
            for path in ("", "tags/same", "counts/same", "tags/%3Cscript%3E", "missing"):
                response = tab.page.goto(f"{site.url}{path}")
                assert response is not None
                policy = response.headers["content-security-policy"]
                assert "default-src 'none'" in policy and "script-src" not in policy
                assert tab.page.locator("script").count() == 0
                # The inline stylesheet is allowed by its hash: a mismatch would show up as a console error.
                texts[javascript].append(tab.page.locator("main, body").first.inner_text())
            # (The 400 and 404 pages log "failed to load resource", as any error status does.)
            assert not [line for line in tab.console if "Refused" in line or "Security Policy" in line], tab.console
            only_local(tab, site)
        finally:
            tab.close()
    # Scripts on or off makes no difference beyond the counts that moved in between.
    assert [t.split()[:3] for t in texts[False]] == [t.split()[:3] for t in texts[True]]


def test_the_count_page_shows_its_read_only_badge_without_counting(site: LocalSite, visitor: Visitor) -> None:
    from tests.localsite.helpers import tag_counts

    tag = f"shown-{uuid.uuid4().hex[:8]}"
    # GIVEN a tag with one visit; WHEN a visitor opens its count page
    visitor.page.goto(f"{site.url}tags/{tag}")
    response = visitor.page.goto(f"{site.url}counts/{tag}")
    assert response is not None and response.status == 200
    # THEN the page shows the read-only badge (the policy lets it load: no refusal in the console) ...
    image = visitor.page.locator("#badge-preview")
    image.wait_for()
    visitor.page.wait_for_function("document.getElementById('badge-preview').complete")
    assert image.evaluate("i => i.naturalHeight") == 20
    assert f"{site.url}counts/{tag}/badge.svg" in visitor.requests
    assert not [line for line in visitor.console if "Refused" in line or "Security Policy" in line], visitor.console
    # ... and showing it added no visit
    assert tag_counts(site).get(f"tag#{tag}") == 1
    only_local(visitor, site)
