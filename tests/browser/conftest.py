"""A real headless Chromium (the system's, never downloaded) against a running local site.

Without Chromium these tests skip, saying why, unless ``REQUIRE_BROWSER=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localsite.browser import chromium_path, launch
from localsite.site import LocalSite
from tests.localsite.helpers import running_site


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if chromium_path() is None:
        reason = "no Chromium: install it (apt-get install chromium) or set CHROMIUM=/path/to/chrome"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSite]:
    """One local site per test module (moto is one per process: modules never overlap)."""
    with running_site(tmp_path_factory.mktemp("browser-state")) as started:
        yield started


def person_user_agent(browser: Any) -> str:
    """The User-Agent of this Chromium as a person runs it: headless Chromium says ``HeadlessChrome``, a bot."""
    return (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{browser.version} Safari/537.36"
    )


class Visitor:
    """A browser tab with scripts on or off that records every request it makes (a person's User-Agent)."""

    def __init__(self, browser: Any, javascript: bool) -> None:
        self.javascript = javascript
        self.context = browser.new_context(java_script_enabled=javascript, user_agent=person_user_agent(browser))
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.console: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))

    def close(self) -> None:
        self.context.close()


@pytest.fixture(params=[False, True], ids=["scripts-off", "scripts-on"])
def visitor(request: pytest.FixtureRequest, browser: Any) -> Iterator[Visitor]:
    tab = Visitor(browser, javascript=request.param)
    try:
        yield tab
    finally:
        tab.close()
