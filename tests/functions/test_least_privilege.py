"""Each handler's DynamoDB calls map exactly onto its FunctionSpec's IAM actions and LeadingKeys.

``definition.FUNCTIONS`` feeds the stack's IAM policies; this test records what the real handlers actually call
(botocore ``before-call`` hook) across their success and recovery paths, so a policy can be neither too wide
nor too narrow.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from definition import COUNT, COUNT_BADGE, COUNT_BADGE_JSON, HOME, STREAM_PROCESSOR, VISIT, VISIT_BADGE, FunctionSpec
from functions.store import get_store

from .conftest import Call, Site, record_calls

# TransactWriteItems needs the permission of each action inside it, on each item it touches.
TRANSACT_ACTIONS = {
    "Update": "UpdateItem",
    "Put": "PutItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def actions_and_keys(calls: list[Call]) -> tuple[set[str], set[str]]:
    """The IAM actions and the partition keys a list of API calls needs."""
    actions: set[str] = set()
    keys: set[str] = set()
    for call in calls:
        params: dict[str, Any] = call.params
        if call.operation == "TransactWriteItems":
            for item in params["TransactItems"]:
                [(kind, body)] = item.items()
                actions.add("dynamodb:" + TRANSACT_ACTIONS[kind])
                keys.add((body.get("Key") or body.get("Item"))["pk"]["S"])
            continue
        actions.add("dynamodb:" + call.operation)
        if "Key" in params:
            keys.add(params["Key"]["pk"]["S"])
        for table in (params.get("RequestItems") or {}).values():
            keys.update(key["pk"]["S"] for key in table["Keys"])
    return actions, keys


def assert_matches(spec: FunctionSpec, calls: list[Call]) -> None:
    actions, keys = actions_and_keys(calls)
    assert calls and keys, f"{spec.name} made no call: the test would prove nothing"
    assert actions == set(spec.actions), f"{spec.name}: calls {sorted(actions)}, policy {sorted(spec.actions)}"
    for key in keys:
        assert any(fnmatchcase(key, pattern) for pattern in spec.leading_keys), (spec.name, key)


def test_route_handlers_call_exactly_their_actions(site: Site) -> None:
    calls = record_calls(get_store().client)
    site.get("/")
    assert [call.operation for call in calls] == ["GetItem"]
    assert_matches(HOME, calls)

    calls.clear()
    site.get("/tags/hello")
    site.get("/tags/hello", method="HEAD")  # a HEAD reads the tag instead of counting
    assert [call.operation for call in calls] == ["UpdateItem", "GetItem"]
    assert_matches(VISIT, calls)

    calls.clear()
    site.get("/counts/hello")
    assert [call.operation for call in calls] == ["BatchGetItem"]
    assert_matches(COUNT, calls)

    calls.clear()
    site.get("/tags/hello/badge.svg")
    site.get("/tags/hello/badge.svg", method="HEAD")
    assert [call.operation for call in calls] == ["UpdateItem", "GetItem"]
    assert_matches(VISIT_BADGE, calls)

    for path, spec in (("/counts/hello/badge.svg", COUNT_BADGE), ("/counts/hello/badge.json", COUNT_BADGE_JSON)):
        calls.clear()
        site.get(path)
        site.get(path, method="HEAD")
        assert [call.operation for call in calls] == ["GetItem", "GetItem"]
        assert_matches(spec, calls)


def test_invalid_and_refused_requests_call_nothing(site: Site) -> None:
    calls = record_calls(get_store().client)
    site.get("/tags/a%2Fb")
    site.get("/tags/hello", method="POST")
    site.get("/counts/%F0%9F%98%80")
    site.get("/tags/a%2Fb/badge.svg")
    site.get("/tags/hello/badge.svg", query=[("style", "round")])  # an invalid option: nothing counted
    site.get("/counts/hello/badge.json", method="DELETE")
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
