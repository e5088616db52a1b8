"""Every link comes from the definition: rename the routes and every link and snippet on the pages still works.

The local site reads ``definition.ROUTES`` at start and hands the functions the route table through
``definition.function_environment``, as the program does; the pages build their links from that table.
"""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

import definition
from localsite.site import LocalSite
from tests.localsite.helpers import parse_page, request, running_site, tag_counts

RENAMED = {
    "/tags/{tag}": "/hit/{tag}",
    "/counts/{tag}": "/seen/{tag}",
    "/tags/{tag}/badge.svg": "/hit/{tag}/image.svg",
    "/counts/{tag}/badge.svg": "/seen/{tag}/image.svg",
    "/counts/{tag}/badge.json": "/seen/{tag}/shield.json",
    "/tags/{tag}/count.json": "/hit/{tag}/number.json",
    "/counts/{tag}/count.json": "/seen/{tag}/number.json",
}


def crawl(site: LocalSite) -> dict[str, int]:
    """Every link of the home page, and of the visit and count pages it links to, with the status it answers."""
    seen: dict[str, int] = {}
    pages = [site.url]
    while pages:
        url = pages.pop()
        if url in seen:
            continue
        reply = request(url)
        seen[url] = reply.status
        if urlsplit(url).path.endswith((".svg", ".json")) or reply.status != 200:
            continue
        for href in parse_page(reply.body).links:
            pages.append(urljoin(url, href).partition("#")[0])
        # The count page's snippets are absolute URLs, to paste elsewhere: they must work too.
        text = html.unescape(reply.body)
        pages.extend(re.findall(re.escape(site.origin) + r"/[^\s\"'<>()\[\]]+", text))
    return seen


@pytest.mark.parametrize("renamed", [False, True], ids=["as-defined", "renamed"])
def test_every_link_and_snippet_resolves(state_dir: Path, monkeypatch: pytest.MonkeyPatch, renamed: bool) -> None:
    if renamed:
        # GIVEN the definition serves every route but the home page under other paths
        routes = tuple(dataclasses.replace(r, path=RENAMED.get(r.path, r.path)) for r in definition.ROUTES)
        monkeypatch.setattr(definition, "ROUTES", routes)
    with running_site(state_dir) as site:
        # WHEN a visitor follows every link from the home page (and every badge snippet of the count pages)
        statuses = crawl(site)
        paths = {urlsplit(url).path.removeprefix(f"/{site.settings.stage_name}") for url in statuses}
        # THEN none of them is a 404: each reached its route
        assert all(status == 200 for status in statuses.values()), statuses
        for template in RENAMED.values() if renamed else RENAMED:
            prefix = template.split("{tag}")[0]
            suffix = template.split("{tag}")[1]
            assert any(p.startswith(prefix) and p.endswith(suffix) for p in paths), (template, sorted(paths))
        if renamed:
            assert not any(p.startswith(("/tags/", "/counts/")) for p in paths), sorted(paths)
        assert tag_counts(site)  # the visit pages and the counting badges counted
        # ... and the home page's text says where a tag's pages are, as the definition says
        home = parse_page(request(site.url).body)
        assert home.text_by_id["visit-path"].startswith("hit/<your tag>" if renamed else "tags/<your tag>")


def test_head_is_routed_like_get_by_the_local_site(site: LocalSite) -> None:
    paths = ("", "tags/hello", "counts/hello", "tags/hello/badge.svg", "counts/hello/badge.json",
             "tags/hello/count.json", "counts/hello/count.json")
    for path in paths:
        head = request(f"{site.url}{path}", method="HEAD")
        get = request(f"{site.url}{path}")
        assert head.status == get.status == 200 and head.body == ""
        assert head.headers["Content-Type"] == get.headers["Content-Type"]
        assert head.headers["Cache-Control"] == get.headers["Cache-Control"]
    assert tag_counts(site) == {"tag#hello": 3}  # the three GETs of counting routes, not the HEADs
    assert request(f"{site.url}tags/hello/badge.svg", method="DELETE").status == 404  # not routed at all


def test_count_page_snippets_use_the_local_site_address(site: LocalSite) -> None:
    page = parse_page(request(f"{site.url}counts/caf%C3%A9").body)
    markdown = html.unescape(page.text_by_id["counting-markdown"])
    assert markdown == (
        f"[![visits to café]({site.url}tags/caf%C3%A9/badge.svg)]({site.url}counts/caf%C3%A9)"
    )
    reply = request(f"{site.url}tags/caf%C3%A9/badge.svg")
    assert reply.status == 200 and reply.headers["Content-Type"] == "image/svg+xml; charset=utf-8"
