"""The JSON counter in a real headless Chromium, from a page on another origin: the count page's script snippet,
pasted as is into a page a second local server serves, shows the number; without scripts, its badge counts.

The second server listens on 127.0.0.1 at another port: another origin for the browser (CORS applies), on the
loopback, as a static site under development would be.
"""

from __future__ import annotations

import html
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from localsite.site import LocalSite
from tests.browser.conftest import Visitor
from tests.localsite.helpers import parse_page, request, tag_counts


HEAD = "<!doctype html><html lang='en'><head><title>static</title><link rel='icon' href='data:,'></head>"
"""The static pages' start (an empty icon: no favicon request, no 404 in the console)."""


class StaticSite:
    """A second web server on 127.0.0.1 that serves whatever page a test gives it, at ``/``."""

    def __init__(self) -> None:
        self.page = ""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the base class's name
                body = owner.page.encode("utf-8")
                self.send_response(200 if self.path == "/" else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def static_site() -> Iterator[StaticSite]:
    started = StaticSite()
    try:
        yield started
    finally:
        started.close()


def pasted_snippet(site: LocalSite, tag: str) -> str:
    """The count page's script snippet as a reader copies it: the text shown, unescaped."""
    page = parse_page(request(f"{site.url}counts/{tag}").body)
    return html.unescape(page.text_by_id["script-html"])


def test_a_page_on_another_origin_counts_and_shows_the_number(
    site: LocalSite, static_site: StaticSite, visitor: Visitor
) -> None:
    tag = f"json-{uuid.uuid4().hex[:8]}"
    snippet = pasted_snippet(site, tag)
    assert static_site.origin != site.origin
    # GIVEN a static page on another origin holding the snippet, as pasted
    static_site.page = f"{HEAD}<body><p>Visits: {snippet}</p></body></html>"
    scripts_on = visitor.javascript
    page = visitor.page
    for expected in (1, 2):
        # WHEN a reader loads it (twice)
        page.goto(static_site.origin + "/")
        if scripts_on:
            # THEN the script fetched the counting JSON across origins and wrote the new count into the element
            page.wait_for_function(
                f"document.getElementById('tag-counter').textContent === '{expected}'", timeout=30_000
            )
        else:
            # ... or, without scripts, the badge in <noscript> is shown and counts the visit instead
            image = page.locator("img")
            image.wait_for()
            page.wait_for_function("[...document.images].every(i => i.complete)")
            assert image.evaluate("i => i.naturalHeight") == 20
        assert tag_counts(site).get(f"tag#{tag}") == expected
    json_requests = [url for url in visitor.requests if url.endswith("/count.json")]
    badge_requests = [url for url in visitor.requests if url.endswith("/badge.svg")]
    assert (len(json_requests), len(badge_requests)) == ((2, 0) if scripts_on else (0, 2))
    assert not [line for line in visitor.console if line.startswith("error")], visitor.console


def test_another_origin_reads_the_json_but_never_with_credentials_nor_as_a_script(
    site: LocalSite, static_site: StaticSite, browser: Any
) -> None:
    from tests.browser.conftest import person_user_agent

    tag = f"json-{uuid.uuid4().hex[:8]}"
    static_site.page = HEAD + "<body><p>static</p></body></html>"
    context = browser.new_context(java_script_enabled=True, user_agent=person_user_agent(browser))
    try:
        page = context.new_page()
        page.goto(static_site.origin + "/")
        counting = f"{site.url}tags/{tag}/count.json"
        reading = f"{site.url}counts/{tag}/count.json"
        # GIVEN a script on another origin: it reads the count, and a bad tag's JSON error with its status
        answer = page.evaluate("async (url) => { const r = await fetch(url); return [r.status, await r.json()]; }",
                               counting)
        assert answer == [200, {"tag": tag, "visits": 1, "today": 1, "counted": True}]
        shown = page.evaluate("async (url) => (await fetch(url)).json()", reading)
        assert shown == {"tag": tag, "visits": 1, "today": 1}
        error = page.evaluate("async (url) => { const r = await fetch(url); return [r.status, await r.json()]; }",
                              f"{site.url}tags/not%20valid/count.json")
        assert error[0] == 400 and error[1]["error"] == "invalid tag"
        # THEN with credentials the browser refuses the answer (a "*" never allows them) ...
        refused = page.evaluate(
            "async (url) => { try { await fetch(url, {credentials: 'include'}); return 'read'; }"
            " catch (e) { return 'refused'; } }",
            reading,
        )
        assert refused == "refused"
        # ... and loaded as a script with a callback (JSONP), nothing runs: the answer is JSON, not a script
        ran = page.evaluate(
            "(url) => new Promise((done) => { window.ran = false; window.f = () => { window.ran = true; };"
            " const s = document.createElement('script'); s.src = url + '?callback=f';"
            " s.onload = s.onerror = () => done(window.ran); document.body.append(s); })",
            reading,
        )
        assert ran is False
        assert tag_counts(site).get(f"tag#{tag}") == 1  # only the one counting fetch counted
    finally:
        context.close()


def test_the_pasted_counter_groups_a_large_count_as_the_pages_do(
    site: LocalSite, static_site: StaticSite, browser: Any
) -> None:
    from tests.browser.conftest import person_user_agent

    tag = f"json-{uuid.uuid4().hex[:8]}"
    # GIVEN a tag whose count is in the tens of thousands, and the snippet pasted on another origin
    site.dynamodb.put_item(TableName=site.table_name, Item={"pk": {"S": f"tag#{tag}"}, "visits": {"N": "74605"}})
    static_site.page = f"{HEAD}<body><p>Visits: {pasted_snippet(site, tag)}</p></body></html>"
    context = browser.new_context(java_script_enabled=True, user_agent=person_user_agent(browser))
    try:
        page = context.new_page()
        # WHEN a reader loads it, THEN the count it shows is grouped as on the count page
        page.goto(static_site.origin + "/")
        page.wait_for_function("document.getElementById('tag-counter').textContent === '74,606'", timeout=30_000)
        assert parse_page(request(f"{site.url}counts/{tag}").body).text_by_id["tag-visits"] == "74,606"
    finally:
        context.close()
