"""Recompute the site-wide total and daily totals from the tag items: backfill and repair.

When to run it:
- after enabling the stream on a table that already held tags (the stream never saw those visits);
- after a stream outage longer than the idempotency window, records given up on (the on-failure queue), or a
  batch that counted twice because its retry started at a different record (the one case the stream
  processor's markers cannot detect);
- whenever the total looks wrong.

What it writes: the total item's ``visits`` becomes the sum of every tag's visits, and its days
(``d<YYYYMMDD>``, ``functions.history``) the sum of the tags' visits on each day of the window of
``history_days`` days ending today (UTC), ``last_day`` today; the total's days outside that set are removed.

Visits still in the stream. The scan reads the tag items as they are; a visit whose stream record the processor
has not applied yet is in the scan's sum *and* will be added to the total afterwards, so writing the sum while
records are in flight leaves the total too high for good. Each attempt therefore takes a steady reading:
1. opens a ``LATEST`` iterator on every open shard of the table's stream, and reads the total;
2. scans the tags (parallel, strongly consistent);
3. waits until ``settle`` seconds have passed since step 1, then reads the total again, reads every record the
   stream received since step 1, and lists the open shards again.
The reading is steady when the total did not change, no tag item was written (no tag record in the stream
since step 1) and no shard opened. Then the scan saw every tag as it stood over the whole period, and the
write is made on condition that the total is still what was read. Otherwise the attempt is dropped, nothing is
written, and after ``attempts`` unsteady readings the command gives up (exit 1: run it again in a quiet moment).

What that guarantees: the written total is the sum of the tags at a moment when no tag write was arriving, and
every record written before step 1 had been applied, *provided the stream processor applies records within
``settle`` seconds* (its iterator age stays under ``settle``): a pending record applied during the period moves
the total and drops the attempt. Choose ``settle`` above the stack's ``streamBatchingWindowSeconds`` plus a few
seconds (default 10 s; batching window 1 s in ``dev``; the command line refuses less than
``MIN_SETTLE_SECONDS``). What it cannot see: a processor stalled longer than
``settle`` (failing and retrying a batch, throttled for minutes: check that its iterator age is near zero and
its error alarm quiet) whose records land afterwards and count on top of the written total.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from botocore.exceptions import ClientError

from admin.scan import DEFAULT_SEGMENTS, MAX_SEGMENTS, scan_tag_items
from admin.table import check_table
from admin import wording
from functions import history
from functions.keys import COUNT_ATTRIBUTE, PARTITION_KEY, TAG_PREFIX, total_key

DEFAULT_SETTLE_SECONDS = 10.0
MIN_SETTLE_SECONDS = 1.0
"""Shortest settle period the command line accepts: Lambda polls each shard about four times a second and then
runs the batch, so a record written just before step 1 can take most of a second to reach the total; a shorter
period can end before it lands, look steady, and write a total that the record then raises again (counted twice).
The function itself still takes 0 from callers that know nothing is flowing (the local site at start, tests)."""
MAX_SETTLE_SECONDS = 600.0
"""Shard iterators expire after 15 minutes: the scan and the settle period must fit in that."""
EMPTY_PAGES = 3
"""Empty ``GetRecords`` pages in a row that mean "nothing new" (DynamoDB may answer one empty page early)."""
DEFAULT_ATTEMPTS = 3
MAX_ATTEMPTS = 20


class TotalChanged(Exception):
    """No steady reading in any attempt (visits flowing, or the stream not drained); nothing was written."""


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
    days: tuple[tuple[date, int], ...] = ()
    """The site's visits per day of the window, as counted (days with none left out)."""
    previous_days: tuple[tuple[date, int], ...] = ()
    """The total item's days before."""
    attempts: int = 1
    """Readings taken until one was steady."""

    @property
    def total_differs(self) -> bool:
        """Whether the total's visits were (or, on a dry run, would be) changed."""
        return self.previous_total != self.counted_total

    @property
    def days_differing(self) -> tuple[date, ...]:
        """The days whose site-wide figure was (or would be) changed, added or removed."""
        before, after = dict(self.previous_days), dict(self.days)
        return tuple(sorted(day for day in set(before) | set(after) if before.get(day, 0) != after.get(day, 0)))


