"""The local event source mapping behaves as Lambda's: batches, window, filter, partial failures, retries,
bisect, on-failure destination and record age. Records come from moto's real stream; the processor is the
real one (wrapped, in a few tests, to answer the way a processor could and ours never does)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from definition import STREAM_FILTER_PATTERNS, STREAM_PROCESSOR
from functions.keys import PARTITION_KEY, TAG_PREFIX
from localsite.esm import check_filter_pattern, failed_batch_records, matches_filters, matches_pattern, sequence_number
from localsite.events import LambdaContext, stream_event, stream_record
from localsite.site import LocalSite, import_handler
from tests.localsite.helpers import (
    FakeClock,
    running_site,
    stream_records,
    tag_counts,
    tag_records,
    test_settings,
    total,
    visit,
    wait_until,
)

REAL_PROCESSOR = import_handler(STREAM_PROCESSOR.handler)

Processor = Callable[[dict[str, Any], Any], Any]


class Recorder:
    """Wraps a processor and keeps every event it was given."""

    def __init__(self, processor: Processor = REAL_PROCESSOR) -> None:
        self.processor = processor
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        return self.processor(event, context)

    @property
    def delivered(self) -> list[dict[str, Any]]:
        return [record for event in self.events for record in event["Records"]]


def gather_then_release(site: LocalSite, clock: FakeClock) -> int:
    """With the clock stopped, wait until the mapping holds every tag record written so far, then let the
    batching window pass. Returns how many records that was."""
    expected = len(tag_records(site))
    wait_until(lambda: site.esm.buffered == expected, what=f"{expected} records gathered")
    clock.advance(site.settings.stream_batching_window_seconds + 1)
    return expected


def seqs(records: list[dict[str, Any]]) -> list[str]:
    return [record["dynamodb"]["SequenceNumber"] for record in records]


# -- batch size and batching window -------------------------------------------------------------------------


def test_batches_never_exceed_the_batch_size(state_dir: Path, clock: FakeClock) -> None:
    settings = test_settings(stream_batch_size=3, stream_batching_window_seconds=1)
    with running_site(state_dir, settings=settings, clock=clock) as site:
        # GIVEN a stopped clock: only full batches may go before the window passes
        visit(site, "a", times=5)
        expected = len(tag_records(site))
        wait_until(lambda: site.esm.stats.records_succeeded + site.esm.buffered == expected)
        assert [entry.size for entry in site.esm.history] == [3] * (expected // 3)
        # WHEN the window passes, THEN the rest goes, and nothing was ever bigger than the batch size
        clock.advance(2)
        assert site.drain()
        sizes = [entry.size for entry in site.esm.history]
        assert max(sizes) == 3 and sum(sizes) == expected
        assert total(site) == 5


def test_the_batching_window_gathers_records_into_one_batch(state_dir: Path, clock: FakeClock) -> None:
    settings = test_settings(stream_batching_window_seconds=5)
    with running_site(state_dir, settings=settings, clock=clock) as site:
        visit(site, "w", times=2)
        visit(site, "x")
        expected = len(tag_records(site))
        wait_until(lambda: site.esm.buffered == expected)
        assert not site.drain(timeout=0.3)  # the window has not passed: nothing may be invoked yet
        assert list(site.esm.history) == []
        clock.advance(5)
        assert site.drain()
        assert [entry.size for entry in site.esm.history] == [expected]
        assert total(site) == 3


# -- the filter -----------------------------------------------------------------------------------------------


def test_only_tag_records_reach_the_processor(state_dir: Path) -> None:
    recorder = Recorder()
    with running_site(state_dir, processor=recorder) as site:
        visit(site, "f", times=3)
        visit(site, "g")
        assert site.drain()
        records = stream_records(site)
        others = [r for r in records if not r["dynamodb"]["Keys"][PARTITION_KEY]["S"].startswith(TAG_PREFIX)]
        # The processor wrote the total and its markers: those records exist, and were dropped.
        assert others
        assert site.esm.stats.records_filtered == len(others)
        assert all(r["dynamodb"]["Keys"][PARTITION_KEY]["S"].startswith(TAG_PREFIX) for r in recorder.delivered)
        assert sorted(seqs(recorder.delivered)) == sorted(seqs(tag_records(site)))
        # Dropped records are still checkpointed: the mapping is at the end of the stream.
        assert site.esm.checkpoint == records[-1]["dynamodb"]["SequenceNumber"]
        assert total(site) == 4


def test_filter_rules_on_real_records(site: LocalSite) -> None:
    visit(site, "hello")
    assert site.drain()
    by_key = {
        r["dynamodb"]["Keys"][PARTITION_KEY]["S"].split("#")[0]: stream_record(r, site.stream_arn)
        for r in stream_records(site)
    }
    assert set(by_key) == {"tag", "site", "batch"}
    assert matches_filters(STREAM_FILTER_PATTERNS, by_key["tag"])
    assert not matches_filters(STREAM_FILTER_PATTERNS, by_key["site"])
    assert not matches_filters(STREAM_FILTER_PATTERNS, by_key["batch"])
    tag = by_key["tag"]
    assert matches_filters((), tag)  # no filter: everything goes
    assert matches_pattern({"eventName": ["MODIFY", "INSERT"]}, tag)
    assert not matches_pattern({"eventName": ["REMOVE"]}, tag)
    assert matches_pattern({"dynamodb": {"NewImage": {"visits": {"N": ["1"]}}}}, tag)
    assert not matches_pattern({"dynamodb": {"OldImage": {"visits": {"N": ["1"]}}}}, tag)  # missing key
    assert not matches_pattern({"eventName": {"nested": ["x"]}}, tag)  # a value is not an object
    assert matches_pattern({"x": [1]}, {"x": 1.0}) and not matches_pattern({"x": [True]}, {"x": 1})
    assert matches_pattern({"x": [None]}, {"x": None}) and not matches_pattern({"x": ["1"]}, {"x": 1})


@pytest.mark.parametrize(
    "pattern",
    [{}, {"a": []}, {"a": "x"}, {"a": [{"anything-but": ["x"]}]}, {"a": [{"prefix": 1}]}, {"a": [["x"]]}, []],
)
def test_filter_rules_we_do_not_implement_are_refused(pattern: Any) -> None:
    with pytest.raises(ValueError):
        check_filter_pattern(pattern)


# -- partial batch responses ------------------------------------------------------------------------------


def test_partial_failure_checkpoints_before_the_lowest_failed_record(state_dir: Path, clock: FakeClock) -> None:
    class FailFromThird:
        """Processes the first two records for real, reports the third and the last as failed (once)."""

        done = False

        def __call__(self, event: dict[str, Any], context: Any) -> Any:
            records = event["Records"]
            if self.done or len(records) < 4:
                return REAL_PROCESSOR(event, context)
            self.done = True
            REAL_PROCESSOR({"Records": records[:2]}, context)
            return {"batchItemFailures": [{"itemIdentifier": seqs(records)[-1]}, {"itemIdentifier": seqs(records)[2]}]}

    recorder = Recorder(FailFromThird())
    settings = test_settings(stream_batching_window_seconds=1)
    with running_site(state_dir, settings=settings, clock=clock, processor=recorder) as site:
        visit(site, "p", times=4)
        expected = gather_then_release(site, clock)
        assert site.drain()
        first, second = recorder.events
        assert len(first["Records"]) == expected >= 4
        # THEN the retry starts exactly at the lowest failed record, and every visit counts once
        assert seqs(second["Records"]) == seqs(first["Records"])[2:]
        assert [entry.outcome for entry in site.esm.history] == ["partial", "ok"]
        assert site.esm.stats.retries == 1
        assert total(site) == 4


@pytest.mark.parametrize("answer", [{"itemIdentifier": ""}, {"itemIdentifier": None}, {"id": "x"}, {"itemIdentifier": "42"}])
def test_an_empty_or_unknown_item_identifier_fails_the_whole_batch(state_dir: Path, answer: dict[str, Any]) -> None:
    answers = iter([{"batchItemFailures": [answer]}])

    def once_bad(event: dict[str, Any], context: Any) -> Any:
        return next(answers, None) or REAL_PROCESSOR(event, context)

    recorder = Recorder(once_bad)
    with running_site(state_dir, processor=recorder, settings=test_settings(stream_bisect_on_error=True)) as site:
        visit(site, "id")
        assert site.drain()
        first, second = recorder.events[:2]
        assert seqs(second["Records"])[0] == seqs(first["Records"])[0]  # retried from the start, not bisected
        assert site.esm.history[0].outcome == "failed"
        assert site.esm.stats.bisections == 0
        assert total(site) == 1


def test_a_throttled_total_write_is_retried_whole(state_dir: Path) -> None:
    # GIVEN DynamoDB throttles every transaction of the processor (after its client's own retries)
    with running_site(state_dir) as site:
        site.faults.throttle("TransactWriteItems")
        visit(site, "t", times=2)
        wait_until(lambda: site.esm.stats.partial_failures >= 1)
        # WHEN it stops throttling
        site.faults.clear()
        assert site.drain()
        # THEN the processor had reported the batch as failed from its first record, the mapping retried
        # it whole, and no visit was lost or counted twice
        assert site.faults.counts.throttled["TransactWriteItems"] >= 1
        first_failure = next(entry for entry in site.esm.history if entry.outcome == "partial")
        retry = site.esm.history[list(site.esm.history).index(first_failure) + 1]
        assert retry.first == first_failure.first
        assert total(site) == 2


# -- errors, retries, bisect, the on-failure destination ---------------------------------------------------


def test_errors_are_retried_until_success(state_dir: Path) -> None:
    with running_site(state_dir, settings=test_settings(stream_bisect_on_error=False)) as site:
        site.faults.fail_processor("before", count=2)
        visit(site, "r")
        assert site.drain()
        outcomes = [entry.outcome for entry in site.esm.history]
        assert outcomes[:3] == ["error", "error", "ok"]
        assert len({entry.first for entry in site.esm.history}) == 1  # one visit, one record: each retry starts at it
        assert site.esm.stats.retries == 2 and site.faults.counts.failed_before == 2
        assert site.on_failure_messages() == []
        assert total(site) == 1


def test_a_failure_after_the_write_does_not_count_twice(state_dir: Path) -> None:
    # The processor commits, then the invocation fails as a timeout would: Lambda retries the same batch.
    with running_site(state_dir, settings=test_settings(stream_bisect_on_error=False)) as site:
        site.faults.fail_processor("after", count=1)
        visit(site, "late", times=2)
        assert site.drain()
        assert site.faults.counts.failed_after == 1
        assert site.esm.stats.function_errors == 1
        assert total(site) == 2


def test_a_batch_delivered_twice_counts_once(state_dir: Path) -> None:
    with running_site(state_dir) as site:
        site.faults.redeliver(1)
        visit(site, "twice", times=3)
        assert site.drain()
        assert site.esm.stats.redeliveries == 1
        site.esm.redeliver_last()
        wait_until(lambda: site.esm.stats.redeliveries == 2)
        assert site.drain()
        assert [entry.redelivery for entry in site.esm.history].count(True) == 2
        assert total(site) == 3


def poison(records: list[dict[str, Any]]) -> bool:
    """Batches holding the full image of the tag ``poison`` make the processor fail."""
    return any(
        r["dynamodb"]["Keys"][PARTITION_KEY]["S"] == "tag#poison" and "visits" in r["dynamodb"].get("NewImage", {})
        for r in records
    )


def test_bisect_isolates_a_poison_record_and_the_rest_still_counts(state_dir: Path, clock: FakeClock) -> None:
    settings = test_settings(stream_batching_window_seconds=1, stream_max_retries=1, stream_bisect_on_error=True)
    with running_site(state_dir, settings=settings, clock=clock) as site:
        site.faults.fail_processor("before", count=None, when=poison)
        for tag in ("a", "b", "poison", "c", "d"):
            visit(site, tag)
        gather_then_release(site, clock)
        assert site.drain()
        # THEN the batch was split down to the poison record, which alone went to the on-failure queue
        assert site.esm.stats.bisections >= 2
        assert total(site) == 4
        messages = site.on_failure_messages()
        assert len(messages) == 1
        info = messages[0]["DDBStreamBatchInfo"]
        poison_record = next(r for r in tag_records(site) if poison([r]))
        assert info["batchSize"] == 1
        assert info["startSequenceNumber"] == info["endSequenceNumber"] == poison_record["dynamodb"]["SequenceNumber"]
        assert messages[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
        # ... and records after the poison record were processed
        assert site.esm.checkpoint is not None
        assert int(site.esm.checkpoint) >= sequence_number(tag_records(site)[-1])


def test_the_on_failure_message_is_enough_to_replay_the_records(state_dir: Path) -> None:
    settings = test_settings(stream_max_retries=0, stream_bisect_on_error=False)
    with running_site(state_dir, settings=settings) as site:
        site.faults.fail_processor("before", count=1)
        visit(site, "lost", times=1)
        assert site.drain()
        assert total(site) == 0
        (message,) = site.on_failure_messages()
        assert site.on_failure_messages() == [message]  # reading the queue leaves the message there
        # Lambda's format: request and response context, and where the records are in the stream
        assert message["version"] == "1.0" and message["timestamp"].endswith("Z")
        context = message["requestContext"]
        assert context["condition"] == "RetryAttemptsExhausted"
        assert context["functionArn"].endswith(f":function:tag-counter-{STREAM_PROCESSOR.name}")
        assert context["approximateInvokeCount"] == 1
        assert message["responseContext"]["functionError"] == "Unhandled"
        info = message["DDBStreamBatchInfo"]
        streams = boto3.client("dynamodbstreams")
        shard = streams.describe_stream(StreamArn=site.stream_arn)["StreamDescription"]["Shards"][0]
        assert info["shardId"] == shard["ShardId"]
        assert info["streamArn"] == site.stream_arn
        assert info["approximateArrivalOfFirstRecord"].endswith("Z")
        # WHEN an operator replays the records the message points at, THEN the total is right again
        records = failed_batch_records(streams, info)
        assert seqs(records)[-1] == info["endSequenceNumber"]
        REAL_PROCESSOR(stream_event(records, info["streamArn"]), LambdaContext("replay", 30))
        assert total(site) == 1
        assert json.loads(json.dumps(message)) == message


def test_records_older_than_the_maximum_age_go_to_the_on_failure_queue(state_dir: Path, clock: FakeClock) -> None:
    settings = test_settings(
        stream_max_record_age_seconds=60, stream_max_retries=-1, stream_bisect_on_error=False
    )
    with running_site(state_dir, settings=settings, clock=clock) as site:
        # GIVEN a processor that fails forever and a mapping that retries forever
        site.faults.fail_processor("before", count=None)
        visit(site, "old")
        wait_until(lambda: site.esm.stats.function_errors >= 2)
        # WHEN the records become older than the maximum record age
        clock.advance(61)
        # THEN they are handed to the on-failure queue and the mapping moves on (at its next retry: the mapping's
        # backoff between retries can reach seconds on a busy machine, hence the longer wait)
        assert site.drain(30)
        (message,) = site.on_failure_messages()
        assert message["requestContext"]["condition"] == "RecordAgeExceeded"
        assert message["DDBStreamBatchInfo"]["batchSize"] == len(tag_records(site))
        site.faults.clear()
        clock.set(time.time())
        visit(site, "old")
        assert site.drain()
        assert tag_counts(site) == {"tag#old": 2}
        assert total(site) == 1  # the first visit was discarded: the reconcile command repairs that


def test_probabilistic_throttling_is_repeatable(state_dir: Path) -> None:
    from botocore.config import Config
    from botocore.exceptions import ClientError

    def run() -> list[int]:
        with running_site(state_dir) as site:
            site.faults.throttle("GetItem", probability=0.2)
            client = boto3.client("dynamodb", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
            throttled = []
            for index in range(40):
                try:
                    client.get_item(TableName=site.table_name, Key={PARTITION_KEY: {"S": "tag#x"}})
                except ClientError as error:
                    assert error.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
                    throttled.append(index)
            assert site.faults.counts.throttled == {"GetItem": len(throttled)}
            return throttled

    first = run()
    assert 0 < len(first) < 40
    assert run() == first
