"""``localsite.aws.local_aws``: what it fixes in moto, shown on moto itself."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from definition import create_table
from localsite.aws import local_aws
from localsite.esm import ShardReader


def _put_if_absent(table: str, pk: str) -> dict[str, Any]:
    return {"Put": {"TableName": table, "Item": {"pk": {"S": pk}}, "ConditionExpression": "attribute_not_exists(pk)"}}


def test_a_cancelled_transaction_leaves_stream_readers_working_and_writes_no_record() -> None:
    with local_aws():
        client = boto3.client("dynamodb")
        arn = create_table(client, "t")
        reader = ShardReader(boto3.client("dynamodbstreams"), arn, "TRIM_HORIZON")
        client.put_item(TableName="t", Item={"pk": {"S": "tag#a"}})
        assert len(reader.read()) == 1
        # GIVEN a transaction that updates one item, then is cancelled by its second item's condition
        with pytest.raises(ClientError) as cancelled:
            client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": "t",
                            "Key": {"pk": {"S": "site#total"}},
                            "UpdateExpression": "ADD visits :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                    _put_if_absent("t", "tag#a"),
                ]
            )
        assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
        # THEN nothing of it is in the table or the stream, and a reader opened before it sees what follows
        assert "Item" not in client.get_item(TableName="t", Key={"pk": {"S": "site#total"}})
        client.put_item(TableName="t", Item={"pk": {"S": "tag#b"}})
        later = reader.read()
        assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in later] == ["tag#b"]
        everything = ShardReader(boto3.client("dynamodbstreams"), arn, "TRIM_HORIZON").read()
        assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in everything] == ["tag#a", "tag#b"]
        numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in everything]
        assert numbers == sorted(set(numbers))


def test_a_request_answered_before_moto_is_not_applied_by_moto() -> None:
    from localsite.faults import Faults

    with local_aws():
        client = boto3.client("dynamodb")
        create_table(client, "t")
        faults = Faults()
        faults.attach()
        try:
            faults.throttle("PutItem", count=10)
            with pytest.raises(ClientError):
                boto3.client("dynamodb", config=_no_retries()).put_item(TableName="t", Item={"pk": {"S": "tag#x"}})
        finally:
            faults.detach()
        assert client.scan(TableName="t")["Items"] == []


def _no_retries() -> Config:
    return Config(retries={"mode": "standard", "total_max_attempts": 1})
