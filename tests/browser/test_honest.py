"""A real headless Chromium, as a bot and as a person: its own User-Agent says ``HeadlessChrome`` and is not
counted; the same browser with a person's User-Agent is (SPEC section 8)."""

from __future__ import annotations

from typing import Any

from localsite.site import LocalSite
from tests.browser.conftest import person_user_agent


def test_headless_chromium_is_shown_the_count_but_not_counted(browser: Any, site: LocalSite) -> None:
    bot = browser.new_context(java_script_enabled=False)
    person = browser.new_context(java_script_enabled=False, user_agent=person_user_agent(browser))
    try:
        page = person.new_page()
        page.goto(f"{site.url}tags/headless")
        assert page.locator("h1").inner_text() == "Your visit counts"
        assert page.locator("#visit-number").inner_text() == "1"

        page = bot.new_page()
        response = page.goto(f"{site.url}tags/headless")
        assert response is not None and response.status == 200
        assert "HeadlessChrome" in response.request.headers["user-agent"]
        assert page.locator("h1").inner_text() == "Your visit was not counted"
        assert page.locator("#visit-note").inner_text() == "This visit was not counted: looks like a bot."
        assert page.locator("#visit-number").inner_text() == "1"
    finally:
        bot.close()
        person.close()
