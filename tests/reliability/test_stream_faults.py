"""The stream processor under faults: crashes before and after its commit, and a poison record (SPEC 6, 8).

Records come from moto's real stream and go through the local event source mapping with the dev stack's
settings (batch size 100, 1-second window, bisect on error, 5 retries, an SQS on-failure destination).

Which case applies where:
- a crash before the commit writes nothing: any retry counts the batch once;
- a crash after the commit, retried with the same first record (a whole-batch retry, the first half of a
  bisected batch, a redelivery), is caught by the batch marker: counted once, within the marker's 48 hours;
- a crash after the commit retried as the second half of a bisected batch (Lambda does this when bisect on
  error is on, as in every stack by default) is NOT caught: that half counts twice and the total is over
  by exactly its visits, until ``admin.reconcile`` recomputes it from the tag items;
- a redelivery after the marker has expired (outside the idempotency window) counts again; the reconcile
  command repairs it the same way.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from definition import STREAM_PROCESSOR
from functions.keys import MARKER_PREFIX, PARTITION_KEY
from admin.reconcile import reconcile
from localsite.esm import failed_batch_records
from localsite.events import LambdaContext, stream_event
from localsite.site import LocalSite, import_handler
from tests.localsite.helpers import FakeClock
from tests.reliability.helpers import (
    Planned,
    Visit,
    all_items,
    dev_settings,
    drain,
    figures,
    record_delta,
    running_site,
    tag_counts,
    tag_records,
    total,
    visit_concurrently,
    visit_page,
    wait_until,
)

PROCESSOR = import_handler(STREAM_PROCESSOR.handler)


def visit_plan(tags: list[str], visits: int, seed: int) -> list[Planned]:
    rng = random.Random(seed)
    return [Planned(tag, tag) for tag in rng.choices(tags, k=visits)]


def visit_in_order(site: LocalSite, plan: list[Planned]) -> list[Visit]:
    """Make the visits one after another (their records reach the stream in plan order)."""
    visits = [visit_page(site.port, site.settings.stage_name, planned) for planned in plan]
    assert [visit.status for visit in visits] == [200] * len(plan)
    return visits


def release_one_batch(site: LocalSite, clock: FakeClock) -> list[dict[str, Any]]:
    """Wait until the mapping has gathered every tag record so far, then let the batching window pass."""
    records = tag_records(site)
    assert len(records) < site.settings.stream_batch_size  # so they form exactly one batch
    wait_until(lambda: site.esm.buffered == len(records), timeout=30, what=f"{len(records)} records gathered")
    clock.advance(site.settings.stream_batching_window_seconds + 1)
    return records


def successful_ranges(site: LocalSite) -> list[tuple[int, int, int]]:
    return sorted(
        (int(entry.first), int(entry.last), entry.size)
        for entry in site.esm.history
        if entry.outcome == "ok" and not entry.redelivery
    )


# -- crash before the commit ------------------------------------------------------------------------------------


def test_a_crash_before_the_commit_is_retried_and_counted_once(state_dir: Path) -> None:
    plan = visit_plan([f"pre-{n}" for n in range(12)], 300, seed=11)
    with running_site(state_dir) as site:
        # GIVEN the first three invocations of the processor fail before it writes anything
        site.faults.fail_processor("before", count=3)
        # WHEN visitors come
        visits = visit_concurrently(site.port, site.settings.stage_name, plan, 8)
        drain(site)
        counts = tag_counts(site)
        result = figures(visits, counts, total(site))
        result.show("crash before commit")
        stats = site.esm.stats
        print(f"[crash before commit] failed invocations {site.faults.counts.failed_before}; {stats}")

        # THEN the failed batches were retried (bisected, as the dev stack says) and every visit counts once
        assert site.faults.counts.failed_before == 3 == stats.function_errors
        assert stats.bisections >= 1
        assert counts == dict(Counter(p.tag for p in plan))
        assert result.total == result.counted == len(plan)
        assert (result.lost, result.doubled) == (0, 0)
        # ... each tag record went through exactly one successful invocation
        ranges = successful_ranges(site)
        assert sum(size for _, _, size in ranges) == len(tag_records(site))
        assert all(previous[1] < following[0] for previous, following in zip(ranges, ranges[1:]))
        assert site.on_failure_messages() == []


# -- crash after the commit -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["whole batch retried", "bisected retry", "redelivered after the marker expired"])
def test_a_crash_after_the_commit(state_dir: Path, case: str) -> None:
    clock = FakeClock()
    settings = dev_settings(stream_bisect_on_error=case == "bisected retry")
    plan = visit_plan(["late-a", "late-b", "late-c", "late-d"], 40, seed=12)
    with running_site(state_dir, settings=settings, clock=clock) as site:
        # GIVEN one batch of every visit's records
        visits = visit_in_order(site, plan)
        if case != "redelivered after the marker expired":
            # WHEN the processor commits, then its invocation fails (as a timeout after the write would)
            site.faults.fail_processor("after", count=1)
        records = release_one_batch(site, clock)
        drain(site)
        if case == "redelivered after the marker expired":
            # WHEN the markers are gone (TTL after 48 hours; moto stores TTL but does not enforce it)
            # and the same batch is delivered again
            for key in [key for key in all_items(site) if key.startswith(MARKER_PREFIX)]:
                site.dynamodb.delete_item(TableName=site.table_name, Key={PARTITION_KEY: {"S": key}})
            site.esm.redeliver_last()
            wait_until(lambda: site.esm.stats.redeliveries == 1, timeout=30, what="the redelivery")
            drain(site)

        sent = len(plan)
        over = total(site) - sent
        history = [(entry.size, entry.outcome, entry.redelivery) for entry in site.esm.history]
        print(f"\n[crash after commit: {case}] {len(records)} records, invocations {history}")
        figures(visits, tag_counts(site), total(site)).show(f"crash after commit: {case}")

        # THEN which case applies:
        assert tag_counts(site) == dict(Counter(p.tag for p in plan))  # the tags themselves are always right
        if case == "whole batch retried":
            # the retry starts at the same record: the marker says it was applied; counted once
            assert site.faults.counts.failed_after == 1
            assert [size for size, *_ in history] == [len(records), len(records)]
            assert over == 0
        elif case == "bisected retry":
            # the first half is caught by the marker; the second half starts at another record: counted twice
            half = len(records) // 2
            assert [(size, outcome) for size, outcome, _ in history] == [
                (len(records), "error"),
                (half, "ok"),
                (len(records) - half, "ok"),
            ]
            second_half = sum(record_delta(record) for record in records[half:])
            assert second_half > 0
            assert over == second_half
        else:
            assert over == sum(record_delta(record) for record in records) == sent
        print(f"[crash after commit: {case}] total {sent + over} for {sent} visits: over by {over}")

        # ... and the reconcile command restores the exact total in every case
        result = reconcile(site.dynamodb, site.table_name)
        print(f"[crash after commit: {case}] reconcile: {result}")
        assert result.counted_total == sent
        assert result.changed == (over != 0)
        assert total(site) == sent


# -- a poison record -------------------------------------------------------------------------------------------


def test_a_poison_record_is_isolated_sent_to_the_queue_and_can_be_replayed(state_dir: Path) -> None:
    clock = FakeClock()
    settings = dev_settings()
    before = visit_plan(["p-a", "p-b", "p-c"], 20, seed=13)
    after = visit_plan(["p-a", "p-d"], 20, seed=14)
    with running_site(state_dir, settings=settings, clock=clock) as site:
        # GIVEN one record that makes every invocation holding it fail: the first visit of "poison"
        visits = visit_in_order(site, before)
        visits += visit_in_order(site, [Planned("poison", "poison")])
        poison_seq = next(
            r["dynamodb"]["SequenceNumber"]
            for r in tag_records(site)
            if r["dynamodb"]["Keys"][PARTITION_KEY]["S"] == "tag#poison"
        )
        site.faults.fail_processor(
            "before", count=None, when=lambda batch: any(r["dynamodb"]["SequenceNumber"] == poison_seq for r in batch)
        )
        # ... and records after it on the same shard, in the same batch
        visits += visit_in_order(site, after)
        records = release_one_batch(site, clock)
        drain(site)
        # ... and more records after it, in later batches
        later = visit_plan(["p-e"], 5, seed=15)
        visits += visit_in_order(site, later)
        clock.advance(settings.stream_batching_window_seconds + 1)
        drain(site)

        sent = len(before) + 1 + len(after) + len(later)
        alone = [entry for entry in site.esm.history if entry.first == entry.last == poison_seq]
        stats = site.esm.stats
        messages = site.on_failure_messages()
        print(
            f"\n[poison] {len(records)} records in the first batch; bisections {stats.bisections}, "
            f"invocations of the poison record alone {len(alone)}, retries {stats.retries}, "
            f"records discarded {stats.records_discarded}, queue messages {len(messages)}"
        )
        figures(visits, tag_counts(site), total(site)).show("poison, before replay")

        # THEN the batch was bisected down to the poison record, which was retried up to the limit
        assert stats.bisections >= 5  # 40-odd records halve to one in at least five splits
        assert len(alone) == settings.stream_max_retries + 1
        assert all(entry.outcome == "error" for entry in alone)
        # ... then it alone went to the on-failure queue, with where to find it
        assert stats.records_discarded == 1
        (message,) = messages
        info = message["DDBStreamBatchInfo"]
        assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert message["requestContext"]["approximateInvokeCount"] >= settings.stream_max_retries + 1
        assert info["startSequenceNumber"] == info["endSequenceNumber"] == poison_seq
        assert info["batchSize"] == 1 and info["streamArn"] == site.stream_arn
        # ... and every other visit, before and after it, counted
        assert total(site) == sent - 1
        assert sum(tag_counts(site).values()) == sent

        # WHEN an operator replays the message's records once the cause is fixed (here: the fault cleared)
        site.faults.clear()
        streams = boto3.client("dynamodbstreams")
        replay = failed_batch_records(streams, info)
        assert [r["dynamodb"]["SequenceNumber"] for r in replay] == [poison_seq]
        for _ in range(2):  # a replay done twice by mistake still counts once (the batch marker)
            context = LambdaContext("replay", settings.processor_timeout_seconds)
            PROCESSOR(stream_event(replay, info["streamArn"]), context)
        figures(visits, tag_counts(site), total(site)).show("poison, after replay")
        # THEN the total is exact
        assert total(site) == sent
