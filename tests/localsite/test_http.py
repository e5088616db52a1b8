"""The local site over real HTTP: every route, the stage redirect, 404s and the gateway's 502."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

import pytest

from definition import ROUTES, FunctionSpec, Route
from functions.web import render_error_page
from localsite.site import LocalSite, MalformedResponse, check_proxy_response
from tests.localsite.helpers import all_items, parse_page, request, running_site, tag_counts, total, visit

SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "Cache-Control")


def test_every_route_is_served_and_links_lead_on(site: LocalSite) -> None:
    # GIVEN a fresh site; WHEN a visitor opens the home page, a tag, and the tag's count page by its link
    home = request(site.url)
    assert home.status == 200
    assert home.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "site-total" in parse_page(home.body).by_id

    first = request(f"{site.url}tags/hello")
    second = request(f"{site.url}tags/hello")
    assert (first.status, second.status) == (200, 200)
    page = parse_page(second.body)
    assert page.text_by_id["visit-number"].strip() == "2"
    assert second.headers["Cache-Control"] == "no-store"

    count_url = urljoin(f"{site.url}tags/hello", page.by_id["count-link"]["href"])
    assert count_url == f"{site.url}counts/hello"
    count = request(count_url)
    # THEN the count page shows the tag's visits, and the total catches up once the stream is processed
    assert count.status == 200
    assert parse_page(count.body).text_by_id["tag-visits"].strip() == "2"
    assert site.drain()
    after = parse_page(request(count_url).body)
    assert after.text_by_id["site-total"].strip() == "2"
    for name in SECURITY_HEADERS:
        assert count.headers[name]


def test_home_links_work_from_the_bare_stage_root(site: LocalSite) -> None:
    bare = f"{site.origin}/{site.settings.stage_name}"
    home = request(bare)
    assert home.status == 200
    links = [link for link in parse_page(home.body).links if "tags/" in link]
    assert links
    # Each example link, resolved against the address without its slash, still lands on a tag page.
    for link in links:
        assert request(urljoin(bare, link)).status == 200


def test_root_redirects_to_the_stage(site: LocalSite) -> None:
    reply = request(f"{site.origin}/")
    assert reply.status == 302
    assert reply.headers["Location"] == f"/{site.settings.stage_name}/"


def test_path_parameters_arrive_percent_encoded_and_are_normalized_once(site: LocalSite) -> None:
    # café in NFC, in NFD and upper case: one tag for the handler, as behind API Gateway.
    visit(site, "caf%C3%A9")
    visit(site, "cafe%CC%81")
    reply = request(f"{site.url}tags/CAF%C3%89")
    assert parse_page(reply.body).text_by_id["visit-number"].strip() == "3"
    assert tag_counts(site) == {"tag#café": 3}


@pytest.mark.parametrize(
    "path",
    ["/elsewhere", "/prod/", "/dev/nothing-here", "/dev/tags", "/dev/tags/", "/dev/tags/a/b", "/devtags/x", "/favicon.ico"],
)
def test_unknown_paths_get_the_gateway_404_page(site: LocalSite, path: str) -> None:
    before = all_items(site)
    reply = request(f"{site.origin}{path}")
    assert reply.status == 404
    assert reply.body == render_error_page(404, home_href=site.home_href)
    for name in SECURITY_HEADERS:
        assert reply.headers[name]
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    # As the deployed gateway's pages: a script calling the JSON routes reads the status, not a network error.
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert reply.headers["Access-Control-Allow-Credentials"] is None
    assert all_items(site) == before


@pytest.mark.parametrize("path", ["tags/hello", "tags/hello/count.json", "counts/hello/count.json"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_not_routed_and_write_nothing(site: LocalSite, method: str, path: str) -> None:
    # The JSON routes too: no route takes the method, so the gateway's 404 page answers (readable across origins).
    reply = request(f"{site.url}{path}", method=method, body=b"x=1")
    assert reply.status == 404
    assert reply.body == render_error_page(404, home_href=site.home_href)
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert all_items(site) == []


def test_an_invalid_tag_gets_the_400_page_and_nothing_is_written(site: LocalSite) -> None:
    reply = request(f"{site.url}tags/%3Cscript%3E")
    assert reply.status == 400
    assert "<script>" not in reply.body
    assert all_items(site) == []


@pytest.mark.parametrize("raw", ["%0Ahello", "%E3%80%80hello", "%20hello", "hello%09", "a" + "%CC%81" * 5])
def test_a_blank_end_or_overloaded_letter_is_a_400_not_another_tags_visit(site: LocalSite, raw: str) -> None:
    # GIVEN a tag that shows as "hello" (or as "a" with accents), WHEN it is visited, THEN 400 and no count at all
    reply = request(f"{site.url}tags/{raw}")
    assert reply.status == 400
    assert "starts or ends with a space" in reply.body or "combining marks" in reply.body
    assert all_items(site) == []


def test_a_throttled_visit_is_a_503_and_the_next_one_counts(site: LocalSite) -> None:
    # GIVEN DynamoDB throttles every UpdateItem on tag items
    from localsite.faults import touches_tag_items

    site.faults.throttle("UpdateItem", when=touches_tag_items)
    reply = request(f"{site.url}tags/busy")
    # THEN the visitor gets the 503 page with Retry-After, and nothing was counted
    assert reply.status == 503
    assert reply.headers["Retry-After"]
    assert site.faults.counts.throttled["UpdateItem"] >= 1
    assert tag_counts(site) == {}
    # WHEN DynamoDB has capacity again, THEN the next visit counts
    site.faults.clear()
    visit(site, "busy")
    assert tag_counts(site) == {"tag#busy": 1}


def test_throttling_only_what_was_asked(site: LocalSite) -> None:
    # The next 2 UpdateItem calls on tag items: the client's own retry absorbs them, the visit counts.
    from localsite.faults import touches_tag_items

    site.faults.throttle("UpdateItem", count=2, when=touches_tag_items)
    visit(site, "patient")
    assert site.faults.counts.throttled == {"UpdateItem": 2}
    visit(site, "patient")
    assert site.faults.counts.throttled == {"UpdateItem": 2}
    assert tag_counts(site) == {"tag#patient": 2}


BROKEN = "tests.localsite.broken_functions"


@pytest.mark.parametrize(
    "handler",
    [f"{BROKEN}.raises", f"{BROKEN}.string_status", f"{BROKEN}.bytes_body", f"{BROKEN}.number_header", f"{BROKEN}.not_a_dict"],
)
def test_a_failing_function_is_a_502_like_api_gateway(state_dir: Path, handler: str) -> None:
    # A function that raises or answers what the proxy integration rejects: API Gateway answers 502.
    broken = FunctionSpec(name="broken", handler=handler, grants=(), uses_templates=False)
    routes = ROUTES + (Route("/broken", broken),)
    with running_site(state_dir, routes=routes) as site:
        reply = request(f"{site.url}broken")
        assert reply.status == 502
        assert reply.body == render_error_page(500, home_href=site.home_href)
        assert "Traceback" not in reply.body
        assert request(f"{site.url}tags/fine").status == 200


def leads_home(site: LocalSite, page: str, requested: str) -> None:
    """The page links home (its text and its header, as the deployed gateway pages do) and the link works."""
    links = parse_page(page).links
    assert links.count(site.home_href) == 2, links  # the header's "Tag counter" and "Go to the home page"
    assert "Go to the home page" in page
    home = request(urljoin(requested, site.home_href))
    assert home.status == 200 and "site-total" in parse_page(home.body).by_id


def test_the_sites_own_error_pages_link_home_as_the_deployed_ones(state_dir: Path) -> None:
    broken = FunctionSpec(name="broken", handler=f"{BROKEN}.raises", grants=(), uses_templates=False)
    with running_site(state_dir, routes=ROUTES + (Route("/broken", broken),)) as site:
        # The deployed gateway pages' link with the stage put in: the same page as the stack's 404 and 5xx.
        assert site.home_href == "/dev/"
        for url, status in [
            (f"{site.origin}/elsewhere", 404),
            (f"{site.url}deeper/still/nothing", 404),
            (f"{site.url}broken", 502),
        ]:
            reply = request(url)
            assert reply.status == status
            leads_home(site, reply.body, url)
        # The page of a site that is stopping, and the front door's page for a request it cannot read.
        status, _, body = site._stopping_page()
        assert status == 503
        leads_home(site, body.decode("utf-8"), site.url)
        status, _, body = site._protocol_error_page(400)
        assert status == 400
        leads_home(site, body.decode("utf-8"), site.url)


def test_proxy_responses_are_checked_as_api_gateway_does() -> None:
    good = {"statusCode": 200, "headers": {"A": "b"}, "multiValueHeaders": {"C": ["d", "e"]}, "body": "hi"}
    assert check_proxy_response(good) == (200, [("A", "b"), ("C", "d"), ("C", "e")], b"hi")
    assert check_proxy_response({"statusCode": 204}) == (204, [], b"")
    assert check_proxy_response({"statusCode": 200, "body": "aGk=", "isBase64Encoded": True})[2] == b"hi"
    for bad in (
        None,
        [],
        {"body": "x"},
        {"statusCode": True, "body": ""},
        {"statusCode": 99, "body": ""},
        {"statusCode": 200, "body": 5},
        {"statusCode": 200, "headers": {"A": 1}},
        {"statusCode": 200, "headers": "A: b"},
        {"statusCode": 200, "multiValueHeaders": {"A": "b"}},
        {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
        {"statusCode": 200, "isBase64Encoded": "yes"},
    ):
        with pytest.raises(MalformedResponse):
            check_proxy_response(bad)


def test_the_total_is_never_read_from_a_page_before_the_stream_ran(site: LocalSite) -> None:
    # The pages read the total item; only the stream processor (through the mapping) writes it.
    visit(site, "one", times=3)
    assert site.drain()
    assert total(site) == 3


def test_the_json_counter_is_served_like_the_deployed_api(site: LocalSite) -> None:
    import json

    # GIVEN the local site, WHEN a script's request loads the counting JSON twice
    for expected in (1, 2):
        reply = request(f"{site.url}tags/hello/count.json")
        assert reply.status == 200
        assert json.loads(reply.body) == {"tag": "hello", "visits": expected, "today": expected, "counted": True}
        assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
        assert reply.headers["Access-Control-Allow-Origin"] == "*"
        assert reply.headers["Cache-Control"] == "no-store"
        assert reply.headers["Access-Control-Allow-Credentials"] is None and reply.headers["Set-Cookie"] is None
    # THEN the read-only JSON shows both, with its ETag, and a bad tag is a JSON error with CORS, not a page
    shown = request(f"{site.url}counts/hello/count.json")
    assert json.loads(shown.body) == {"tag": "hello", "visits": 2, "today": 2} and shown.headers["ETag"]
    assert tag_counts(site) == {"tag#hello": 2}
    bad = request(f"{site.url}tags/no%20spaces/count.json")
    assert bad.status == 400 and bad.headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(bad.body)["error"] == "invalid tag"
    assert tag_counts(site) == {"tag#hello": 2}


@pytest.mark.parametrize(("path", "operation"), [("tags/hello/count.json", "UpdateItem"),
                                                 ("counts/hello/count.json", "GetItem")])
def test_throttled_json_is_a_503_json_error_with_retry_after(site: LocalSite, path: str, operation: str) -> None:
    import json

    # GIVEN DynamoDB throttles the route's one call, WHEN a script loads the JSON
    site.faults.throttle(operation)
    reply = request(f"{site.url}{path}")
    site.faults.clear()
    # THEN a JSON error, readable across origins with its Retry-After, never a page; nothing counted
    assert reply.status == 503 and json.loads(reply.body)["error"] == "busy"
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert reply.headers["Access-Control-Allow-Origin"] == "*" and reply.headers["Retry-After"]
    assert "Retry-After" in reply.headers["Access-Control-Expose-Headers"]
    assert reply.headers["Cache-Control"] == "no-store"
    assert tag_counts(site) == {}
