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

from definition import COUNT, HOME, STREAM_PROCESSOR, TOTAL_KEY, VISIT, FunctionSpec, Grant
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
        if "Key" in params:
            pairs.add((action, params["Key"]["pk"]["S"]))
        for table in (params.get("RequestItems") or {}).values():
            pairs.update((action, key["pk"]["S"]) for key in table["Keys"])
    return pairs


def assert_matches(spec: FunctionSpec, calls: list[Call]) -> None:
    pairs = used_pairs(calls)
    assert calls and pairs, f"{spec.name} made no call: the test would prove nothing"
    used = set()
    for action, key in pairs:
        matching = [grant for grant in spec.grants if grant.action == action and fnmatchcase(key, grant.key_pattern)]
        assert matching, f"{spec.name} calls {action} on {key!r}, which none of its grants allows"
        used.update(matching)
    assert used == set(spec.grants), f"{spec.name}: grants never used: {sorted(set(spec.grants) - used)}"


def test_route_handlers_call_exactly_their_actions(site: Site) -> None:
    calls = record_calls(get_store().client)
    site.get("/")
    assert [call.operation for call in calls] == ["GetItem"]
    assert_matches(HOME, calls)

    calls.clear()
    site.get("/tags/hello")
    assert [call.operation for call in calls] == ["UpdateItem"]
    assert_matches(VISIT, calls)

    calls.clear()
    site.get("/counts/hello")
    assert [call.operation for call in calls] == ["BatchGetItem"]
    assert_matches(COUNT, calls)


def test_invalid_and_refused_requests_call_nothing(site: Site) -> None:
    calls = record_calls(get_store().client)
    site.get("/tags/a%2Fb")
    site.get("/tags/hello", method="POST")
    site.get("/counts/%F0%9F%98%80")
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
    assert_matches(STREAM_PROCESSOR, calls)


def test_the_pair_check_fails_on_a_grant_never_used(site: Site) -> None:
    """Test of the test: the right action on a key pattern the handler never touches is caught."""
    calls = record_calls(get_store().client)
    site.get("/tags/hello")
    wider = dataclasses.replace(VISIT, grants=VISIT.grants + (Grant("dynamodb:UpdateItem", TOTAL_KEY),))
    with pytest.raises(AssertionError, match="never used"):
        assert_matches(wider, calls)
    narrower = dataclasses.replace(VISIT, grants=(Grant("dynamodb:UpdateItem", TOTAL_KEY),))
    with pytest.raises(AssertionError, match="none of its grants allows"):
        assert_matches(narrower, calls)
