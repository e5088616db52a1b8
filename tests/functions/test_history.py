"""Daily history on the tag items: one write per visit, the right days, a bounded item (SPEC section 5).

The day comes from the ``clock`` fixture (``functions.history.utc_today``, the one place functions read it);
item sizes and write units follow DynamoDB's rules (``bench.capacity``: attribute names plus values, numbers
at 1 byte per two significant digits plus 1, 1 write unit per started KB of the larger image).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from bench.capacity import item_size, write_units
from functions import history
from functions.history import MAX_HISTORY_DAYS, day_attribute
from functions.store import VISIT_WRITE_ATTEMPTS, Store, build_store, get_store

from .conftest import TABLE, DayClock, Fault, Site, parse_page, record_calls

DAYS = history.DEFAULT_HISTORY_DAYS
LONGEST_TAG = "\U00020000" * 64
"""64 letters of four UTF-8 bytes each (CJK U+20000, unchanged by NFKC): the largest key a tag can have."""


def tag_item(site: Site, tag: str) -> dict[str, Any]:
    return site.client.get_item(TableName=TABLE, Key={"pk": {"S": f"tag#{tag}"}}, ConsistentRead=True)["Item"]


def held_days(item: dict[str, Any]) -> dict[date, int]:
    return history.item_days(item)


def visit(tag: str = "hello") -> None:
    get_store().record_visit(tag)


def visit_and_measure(site: Site, tag: str, before: dict[str, Any] | None) -> tuple[dict[str, Any], float]:
    """Visit once; the item after it and the write units the visit cost (``before``: the item before)."""
    get_store().record_visit(tag)
    after = tag_item(site, tag)
    return after, write_units(before, after)


def test_a_visit_is_one_update_item_that_writes_its_day(site: Site, clock: DayClock) -> None:
    calls = record_calls(get_store().client)
    counts = get_store().record_visit("hello")
    assert [call.operation for call in calls] == ["UpdateItem"]
    [call] = calls
    assert call.params["UpdateExpression"].startswith("ADD #visits :one, d20261201 :one SET #last = :today REMOVE ")
    assert call.params["ReturnValues"] == "UPDATED_NEW"
    assert call.params["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    assert (counts.visits, counts.today) == (1, 1)
    item = tag_item(site, "hello")
    assert item["last_day"] == {"N": "20261201"} and held_days(item) == {date(2026, 12, 1): 1}


def test_visits_land_on_their_utc_day_across_midnight(site: Site, clock: DayClock) -> None:
    clock.set(datetime(2026, 12, 1, 23, 59, 59, tzinfo=timezone.utc))
    visit()
    visit()
    clock.advance(seconds=2)  # 2026-12-02 00:00:01 UTC
    counts = get_store().record_visit("hello")
    assert (counts.visits, counts.today) == (3, 1)
    assert held_days(tag_item(site, "hello")) == {date(2026, 12, 1): 2, date(2026, 12, 2): 1}
    tag, _ = get_store().read_counts("hello")
    assert tag.days[-2:] == ((date(2026, 12, 1), 2), (date(2026, 12, 2), 1))
    assert tag.today == 1 and len(tag.days) == DAYS


def test_the_window_drops_old_days_as_visits_go_on(site: Site, clock: DayClock) -> None:
    first = clock.today
    for _ in range(DAYS + 10):
        visit()
        clock.advance(days=1)
    clock.advance(days=-1)
    item = tag_item(site, "hello")
    assert int(item["visits"]["N"]) == DAYS + 10
    assert sorted(held_days(item)) == history.window(clock.today, DAYS)
    assert min(held_days(item)) == first + timedelta(days=10)


@pytest.mark.parametrize(("silence", "writes"), [(DAYS, 1), (DAYS + 1, 2), (400, 2)])
def test_the_first_visit_after_a_long_silence_drops_every_old_day(
    site: Site, clock: DayClock, silence: int, writes: int
) -> None:
    # GIVEN a tag visited every day for a whole window, then left alone
    for _ in range(DAYS):
        visit()
        clock.advance(days=1)
    clock.advance(days=silence - 1)
    # WHEN it is visited again
    calls = record_calls(get_store().client)
    counts = get_store().record_visit("hello")
    # THEN the visit counts, today holds it, and no day from before the window is left
    assert (counts.visits, counts.today) == (DAYS + 1, 1)
    assert [call.operation for call in calls] == ["UpdateItem"] * writes
    days = held_days(tag_item(site, "hello"))
    assert set(days) <= set(history.window(clock.today, DAYS)) and days[clock.today] == 1
    if writes == 2:  # the rewrite is conditioned on the old item's last_day, so no racing visit is lost
        assert calls[1].params["ConditionExpression"] == "#last = :seen"


def test_item_size_stays_bounded_through_a_year_of_daily_visits(site: Site, clock: DayClock) -> None:
    sizes: list[int] = []
    item = None
    for _ in range(365):
        item, units = visit_and_measure(site, LONGEST_TAG, item)
        assert units == 1.0
        sizes.append(item_size(item))
        clock.advance(days=1)
    # The item grows for a window of days, then stays the same size but for its count's digits.
    assert max(sizes[DAYS:]) - sizes[DAYS - 1] <= 1 and max(sizes) < 1024
    assert len(held_days(tag_item(site, LONGEST_TAG))) == DAYS
    # And after a long gap it is small again.
    clock.advance(days=200)
    item, units = visit_and_measure(site, LONGEST_TAG, item)
    assert units == 1.0 and item_size(item) < sizes[0] + 10


def test_the_largest_possible_tag_item_is_under_one_kilobyte() -> None:
    """The bound of ``MAX_HISTORY_DAYS``: the longest key, huge counts, every day of the window plus the margin."""

    def largest(days: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": {"S": f"tag#{LONGEST_TAG}"},
            "visits": {"N": "9" * 16},
            "last_day": {"N": "20261201"},
        }
        today = date(2026, 12, 1)
        for day in history.window(today + timedelta(days=history.CLOCK_MARGIN_DAYS), days + 1):
            item[day_attribute(day)] = {"N": "9" * 8}  # 99,999,999 visits a day: 1,157 a second
        return item

    assert item_size(largest(DAYS)) == 724
    assert item_size(largest(MAX_HISTORY_DAYS)) == 934 < 1024
    assert item_size(largest(60)) > 1024  # why the window is capped below 60 days
    assert write_units(None, largest(MAX_HISTORY_DAYS)) == 1.0


def test_concurrent_visits_around_midnight_lose_nothing_and_split_by_day(
    site: Site, clock: DayClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, after = date(2026, 12, 1), date(2026, 12, 2)
    chosen = threading.local()
    # Each visit runs with the day its own clock says: the two days' writes interleave as at midnight.
    monkeypatch.setattr(history, "utc_today", lambda now=None: chosen.day)
    threads, per_thread = 8, 20

    def run(worker: int) -> None:
        for index in range(per_thread):
            chosen.day = before if index < per_thread // 2 + worker - threads // 2 else after
            get_store().record_visit("midnight")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(run, range(threads)))
    expected_before = sum(max(0, min(per_thread, per_thread // 2 + w - threads // 2)) for w in range(threads))
    item = tag_item(site, "midnight")
    assert int(item["visits"]["N"]) == threads * per_thread
    assert held_days(item) == {before: expected_before, after: threads * per_thread - expected_before}


def test_concurrent_first_visits_after_a_long_silence_all_count(site: Site, clock: DayClock) -> None:
    visit("quiet")
    clock.advance(days=100)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: visit("quiet"), range(8)))
    item = tag_item(site, "quiet")
    assert int(item["visits"]["N"]) == 9
    assert held_days(item) == {clock.today: 8}


def test_a_write_that_keeps_failing_its_condition_is_a_503_and_writes_nothing(
    site: Site, clock: DayClock, inject: Callable[..., Fault]
) -> None:
    fault = inject(get_store().client, "UpdateItem", "ConditionalCheckFailedException",
                   message="The conditional request failed")
    response = site.get("/tags/hello")
    assert response["statusCode"] == 503 and response["headers"]["Retry-After"]
    assert fault.sent == VISIT_WRITE_ATTEMPTS
    assert site.scan() == []


def test_read_counts_is_one_batch_get_of_the_window_only(site: Site, clock: DayClock) -> None:
    visit()
    # An old day the item still holds (as if left by an older window) is never read.
    site.client.update_item(TableName=TABLE, Key={"pk": {"S": "tag#hello"}}, UpdateExpression="SET d20250101 = :n",
                            ExpressionAttributeValues={":n": {"N": "7"}})
    site.client.put_item(TableName=TABLE, Item={"pk": {"S": "site#total"}, "visits": {"N": "5"},
                                                "d20261201": {"N": "3"}, "d20261130": {"N": "2"}})
    calls = record_calls(get_store().client)
    tag, total = get_store().read_counts("hello")
    assert [call.operation for call in calls] == ["BatchGetItem"]
    [request] = calls[0].params["RequestItems"].values()
    projected = [name.strip() for name in request["ProjectionExpression"].split(",")]
    assert projected == ["#pk", "#visits"] + history.projection_names(clock.today, DAYS)
    assert request["ConsistentRead"] is True
    assert (tag.visits, tag.today, tag.days[-1]) == (1, 1, (clock.today, 1))
    assert date(2025, 1, 1) not in dict(tag.days) and sum(v for _, v in tag.days) == 1
    assert (total.visits, total.today, total.days[-2:]) == (5, 3, ((date(2026, 11, 30), 2), (clock.today, 3)))


def test_read_total_is_one_get_item_of_the_total_window(site: Site, clock: DayClock) -> None:
    site.client.put_item(TableName=TABLE, Item={"pk": {"S": "site#total"}, "visits": {"N": "5"},
                                                "d20261201": {"N": "3"}})
    calls = record_calls(get_store().client)
    total = get_store().read_total()
    assert [call.operation for call in calls] == ["GetItem"]
    assert calls[0].params["ProjectionExpression"].split(", ")[1:] == history.projection_names(clock.today, DAYS)
    assert (total.visits, total.today, len(total.days)) == (5, 3, DAYS)
    assert get_store().read_total().days[0] == (clock.today - timedelta(days=DAYS - 1), 0)


def test_the_window_follows_the_setting(site: Site, clock: DayClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(history.HISTORY_DAYS_ENV, "7")
    build_store()
    assert get_store().history_days == 7
    for _ in range(10):
        visit()
        clock.advance(days=1)
    clock.advance(days=-1)
    assert sorted(held_days(tag_item(site, "hello"))) == history.window(clock.today, 7)
    page = parse_page(site.get("/counts/hello")["body"])
    assert page.texts["tag-days-sum"] == "7"
    assert Store(get_store().client, TABLE, history_days=3).history_days == 3


def test_the_long_silence_paths_need_no_more_permissions(site: Site, clock: DayClock) -> None:
    from definition import STREAM_PROCESSOR, VISIT

    from .test_least_privilege import actions_and_keys, assert_granted

    site.get("/tags/hello")
    site.process_stream()
    clock.advance(days=DAYS + 1)
    calls = record_calls(get_store().client)
    site.get("/tags/hello")
    assert [call.operation for call in calls] == ["UpdateItem", "UpdateItem"]
    assert_granted(VISIT, calls)
    calls.clear()
    site.process_stream()
    assert [call.operation for call in calls] == ["TransactWriteItems", "TransactWriteItems"]
    actions, keys = actions_and_keys(calls)  # (its GetItem is for redeliveries: not used here)
    assert actions == {"dynamodb:UpdateItem", "dynamodb:PutItem"} <= set(STREAM_PROCESSOR.actions)
    assert_granted(STREAM_PROCESSOR, calls)
