"""The stream processor with records read from moto's real stream (SPEC section 6).

moto writes records for no-op writes, and any writer may put an item holding only its key (moto itself did so for
every UpdateItem creating an item, which the local site now prevents); the processor counts image deltas, so both
are harmless, which these tests show with moto's records.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from functions import stream_processor
from functions.log import record_fields
from admin.reconcile import reconcile
from functions.store import MAX_ATTEMPTS, get_store
from functions.stream_processor import (
    MARKER_TTL_SECONDS,
    SAFETY_MARGIN_MS,
    DeadlineTooClose,
    read_changes,
)
from localsite.events import LambdaContext

from .conftest import TABLE, Fault, Site, intercept, load_event, record_calls


def deliver(site: Site, records: list[dict[str, Any]], seconds: float = 30) -> dict[str, Any]:
    """Hand ``records`` to the processor the way the event source mapping does."""
    return stream_processor.handler(site.reader.event(records), LambdaContext("stream", seconds))


def visit(site: Site, *tags: str) -> None:
    for tag in tags:
        assert site.get(f"/tags/{tag}")["statusCode"] == 200


def markers(site: Site) -> list[dict[str, Any]]:
    return [item for item in site.scan() if item["pk"]["S"].startswith("batch#")]


def key_only_insert(record: dict[str, Any]) -> dict[str, Any]:
    """An INSERT of ``record``'s item holding only its key, just before ``record`` in the stream."""
    dynamodb = record["dynamodb"]
    return {**record, "eventName": "INSERT", "dynamodb": {
        **{k: v for k, v in dynamodb.items() if k != "OldImage"}, "NewImage": dict(dynamodb["Keys"]),
        "SequenceNumber": str(int(dynamodb["SequenceNumber"]) - 1)}}


def test_a_new_tag_is_one_insert_and_an_insert_of_its_key_alone_adds_nothing(site: Site) -> None:
    visit(site, "new")
    records = site.reader.read()
    assert [r["eventName"] for r in records] == ["INSERT"]  # one record, as DynamoDB writes
    assert deliver(site, [key_only_insert(records[0]), *records]) == {"batchItemFailures": []}
    assert site.visits("site#total") == 1


def test_the_same_batch_delivered_twice_counts_once(site: Site) -> None:
    visit(site, "a", "b", "a", "c")
    records = site.reader.read()
    assert deliver(site, records) == {"batchItemFailures": []}
    assert deliver(site, records) == {"batchItemFailures": []}
    assert site.visits("site#total") == 4
    [marker] = markers(site)
    assert marker["pk"]["S"] == "batch#" + records[0]["dynamodb"]["SequenceNumber"]
    assert marker["last_seq"]["S"] == records[-1]["dynamodb"]["SequenceNumber"]
    assert abs(int(marker["expires_at"]["N"]) - (time.time() + MARKER_TTL_SECONDS)) < 60
    assert MARKER_TTL_SECONDS > 24 * 3600


def test_first_half_of_a_bisected_redelivery_counts_once(site: Site) -> None:
    visit(site, "a", "b", "c", "a", "b", "c")
    records = site.reader.read()
    deliver(site, records)  # committed, then (say) the function timed out: Lambda bisects and retries
    half = len(records) // 2
    assert deliver(site, records[:half]) == {"batchItemFailures": []}
    assert site.visits("site#total") == 6


def test_second_half_after_a_commit_is_the_known_gap_and_reconcile_repairs_it(site: Site) -> None:
    """Documented limitation: a retry starting at another record has a new marker and counts again."""
    visit(site, "a", "b", "c", "a")
    records = site.reader.read()
    deliver(site, records)
    half = len(records) // 2
    deliver(site, records[half:])
    assert site.visits("site#total") > 4  # counted twice: what the module docstring says is not covered
    result = reconcile(site.client, TABLE)
    assert result.changed and result.counted_total == 4
    assert site.visits("site#total") == 4


def test_a_batch_that_grew_on_retry_adds_only_the_new_records(site: Site) -> None:
    visit(site, "a", "b")
    first = site.reader.read()
    deliver(site, first)
    visit(site, "c", "a", "d")
    grown = first + site.reader.read()
    assert deliver(site, grown) == {"batchItemFailures": []}
    assert site.visits("site#total") == 5
    assert len(markers(site)) == 2
    # And the grown batch delivered once more changes nothing: both markers answer for it.
    deliver(site, grown)
    assert site.visits("site#total") == 5


