"""DynamoDB failures become the right HTML page and status, with no internal detail leaking (SPEC section 3)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from functions.log import JsonFormatter, record_fields
from functions.store import MAX_ATTEMPTS, StoreBusy, build_store, get_store

from .conftest import TABLE, Fault, Site, parse_page

OPERATION = {"/": "GetItem", "/tags/hello": "UpdateItem", "/counts/hello": "BatchGetItem"}
SECRET_MESSAGE = (
    f"User: arn:aws:sts::123456789012:assumed-role/visit-role/fn is not authorized to perform: dynamodb:UpdateItem "
    f"on resource: arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}"
)
LEAKS = (TABLE, "arn:aws", "Traceback", "ClientError", "AccessDenied", "Throttl", "ProvisionedThroughput", "dynamodb")


def assert_no_leak(body: str) -> None:
    for secret in LEAKS:
        assert secret not in body, secret


@pytest.mark.parametrize("path", list(OPERATION))
@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"]
)
def test_throttling_is_503_with_retry_after(site: Site, inject: Callable[..., Fault], path: str, code: str) -> None:
    fault = inject(get_store().client, OPERATION[path], code, message=f"Rate exceeded for table {TABLE}")
    response = site.get(path)
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "2"
    assert response["headers"]["Cache-Control"] == "no-store"
    assert "Too many visits right now" in response["body"]
    assert_no_leak(response["body"])
    # The client retried the throttled call (standard mode) before giving up.
    assert fault.sent == MAX_ATTEMPTS


@pytest.mark.parametrize("path", list(OPERATION))
@pytest.mark.parametrize(
    ("code", "status"), [("AccessDeniedException", 400), ("InternalServerError", 500), ("ValidationException", 400)]
)
def test_other_dynamodb_errors_are_500_without_leaks(
    site: Site, inject: Callable[..., Fault], caplog: pytest.LogCaptureFixture, path: str, code: str, status: int
) -> None:
    inject(get_store().client, OPERATION[path], code, status=status, message=SECRET_MESSAGE)
    caplog.set_level(logging.INFO, logger="functions")
    response = site.get(path)
    assert response["statusCode"] == 500
    assert "Retry-After" not in response["headers"]
    assert "Something went wrong" in response["body"]
    assert_no_leak(response["body"])
    # The log gets the details, as structured JSON.
    [record] = [r for r in caplog.records if r.getMessage() == "request failed"]
    fields = record_fields(record)
    assert fields["error_code"] == code and TABLE in fields["error_message"]
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "ERROR" and line["error_code"] == code and line["route"]
    assert line["errorType"] and line["stackTrace"]


def test_error_page_links_home_relative_to_the_stage(site: Site, inject: Callable[..., Fault]) -> None:
    inject(get_store().client, "UpdateItem", "InternalServerError", status=500)
    event = site.event("/tags/hello")
    response = site.call(event)
    from .conftest import resolve

    assert {resolve(event, href) for href in parse_page(response["body"]).links} == {"/dev/"}


def test_a_failed_visit_writes_nothing(site: Site, inject: Callable[..., Fault]) -> None:
    inject(get_store().client, "UpdateItem", "ThrottlingException")
    site.get("/tags/hello")
    assert site.scan() == []


def test_unprocessed_keys_are_asked_again_with_the_same_call(site: Site, inject: Callable[..., Fault]) -> None:
    site.get("/tags/hello")
    site.process_stream()
    unprocessed = {
        "Responses": {TABLE: []},
        "UnprocessedKeys": {
            TABLE: {
                "Keys": [{"pk": {"S": "tag#hello"}}, {"pk": {"S": "site#total"}}],
                "ProjectionExpression": "#pk, #visits",
                "ExpressionAttributeNames": {"#pk": "pk", "#visits": "visits"},
                "ConsistentRead": True,
            }
        },
    }
    fault = inject(get_store().client, "BatchGetItem", "", status=200, times=2, body=unprocessed)
    response = site.get("/counts/hello")
    assert fault.sent == 2
    page = parse_page(response["body"])
    assert (page.texts["tag-visits"], page.texts["site-total"]) == ("1", "1")


def test_keys_left_unprocessed_for_good_are_a_503(site: Site, inject: Callable[..., Fault], monkeypatch) -> None:
    monkeypatch.setattr("functions.store.time.sleep", lambda seconds: None)
    body = {"Responses": {TABLE: []}, "UnprocessedKeys": {TABLE: {"Keys": [{"pk": {"S": "site#total"}}]}}}
    inject(get_store().client, "BatchGetItem", "", status=200, body=body)
    with pytest.raises(StoreBusy):
        get_store().read_counts("hello")
    response = site.get("/counts/hello")
    assert response["statusCode"] == 503 and response["headers"]["Retry-After"] == "2"


def test_missing_table_name_is_a_500_page(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABLE_NAME")
    build_store()
    response = site.get("/tags/hello")
    assert response["statusCode"] == 500
    assert "TABLE_NAME" not in response["body"]


def test_a_broken_template_still_answers_with_html(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions import web

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("template exploded")

    monkeypatch.setattr(web, "render", broken)
    response = site.get("/tags/hello")
    assert response["statusCode"] == 500
    assert response["body"].startswith("<!doctype html>") and "template exploded" not in response["body"]


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"httpMethod": "GET", "requestContext": ["not", "a", "map"]},
        {"httpMethod": "GET", "resource": "/tags/{tag}", "pathParameters": ["x"]},
    ],
)
def test_an_event_of_an_unexpected_shape_still_gets_an_html_answer(site: Site, event: dict) -> None:
    from functions import visit

    response = visit.handler(event, None)
    assert type(response["statusCode"]) is int and response["statusCode"] in (405, 500)
    assert response["body"].startswith("<!doctype html>") and response["isBase64Encoded"] is False
    assert site.scan() == []
