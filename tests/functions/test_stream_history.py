"""The total's visits per day, kept by the stream processor from records read from moto's real stream."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from functions import history
from functions.store import get_store

from .conftest import TABLE, DayClock, Site, record_calls
from .test_stream import deliver, visit

DAYS = history.DEFAULT_HISTORY_DAYS


def total_item(site: Site) -> dict[str, Any]:
    return site.client.get_item(TableName=TABLE, Key={"pk": {"S": "site#total"}}, ConsistentRead=True)["Item"]


def total_days(site: Site) -> dict[date, int]:
    return history.item_days(total_item(site))


def tags_days(site: Site) -> dict[date, int]:
    """The sum of every tag's days, within the window the total keeps."""
    summed: dict[date, int] = {}
    window = set(history.window(history.utc_today(), DAYS))
    for item in site.scan():
        if item["pk"]["S"].startswith("tag#"):
            for day, visits in history.item_days(item).items():
                if day in window:
                    summed[day] = summed.get(day, 0) + visits
    return summed


def test_per_day_deltas_reach_the_total(site: Site, clock: DayClock) -> None:
    visit(site, "a", "b", "a")
    clock.advance(days=1)
    visit(site, "a", "c")
    calls = record_calls(get_store().client)
    assert site.process_stream() == {"batchItemFailures": []}
    assert [call.operation for call in calls] == ["TransactWriteItems"]  # still one write per batch
    assert total_days(site) == {date(2026, 12, 1): 3, date(2026, 12, 2): 2}
    assert total_days(site) == tags_days(site)
    assert site.visits("site#total") == 5
    assert total_item(site)["last_day"] == {"N": "20261202"}


def test_a_redelivered_batch_counts_once_per_day(site: Site, clock: DayClock) -> None:
    visit(site, "a", "b")
    clock.advance(days=1)
    visit(site, "a")
    records = site.reader.read()
    assert deliver(site, records) == {"batchItemFailures": []}
    assert deliver(site, records) == {"batchItemFailures": []}
    assert total_days(site) == {date(2026, 12, 1): 2, date(2026, 12, 2): 1}
    # and a batch that grew on its retry adds only its new records' days
    visit(site, "b", "c")
    deliver(site, records + site.reader.read())
    assert total_days(site) == {date(2026, 12, 1): 2, date(2026, 12, 2): 3}
    assert site.visits("site#total") == 5


def test_a_remove_subtracts_its_days(site: Site, clock: DayClock) -> None:
    visit(site, "a", "b")
    clock.advance(days=1)
    visit(site, "a", "a")
    site.process_stream()
    site.client.delete_item(TableName=TABLE, Key={"pk": {"S": "tag#a"}})
    site.process_stream()
    assert total_days(site) == {date(2026, 12, 1): 1, date(2026, 12, 2): 0}
    assert site.visits("site#total") == 1


def test_days_a_visit_drops_as_expired_are_not_subtracted(site: Site, clock: DayClock) -> None:
    # GIVEN visits every day for longer than the window, processed as they come
    for _ in range(DAYS + 5):
        visit(site, "a", "b")
        site.process_stream()
        clock.advance(days=1)
    clock.advance(days=-1)
    # THEN each day of the window holds both tags' visits, and the total kept no day older than its window
    assert total_days(site) == tags_days(site) == {day: 2 for day in history.window(clock.today, DAYS)}
    assert site.visits("site#total") == 2 * (DAYS + 5)


def test_days_outside_the_window_are_left_out(site: Site, clock: DayClock) -> None:
    visit(site, "a", "b")
    records = site.reader.read()
    # The batch is processed late: its day has left the window; the visits still count.
    clock.advance(days=DAYS)
    assert deliver(site, records) == {"batchItemFailures": []}
    assert site.visits("site#total") == 2
    assert total_days(site) == {}


def test_a_day_from_a_clock_past_midnight_is_kept(site: Site, clock: DayClock) -> None:
    clock.advance(days=1)
    visit(site, "a")  # the visit's clock says tomorrow ...
    clock.advance(days=-1)
    site.process_stream()  # ... the processor's still says today: within the margin, the day is kept
    assert total_days(site) == {clock.today + timedelta(days=1): 1}


def test_the_total_drops_its_old_days_after_a_long_silence(site: Site, clock: DayClock) -> None:
    for _ in range(3):
        visit(site, "a")
        site.process_stream()
        clock.advance(days=1)
    clock.advance(days=DAYS + 20)
    visit(site, "a")
    calls = record_calls(get_store().client)
    site.process_stream()
    # Refused once on the total's condition (it holds days from before the horizon), then written again.
    assert [call.operation for call in calls] == ["TransactWriteItems", "TransactWriteItems"]
    assert total_days(site) == {clock.today: 1}
    assert site.visits("site#total") == 4


def test_an_owner_correction_changes_the_visits_not_the_days(site: Site, clock: DayClock) -> None:
    visit(site, "a", "a")
    site.process_stream()
    site.client.update_item(TableName=TABLE, Key={"pk": {"S": "tag#a"}}, UpdateExpression="SET visits = :n",
                            ExpressionAttributeValues={":n": {"N": "100"}})
    site.process_stream()
    assert site.visits("site#total") == 100
    assert total_days(site) == {clock.today: 2}
