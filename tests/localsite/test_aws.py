"""``localsite.aws.local_aws``: what it fixes in moto, shown on moto itself."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from definition import create_table
from localsite.aws import local_aws
from localsite.aws import StreamReader


class ShardReader:
    """Reads the stream's one shard through the Streams API, as the operator command reads the local site's."""

    def __init__(self, client: Any, stream_arn: str, position: str) -> None:
        self._client = client
        shard = client.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
        self._iterator = client.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard, ShardIteratorType=position
        )["ShardIterator"]
        self.position: int | None = None

    def read(self, limit: int = 1000) -> list[dict[str, Any]]:
        response = self._client.get_records(ShardIterator=self._iterator, Limit=limit)
        self._iterator = response.get("NextShardIterator") or self._iterator
        records = list(response.get("Records", ()))
        if records:
            self.position = int(records[-1]["dynamodb"]["SequenceNumber"])
        return records


def _without_microseconds(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # GetRecords carries the creation time to the millisecond.
    return [{**r, "dynamodb": {**r["dynamodb"], "ApproximateCreationDateTime":
                                r["dynamodb"]["ApproximateCreationDateTime"].replace(microsecond=0)}} for r in records]


@pytest.mark.parametrize("position", ["TRIM_HORIZON", "LATEST"])
def test_the_in_process_reader_returns_what_get_records_returns(position: str) -> None:
    from localsite.aws import expire_items

    with local_aws():
        client = boto3.client("dynamodb")
        arn = create_table(client, "t")
        client.put_item(TableName="t", Item={"pk": {"S": "tag#before"}, "visits": {"N": "1"}})
        api, local = ShardReader(boto3.client("dynamodbstreams"), arn, position), StreamReader("t", position)
        # GIVEN an insert, an update, a delete and a TTL deletion with non-ASCII keys and numbers
        client.put_item(TableName="t", Item={"pk": {"S": "tag#café"}, "visits": {"N": "1"}, "expires_at": {"N": "5"}})
        client.update_item(TableName="t", Key={"pk": {"S": "tag#café"}}, UpdateExpression="ADD visits :n",
                           ExpressionAttributeValues={":n": {"N": "41"}})
        client.delete_item(TableName="t", Key={"pk": {"S": "tag#before"}})
        expire_items("t", now=10)
        # THEN both readers hand out the same records, in boto3's form (an aware UTC creation time included)
        from_api, in_process = api.read(), local.read()
        assert len(in_process) == (5 if position == "TRIM_HORIZON" else 4)
        assert _without_microseconds(in_process) == _without_microseconds(from_api)
        assert local.position == api.position and local.read() == [] and api.read() == []
        assert local.shard_id == boto3.client("dynamodbstreams").describe_stream(
            StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        # ... and changing a record handed out changes neither the stream nor the next reader's record
        in_process[0]["dynamodb"]["SequenceNumber"] = "0"
        assert StreamReader("t", "TRIM_HORIZON").read()[0]["dynamodb"]["SequenceNumber"] != "0"
    with pytest.raises(ValueError, match="TRIM_HORIZON or LATEST"):
        StreamReader("t", "AT_SEQUENCE_NUMBER")


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


def test_an_update_that_creates_its_item_writes_one_record_as_dynamodb_does() -> None:
    def add(pk: str, condition: str | None = None) -> None:
        extra = {"ConditionExpression": condition} if condition else {}
        client.update_item(TableName="t", Key={"pk": {"S": pk}}, UpdateExpression="ADD visits :n",
                           ExpressionAttributeValues={":n": {"N": "1"}}, **extra)

    with local_aws():
        client = boto3.client("dynamodb")
        arn = create_table(client, "t")
        reader = ShardReader(boto3.client("dynamodbstreams"), arn, "TRIM_HORIZON")
        # GIVEN an update creating its item, one changing it, and one creating an item inside a transaction
        add("tag#new")
        add("tag#new")
        client.transact_write_items(TransactItems=[{"Update": {
            "TableName": "t", "Key": {"pk": {"S": "tag#other"}}, "UpdateExpression": "ADD visits :n",
            "ExpressionAttributeValues": {":n": {"N": "1"}}}}])
        # ... and one refused by its condition, then a put of a new item
        with pytest.raises(ClientError):
            add("tag#absent", condition="attribute_exists(pk)")
        client.put_item(TableName="t", Item={"pk": {"S": "tag#put"}})
        # THEN each write that changed an item is one record, the first with the full new image (moto wrote a
        # key-only INSERT before it), and the refused one none
        records = reader.read()
        assert [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records] == [
            ("INSERT", "tag#new"), ("MODIFY", "tag#new"), ("INSERT", "tag#other"), ("INSERT", "tag#put")]
        assert records[0]["dynamodb"]["NewImage"] == {"pk": {"S": "tag#new"}, "visits": {"N": "1"}}
        assert records[1]["dynamodb"]["OldImage"]["visits"] == {"N": "1"}
        assert "Item" not in client.get_item(TableName="t", Key={"pk": {"S": "tag#absent"}})


def test_loaded_items_are_the_items_moto_makes_and_write_no_stream_record() -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from localsite.aws import _table, load_items

    item = {"pk": {"S": "tag#café"}, "visits": {"N": "12"}, "d20261204": {"N": "3"}, "last_day": {"N": "20261204"},
            "s": {"SS": ["a", "b"]}, "m": {"M": {"x": {"L": [{"N": "1"}, {"S": "y"}]}}}}
    with local_aws():
        client = boto3.client("dynamodb")
        arn = create_table(client, "t")
        # WHEN an item is loaded as a restart loads the saved ones
        assert load_items("t", [item]) == 1
        # THEN it is the item moto itself makes of those attributes, served and updated as any other
        key = DynamoType(item["pk"])
        assert _table("t").items[key] == Item(key, None, item)
        assert client.get_item(TableName="t", Key={"pk": item["pk"]})["Item"] == item
        client.update_item(TableName="t", Key={"pk": item["pk"]}, UpdateExpression="ADD visits :n",
                           ExpressionAttributeValues={":n": {"N": "1"}})
        assert client.get_item(TableName="t", Key={"pk": item["pk"]})["Item"]["visits"] == {"N": "13"}
        # ... and only the update is in the stream
        records = ShardReader(boto3.client("dynamodbstreams"), arn, "TRIM_HORIZON").read()
        assert [r["eventName"] for r in records] == ["MODIFY"]


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


def test_moto_keeps_no_registry_of_objects_nor_used_shard_iterators() -> None:
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    with local_aws():
        client = boto3.client("dynamodb")
        arn = create_table(client, "t")
        reader = ShardReader(boto3.client("dynamodbstreams"), arn, "TRIM_HORIZON")
        for n in range(50):
            client.transact_write_items(TransactItems=[
                {"Update": {"TableName": "t", "Key": {"pk": {"S": "site#total"}}, "UpdateExpression": "ADD visits :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                _put_if_absent("t", f"marker#{n}"),
            ])
            reader.read()
        # THEN no copy of an item is kept anywhere but in the table, and one iterator is left: the next one
        assert Item.instances_tracked == []  # type: ignore[attr-defined]
        assert len(dynamodbstreams_backends["123456789012"]["us-east-1"].shard_iterators) == 1
        assert client.get_item(TableName="t", Key={"pk": {"S": "site#total"}})["Item"]["visits"] == {"N": "50"}


def test_items_past_their_ttl_are_deleted_with_the_ttl_process_identity() -> None:
    from localsite.aws import expire_items
    from localsite.events import stream_record

    with local_aws():
        client = boto3.client("dynamodb")
        arn = create_table(client, "t")  # TTL on expires_at, as the program declares it
        reader = ShardReader(boto3.client("dynamodbstreams"), arn, "LATEST")
        client.put_item(TableName="t", Item={"pk": {"S": "marker#old"}, "expires_at": {"N": "1000"}})
        client.put_item(TableName="t", Item={"pk": {"S": "marker#new"}, "expires_at": {"N": "3000"}})
        client.put_item(TableName="t", Item={"pk": {"S": "tag#kept"}, "visits": {"N": "2"}})
        client.put_item(TableName="t", Item={"pk": {"S": "marker#odd"}, "expires_at": {"S": "1000"}})
        reader.read()
        # WHEN the TTL process runs at t=2000
        assert expire_items("t", now=2000) == [{"pk": {"S": "marker#old"}}]
        # THEN only the expired item is gone, with a REMOVE record as DynamoDB writes for TTL deletions
        keys = sorted(item["pk"]["S"] for item in client.scan(TableName="t")["Items"])
        assert keys == ["marker#new", "marker#odd", "tag#kept"]
        (record,) = reader.read()
        assert record["eventName"] == "REMOVE" and record["dynamodb"]["Keys"] == {"pk": {"S": "marker#old"}}
        assert record["userIdentity"] == {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
        assert stream_record(record, arn)["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
        assert expire_items("t", now=2000) == []


def test_a_sweep_deletes_a_slice_at_a_time_and_spares_an_item_written_meanwhile(monkeypatch: Any) -> None:
    from localsite import aws

    with local_aws():
        client = boto3.client("dynamodb")
        create_table(client, "t")
        for name in ("a", "b", "c", "d"):
            client.put_item(TableName="t", Item={"pk": {"S": f"marker#{name}"}, "expires_at": {"N": "1000"}})
        written = []

        def write_meanwhile(seconds: float) -> None:
            # between two slices, requests run: one moves b's expiry on, one deletes c
            if not written:
                client.put_item(TableName="t", Item={"pk": {"S": "marker#b"}, "expires_at": {"N": "9000"}})
                client.delete_item(TableName="t", Key={"pk": {"S": "marker#c"}})
            written.append(seconds)

        monkeypatch.setattr(aws, "SWEEP_SLICE", 1)
        monkeypatch.setattr(aws.time, "sleep", write_meanwhile)
        # WHEN a sweep at t=2000 lists the four expired markers, then deletes them one slice at a time
        deleted = aws.expire_items("t", now=2000)
        # THEN it paused between slices, and deleted only what was still expired when its slice came
        assert len(written) == 3
        assert sorted(key["pk"]["S"] for key in deleted) == ["marker#a", "marker#d"]
        assert [item["pk"]["S"] for item in client.scan(TableName="t")["Items"]] == ["marker#b"]


def test_the_stream_is_trimmed_past_retention_and_behind_its_consumers() -> None:
    from localsite.aws import STREAM_RETENTION_SECONDS, trim_stream

    with local_aws():
        client = boto3.client("dynamodb")
        arn = create_table(client, "t")
        streams = boto3.client("dynamodbstreams")
        consumer = ShardReader(streams, arn, "TRIM_HORIZON")
        for n in range(10):
            client.put_item(TableName="t", Item={"pk": {"S": f"tag#{n}"}})
        assert len(consumer.read(limit=6)) == 6
        # WHEN trimmed behind a consumer that has read 6 records, keeping the newest 2 of those
        assert trim_stream("t", read_by=consumer.position, keep=2, now=time.time()) == 4
        # THEN a reader from the oldest record starts at the 5th; the consumer goes on where it was
        oldest = ShardReader(streams, arn, "TRIM_HORIZON").read()
        assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in oldest] == [f"tag#{n}" for n in range(4, 10)]
        client.put_item(TableName="t", Item={"pk": {"S": "tag#10"}})
        assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in consumer.read()] == [f"tag#{n}" for n in range(6, 11)]
        # ... and a day later everything older than the retention goes, read or not
        assert trim_stream("t", read_by=None, keep=0, now=time.time() + STREAM_RETENTION_SECONDS + 60) == 7
        assert ShardReader(streams, arn, "TRIM_HORIZON").read() == []
