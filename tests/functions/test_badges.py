"""The badge routes through their real handlers: counts, options, hostile input, headers, ETags, errors (SPEC 3).

Events are REST proxy events as API Gateway builds them (stage prefix, percent-encoded tag, query strings in
``queryStringParameters`` and ``multiValueQueryStringParameters``); DynamoDB is moto, and the calls each handler
makes are recorded, so "never writes" and "counts exactly once" are checked on the wire.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions import badge, web
from functions.badge import FONTS, format_count, preferred_width
from functions.store import get_store

from .conftest import EVENTS_DIR, Fault, Site, record_calls

SVG_NS = "{http://www.w3.org/2000/svg}"
SCHEMA = json.loads((EVENTS_DIR / "shields_endpoint_schema.json").read_text(encoding="utf-8"))
NEVER_CACHED = {
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Expires": "Thu, 01 Jan 1970 00:00:00 GMT",
    "Pragma": "no-cache",
}


def assert_proxy_response(response: dict[str, Any]) -> None:
    """What API Gateway's proxy integration needs, or it answers 502."""
    assert type(response["statusCode"]) is int
    assert isinstance(response["body"], str) and response["isBase64Encoded"] is False
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in response["headers"].items())
    assert response["headers"]["X-Content-Type-Options"] == "nosniff"


