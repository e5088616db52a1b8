"""HEAD on every route, pages and badges: GET's status, headers and body (the gateway drops it, keeping its
``Content-Length``), and never a write."""

from __future__ import annotations

import json
from typing import Any

import pytest

from definition import ROUTES, VISIT_JSON
from functions.store import get_store

from .conftest import Site, record_calls

WRITES = {"UpdateItem", "PutItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def concrete_path(template: str, tag: str) -> str:
    return template.replace("{tag}", tag)


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
@pytest.mark.parametrize("tag", ["hello", "caf%C3%A9", "not%20valid"], ids=["valid", "encoded", "invalid"])
def test_head_answers_like_get_without_a_body_and_never_writes(site: Site, route: Any, tag: str) -> None:
    # GIVEN a tag with visits (its count and the total are what GET and HEAD both read)
    for _ in range(3):
        get_store().record_visit("hello")
    site.process_stream()
    path = concrete_path(route.path, tag)
    before = site.scan()
    calls = record_calls(get_store().client)
    # WHEN the route is asked with HEAD
    head = site.get(path, method="HEAD")
    # THEN nothing was written ...
    assert not WRITES & {call.operation for call in calls}, [call.operation for call in calls]
    assert site.scan() == before
    # ... and status, headers and body are those of a GET (a visit's GET shows one visit more)
    get = site.get(path)
    assert type(head["statusCode"]) is int and head["statusCode"] == get["statusCode"]
    assert head["headers"] == get["headers"]
    assert head["isBase64Encoded"] == get["isBase64Encoded"]
    if route.function is VISIT_JSON and get["statusCode"] == 200:
        # The counting JSON says what the request did: a HEAD was not counted and says so, so its length is its own
        # (HTTP lets a HEAD's Content-Length differ where the GET's content would be made differently).
        shown, counted = json.loads(head["body"]), json.loads(get["body"])
        assert (shown["counted"], shown["reason"], counted["counted"]) == (False, "head", True)
        assert shown["visits"] == counted["visits"] - 1
    else:
        assert len(head["body"]) == len(get["body"]) > 0


def test_head_of_the_counting_routes_shows_the_count_without_adding_to_it(site: Site) -> None:
    site.get("/tags/hello")
    for path in ("/tags/hello", "/tags/hello/badge.svg", "/tags/hello/count.json"):
        for _ in range(3):
            assert site.get(path, method="HEAD")["statusCode"] == 200
    assert site.visits("tag#hello") == 1


def test_head_failures_answer_like_get_failures(site: Site, inject: Any) -> None:
    inject(get_store().client, "GetItem", "ProvisionedThroughputExceededException")
    for path in ("/tags/hello", "/tags/hello/badge.svg", "/counts/hello/badge.svg", "/tags/hello/count.json",
                 "/counts/hello/count.json"):
        head = site.get(path, method="HEAD")
        assert head["statusCode"] == 503 and head["body"]  # the error page; the gateway sends its length only
        assert head["headers"]["Retry-After"]