@dataclass(frozen=True)
class _Reading:
    visits: int | None
    days: dict[date, int]
    item: dict[str, Any] | None


def _read_total(client: Any, table_name: str) -> _Reading:
    item = client.get_item(TableName=table_name, Key=total_key(), ConsistentRead=True).get("Item")
    visits = int(item[COUNT_ATTRIBUTE]["N"]) if item and COUNT_ATTRIBUTE in item else None
    return _Reading(visits, history.item_days(item), item)


def _count(client: Any, table_name: str, segments: int, page_size: int | None, window: set[date]) -> tuple[int, int, dict[date, int]]:
    return tally(scan_tag_items(client, table_name, segments=segments, page_size=page_size), window)


def tally(items: Iterable[dict[str, Any]], window: set[date]) -> tuple[int, int, dict[date, int]]:
    """The visits of tag items, how many items there were, and their visits per day of ``window``."""
    total = tags = 0
    days: dict[date, int] = {}
    for item in items:
        tags += 1
        value = item.get(COUNT_ATTRIBUTE)
        if value is not None:
            total += int(value["N"])
        for day, count in history.item_days(item).items():
            if day in window:
                days[day] = days.get(day, 0) + count
    return total, tags, {day: count for day, count in days.items() if count}


class _StreamWatch:
    """Records written to the table's stream since it was opened (``LATEST`` on every open shard)."""

    def __init__(self, streams: Any, stream_arn: str) -> None:
        self.streams = streams
        self.stream_arn = stream_arn
        self.shards = self._open_shards()
        self.iterators = {
            shard: streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard, ShardIteratorType="LATEST")[
                "ShardIterator"
            ]
            for shard in self.shards
        }

    def _open_shards(self) -> frozenset[str]:
        shards: set[str] = set()
        request: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self.streams.describe_stream(**request)["StreamDescription"]
            for shard in description.get("Shards", []):
                if "EndingSequenceNumber" not in shard.get("SequenceNumberRange", {}):
                    shards.add(shard["ShardId"])
            last = description.get("LastEvaluatedShardId")
            if not last:
                return frozenset(shards)
            request["ExclusiveStartShardId"] = last

    def tag_writes(self) -> int | None:
        """Tag records since opening; ``None`` when the shards changed (a split: records may be elsewhere)."""
        found = 0
        for iterator in self.iterators.values():
            empty = 0
            while iterator and empty < EMPTY_PAGES:
                page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                for record in page.get("Records", []):
                    key = record.get("dynamodb", {}).get("Keys", {}).get(PARTITION_KEY, {}).get("S", "")
                    found += key.startswith(TAG_PREFIX)
                empty = 0 if page.get("Records") else empty + 1
                iterator = page.get("NextShardIterator")
        if self._open_shards() != self.shards:
            return None
        return found