def test_remove_subtracts_the_old_count(site: Site) -> None:
    visit(site, "a", "a", "a", "b")
    site.process_stream()
    site.client.delete_item(TableName=TABLE, Key={"pk": {"S": "tag#a"}})
    records = site.reader.read()
    assert [r["eventName"] for r in records if r["dynamodb"]["Keys"]["pk"]["S"].startswith("tag#")] == ["REMOVE"]
    deliver(site, records)
    assert site.visits("site#total") == 1


def test_manual_correction_is_a_delta_too(site: Site) -> None:
    visit(site, "a", "a")
    site.process_stream()
    site.client.put_item(TableName=TABLE, Item={"pk": {"S": "tag#a"}, "visits": {"N": "10"}})
    site.client.put_item(TableName=TABLE, Item={"pk": {"S": "tag#a"}, "visits": {"N": "10"}})  # no-op write
    site.process_stream()
    assert site.visits("site#total") == 10


def test_total_and_marker_records_never_count(site: Site) -> None:
    visit(site, "a", "b")
    site.process_stream()
    # The processor's own writes are on the stream too: the total's INSERT and the marker's INSERT.
    own = site.reader.read()
    assert {r["dynamodb"]["Keys"]["pk"]["S"].split("#")[0] for r in own} == {"site", "batch"}
    calls = record_calls(get_store().client)
    assert deliver(site, own) == {"batchItemFailures": []}
    assert calls == []  # zero delta: no write at all
    assert site.visits("site#total") == 2


def test_a_batch_that_changes_nothing_writes_nothing(site: Site) -> None:
    visit(site, "a")
    key_only = [key_only_insert(site.reader.read()[0])]
    calls = record_calls(get_store().client)
    assert deliver(site, key_only) == {"batchItemFailures": []}
    assert deliver(site, []) == {"batchItemFailures": []}
    assert calls == [] and site.visits("site#total") is None


@pytest.mark.parametrize("visits", [1, 120])
def test_one_write_per_batch_whatever_its_size(site: Site, visits: int) -> None:
    visit(site, *[f"tag{i % 40}" for i in range(visits)])
    records = site.reader.read()
    assert len(records) >= visits
    calls = record_calls(get_store().client)
    deliver(site, records)
    assert [call.operation for call in calls] == ["TransactWriteItems"]
    assert len(calls[0].params["TransactItems"]) == 2
    assert site.visits("site#total") == visits


MALFORMATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "visits not a number": lambda r: r["dynamodb"]["NewImage"].__setitem__("visits", {"S": "many"}),
    "visits not an integer": lambda r: r["dynamodb"]["NewImage"].__setitem__("visits", {"N": "1.5"}),
    "no NewImage": lambda r: r["dynamodb"].pop("NewImage"),
    "no Keys": lambda r: r["dynamodb"].pop("Keys"),
    "no SequenceNumber": lambda r: r["dynamodb"].pop("SequenceNumber"),
    "odd SequenceNumber": lambda r: r["dynamodb"].__setitem__("SequenceNumber", "12x"),
    "unknown eventName": lambda r: r.__setitem__("eventName", "UPSERT"),
    "no dynamodb": lambda r: r.pop("dynamodb"),
}


@pytest.mark.parametrize("malformation", list(MALFORMATIONS))
def test_a_malformed_record_is_logged_and_skipped(
    site: Site, caplog: pytest.LogCaptureFixture, malformation: str
) -> None:
    visit(site, "a", "b", "a")
    event = site.reader.event(site.reader.read())
    # The MODIFY of "a" (1 -> 2) is the record we break; the other visits still count.
    target = next(i for i, r in enumerate(event["Records"]) if r["eventName"] == "MODIFY")
    MALFORMATIONS[malformation](event["Records"][target])
    caplog.set_level(logging.INFO, logger="functions")
    assert stream_processor.handler(event, LambdaContext("stream", 30)) == {"batchItemFailures": []}
    assert site.visits("site#total") == 2
    [logged] = [r for r in caplog.records if r.getMessage() == "malformed stream record skipped"]
    fields = record_fields(logged)
    assert fields["record_index"] == target and fields["problem"]
    json.dumps(fields, default=str)  # loggable as JSON


