"""The three pages through their real handlers: content, links under a stage prefix, headers (SPEC section 3)."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from definition import ROUTES
from functions import web
from functions.web import CONTENT_SECURITY_POLICY, render_error_page, security_headers, site_prefix
from localsite.events import LambdaContext, match_route

from .conftest import Site, handler_for, load_event, parse_page, resolve


SITE = "https://abc123.execute-api.us-east-1.amazonaws.com/"


def assert_well_formed(response: dict[str, Any], status: int) -> None:
    """What API Gateway's proxy integration needs, or it answers 502."""
    assert type(response["statusCode"]) is int and response["statusCode"] == status
    assert isinstance(response["body"], str) and response["body"].startswith("<!doctype html>")
    assert response["isBase64Encoded"] is False
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in response["headers"].items())
    headers = response["headers"]
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    # The site's policy; a page showing an image allows exactly that image besides (the count page's badge)
    assert headers["Content-Security-Policy"].startswith(CONTENT_SECURITY_POLICY)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    page = parse_page(response["body"])
    assert page.attributes["html"].get("lang") == "en"
    assert "script" not in page.tags and "h1" in page.tags
    assert 'name="viewport"' in response["body"]


def test_visit_counts_each_load_and_links_to_the_count_page(site: Site) -> None:
    first = site.get("/tags/hello")
    second = site.get("/tags/hello")
    assert_well_formed(second, 200)
    assert second["headers"]["Cache-Control"] == "no-store"
    assert parse_page(first["body"]).texts["visit-number"] == "1"
    page = parse_page(second["body"])
    assert page.texts["visit-number"] == "2" and page.texts["tag"] == "hello"
    assert "Your visit counts" in second["body"]
    assert site.visits("tag#hello") == 2


def test_count_page_reads_without_writing_and_shows_zero_for_an_unvisited_tag(site: Site) -> None:
    response = site.get("/counts/never-seen")
    assert_well_formed(response, 200)
    assert response["headers"]["Cache-Control"] == "public, max-age=5"
    page = parse_page(response["body"])
    assert (page.texts["tag-visits"], page.texts["site-total"]) == ("0", "0")
    assert site.scan() == []


def test_count_page_shows_tag_visits_and_the_total_once_the_stream_is_processed(site: Site) -> None:
    for path in ("/tags/hello", "/tags/hello", "/tags/Hello", "/tags/other"):
        site.get(path)
    assert site.process_stream() == {"batchItemFailures": []}
    page = parse_page(site.get("/counts/HELLO")["body"])
    assert (page.texts["tag"], page.texts["tag-visits"], page.texts["site-total"]) == ("hello", "3", "4")


def test_home_shows_the_total_and_example_tags(site: Site) -> None:
    site.get("/tags/serverless")
    site.process_stream()
    response = site.get("/")
    assert_well_formed(response, 200)
    page = parse_page(response["body"])
    assert page.texts["site-total"] == "1"
    for tag in web.EXAMPLE_TAGS:
        assert tag in response["body"]


@pytest.mark.parametrize("raw", ["caf%C3%A9", "café", "CAF%C3%89", "cafe%CC%81"])
def test_encoded_decoded_and_unnormalized_forms_count_for_one_tag(site: Site, raw: str) -> None:
    site.get("/tags/caf%C3%A9")
    response = site.call(site.event("/tags/x") | {"pathParameters": {"tag": raw}})
    page = parse_page(response["body"])
    assert page.texts["tag"] == "café" and page.texts["visit-number"] == "2"
    assert [item["pk"]["S"] for item in site.scan()] == ["tag#café"]