def svg(response: dict[str, Any], status: int = 200) -> ElementTree.Element:
    """The badge's SVG, parsed as XML (a badge that does not parse fails here), after the common checks."""
    assert_proxy_response(response)
    assert response["statusCode"] == status, response["body"][:300]
    headers = response["headers"]
    assert headers["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert headers["Content-Security-Policy"] == badge.SVG_CONTENT_SECURITY_POLICY
    root = ElementTree.fromstring(response["body"])
    assert root.tag == SVG_NS + "svg"
    return root


def texts(root: ElementTree.Element) -> list[str]:
    """The visible texts of a badge (shadows left out), left to right."""
    return [t.text or "" for t in root.iter(SVG_NS + "text") if t.get("aria-hidden") != "true"]


def title(root: ElementTree.Element) -> str:
    element = root.find(SVG_NS + "title")
    assert element is not None
    return element.text or ""


def query(text: str) -> list[tuple[str, str]]:
    """A query string as API Gateway decodes it (``parse_qsl``: invalid UTF-8 becomes U+FFFD, as it does)."""
    return parse_qsl(text, keep_blank_values=True)


# --- the counting badge -------------------------------------------------------------------------------


def test_counting_badge_counts_exactly_once_per_request_and_is_never_cached(site: Site) -> None:
    calls = record_calls(get_store().client)
    for expected in (1, 2, 3):
        response = site.get("/tags/hello/badge.svg")
        assert texts(svg(response)) == ["visits", str(expected)]
        for name, value in NEVER_CACHED.items():
            assert response["headers"][name] == value
        assert "ETag" not in response["headers"]
    assert [call.operation for call in calls] == ["UpdateItem"] * 3
    assert site.visits("tag#hello") == 3


def test_counting_badge_under_a_stage_with_an_encoded_tag_counts_the_normalized_tag(site: Site) -> None:
    event = site.event("/tags/CAF%C3%89/badge.svg", stage="prod")
    assert event["requestContext"]["path"] == "/prod/tags/CAF%C3%89/badge.svg"
    assert event["pathParameters"] == {"tag": "CAF%C3%89"}
    svg(site.call(event))
    site.get("/tags/caf%C3%A9/badge.svg")
    assert site.visits("tag#café") == 2


def test_an_invalid_tag_or_option_is_a_400_badge_and_counts_nothing(site: Site) -> None:
    calls = record_calls(get_store().client)
    root = svg(site.get("/tags/no%20spaces/badge.svg"), 400)
    assert texts(root) == ["visits", "invalid tag"]
    assert "letters and digits" in title(root)
    root = svg(site.get("/tags/hello/badge.svg", query=query("style=round")), 400)
    assert texts(root) == ["visits", "invalid style"]
    assert "flat, flat-square or for-the-badge" in title(root)
    response = site.get("/tags/hello/badge.svg", query=query("label=a&label=b"))
    assert texts(svg(response, 400)) == ["visits", "label twice"]
    for name, value in NEVER_CACHED.items():
        assert response["headers"][name] == value
    assert calls == [] and site.scan() == []


def test_an_error_badge_keeps_the_valid_options_it_was_asked_for(site: Site) -> None:
    root = svg(site.get("/tags/no%20spaces/badge.svg", query=query("style=for-the-badge&label=hits")), 400)
    assert texts(root) == ["HITS", "INVALID TAG"] and root.get("height") == "28"


# --- the read-only badge and the JSON ------------------------------------------------------------------


def test_read_only_badge_never_writes_and_shows_the_count(site: Site) -> None:
    for _ in range(2):
        site.get("/tags/hello/badge.svg")
    before = site.scan()
    calls = record_calls(get_store().client)
    for style in badge.STYLES:
        response = site.get("/counts/hello/badge.svg", query=query(f"style={style}"))
        shown = texts(svg(response))
        assert shown == (["VISITS", "2"] if style == "for-the-badge" else ["visits", "2"])
        assert response["headers"]["Cache-Control"] == "public, max-age=5"
    assert {call.operation for call in calls} == {"GetItem"} and len(calls) == 3
    assert site.scan() == before


def test_read_only_badge_etag_gives_304_with_no_body_until_the_count_changes(site: Site) -> None:
    site.get("/tags/hello/badge.svg")
    first = site.get("/counts/hello/badge.svg")
    etag = first["headers"]["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert site.get("/counts/hello/badge.svg")["headers"]["ETag"] == etag  # same count, same tag
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = site.get("/counts/hello/badge.svg", headers=[("If-None-Match", header)])
        assert_proxy_response(again)
        assert again["statusCode"] == 304 and again["body"] == ""
        assert again["headers"]["ETag"] == etag and again["headers"]["Cache-Control"] == "public, max-age=5"
    # Other options are another badge, another tag.
    assert site.get("/counts/hello/badge.svg", query=query("label=hits"))["headers"]["ETag"] != etag
    assert site.get("/counts/hello/badge.svg", headers=[("if-none-match", '"other"')])["statusCode"] == 200
    # A new visit changes the badge: the old tag no longer matches.
    site.get("/tags/hello/badge.svg")
    changed = site.get("/counts/hello/badge.svg", headers=[("If-None-Match", etag)])
    assert texts(svg(changed)) == ["visits", "2"] and changed["headers"]["ETag"] != etag


def test_json_is_a_valid_shields_endpoint_and_never_writes(site: Site) -> None:
    site.get("/tags/hello/badge.svg")
    before = site.scan()
    options = query("label=hits&color=%234C1&style=flat-square")
    response = site.get("/counts/hello/badge.json", query=options)
    assert_proxy_response(response)
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert response["headers"]["ETag"] and response["headers"]["Cache-Control"] == "public, max-age=5"
    body = json.loads(response["body"])
    jsonschema.validate(body, SCHEMA)
    assert body == {"schemaVersion": 1, "label": "hits", "message": "1", "color": "4c1", "style": "flat-square"}
    etag = response["headers"]["ETag"]
    again = site.get("/counts/hello/badge.json", query=options, headers=[("If-None-Match", etag)])
    assert again["statusCode"] == 304 and again["body"] == ""
    assert site.scan() == before


def test_json_errors_are_endpoint_json_too(site: Site) -> None:
    for path, options in (("/counts/no%20spaces/badge.json", ""), ("/counts/hello/badge.json", "color=nope")):
        response = site.get(path, query=query(options))
        assert response["statusCode"] == 400
        body = json.loads(response["body"])
        jsonschema.validate(body, SCHEMA)
        assert body["isError"] is True and body["message"] in ("invalid tag", "invalid color")


def test_the_schema_check_can_fail() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schemaVersion": 1, "label": "x", "message": "", "colour": "red"}, SCHEMA)


# --- options and query strings ---------------------------------------------------------------------------


def test_options_change_the_badge(site: Site) -> None:
    site.client.put_item(TableName=site.table_name, Item={"pk": {"S": "tag#big"}, "visits": {"N": "1234"}})
    root = svg(site.get("/counts/big/badge.svg", query=query("label=hits&color=orange&show=both")))
    assert texts(root) == ["hits", "1,234 · 0 today"]
    assert '#fe7d37' in [rect.get("fill") for rect in root.iter(SVG_NS + "rect")]
    root = svg(site.get("/counts/big/badge.svg", query=query("style=for-the-badge&show=total")))
    assert texts(root) == ["VISITS", "1.2K"]  # the big style is compact
    root = svg(site.get("/counts/big/badge.svg", query=query("label=&show=today")))
    assert texts(root) == ["0 today"]  # no label: the count alone
    root = svg(site.get("/counts/big/badge.svg", query=query("color=%23ABC&cachebust=123")))
    assert "#abc" in [rect.get("fill") for rect in root.iter(SVG_NS + "rect")]  # unknown parameters ignored


def test_query_strings_in_either_form_of_a_proxy_event(site: Site) -> None:
    event = site.event("/counts/hello/badge.svg", query=query("label=one&label=two"))
    assert event["queryStringParameters"] == {"label": "two"}
    assert event["multiValueQueryStringParameters"] == {"label": ["one", "two"]}
    assert texts(svg(site.call(event), 400))[-1] == "label twice"  # the full list is read when there is one
    only_single = site.event("/counts/hello/badge.svg") | {
        "queryStringParameters": {"label": "hits"},
        "multiValueQueryStringParameters": None,
    }
    assert texts(svg(site.call(only_single))) == ["hits", "0"]


@pytest.mark.parametrize(
    ("count", "compact", "shown"),
    [
        (0, False, "0"),
        (999, True, "999"),
        (1000, True, "1k"),
        (1234, True, "1.2k"),
        (1299, True, "1.2k"),  # truncated: a badge never shows more than the count
        (12_345, True, "12k"),
        (999_999, True, "999k"),
        (1_000_000, True, "1M"),
        (2_500_000_000, True, "2.5B"),
        (1_234_567, False, "1,234,567"),
    ],
)
def test_counts_are_formatted_for_people(count: int, compact: bool, shown: str) -> None:
    assert format_count(count, compact) == shown


def test_text_widths_come_from_the_verdana_table() -> None:
    font = FONTS["verdana-11"]
    assert font.char_width("0") == 6.99 and font.char_width(",") == 4.0  # anafanafo's Verdana 11 px
    assert preferred_width("1,234", font) == 33  # 4 x 6.99 + 4 = 31.96: rounded to 32, then made odd
    assert font.width("WWW") > font.width("iii")
    assert font.char_width("\U0001f600") == font.char_width("m")  # beyond the table: measured as an "m"
    root = ElementTree.fromstring(badge.render_svg("visits", "1,234", "blue", "flat", "t"))
    label_width = preferred_width("visits", font)
    assert int(root.get("width") or 0) == label_width + 10 + 33 + 10
    assert [t.get("textLength") for t in root.iter(SVG_NS + "text")][1::2] == [str(10 * label_width), "330"]


# --- hostile input -------------------------------------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    '"><svg onload=alert(1)>',
    "' onmouseover='x",
    "&amp;&lt;&#0;&#x1;",
    "]]><!--",
    "\x00",
    "\x07bell",
    "\x1b[31m",
    "a\u202eb",  # right-to-left override: a format character
    "\ud800",  # a lone surrogate
    "\ufffd",  # what invalid UTF-8 decodes to
    "x" * 10_240,
    "%3Cscript%3E",
]


@pytest.mark.parametrize("option", ["label", "color", "style", "show"])
@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_options_are_escaped_or_refused_and_the_svg_always_parses(site: Site, option: str, value: str) -> None:
    response = site.get("/tags/hello/badge.svg", query=[(option, value)])
    root = svg(response, response["statusCode"])  # parses as XML, whatever came in
    assert response["statusCode"] in (200, 400)
    if any(char in value for char in "<>&\"'"):
        assert value not in response["body"]  # markup, quotes and entities never come back raw
    if response["statusCode"] == 200:
        # Only a label can take such text, and it comes back exactly as given, as text.
        assert option == "label" and texts(root)[0] == value
    else:
        assert texts(root)[-1] == f"invalid {option}"
        assert site.scan() == []  # refused before anything was counted
    read_only = site.get("/counts/hello/badge.svg", query=[(option, value)])
    assert read_only["statusCode"] == response["statusCode"]
    assert texts(svg(read_only, read_only["statusCode"]))[0] == texts(root)[0]


def test_invalid_utf8_in_a_percent_encoded_query_is_refused(site: Site) -> None:
    response = site.get("/tags/hello/badge.svg", query=query("label=%FF%FE"))
    root = svg(response, 400)
    assert texts(root) == ["visits", "invalid label"] and "UTF-8" in title(root)
    assert site.scan() == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(label=st.text(max_size=60), color=st.text(max_size=12))
def test_any_label_and_colour_give_a_badge_that_parses(site: Site, label: str, color: str) -> None:
    response = site.get("/counts/fuzz/badge.svg", query=[("label", label), ("color", color)])
    root = svg(response, response["statusCode"])
    if response["statusCode"] == 200:
        assert label == "" or texts(root)[0] == label


# --- DynamoDB failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/tags/hello/badge.svg", "/counts/hello/badge.svg"])
def test_throttling_is_a_503_badge_with_retry_after(site: Site, inject: Any, path: str) -> None:
    operation = "UpdateItem" if path.startswith("/tags") else "GetItem"
    fault: Fault = inject(get_store().client, operation, "ProvisionedThroughputExceededException")
    response = site.get(path)
    root = svg(response, 503)
    assert response["headers"]["Retry-After"] == str(web.RETRY_AFTER_SECONDS)
    assert response["headers"]["Cache-Control"] == NEVER_CACHED["Cache-Control"]
    assert texts(root) == ["visits", "busy, retry"] and fault.sent >= 1


def test_any_other_failure_is_a_500_badge_that_leaks_nothing(site: Site, inject: Any) -> None:
    inject(get_store().client, "GetItem", "AccessDeniedException", message="User arn:aws:iam::1:role/x is denied")
    for path in ("/counts/hello/badge.svg", "/counts/hello/badge.json"):
        response = site.get(path)
        assert response["statusCode"] == 500
        assert "arn:" not in response["body"] and "tag-counter-test" not in response["body"]
        assert "AccessDenied" not in response["body"]
    assert texts(svg(site.get("/counts/hello/badge.svg"), 500)) == ["visits", "error"]


def test_an_event_of_an_unexpected_shape_still_gets_a_badge(site: Site) -> None:
    event = site.event("/counts/hello/badge.svg") | {"requestContext": "nonsense"}
    response = site.call(event)
    assert_proxy_response(response)
    assert response["statusCode"] == 500
    ElementTree.fromstring(response["body"])


# --- the template and the definition ----------------------------------------------------------------------


def test_the_environment_autoescapes_svg_templates() -> None:
    env = web.environment()
    autoescape = env.autoescape("badge.svg") if callable(env.autoescape) else env.autoescape
    assert autoescape is True
    assert "&lt;b&gt;" in badge.render_svg("<b>", "1", "blue", "flat", "x")


def test_every_route_path_part_is_one_api_gateway_accepts() -> None:
    import re

    from definition import ROUTES

    # API Gateway: "Resource's path part only allow a-zA-Z0-9._- and curly braces at the beginning and the end".
    for route in ROUTES:
        for part in [p for p in route.path.split("/") if p]:
            assert re.fullmatch(r"[A-Za-z0-9._-]+|\{[A-Za-z_][A-Za-z0-9_]*\}", part), (route.path, part)


def test_the_badge_modules_ship_their_data(tmp_path: Path) -> None:
    from definition import CODE_SUFFIXES

    assert Path(badge.WIDTHS_FILE).suffix in CODE_SUFFIXES
    assert (Path(web.TEMPLATES_DIR) / "badge.svg").suffix in CODE_SUFFIXES


# --- snippets on the count page ---------------------------------------------------------------------------


def count_page_event(site: Site, request_path: str, host: str) -> dict[str, Any]:
    """A count page event as a custom domain delivers it (``requestContext.path`` holds any base path)."""
    from .conftest import load_event

    event = load_event("visit_custom_domain.json")
    event.update({"resource": "/counts/{tag}", "path": request_path, "pathParameters": {"tag": "hello"}})
    event["requestContext"].update({"resourcePath": "/counts/{tag}", "path": request_path, "domainName": host})
    return event


@pytest.mark.parametrize(
    ("request_path", "site_url"),
    [
        ("/counts/hello", "https://counter.example.com/"),  # a custom domain mapped at its root
        ("/counter/counts/hello", "https://counter.example.com/counter/"),  # ... and under a base path
    ],
)
def test_snippets_use_the_custom_domain_and_base_path(site: Site, request_path: str, site_url: str) -> None:
    from .conftest import parse_page

    response = site.call(count_page_event(site, request_path, "counter.example.com"))
    assert response["statusCode"] == 200
    page = parse_page(response["body"])
    assert page.texts["counting-markdown"] == (
        f"[![visits to hello]({site_url}tags/hello/badge.svg)]({site_url}counts/hello)"
    )
    assert page.texts["showing-html"] == (
        f'<a href="{site_url}counts/hello"><img src="{site_url}counts/hello/badge.svg" alt="visits to hello"></a>'
    )
    assert page.texts["endpoint-url"] == f"{site_url}counts/hello/badge.json"


def test_snippets_on_the_execute_api_domain_carry_the_stage(site: Site) -> None:
    from .conftest import parse_page

    page = parse_page(site.get("/counts/caf%C3%A9", stage="prod")["body"])
    base = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/"
    assert page.texts["counting-markdown"] == (
        f"[![visits to café]({base}tags/caf%C3%A9/badge.svg)]({base}counts/caf%C3%A9)"
    )
    assert page.texts["shields-url"] == "https://img.shields.io/endpoint?url=" + (
        "https%3A%2F%2Fabc123.execute-api.us-east-1.amazonaws.com%2Fprod%2Fcounts%2Fcaf%25C3%25A9%2Fbadge.json"
    )


def test_a_forged_host_header_never_reaches_a_snippet(site: Site) -> None:
    from .conftest import parse_page

    event = site.event("/counts/hello")
    event["headers"]["Host"] = 'evil.example"><script>'
    event["requestContext"]["domainName"] = "abc123.execute-api.us-east-1.amazonaws.com"
    body = site.call(event)["body"]
    # Not a host name: the snippets fall back to the domain API Gateway says it served.
    assert "evil" not in body
    page = parse_page(body)
    assert page.texts["counting-markdown"].startswith(
        "[![visits to hello](https://abc123.execute-api.us-east-1.amazonaws.com/dev/tags/hello/badge.svg)"
    )


def test_a_captured_camo_request_counts_once_and_gets_an_uncacheable_badge(site: Site) -> None:
    from .conftest import load_event

    # GIVEN GitHub's image proxy fetching a README's counting badge: encoded tag, stage, query in both forms
    event = load_event("badge_camo_encoded.json")
    response = site.call(event)
    root = svg(response)
    # THEN the tag, normalized, has one visit, and the badge shows it with the options asked for
    assert texts(root) == ["hits", "1"] and site.visits("tag#café") == 1
    assert "#007ec6" in [rect.get("fill") for rect in root.iter(SVG_NS + "rect")]
    for name, value in NEVER_CACHED.items():
        assert response["headers"][name] == value
    # ... and the same request as a HEAD answers alike, counting nothing
    head = site.call(event | {"httpMethod": "HEAD"})
    assert head["statusCode"] == 200 and head["headers"] == response["headers"]
    assert len(head["body"]) == len(response["body"])  # the gateway drops it, sending its Content-Length
    assert site.visits("tag#café") == 1


@pytest.mark.parametrize("label", ["hits", "visites du café", "访问", "a\u00a0b", "★ 100% ★", ""])
def test_printable_labels_of_any_script_are_shown_as_given(site: Site, label: str) -> None:
    root = svg(site.get("/counts/hello/badge.svg", query=[("label", label)]))
    assert texts(root) == ([label, "0"] if label else ["0"])


# --- the script snippet -----------------------------------------------------------------------------------------


def test_the_count_page_offers_a_script_snippet_shown_as_text_never_run(site: Site) -> None:
    from .conftest import parse_page

    body = site.get("/counts/caf%C3%A9", stage="prod")["body"]
    page = parse_page(body)
    base = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/"
    script = page.texts["script-html"]
    # GIVEN the snippet as a reader copies it: the counting JSON fetched, its number written into the element ...
    assert script.splitlines() == [
        '<span id="tag-counter"></span>',
        "<script>",
        f'  fetch("{base}tags/caf%C3%A9/count.json")',
        "    .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))",
        '    .then((count) => { document.getElementById("tag-counter").textContent = '
        'count.visits.toLocaleString("en-US"); });',
        "</script>",
        f'<noscript><img src="{base}tags/caf%C3%A9/badge.svg" alt="visits to café"></noscript>',
    ]
    assert page.texts["counting-json-url"] == f"{base}tags/caf%C3%A9/count.json"
    assert page.texts["reading-json-url"] == f"{base}counts/caf%C3%A9/count.json"
    # THEN the page itself holds it only as escaped text: no element of it is part of the page
    assert "<script" not in body and "<noscript" not in body and "&lt;script&gt;" in body
    assert "script" not in page.tags and "noscript" not in page.tags
    assert page.tags.count("img") == 1 and "badge-preview" in page.attributes  # the page's own read-only badge only
