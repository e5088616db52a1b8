"""``localsite.aws.local_aws`` speeds up moto's update expressions: the same requests give the same answers.

Every request below runs twice (the second time on parses and checks kept from the first), against moto as
``local_aws`` changes it and against moto as it is: each answer or error, every item left in the tables and
every stream record must be the same.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from localsite.aws import local_aws, use_dummy_credentials

HISTORY = ("ADD #visits :one, d20261204 :one SET #last = :today REMOVE "
           + ", ".join(f"d202611{day:02d}" for day in range(1, 31)) + ", d20261031")
"""The local site's visit: the daily history's write (``functions.history``)."""
HISTORY_VALUES = {":one": {"N": "1"}, ":today": {"N": "20261204"}, ":horizon": {"N": "20261104"}}


def _update(key: str, expression: str, values: dict[str, Any] | None = None, names: dict[str, str] | None = None,
            table: str = "hash", **more: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"TableName": table, "UpdateExpression": expression, "ReturnValues": "ALL_NEW",
                               "Key": {"pk": {"S": key}} if table == "hash" else {"pk": {"S": key}, "sk": {"N": "1"}}}
    if values is not None:
        request["ExpressionAttributeValues"] = values
    if names is not None:
        request["ExpressionAttributeNames"] = names
    return {**request, **more}


def _requests(round_: int) -> list[dict[str, Any]]:
    """New items (a key of this round) and the items set up before (``old``, ``map``), good and bad requests."""
    new = f"new-{round_}"
    one = {":one": {"N": "1"}}
    return [
        # the site's visit: a new item, the same item again, on condition, with its values
        _update(new, HISTORY, HISTORY_VALUES, {"#visits": "visits", "#last": "last_day"},
                ConditionExpression="attribute_not_exists(#last) OR #last >= :horizon", ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD"),
        _update(new, HISTORY, HISTORY_VALUES, {"#visits": "visits", "#last": "last_day"},
                ConditionExpression="attribute_not_exists(#last) OR #last >= :horizon", ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD"),
        _update(f"{new}-short", "ADD visits :one", one, ReturnValues="UPDATED_OLD"),
        # a failed condition returns the old item
        _update("old", "ADD visits :one", one, ConditionExpression="visits > :big",
                ExpressionAttributeValues={**one, ":big": {"N": "1000"}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD"),
        # paths that start with the key: a new item's two checks differ (none, then the key alone)
        _update(f"{new}-key", "SET copied = if_not_exists(pk, :v)", {":v": {"S": "none"}}),
        _update(f"{new}-key-name", "SET copied = if_not_exists(#k, :v)", {":v": {"S": "none"}}, {"#k": "pk"}),
        _update(f"{new}-key-read", "SET copied = pk"),
        _update(f"{new}-key-range", "SET copied = sk", table="range"),
        # functions, arithmetic, sets, lists, maps, REMOVE of list elements
        _update(f"{new}-list", "SET l = list_append(if_not_exists(l, :empty), :items)",
                {":empty": {"L": []}, ":items": {"L": [{"N": "1"}, {"S": "x"}]}}),
        _update("old", "SET l = list_append(l, :items), n = n + :one, m.a = :one",
                {":items": {"L": [{"N": "2"}]}, ":one": {"N": "1"}}),
        _update("old", "ADD s :ss DELETE t :ts", {":ss": {"SS": ["a", "b"]}, ":ts": {"SS": ["x"]}}),
        _update("old", "REMOVE l[0], m.a, gone"),
        _update(f"{new}-set", "SET a = :v, b = :w", {":v": {"S": "v"}, ":w": {"BOOL": True}}),
        _update(f"{new}-range", "ADD visits :one", one, table="range"),
        # a value a new item took from its expression, then changed in place: the next new item's is its own
        _update(f"{new}-shared", "SET ss = :ss", {":ss": {"SS": ["a"]}}),
        _update(f"{new}-shared", "ADD ss :more", {":more": {"SS": ["b"]}}),
        # refused: bad paths, names, values, keywords, clauses, keys, types
        _update(f"{new}-nested", "SET m.a = :one", one),
        _update(f"{new}-missing", "SET n = n + :one", one),
        _update(f"{new}-append", "SET l = list_append(l, :one)", one),
        _update("old", "SET name = :one", one),
        _update("old", "SET a = :one, b = :missing", one),
        _update("old", "SET #missing = :one", one),
        _update("old", "SET a = :one REMOVE a", one),
        _update("old", "SET a = :one SET b = :one", one),
        _update("old", "SET a = :one", {**one, ":unused": {"N": "2"}}),
        _update("old", "SET a = :one", one, {"#unused": "a"}),
        _update("old", "SET pk = :key", {":key": {"S": "other"}}),
        _update(f"{new}-key-name-set", "SET #k = :key", {":key": {"S": "other"}}, {"#k": "pk"}),
        _update(f"{new}-sk", "SET sk = :n", {":n": {"N": "2"}}, table="range"),
        _update("old", "ADD visits :text", {":text": {"S": "x"}}),
        _update("old", "ADD m :one", one),
        _update("old", "SET = :one", one),
        _update("old", "   "),
        _update(f"{new}-after-errors", HISTORY, HISTORY_VALUES, {"#visits": "visits", "#last": "last_day"},
                ConditionExpression="attribute_not_exists(#last) OR #last >= :horizon"),
    ]


def _outcomes(context: AbstractContextManager[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    use_dummy_credentials()
    with context:
        client = boto3.client("dynamodb", config=Config(retries={"total_max_attempts": 1}))
        stream = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        client.create_table(TableName="hash", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST", StreamSpecification=stream)
        client.create_table(TableName="range", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                                          {"AttributeName": "sk", "KeyType": "RANGE"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                  {"AttributeName": "sk", "AttributeType": "N"}],
                            BillingMode="PAY_PER_REQUEST")
        client.put_item(TableName="hash", Item={
            "pk": {"S": "old"}, "visits": {"N": "5"}, "n": {"N": "1"}, "l": {"L": [{"N": "0"}]},
            "m": {"M": {"b": {"S": "kept"}}}, "t": {"SS": ["x", "y"]}})
        answers: list[Any] = []
        for round_ in range(2):
            for request in _requests(round_):
                try:
                    response = client.update_item(**request)
                    answers.append(("ok", response.get("Attributes")))
                except ClientError as error:
                    answers.append((error.response["Error"]["Code"], error.response["Error"]["Message"],
                                    error.response.get("Item")))
                except Exception as error:  # noqa: BLE001 - moto's own failure (a KeyError for #missing)
                    answers.append((type(error).__name__, str(error), None))
        items = [sorted(client.scan(TableName=name)["Items"], key=repr) for name in ("hash", "range")]
        streams = boto3.client("dynamodbstreams")
        arn = client.describe_table(TableName="hash")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = [(r["eventName"], r["dynamodb"].get("Keys"), r["dynamodb"].get("OldImage"),
                    r["dynamodb"].get("NewImage"))
                   for r in streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]]
    return answers, items, records


def test_update_expressions_give_moto_s_own_answers_items_and_stream_records() -> None:
    patched, unpatched = _outcomes(local_aws()), _outcomes(mock_aws())
    answers, items, records = patched
    # GIVEN requests that succeed and requests moto refuses, each kind at least once
    assert sum(answer[0] == "ok" for answer in answers) >= 20
    assert {answer[0] for answer in answers} >= {"ValidationException", "ConditionalCheckFailedException"}
    assert len({answer[1] for answer in answers if answer[0] == "ValidationException"}) >= 12
    # THEN local_aws's moto answers each as moto does, and leaves the same items and stream records
    for mine, theirs, request in zip(answers, unpatched[0], _requests(0) + _requests(1)):
        assert mine == theirs, request["UpdateExpression"]
    assert items == unpatched[1]
    assert records == _without_placeholders(unpatched[2]) and len(records) > 20


def _without_placeholders(records: list[Any]) -> list[Any]:
    """moto's records less the key-only INSERT it writes before an update that creates its item, followed by the
    update's own INSERT: ``local_aws`` writes only that one, as DynamoDB does (``tests/localsite/test_aws.py``)."""
    return [record for record, after in zip(records, [*records[1:], None])
            if not (record[0] == "INSERT" and record[3] == record[1] and after is not None
                    and after[0] == "INSERT" and after[1] == record[1])]