@pytest.mark.parametrize("stage", ["dev", "prod-2"])
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/tags/caf%C3%A9", {"/{stage}/", "/{stage}/counts/caf%C3%A9"}),
        ("/counts/caf%C3%A9", {"/{stage}/", "/{stage}/tags/caf%C3%A9"}),
        (
            "/",
            {"/{stage}/"}
            | {
                f"/{{stage}}/{kind}/{tag}"
                for kind in ("tags", "counts")
                for tag in ("hello", "serverless", "caf%C3%A9")
            },
        ),
    ],
)
def test_links_resolve_under_the_stage_prefix(site: Site, stage: str, path: str, expected: set[str]) -> None:
    event = site.event(path, stage=stage)
    page = parse_page(site.call(event)["body"])
    assert {resolve(event, href) for href in page.links} == {item.format(stage=stage) for item in expected}


@pytest.mark.parametrize(
    ("request_path", "resource", "prefix"),
    [
        ("/dev", "/", "dev/"),  # stage root without its slash: links must walk into the stage
        ("/dev/", "/", ""),
        ("/", "/", ""),  # custom domain, no base path
        ("/dev/tags/x", "/tags/{tag}", "../"),
        ("/dev/tags/x/", "/tags/{tag}", "../../"),
        ("/tags/x", "/tags/{tag}", "../"),
        ("/base/path/counts/x", "/counts/{tag}", "../"),
    ],
)
def test_site_prefix_for_every_page_shape(request_path: str, resource: str, prefix: str) -> None:
    assert site_prefix({"resource": resource, "requestContext": {"path": request_path}}) == prefix


@pytest.mark.parametrize("fixture", ["home_stage_root.json", "home_stage_slash.json"])
def test_home_at_the_stage_root_links_into_the_stage(site: Site, fixture: str) -> None:
    event = load_event(fixture)
    response = site.call(event)
    assert_well_formed(response, 200)
    links = {resolve(event, href) for href in parse_page(response["body"]).links}
    assert "/dev/tags/hello" in links and "/dev/" in links
    assert all(link.startswith("/dev/") for link in links)


def test_following_every_link_reaches_a_working_page(site: Site) -> None:
    """Crawl from the home page: every link leads to a route of the same stage that answers 200."""
    seen: set[str] = set()
    queue = ["/dev"]
    while queue:
        url_path = queue.pop()
        if url_path in seen:
            continue
        seen.add(url_path)
        site_path = url_path.removeprefix("/dev") or "/"
        found = match_route(site_path)
        assert found is not None, f"a link leads to {url_path}, which is no page"
        event = site.event(site_path)
        event["requestContext"]["path"] = url_path
        response = site.call(event)
        assert response["statusCode"] == 200, url_path
        queue.extend(resolve(event, href) for href in parse_page(response["body"]).links)
    assert len(seen) >= 7


@pytest.mark.parametrize(
    ("fixture", "tag", "links"),
    [
        ("visit_encoded.json", "café", {"/dev/", "/dev/counts/caf%C3%A9"}),
        ("visit_decoded.json", "café", {"/dev/", "/dev/counts/caf%C3%A9"}),
        ("visit_custom_domain.json", "hello", {"/", "/counts/hello"}),
    ],
)
def test_captured_visit_events(site: Site, fixture: str, tag: str, links: set[str]) -> None:
    event = load_event(fixture)
    response = handler_for(event["resource"])(event, LambdaContext("visit", 5))
    assert_well_formed(response, 200)
    page = parse_page(response["body"])
    assert page.texts["tag"] == tag
    assert {resolve(event, href) for href in page.links} == links


def test_captured_count_event(site: Site) -> None:
    site.get("/tags/caf%C3%A9")
    event = load_event("count_encoded.json")
    response = site.call(event)
    assert_well_formed(response, 200)
    assert parse_page(response["body"]).texts["tag-visits"] == "1"


def test_fixtures_match_the_routes_they_claim() -> None:
    for name in ("visit_encoded.json", "count_encoded.json", "home_stage_root.json", "visit_custom_domain.json"):
        event = load_event(name)
        found = match_route(event["path"].replace("é", "%C3%A9"))
        assert found is not None and found[0].path == event["resource"]
        assert event["multiValueHeaders"]["Host"] == [event["headers"]["Host"]]
    assert {route.path for route in ROUTES} == {
        "/",
        "/tags/{tag}",
        "/counts/{tag}",
        "/tags/{tag}/badge.svg",
        "/counts/{tag}/badge.svg",
        "/counts/{tag}/badge.json",
        "/tags/{tag}/count.json",
        "/counts/{tag}/count.json",
    }


