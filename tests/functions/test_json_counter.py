"""The JSON counter through its real handlers: counting and read-only answers, CORS on every status, the one
counting rule (bots, HEAD, the unique-visitor window), JSON errors, and a JSON schema of every answer.

Events are REST proxy events as API Gateway builds them; DynamoDB is moto, with every call recorded, so "counts
once", "one GetItem" and "writes nothing" are checked on the wire.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

import definition
from functions import counting, rules, visitors
from functions.store import get_store
from functions.web import RETRY_AFTER_SECONDS

from .conftest import EVENTS_DIR, Site, load_event, record_calls

SCHEMA = json.loads((EVENTS_DIR / "count_json_schema.json").read_text(encoding="utf-8"))
COUNTING = "/tags/{tag}/count.json"
READING = "/counts/{tag}/count.json"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
WRITES = {"UpdateItem", "PutItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def path(template: str, tag: str = "hello") -> str:
    return template.replace("{tag}", tag)


def validate(body: Any, kind: str) -> None:
    """``body`` against one kind of the schema (``counting``, ``reading``, ``error``) and the whole of it."""
    jsonschema.validate(body, SCHEMA)
    jsonschema.validate(body, {"$ref": f"#/$defs/{kind}", "$defs": SCHEMA["$defs"]})


def assert_cors_json(response: dict[str, Any], status: int) -> None:
    """A well-formed proxy response with the JSON routes' headers: any origin may read it, with no credentials."""
    assert type(response["statusCode"]) is int and response["statusCode"] == status, response["body"][:300]
    assert isinstance(response["body"], str) and response["isBase64Encoded"] is False
    headers = response["headers"]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["X-Content-Type-Options"] == "nosniff"
    lower = {name.lower() for name in headers}
    assert "access-control-allow-credentials" not in lower and "set-cookie" not in lower
    assert "<" not in response["body"]  # never an HTML page


def answer(response: dict[str, Any], status: int, kind: str) -> dict[str, Any]:
    assert_cors_json(response, status)
    body = json.loads(response["body"])
    validate(body, kind)
    return body


# --- the counting route ---------------------------------------------------------------------------------------


def test_two_loads_count_two_visits_never_cached(site: Site) -> None:
    calls = record_calls(get_store().client)
    for expected in (1, 2):
        response = site.get(path(COUNTING))
        body = answer(response, 200, "counting")
        assert body == {"tag": "hello", "visits": expected, "today": expected, "counted": True}
        assert response["headers"]["Cache-Control"] == "no-store" and "ETag" not in response["headers"]
    assert [call.operation for call in calls] == ["UpdateItem"] * 2
    assert site.visits("tag#hello") == 2


def test_the_tag_is_normalized_and_shown_as_it_is_counted(site: Site) -> None:
    event = site.event(path(COUNTING, "CAF%C3%89"), stage="prod")
    assert event["pathParameters"] == {"tag": "CAF%C3%89"}
    response = site.call(event)
    assert answer(response, 200, "counting")["tag"] == "café"
    assert '"tag":"café"' in response["body"]  # UTF-8 as it is, not \u escapes
    site.get(path(COUNTING, "caf%C3%A9"))
    assert site.visits("tag#café") == 2


def test_counts_are_json_integers_never_formatted(site: Site) -> None:
    site.client.put_item(TableName=site.table_name, Item={"pk": {"S": "tag#big"}, "visits": {"N": "1234566"}})
    response = site.get(path(COUNTING, "big"))
    assert '"visits":1234567' in response["body"]
    assert answer(response, 200, "counting")["visits"] == 1234567
    shown = site.get(path(READING, "big"))
    assert '"visits":1234567' in shown["body"] and answer(shown, 200, "reading")["visits"] == 1234567


def test_a_bot_is_shown_the_count_and_writes_nothing(site: Site) -> None:
    site.get(path(COUNTING))
    before = site.scan()
    calls = record_calls(get_store().client)
    body = answer(site.get(path(COUNTING), user_agent=BOT), 200, "counting")
    assert body == {"tag": "hello", "visits": 1, "today": 1, "counted": False, "reason": counting.BOT}
    assert [call.operation for call in calls] == ["GetItem"]
    assert site.scan() == before


