"""Recompute the site-wide total from the tag items: backfill and repair, for operators.

When to run it:
- after enabling the stream on a table that already held tags (the stream never saw those visits);
- after a stream outage longer than the idempotency window, or a batch that counted twice because its retry
  started at a different record (the one case the stream processor's markers cannot detect);
- whenever the total looks wrong.
Run it when the stream is drained (the stream processor's iterator age near zero) and ideally in a quiet
moment: the scan reads the tag items as they are, while visits still in the stream will add their deltas to
the total afterwards, so running it mid-flow counts those visits twice. If the total changes while the scan
runs (the processor wrote to it), the result is not written and the command says so: run it again.

    python -m functions.reconcile --table NAME [--dry-run] [--segments N] [--region R] [--endpoint-url URL]

Exit codes: 0 done (or nothing to change), 1 the total changed during the scan, 2 bad arguments,
3 the table is not a tag-counter table (nothing was changed), 4 an AWS error (credentials, access, network).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.keys import COUNT_ATTRIBUTE, PARTITION_KEY, TAG_PREFIX, total_key

STREAM_VIEW_TYPE = "NEW_AND_OLD_IMAGES"


class UnrecognisedTable(Exception):
    """The table is not one this product created; nothing was read or written beyond its description."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TotalChanged(Exception):
    """The total was written while the scan ran (the stream is not drained); nothing was written."""


@dataclass(frozen=True)
class ReconcileResult:
    """What a reconcile found and did."""

    previous_total: int
    """The total item's visits before (0 when it did not exist)."""
    counted_total: int
    """The sum of every tag item's visits."""
    tags: int
    """How many tag items were counted."""
    changed: bool
    """Whether the total item was written (False on a dry run or when it was already right)."""


def check_table(client: Any, table_name: str) -> None:
    """Raise ``UnrecognisedTable`` unless the table has our key schema and a NEW_AND_OLD_IMAGES stream."""
    try:
        table = client.describe_table(TableName=table_name)["Table"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise UnrecognisedTable(f"table {table_name!r} was not found") from None
        raise
    schema = [(key["AttributeName"], key["KeyType"]) for key in table.get("KeySchema", [])]
    if schema != [(PARTITION_KEY, "HASH")]:
        raise UnrecognisedTable(f"table {table_name!r} has key schema {schema}, expected only {PARTITION_KEY!r} HASH")
    types = {item["AttributeName"]: item["AttributeType"] for item in table.get("AttributeDefinitions", [])}
    if types.get(PARTITION_KEY) != "S":
        raise UnrecognisedTable(f"table {table_name!r}: key {PARTITION_KEY!r} is not a string attribute")
    stream = table.get("StreamSpecification") or {}
    if not stream.get("StreamEnabled") or stream.get("StreamViewType") != STREAM_VIEW_TYPE:
        raise UnrecognisedTable(f"table {table_name!r} has no {STREAM_VIEW_TYPE} stream")


def _scan_segment(
    client: Any, table_name: str, segment: int, segments: int, page_size: int | None
) -> tuple[int, int]:
    total = tags = 0
    request: dict[str, Any] = {
        "TableName": table_name,
        "Segment": segment,
        "TotalSegments": segments,
        "FilterExpression": "begins_with(#pk, :tag)",
        "ProjectionExpression": "#pk, #visits",
        "ExpressionAttributeNames": {"#pk": PARTITION_KEY, "#visits": COUNT_ATTRIBUTE},
        "ExpressionAttributeValues": {":tag": {"S": TAG_PREFIX}},
        "ConsistentRead": True,
    }
    if page_size is not None:
        request["Limit"] = page_size
    while True:
        page = client.scan(**request)
        for item in page.get("Items", []):
            tags += 1
            value = item.get(COUNT_ATTRIBUTE)
            if value is not None:
                total += int(value["N"])
        if "LastEvaluatedKey" not in page:
            return total, tags
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _read_total(client: Any, table_name: str) -> int | None:
    item = client.get_item(TableName=table_name, Key=total_key(), ConsistentRead=True).get("Item")
    if not item or COUNT_ATTRIBUTE not in item:
        return None
    return int(item[COUNT_ATTRIBUTE]["N"])


def reconcile(
    client: Any, table_name: str, *, segments: int = 4, dry_run: bool = False, page_size: int | None = None
) -> ReconcileResult:
    """Set the total to the sum of the tag items (a parallel scan); see the module docstring for when.

    ``page_size`` caps the items each Scan call reads (default: DynamoDB's 1 MB pages).
    """
    if segments < 1:
        raise ValueError("segments must be at least 1")
    check_table(client, table_name)
    previous = _read_total(client, table_name)
    with ThreadPoolExecutor(max_workers=segments) as pool:
        parts = list(
            pool.map(
                lambda segment: _scan_segment(client, table_name, segment, segments, page_size), range(segments)
            )
        )
    counted = sum(part[0] for part in parts)
    tags = sum(part[1] for part in parts)
    previous_total = previous or 0
    if dry_run or (previous is not None and previous == counted):
        return ReconcileResult(previous_total, counted, tags, changed=False)
    # Only if nobody wrote the total since we read it: never overwrite a delta the processor just added.
    if previous is None:
        condition = "attribute_not_exists(#visits)"
        values: dict[str, Any] = {":counted": {"N": str(counted)}}
    else:
        condition = "#visits = :previous"
        values = {":counted": {"N": str(counted)}, ":previous": {"N": str(previous)}}
    try:
        client.update_item(
            TableName=table_name,
            Key=total_key(),
            UpdateExpression="SET #visits = :counted",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#visits": COUNT_ATTRIBUTE},
            ExpressionAttributeValues=values,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise TotalChanged("the total changed while the tags were being counted") from None
        raise
    return ReconcileResult(previous_total, counted, tags, changed=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m functions.reconcile",
        description="Recompute tag-counter's site-wide total from its tag items. "
        "Run it when the table's stream is drained.",
    )
    parser.add_argument("--table", required=True, help="the table's name (the stack output table_name)")
    parser.add_argument("--dry-run", action="store_true", help="count and report, change nothing")
    parser.add_argument("--segments", type=int, default=4, help="parallel scan segments (default 4)")
    parser.add_argument("--region", help="AWS region (default: from the environment or profile)")
    parser.add_argument("--endpoint-url", help="DynamoDB endpoint, e.g. a local emulator")
    return parser


def main(argv: Sequence[str] | None = None, client: Any = None) -> int:
    """The command line; returns the exit code (see the module docstring)."""
    args = _parser().parse_args(argv)
    if args.segments < 1:
        print("error: --segments must be at least 1", file=sys.stderr)
        return 2
    try:
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "dynamodb",
                region_name=args.region,
                endpoint_url=args.endpoint_url,
                config=Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3}),
            )
        result = reconcile(client, args.table, segments=args.segments, dry_run=args.dry_run)
    except UnrecognisedTable as error:
        print(f"refused: {error.reason}; nothing was changed", file=sys.stderr)
        return 3
    except TotalChanged as error:
        print(f"not written: {error}; the stream is not drained yet, run this again", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:
        print(f"AWS error: {error}", file=sys.stderr)
        return 4
    if result.changed:
        outcome = "total updated"
    elif args.dry_run:
        outcome = "dry run, nothing changed"
    else:
        outcome = "total already right, nothing changed"
    print(
        f"{args.table}: {result.tags} tags hold {result.counted_total} visits; "
        f"the total was {result.previous_total}: {outcome}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