def test_style_hash_in_the_policy_matches_the_inline_stylesheet(site: Site) -> None:
    body = site.get("/")["body"]
    styles = parse_page(body).styles
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode("utf-8")).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY and "script-src" not in CONTENT_SECURITY_POLICY


def test_pages_load_nothing_external(site: Site) -> None:
    for path in ("/", "/tags/hello", "/counts/hello"):
        body = site.get(path)["body"]
        assert "<script" not in body and "<link" not in body
        # Absolute URLs appear only as text to copy (the badge snippets), never as something the page loads.
        assert all(not urlsplit(href).scheme and not href.startswith("//") for href in parse_page(body).links)
        assert "url(http" not in body
        # The one thing a page loads: the count page's own read-only badge, from the site.
        sources = re.findall(r'src="([^"]*)"', body)
        assert body.count("<img") == len(sources) == (1 if path.startswith("/counts/") else 0)
        assert all(source.startswith(SITE) for source in sources)


def test_the_count_page_shows_its_read_only_badge_and_its_policy_allows_that_image_only(site: Site) -> None:
    response = site.get("/counts/caf%C3%A9", stage="prod")
    preview = parse_page(response["body"]).attributes["badge-preview"]
    # GIVEN the count page: its image is the tag's read-only badge (not the counting one) ...
    badge_url = f"{SITE}prod/counts/caf%C3%A9/badge.svg"
    assert preview["src"] == badge_url and preview["alt"] == "visits to café"
    # ... which the page's policy allows, and no other image (not even /favicon.ico)
    policy = dict(part.strip().split(" ", 1) for part in response["headers"]["Content-Security-Policy"].split(";"))
    assert policy["img-src"] == badge_url and policy["default-src"] == "'none'"
    # WHEN the browser loads the badge, THEN it is an image and nothing is counted
    badge = site.get("/counts/caf%C3%A9/badge.svg", stage="prod")
    assert badge["statusCode"] == 200 and badge["headers"]["Content-Type"].startswith("image/svg+xml")
    assert site.scan() == []
    # The other pages allow no image at all
    for path in ("/", "/tags/hello"):
        assert site.get(path)["headers"]["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "images", [(), ("https://x.example/a b",), ("https://x.example/a;script-src *",), ("https://x.example/a,b",)]
)
def test_an_image_address_the_policy_cannot_hold_is_left_out(images: tuple[str, ...]) -> None:
    assert web.page_policy(images) == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("status", [400, 404, 405, 500, 503])
def test_error_pages_render_standalone(status: int) -> None:
    body = render_error_page(status)
    page = parse_page(body)
    assert body.startswith("<!doctype html>") and f"Error {status}." in body
    assert page.links == []  # gateway responses cannot know the page depth: no link that could be wrong
    assert len(page.styles) == 1


@pytest.mark.parametrize("status", [404, 500])
def test_gateway_error_pages_are_safe_as_velocity_templates(status: int) -> None:
    """API Gateway treats a gateway response body as a VTL template: no ``$`` references, no ``#`` directives."""
    import re

    body = render_error_page(status)
    assert "$" not in body and "##" not in body and "#*" not in body
    assert not re.search(r"#\{?[A-Za-z]", body)


def test_not_found_page_is_the_one_the_gateway_serves() -> None:
    body = render_error_page(404)
    assert "Page not found" in body
    headers = security_headers("no-store")
    assert headers["Content-Type"] == "text/html; charset=utf-8" and headers["Cache-Control"] == "no-store"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_templates_are_loaded_once_per_container(site: Site) -> None:
    environment = web.environment()
    site.get("/")
    site.get("/tags/a")
    assert web.environment() is environment
    assert environment.autoescape is True
