"""Each handler's DynamoDB calls map exactly onto its FunctionSpec's (action, key pattern) grants.

``definition.FUNCTIONS`` feeds the stack's IAM policies; this test records what the real handlers actually call
(botocore ``before-call`` hook) across their success and recovery paths, so a policy can be neither too wide
nor too narrow: every (action, key) a handler uses is granted, and every grant is used.
"""

from __future__ import annotations

import dataclasses
from fnmatch import fnmatchcase
from typing import Any

import pytest

from definition import (
    COUNT,
    COUNT_BADGE,
    COUNT_BADGE_JSON,
    COUNT_JSON,
    HOME,
    STREAM_PROCESSOR,
    TOTAL_KEY,
    VISIT,
    VISIT_BADGE,
    VISIT_JSON,
    FunctionSpec,
    Grant,
    Settings,
)
from functions import rules
from functions.store import get_store

from .conftest import Call, Site, record_calls

# TransactWriteItems needs the permission of each action inside it, on each item it touches.
TRANSACT_ACTIONS = {
    "Update": "UpdateItem",
    "Put": "PutItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def used_pairs(calls: list[Call]) -> set[tuple[str, str]]:
    """The (IAM action, partition key) pairs a list of API calls needs."""
    pairs: set[tuple[str, str]] = set()
    for call in calls:
        params: dict[str, Any] = call.params
        if call.operation == "TransactWriteItems":
            for item in params["TransactItems"]:
                [(kind, body)] = item.items()
                pairs.add(("dynamodb:" + TRANSACT_ACTIONS[kind], (body.get("Key") or body.get("Item"))["pk"]["S"]))
            continue
        action = "dynamodb:" + call.operation
        for key in (params.get("Key"), params.get("Item")):
            if key:
                pairs.add((action, key["pk"]["S"]))
        for table in (params.get("RequestItems") or {}).values():
            pairs.update((action, key["pk"]["S"]) for key in table["Keys"])
    return pairs


def actions_and_keys(calls: list[Call]) -> tuple[set[str], set[str]]:
    """The IAM actions and the partition keys a list of API calls needs."""
    pairs = used_pairs(calls)
    return {action for action, _ in pairs}, {key for _, key in pairs}


def assert_granted(spec: FunctionSpec, calls: list[Call]) -> None:
    """Every (action, key) the calls use is granted (a path that need not use every grant)."""
    used = used_pairs(calls)
    assert used, f"{spec.name} made no call: the test would prove nothing"
    for action, key in sorted(used):
        assert any(a == action and fnmatchcase(key, p) for a, p in spec.pairs()), f"{spec.name}: {action} on {key}"


def assert_exact_pairs(spec: FunctionSpec, calls: list[Call], settings: Settings | None = None) -> None:
    """Every (action, key) used is granted, and every granted (action, key pattern) is used: the grants of a stack
    with ``settings``, or with no settings given every grant the function may have (``all_grants``)."""
    granted = set(spec.all_grants if settings is None else spec.table_grants(settings))
    pairs = used_pairs(calls)
    assert calls and pairs, f"{spec.name} made no call: the test would prove nothing"
    used = set()
    for action, key in pairs:
        matching = [grant for grant in granted if grant.action == action and fnmatchcase(key, grant.key_pattern)]
        assert matching, f"{spec.name} calls {action} on {key!r}, which none of its grants allows"
        used.update(matching)
    assert used == granted, f"{spec.name}: grants never used: {sorted(granted - used)}"


BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def test_route_handlers_call_exactly_their_actions(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = record_calls(get_store().client)
    site.get("/")
    assert [call.operation for call in calls] == ["GetItem"]
    assert_exact_pairs(HOME, calls)

    calls.clear()
    site.get("/counts/hello")
    assert [call.operation for call in calls] == ["BatchGetItem"]
    assert_exact_pairs(COUNT, calls)

    # The visit page's every path: a visit, a bot, and with a unique-visitor window a first and a repeat visit.
    calls.clear()
    site.get("/tags/hello")
    assert [call.operation for call in calls] == ["UpdateItem"]
    site.get("/tags/hello", user_agent=BOT)
    assert [call.operation for call in calls][1:] == ["GetItem"]
    # Without a window the role has no marker grant, and needs none.
    assert_exact_pairs(VISIT, calls, Settings())
    monkeypatch.setenv(rules.WINDOW_MINUTES_ENV, "30")
    monkeypatch.setenv(rules.VISITOR_KEY_ENV, "test-key")
    site.get("/tags/hello")
    site.get("/tags/hello")
    assert [call.operation for call in calls][2:] == ["PutItem", "UpdateItem", "PutItem", "GetItem"]
    site.get("/tags/hello", method="HEAD")  # a HEAD reads the tag instead of counting
    assert [call.operation for call in calls][6:] == ["GetItem"]
    assert_exact_pairs(VISIT, calls)
    assert_exact_pairs(VISIT, calls, Settings(unique_visitor_window_minutes=30))

    # The counting badge follows the same rule (the window is still on here; a tag this visitor has not seen).
    calls.clear()
    site.get("/tags/badge/badge.svg")
    site.get("/tags/badge/badge.svg", method="HEAD")
    assert [call.operation for call in calls] == ["PutItem", "UpdateItem", "GetItem"]
    assert_exact_pairs(VISIT_BADGE, calls)

    # And the counting JSON (another tag this visitor has not seen; then a repeat, a HEAD and a bot).
    calls.clear()
    site.get("/tags/json/count.json")
    site.get("/tags/json/count.json")
    site.get("/tags/json/count.json", method="HEAD")
    site.get("/tags/json/count.json", user_agent=BOT)
    assert [call.operation for call in calls] == ["PutItem", "UpdateItem", "PutItem", "GetItem", "GetItem", "GetItem"]
    assert_exact_pairs(VISIT_JSON, calls)

    for path, spec in (("/counts/hello/badge.svg", COUNT_BADGE), ("/counts/hello/badge.json", COUNT_BADGE_JSON),
                       ("/counts/hello/count.json", COUNT_JSON)):
        calls.clear()
        site.get(path)
        site.get(path, method="HEAD")
        assert [call.operation for call in calls] == ["GetItem", "GetItem"]
        assert_exact_pairs(spec, calls)


def test_invalid_and_refused_requests_call_nothing(site: Site) -> None:
    calls = record_calls(get_store().client)
    site.get("/tags/a%2Fb")
    site.get("/tags/hello", method="POST")
    site.get("/counts/%F0%9F%98%80")
    site.get("/tags/a%2Fb/badge.svg")
    site.get("/tags/hello/badge.svg", query=[("style", "round")])  # an invalid option: nothing counted
    site.get("/counts/hello/badge.json", method="DELETE")
    site.get("/tags/a%2Fb/count.json")
    site.get("/tags/hello/count.json", method="POST")
    site.get("/counts/no%20spaces/count.json")
    assert calls == []


def test_stream_processor_calls_exactly_its_actions(site: Site) -> None:
    calls = record_calls(get_store().client)
    for path in ("/tags/a", "/tags/b", "/tags/a"):
        site.get(path)
    calls.clear()
    records = site.reader.read()
    from functions import stream_processor
    from localsite.events import LambdaContext

    event = site.reader.event(records)
    assert stream_processor.handler(event, LambdaContext("stream", 30)) == {"batchItemFailures": []}
    assert [call.operation for call in calls] == ["TransactWriteItems"]
    # The redelivery path: the cancelled transaction, then GetItem of the marker.
    assert stream_processor.handler(event, LambdaContext("stream", 30)) == {"batchItemFailures": []}
    assert [call.operation for call in calls] == ["TransactWriteItems", "TransactWriteItems", "GetItem"]
    assert_exact_pairs(STREAM_PROCESSOR, calls)


def test_the_pair_check_fails_on_a_grant_never_used(site: Site) -> None:
    """Test of the test: the right action on a key pattern the handler never touches is caught."""
    calls = record_calls(get_store().client)
    site.get("/tags/hello")
    wider = dataclasses.replace(VISIT, grants=VISIT.grants + (Grant("dynamodb:UpdateItem", TOTAL_KEY),))
    with pytest.raises(AssertionError, match="never used"):
        assert_exact_pairs(wider, calls)
    narrower = dataclasses.replace(VISIT, grants=(Grant("dynamodb:UpdateItem", TOTAL_KEY),))
    with pytest.raises(AssertionError, match="none of its grants allows"):
        assert_exact_pairs(narrower, calls)