def reconcile(
    client: Any,
    table_name: str,
    *,
    streams: Any = None,
    segments: int = DEFAULT_SEGMENTS,
    dry_run: bool = False,
    page_size: int | None = None,
    settle: float = 0.0,
    attempts: int = DEFAULT_ATTEMPTS,
    history_days: int | None = None,
    today: date | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    waiting: Callable[[float, int], None] | None = None,
) -> ReconcileResult:
    """Set the total and daily totals to the sums of the tag items, from a steady reading (module docstring).

    ``streams`` is a DynamoDB Streams client (default: one for ``client``'s region and emulator, if any).
    ``settle`` defaults to 0 for callers that know no visit is flowing (the local site at start, tests); the
    command line waits ``DEFAULT_SETTLE_SECONDS``. ``page_size`` caps the items each Scan call reads (default:
    DynamoDB's 1 MB pages). ``waiting(seconds, attempt)`` is told before each wait of the settle period (the
    command line says what it waits for). ``TotalChanged`` when no reading was steady.
    """
    if not 1 <= attempts <= MAX_ATTEMPTS:
        raise ValueError(f"attempts must be between 1 and {MAX_ATTEMPTS}")
    if not 0 <= settle <= MAX_SETTLE_SECONDS:
        raise ValueError(f"settle must be between 0 and {MAX_SETTLE_SECONDS:g} seconds")
    if not 1 <= segments <= MAX_SEGMENTS:
        raise ValueError(f"segments must be between 1 and {MAX_SEGMENTS}")
    table = check_table(client, table_name)
    if streams is None:
        import boto3

        streams = boto3.client(
            "dynamodbstreams",
            region_name=client.meta.region_name,
            endpoint_url=None if _aws_endpoint(client) else client.meta.endpoint_url,
            config=client.meta.config,
        )
    days_kept = history_days or history.history_days()
    today = today or history.utc_today()
    window = set(history.window(today, days_kept))
    for attempt in range(1, attempts + 1):
        started = clock()
        watch = _StreamWatch(streams, table.stream_arn)
        before = _read_total(client, table_name)
        counted, tags, days = _count(client, table_name, segments, page_size, window)
        remaining = settle - (clock() - started)
        if remaining > 0:
            if waiting is not None:
                waiting(remaining, attempt)
            sleep(remaining)
        after = _read_total(client, table_name)
        writes = watch.tag_writes()
        if after.item != before.item or writes != 0:
            continue  # not steady: visits arrived, or the processor was still applying records
        result = ReconcileResult(
            before.visits or 0,
            counted,
            tags,
            changed=False,
            days=tuple(sorted(days.items())),
            previous_days=tuple(sorted(before.days.items())),
            attempts=attempt,
        )
        if dry_run or (before.visits == counted and before.days == days):
            return result
        if _write_total(client, table_name, before, counted, days, today):
            return ReconcileResult(**{**result.__dict__, "changed": True})
    raise TotalChanged(
        f"no steady reading in {wording.counted(attempts, 'attempt')} of {settle:g} s: visits are arriving or the stream "
        "processor is still applying records"
    )


def set_total_from(client: Any, table_name: str, items: Iterable[dict[str, Any]], *, history_days: int | None = None,
                   today: date | None = None) -> bool:
    """Write the total of a table no visit reaches yet (the local site at start) from its tag items, known to the
    caller, without scanning; ``False`` if the total was written meanwhile (then nothing is changed)."""
    today = today or history.utc_today()
    counted, _, days = tally(items, set(history.window(today, history_days or history.history_days())))
    return _write_total(client, table_name, _read_total(client, table_name), counted, days, today)


def _aws_endpoint(client: Any) -> bool:
    # AWS serves Streams at its own endpoint; an emulator (moto, the local site) serves both at one.
    return (client.meta.endpoint_url or "").endswith(".amazonaws.com")


def _write_total(
    client: Any, table_name: str, before: _Reading, counted: int, days: dict[date, int], today: date
) -> bool:
    """Write the total if it is still what was read; ``False`` if it moved meanwhile."""
    names = {"#visits": COUNT_ATTRIBUTE, "#last": history.LAST_DAY_ATTRIBUTE}
    values: dict[str, Any] = {
        ":counted": {"N": str(counted)},
        ":last": {"N": str(history.day_number(today))},
    }
    sets = ["#visits = :counted", "#last = :last"]
    for index, (day, count) in enumerate(sorted(days.items())):
        names[f"#d{index}"] = history.day_attribute(day)
        values[f":d{index}"] = {"N": str(count)}
        sets.append(f"#d{index} = :d{index}")
    removes = []
    for index, day in enumerate(sorted(set(before.days) - set(days))):
        names[f"#r{index}"] = history.day_attribute(day)
        removes.append(f"#r{index}")
    # Only if nobody wrote the total since it was read: never overwrite a delta the processor just added.
    if before.visits is None:
        condition = "attribute_not_exists(#visits)"
    else:
        condition = "#visits = :previous"
        values[":previous"] = {"N": str(before.visits)}
    try:
        client.update_item(
            TableName=table_name,
            Key=total_key(),
            UpdateExpression="SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True