def test_records_of_a_captured_lambda_event(site: Site) -> None:
    event = load_event("stream_batch.json")
    changes = read_changes(event["Records"])
    assert len(changes) == len(event["Records"])
    assert sum(change.delta for change in changes) == 1 + 1 + 1 - 5 + 0


THROTTLES = [
    ("ProvisionedThroughputExceededException", None),
    ("ThrottlingException", None),
    ("TransactionConflictException", None),
    ("TransactionCanceledException", ["None", "ThrottlingError"]),
    ("TransactionCanceledException", ["TransactionConflict", "None"]),
]


@pytest.mark.parametrize(("code", "reasons"), THROTTLES)
def test_a_throttled_write_reports_the_whole_batch_for_retry(
    site: Site, inject: Callable[..., Fault], code: str, reasons: list[str] | None
) -> None:
    visit(site, "a", "b")
    records = site.reader.read()
    body = None
    if reasons is not None:
        body = {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons {reasons}",
            "CancellationReasons": [{"Code": reason} for reason in reasons],
        }
    fault = inject(get_store().client, "TransactWriteItems", code, body=body, status=400)
    result = deliver(site, records)
    assert result == {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}
    assert fault.sent >= 1
    assert site.visits("site#total") is None and markers(site) == []
    # Lambda retries the batch; now the write goes through, once.
    fault.times = fault.sent
    assert deliver(site, records) == {"batchItemFailures": []}
    assert site.visits("site#total") == 2


def test_a_write_that_times_out_reports_the_batch(site: Site, inject: Callable[..., Fault]) -> None:
    visit(site, "a")
    records = site.reader.read()
    attempts = []

    def time_out(method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        if headers.get("x-amz-target", "").endswith(".TransactWriteItems"):
            attempts.append(headers)
            raise TimeoutError("timed out")

    intercept(get_store().client, time_out)
    result = deliver(site, records)
    assert result == {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}
    assert len(attempts) == MAX_ATTEMPTS  # the client retried the timeout before giving up
    assert site.visits("site#total") is None


def test_an_unexpected_error_raises_so_the_mapping_bisects(site: Site, inject: Callable[..., Fault]) -> None:
    visit(site, "a")
    records = site.reader.read()
    inject(get_store().client, "TransactWriteItems", "AccessDeniedException", message="not authorized")
    with pytest.raises(Exception, match="not authorized"):
        deliver(site, records)
    assert site.visits("site#total") is None


def test_too_little_time_left_raises_before_writing(site: Site) -> None:
    visit(site, "a")
    records = site.reader.read()
    calls = record_calls(get_store().client)
    with pytest.raises(DeadlineTooClose):
        deliver(site, records, seconds=(SAFETY_MARGIN_MS - 500) / 1000)
    assert calls == [] and site.visits("site#total") is None
    assert deliver(site, records) == {"batchItemFailures": []}
    assert site.visits("site#total") == 1


def test_a_marker_gone_between_cancel_and_read_is_retried(site: Site, inject: Callable[..., Fault]) -> None:
    """The transaction said "marker exists" but GetItem finds none (it expired): write again, once."""
    visit(site, "a", "b")
    records = site.reader.read()
    body = {
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[None, ConditionalCheckFailed]",
        "CancellationReasons": [{"Code": "None"}, {"Code": "ConditionalCheckFailed"}],
    }
    inject(get_store().client, "TransactWriteItems", "", body=body, times=1)
    calls = record_calls(get_store().client)
    assert deliver(site, records) == {"batchItemFailures": []}
    assert [call.operation for call in calls] == ["TransactWriteItems", "GetItem", "TransactWriteItems"]
    assert site.visits("site#total") == 2


def test_a_throttled_marker_read_reports_the_batch(site: Site, inject: Callable[..., Fault]) -> None:
    visit(site, "a")
    records = site.reader.read()
    deliver(site, records)
    inject(get_store().client, "GetItem", "ProvisionedThroughputExceededException")
    result = deliver(site, records)
    assert result["batchItemFailures"] == [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]
    assert site.visits("site#total") == 1


def test_a_full_round_from_visits_to_the_count_page(site: Site) -> None:
    visit(site, "x", "y", "x")
    deliver(site, site.reader.read())
    deliver(site, site.reader.read())  # the processor's own records: ignored
    from .conftest import parse_page

    page = parse_page(site.get("/counts/x")["body"])
    assert (page.texts["tag-visits"], page.texts["site-total"]) == ("2", "3")
