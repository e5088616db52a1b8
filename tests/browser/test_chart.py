"""The count page's chart in a real Chromium: drawn, readable on a phone, nothing external, as a screenshot."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path
from typing import Any

from functions import history
from localsite.site import LocalSite
from tests.browser.conftest import Visitor, person_user_agent
from tests.browser.test_pages import only_local

DAYS = history.DEFAULT_HISTORY_DAYS
PHONE = {"width": 360, "height": 780}


def test_the_count_page_draws_its_chart_on_a_phone(site: LocalSite, browser: Any, tmp_path: Path) -> None:
    tag = f"chart-{uuid.uuid4().hex[:8]}"
    context = browser.new_context(java_script_enabled=False, viewport=PHONE, user_agent=person_user_agent(browser))
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    try:
        page = context.new_page()
        for _ in range(3):
            page.goto(f"{site.url}tags/{tag}")
        response = page.goto(f"{site.url}counts/{tag}")
        assert response is not None and response.status == 200
        # GIVEN three visits today, THEN 30 bars, the last one the full height of the plot
        assert page.locator("#tag-today").inner_text() == "3"
        bars = page.locator("#tag-days-bars rect.bar")
        assert bars.count() == DAYS
        plot = page.locator("#tag-days-bars").bounding_box()
        last = bars.nth(DAYS - 1).bounding_box()
        assert plot and last and last["height"] > 0.9 * plot["height"] and last["width"] > 2
        assert bars.nth(0).bounding_box()["height"] == 0  # a day without visits draws nothing
        # The chart fits the phone's width; the page does not scroll sideways.
        assert plot["x"] >= 0 and plot["x"] + plot["width"] <= PHONE["width"]
        body = page.locator("body").bounding_box()
        assert body and body["width"] <= PHONE["width"]
        # The table is there for screen readers, out of sight.
        table = page.locator("#tag-days-table")
        assert table.locator("tbody tr").count() == DAYS
        assert page.locator("#tag-days-text").bounding_box()["width"] <= 1
        assert page.get_by_role("table").count() == 1
        picture = tmp_path / "count-page.png"
        page.screenshot(path=str(picture), full_page=True)
        header = picture.read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">I", header[16:20])[0] == PHONE["width"]
    finally:
        context.close()
    assert requests and all(url.startswith(f"{site.origin}/") for url in requests), requests


def test_the_home_page_chart_loads_nothing_external(site: LocalSite, visitor: Visitor) -> None:
    response = visitor.page.goto(site.url)
    assert response is not None and response.status == 200
    assert visitor.page.locator("#site-days-bars rect.bar").count() == DAYS
    assert visitor.page.locator("#site-today").count() == 1
    only_local(visitor, site)
    assert not [line for line in visitor.console if "Refused" in line or "Security Policy" in line], visitor.console