def test_count_bots_counts_them_too(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(rules.COUNT_BOTS_ENV, definition.function_environment(definition.Settings(count_bots=True))[
        rules.COUNT_BOTS_ENV])
    assert answer(site.get(path(COUNTING), user_agent=BOT), 200, "counting")["counted"] is True
    assert site.visits("tag#hello") == 1


def test_a_head_answers_like_a_get_and_never_writes(site: Site) -> None:
    site.get(path(COUNTING))
    before = site.scan()
    calls = record_calls(get_store().client)
    head = site.get(path(COUNTING), method="HEAD")
    # The count as of now, not counted because it is a HEAD (the gateway sends the headers only).
    body = answer(head, 200, "counting")
    assert body == {"tag": "hello", "visits": 1, "today": 1, "counted": False, "reason": counting.HEAD_REASON}
    assert [call.operation for call in calls] == ["GetItem"]
    assert site.scan() == before
    assert head["headers"] == site.get(path(COUNTING))["headers"]


def test_a_repeat_visitor_within_the_window_is_not_counted(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = definition.Settings(unique_visitor_window_minutes=30)
    for name, value in {**definition.function_environment(settings),
                        **definition.visitor_key_environment(settings, "test-key")}.items():
        monkeypatch.setenv(name, value)
    now = [1_800_000_000.0]
    monkeypatch.setattr(visitors, "clock", lambda: now[0])
    first = answer(site.get(path(COUNTING), source_ip="198.51.100.7"), 200, "counting")
    assert first["counted"] is True and first["visits"] == 1
    calls = record_calls(get_store().client)
    again = answer(site.get(path(COUNTING), source_ip="198.51.100.7"), 200, "counting")
    assert again == {"tag": "hello", "visits": 1, "today": 1, "counted": False, "reason": counting.REPEAT}
    assert [call.operation for call in calls] == ["PutItem", "GetItem"]  # the failed claim, then the count
    assert answer(site.get(path(COUNTING), source_ip="198.51.100.8"), 200, "counting")["visits"] == 2
    now[0] += 30 * 60
    assert answer(site.get(path(COUNTING), source_ip="198.51.100.7"), 200, "counting")["counted"] is True
    assert site.visits("tag#hello") == 3


def test_the_window_and_the_badge_share_one_rule(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    # One visitor counted by the counting badge is a repeat for the JSON: the rule and its markers are one.
    settings = definition.Settings(unique_visitor_window_minutes=30)
    for name, value in {**definition.function_environment(settings),
                        **definition.visitor_key_environment(settings, "test-key")}.items():
        monkeypatch.setenv(name, value)
    assert site.get("/tags/hello/badge.svg")["statusCode"] == 200
    assert answer(site.get(path(COUNTING)), 200, "counting")["reason"] == counting.REPEAT
    assert site.visits("tag#hello") == 1


def test_a_callback_parameter_changes_nothing_no_jsonp(site: Site) -> None:
    site.get(path(READING))
    plain = site.get(path(READING))
    wrapped = site.get(path(READING), query=[("callback", "alert"), ("jsonp", "alert")])
    assert wrapped["body"] == plain["body"] and "alert" not in wrapped["body"]
    assert wrapped["headers"]["Content-Type"] == "application/json; charset=utf-8"
    counted = site.get(path(COUNTING), query=[("callback", "alert(document.domain)//")])
    assert answer(counted, 200, "counting")["visits"] == 1 and "alert" not in counted["body"]


# --- the read-only route --------------------------------------------------------------------------------------


def test_read_only_is_one_get_item_and_writes_nothing(site: Site) -> None:
    for _ in range(2):
        site.get(path(COUNTING))
    before = site.scan()
    calls = record_calls(get_store().client)
    response = site.get(path(READING))
    body = answer(response, 200, "reading")
    assert body == {"tag": "hello", "visits": 2, "today": 2}
    assert [call.operation for call in calls] == ["GetItem"]
    assert response["headers"]["Cache-Control"] == "public, max-age=5"
    assert site.scan() == before
    assert answer(site.get(path(READING, "never-seen")), 200, "reading") == {"tag": "never-seen", "visits": 0,
                                                                              "today": 0}
    assert site.scan() == before


def test_read_only_etag_gives_a_304_with_cors_until_the_count_changes(site: Site) -> None:
    site.get(path(COUNTING))
    first = site.get(path(READING))
    etag = first["headers"]["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = site.get(path(READING), headers=[("If-None-Match", header)])
        assert_cors_json(again, 304)
        assert again["body"] == ""
        assert again["headers"]["ETag"] == etag and again["headers"]["Cache-Control"] == "public, max-age=5"
    assert site.get(path(READING), headers=[("If-None-Match", '"other"')])["statusCode"] == 200
    site.get(path(COUNTING))
    changed = site.get(path(READING), headers=[("If-None-Match", etag)])
    assert answer(changed, 200, "reading")["visits"] == 2 and changed["headers"]["ETag"] != etag


def test_read_only_answers_a_bot_alike(site: Site) -> None:
    site.get(path(COUNTING))
    assert answer(site.get(path(READING), user_agent=BOT), 200, "reading")["visits"] == 1


# --- errors: JSON, with CORS, on every route ------------------------------------------------------------------


@pytest.mark.parametrize("template", [COUNTING, READING])
@pytest.mark.parametrize("raw", ["no%20spaces", "a%2Fb", "%F0%9F%98%80", "x" * 65, "%FF"])
def test_an_invalid_tag_is_a_400_json_error_and_writes_nothing(site: Site, template: str, raw: str) -> None:
    calls = record_calls(get_store().client)
    response = site.get(path(template, raw))
    body = answer(response, 400, "error")
    assert body["error"] == "invalid tag" and "letters and digits" in body["message"]
    assert response["headers"]["Cache-Control"] == "no-store"
    assert calls == [] and site.scan() == []


@pytest.mark.parametrize("template", [COUNTING, READING])
def test_a_missing_tag_is_a_400_json_error(site: Site, template: str) -> None:
    event = site.event(path(template)) | {"pathParameters": None}
    assert answer(site.call(event), 400, "error")["error"] == "invalid tag"
    assert site.scan() == []


@pytest.mark.parametrize("template", [COUNTING, READING])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_are_a_405_json_error(site: Site, template: str, method: str) -> None:
    response = site.get(path(template), method=method)
    assert answer(response, 405, "error")["error"] == "method not allowed"
    assert response["headers"]["Allow"] == "GET, HEAD"
    assert site.scan() == []


@pytest.mark.parametrize(
    ("template", "method", "operation"),
    [
        (COUNTING, "GET", "UpdateItem"),
        (COUNTING, "HEAD", "GetItem"),  # a HEAD of the counting route reads
        (READING, "GET", "GetItem"),
        (READING, "HEAD", "GetItem"),
    ],
)
def test_throttling_is_a_503_json_error_with_retry_after(
    site: Site, inject: Any, template: str, method: str, operation: str
) -> None:
    fault = inject(get_store().client, operation, "ProvisionedThroughputExceededException")
    response = site.get(path(template), method=method)
    assert_cors_json(response, 503)
    assert response["headers"]["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert "Retry-After" in response["headers"]["Access-Control-Expose-Headers"]
    assert response["headers"]["Cache-Control"] == "no-store"
    assert answer(response, 503, "error")["error"] == "busy"  # a HEAD's too: the gateway sends its length only
    assert fault.sent >= 1 and site.scan() == []


@pytest.mark.parametrize("template", [COUNTING, READING])
def test_any_other_failure_is_a_500_json_error_that_leaks_nothing(site: Site, inject: Any, template: str) -> None:
    for operation in ("UpdateItem", "GetItem"):
        inject(get_store().client, operation, "AccessDeniedException", message="User arn:aws:iam::1:role/x is denied")
    response = site.get(path(template))
    body = answer(response, 500, "error")
    assert body["error"] == "server error"
    for leak in ("arn:", "AccessDenied", site.table_name, "Traceback"):
        assert leak not in response["body"]


@pytest.mark.parametrize("template", [COUNTING, READING])
def test_an_event_of_an_unexpected_shape_still_gets_a_json_500(site: Site, template: str) -> None:
    event = site.event(path(template)) | {"requestContext": "nonsense"}
    assert answer(site.call(event), 500, "error")["error"] == "server error"


def test_a_captured_event_of_the_counting_route(site: Site) -> None:
    # GIVEN a visit page event as API Gateway sends it, aimed at the counting JSON of the same tag
    event = load_event("visit_encoded.json")
    event["resource"] = COUNTING
    event["path"] = event["path"] + "/count.json"
    event["requestContext"]["resourcePath"] = COUNTING
    event["requestContext"]["path"] = event["requestContext"]["path"] + "/count.json"
    # THEN it counts the decoded, normalized tag once
    body = answer(site.call(event), 200, "counting")
    assert body["counted"] is True and site.visits("tag#" + body["tag"]) == 1


# --- the schema and the definition ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"tag": "x", "visits": "1", "today": 1, "counted": True}, "counting"),  # a count as text
        ({"tag": "x", "visits": 1.5, "today": 1, "counted": True}, "counting"),
        ({"tag": "x", "visits": 1, "today": 1, "counted": False}, "counting"),  # not counted, no reason
        ({"tag": "x", "visits": 1, "today": 1, "counted": True, "reason": "bot"}, "counting"),
        ({"tag": "x", "visits": 1, "today": 1, "counted": True}, "reading"),  # counted on the read-only route
        ({"error": "invalid tag"}, "error"),
    ],
)
def test_the_schema_check_can_fail(body: dict[str, Any], kind: str) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate(body, kind)


def test_both_routes_are_declared_with_get_and_head_and_exact_grants() -> None:
    routes = {route.path: route for route in definition.ROUTES}
    assert routes[COUNTING].function is definition.VISIT_JSON
    assert routes[READING].function is definition.COUNT_JSON
    assert routes[COUNTING].methods == routes[READING].methods == ("GET", "HEAD")
    assert definition.VISIT_JSON.grants == definition.COUNTING_GRANTS and definition.VISIT_JSON.counts_visits
    assert definition.COUNT_JSON.grants == (definition.Grant("dynamodb:GetItem", definition.TAG_KEYS),)
    assert not definition.COUNT_JSON.counts_visits
