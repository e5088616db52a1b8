"""The local site hands the functions the client's real address and User-Agent (``requestContext.identity``), as
API Gateway does, so bots and the unique-visitor window behave locally as deployed."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

from functions.keys import VISITOR_PREFIX
from localsite.site import LocalSite
from tests.localsite.helpers import all_items, parse_page, running_site, tag_counts, test_settings

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def get(site: LocalSite, path: str, user_agent: str | None, source: str = "127.0.0.1") -> tuple[int, str]:
    """GET ``path`` from the loopback address ``source`` with that User-Agent (``None``: no header at all)."""
    parts = urlsplit(site.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30, source_address=(source, 0))
    try:
        headers = {} if user_agent is None else {"User-Agent": user_agent}
        connection.request("GET", parts.path + path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8")
    finally:
        connection.close()


def note(body: str) -> str | None:
    return parse_page(body).text_by_id.get("visit-note")


def test_bots_are_shown_the_count_and_people_count(site: LocalSite) -> None:
    assert note(get(site, "tags/hello", FIREFOX)[1]) is None
    assert note(get(site, "tags/hello", None)[1]) is None  # no User-Agent: counted
    status, body = get(site, "tags/hello", "curl/8.5.0")
    assert status == 200 and note(body) == "This visit was not counted: looks like a bot."
    assert tag_counts(site) == {"tag#hello": 2}


def test_the_window_sees_the_real_source_address(tmp_path: Path) -> None:
    with running_site(tmp_path / "state", settings=test_settings(unique_visitor_window_minutes=30)) as site:
        assert note(get(site, "tags/hello", FIREFOX, source="127.0.0.1")[1]) is None
        assert note(get(site, "tags/hello", FIREFOX, source="127.0.0.1")[1]) == (
            "This visit was already counted within 30 minutes."
        )
        assert note(get(site, "tags/hello", FIREFOX, source="127.0.0.2")[1]) is None  # another address counts
        assert tag_counts(site) == {"tag#hello": 2}
        markers = [i for i in all_items(site) if i["pk"]["S"].startswith(VISITOR_PREFIX)]
        assert len(markers) == 2
        assert "127.0.0" not in repr(all_items(site)) and "Firefox" not in repr(all_items(site))
