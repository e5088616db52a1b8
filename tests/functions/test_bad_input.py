"""Bad input through the real handlers: the right status, a clear page, and nothing written (SPEC 3, 4, 9)."""

from __future__ import annotations

import logging

import pytest
from markupsafe import escape

from functions.chart import bar_chart
from functions.log import record_fields

from .conftest import Site, load_event, parse_page

INVALID_TAGS = [
    ("", "empty"),
    ("%20%20%20", "starts or ends with a space"),
    ("%0Ahello", "starts or ends with a space or a control character"),  # not the tag "hello"
    ("%E3%80%80hello", "starts or ends with a space"),  # ideographic space, NFKC's U+0020
    ("hello%20", "starts or ends with a space"),
    ("hello%09", "control character"),
    ("a" + "%CC%81" * 5, "more than 4 combining marks"),  # NFC composes one into á: still five
    ("x" * 65, "65 characters"),
    ("a%2Fb", "not allowed"),
    ("%F0%9F%98%80", "not allowed"),  # emoji
    ("%3Cscript%3Ealert(1)%3C%2Fscript%3E", "not allowed"),
    ("%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", "not allowed"),
    ("x'%20onmouseover%3D'alert(1)", "not allowed"),
    ("site%23total", "not allowed"),
    ("batch%23x", "not allowed"),
    ("%2E%2E", "full stops"),
    ("%FF%FE", "UTF-8"),
    ("%CC%81", "combining mark"),
]


@pytest.mark.parametrize("path", ["/tags/{}", "/counts/{}"])
@pytest.mark.parametrize(("raw", "problem"), INVALID_TAGS)
def test_invalid_tag_gets_a_400_page_and_writes_nothing(site: Site, path: str, raw: str, problem: str) -> None:
    site.get("/tags/existing")
    before = site.scan()
    event = site.event("/tags/x" if path.startswith("/tags") else "/counts/x")
    event["pathParameters"] = {"tag": raw}
    response = site.call(event)
    assert response["statusCode"] == 400
    assert response["headers"]["Content-Type"] == "text/html; charset=utf-8"
    page = parse_page(response["body"])
    assert problem in page.texts["problem"]
    assert "1 to 64 characters" in page.texts["explanation"]
    assert "<script>" not in response["body"] and "<img" not in response["body"]
    assert site.scan() == before


def test_tag_text_comes_back_escaped(site: Site) -> None:
    """Tags that are valid still pass through autoescaping (here: a tag with every allowed punctuation)."""
    response = site.get("/tags/a.b-c_d")
    assert "a.b-c_d" in response["body"]
    # Escaping is on for everything a template prints: a value with markup is shown, not interpreted.
    from functions.web import render

    snippets = {"badges": [], "endpoint": "", "shields": "", "script": "<script>y</script>", "counting_json": "",
                "reading_json": "", "preview": '"><script>z</script>', "preview_alt": '"><script>w</script>'}
    body = render(
        "count.html",
        tag='"><script>x</script>',
        visits=0,
        today=0,
        chart=bar_chart(()),
        total=0,
        visit_href="#",
        home_href="./",
        badge_snippets=snippets,
    )
    assert "<script>x" not in body and str(escape('"><script>x</script>')) in body
    assert "<script>y" not in body and str(escape("<script>y</script>")) in body
    assert "<script>z" not in body and "<script>w" not in body  # the badge shown: its address and text escaped


@pytest.mark.parametrize("raw", ["TOTAL", "total", "COUNTER", "site", "batch", "Site.Total", "tag", "pk"])
def test_look_alikes_of_internal_keys_are_just_tags(site: Site, raw: str) -> None:
    site.get("/tags/seed")
    site.process_stream()
    assert site.visits("site#total") == 1
    response = site.get(f"/tags/{raw}")
    assert response["statusCode"] == 200
    assert site.visits("site#total") == 1  # the page wrote only its own tag item
    assert site.visits(f"tag#{raw.casefold()}") == 1
    site.process_stream()
    assert site.visits("site#total") == 2


def test_mixed_case_and_non_nfc_forms_are_one_tag(site: Site) -> None:
    for raw in ("Caf%C3%A9", "CAFE%CC%81", "caf%C3%A9", "caf%C3%A9"):
        event = site.event("/tags/x")
        event["pathParameters"] = {"tag": raw}
        assert site.call(event)["statusCode"] == 200
    assert [(item["pk"]["S"], item["visits"]["N"]) for item in site.scan()] == [("tag#café", "4")]


def test_missing_path_parameters_is_400_and_writes_nothing(site: Site) -> None:
    for event in (load_event("visit_no_path_parameters.json"), site.event("/counts/x") | {"pathParameters": None}):
        response = site.call(event)
        assert response["statusCode"] == 400
        assert "No tag was given" in response["body"]
    assert site.scan() == []


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get"])
@pytest.mark.parametrize(
    "path", ["/", "/tags/hello", "/counts/hello", "/tags/hello/badge.svg", "/counts/hello/badge.svg",
             "/counts/hello/badge.json", "/tags/hello/count.json", "/counts/hello/count.json"]
)
def test_non_get_is_405_with_allow_and_writes_nothing(site: Site, method: str, path: str) -> None:
    response = site.get(path, method=method)
    assert response["statusCode"] == 405
    assert response["headers"]["Allow"] == "GET, HEAD"
    assert response["headers"]["Content-Security-Policy"]
    assert site.scan() == []


def test_captured_post_is_refused(site: Site) -> None:
    response = site.call(load_event("visit_post.json"))
    assert response["statusCode"] == 405 and site.scan() == []


def test_invalid_tag_is_logged_as_structured_fields(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="functions")
    event = site.event("/tags/x")
    event["pathParameters"] = {"tag": "a%2Fb"}
    site.call(event)
    [record] = [r for r in caplog.records if r.getMessage() == "invalid tag"]
    fields = record_fields(record)
    assert fields["raw_tag"] == "a%2Fb" and fields["route"] == "/tags/{tag}"
    assert fields["api_request_id"] == event["requestContext"]["requestId"]
