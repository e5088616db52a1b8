"""reconcile: the exact total and daily totals from the tags, foreign tables refused, never a wrong total while
visits flow (a reading that is not steady is dropped), bounded arguments, exit codes that a script can trust."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from admin import cli
from admin.reconcile import ReconcileResult, TotalChanged, reconcile
from admin.table import UnrecognisedTable
from functions import history
from tests.functions.conftest import record_calls

from .conftest import TABLE, Admin, Site

ROOT = Path(__file__).resolve().parents[2]
TODAY = history.utc_today()


def seed(site: Site, tags: int = 30) -> int:
    """Visit ``tags`` tags (tag i gets i % 4 + 1 visits), process the stream; return the true total."""
    total = 0
    for i in range(tags):
        for _ in range(i % 4 + 1):
            site.get(f"/tags/t{i}")
            total += 1
    site.process_stream()
    return total


def run_reconcile(site: Site, **options: Any) -> ReconcileResult:
    return reconcile(site.client, TABLE, streams=site.streams, **options)


@pytest.mark.parametrize("corruption", ["too high", "too low", "deleted", "negative"])
def test_reconcile_restores_the_exact_total(site: Site, corruption: str) -> None:
    true_total = seed(site)
    assert site.visits("site#total") == true_total
    key = {"pk": {"S": "site#total"}}
    if corruption == "deleted":
        site.client.delete_item(TableName=TABLE, Key=key)
    else:
        value = {"too high": true_total + 17, "too low": 3, "negative": -1}[corruption]
        site.client.put_item(TableName=TABLE, Item={**key, "visits": {"N": str(value)}})
    previous = site.visits("site#total")
    calls = record_calls(site.client)
    result = run_reconcile(site, segments=4, page_size=7)
    assert (result.previous_total, result.counted_total, result.tags, result.changed) == (
        previous or 0, true_total, 30, True
    )
    assert site.visits("site#total") == true_total
    segments = {call.params["Segment"] for call in calls if call.operation == "Scan"}
    assert segments == {0, 1, 2, 3}
    assert sum(1 for call in calls if call.operation == "Scan") > 4  # pages followed, not just the first


def test_markers_and_the_total_are_not_counted(site: Site) -> None:
    true_total = seed(site, tags=5)
    assert any(item["pk"]["S"].startswith("batch#") for item in site.scan())
    result = run_reconcile(site)
    assert (result.counted_total, result.tags, result.changed) == (true_total, 5, False)


def test_dry_run_changes_nothing(site: Site) -> None:
    true_total = seed(site, tags=5)
    site.client.put_item(TableName=TABLE, Item={"pk": {"S": "site#total"}, "visits": {"N": "1"}})
    before = site.scan()
    result = run_reconcile(site, dry_run=True)
    assert (result.previous_total, result.counted_total, result.changed) == (1, true_total, False)
    assert site.scan() == before


def test_an_empty_table_gets_a_zero_total(site: Site) -> None:
    result = run_reconcile(site, segments=1)
    assert (result.previous_total, result.counted_total, result.tags, result.changed) == (0, 0, 0, True)
    assert site.visits("site#total") == 0


def test_daily_totals_are_the_sums_of_the_tags_days_in_the_window(admin: Admin, tmp_path: Path) -> None:
    # GIVEN tags whose history holds days inside and outside a 7-day window, and a total with stale days
    def day(offset: int) -> str:
        return (TODAY - timedelta(days=offset)).isoformat()

    rows = [
        {"tag": "a", "visits": 30, "last_day": day(0), "days": {day(0): 2, day(3): 4, day(6): 1}},
        {"tag": "b", "visits": 9, "last_day": day(3), "days": {day(3): 5, day(8): 3}},  # day 8 is outside
    ]
    path = tmp_path / "rows.json"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert admin("import", str(path)).code == cli.OK
    stale = history.day_attribute(TODAY - timedelta(days=20))
    admin.site.client.put_item(
        TableName=TABLE, Item={"pk": {"S": "site#total"}, "visits": {"N": "5"}, stale: {"N": "7"}}
    )
    # WHEN reconcile recomputes a 7-day window
    result = reconcile(admin.site.client, TABLE, streams=admin.site.streams, history_days=7)
    # THEN the total's days are the window's sums, its stale day is gone, last_day is today
    assert result.changed and result.counted_total == 39
    total = next(item for item in admin.site.scan() if item["pk"]["S"] == "site#total")
    days = {day.isoformat(): count for day, count in history.item_days(total).items()}
    assert days == {day(0): 2, day(3): 9, day(6): 1}
    assert total["last_day"] == {"N": str(history.day_number(TODAY))}
    assert total["visits"] == {"N": "39"}


def test_a_total_written_during_the_scan_is_not_overwritten(site: Site) -> None:
    seed(site, tags=5)
    site.client.put_item(TableName=TABLE, Item={"pk": {"S": "site#total"}, "visits": {"N": "2"}})

    def processor_writes(model: Any, **_: Any) -> None:
        if model.name == "Scan":
            site.client.update_item(
                TableName=TABLE,
                Key={"pk": {"S": "site#total"}},
                UpdateExpression="ADD visits :d",
                ExpressionAttributeValues={":d": {"N": "5"}},
            )

    site.client.meta.events.register("before-call.dynamodb", processor_writes)
    with pytest.raises(TotalChanged, match="no steady reading in 2 attempts"):
        run_reconcile(site, segments=1, attempts=2)
    assert site.visits("site#total") == 12  # two attempts, two processor writes, and nothing from reconcile


def test_a_visit_during_the_scan_drops_the_reading(site: Site) -> None:
    # GIVEN a drained stream, a total already wrong, and a processor that applies records within the settle
    true_total = seed(site, tags=5)
    site.client.put_item(TableName=TABLE, Item={"pk": {"S": "site#total"}, "visits": {"N": "1"}})
    visits: list[int] = []

    def a_visit_arrives(model: Any, **_: Any) -> None:
        if model.name == "Scan" and not visits:
            visits.append(1)
            site.get("/tags/t0")

    site.client.meta.events.register("before-call.dynamodb", a_visit_arrives)
    # WHEN reconcile runs and a visit lands during its first scan
    result = run_reconcile(site, segments=1, settle=1.0, attempts=3, sleep=lambda _: site.process_stream())
    # THEN that reading is dropped (a tag record arrived, and the processor applied it while it settled);
    # the second is steady and the total is exact, before and after the stream drains
    assert result.attempts == 2 and result.counted_total == true_total + 1
    site.process_stream()
    assert site.visits("site#total") == true_total + 1


def test_a_processor_stalled_longer_than_the_settle_is_the_documented_limit(site: Site) -> None:
    """What reconcile cannot see: a record the processor applies only after the settle period."""
    true_total = seed(site, tags=3)
    site.get("/tags/t0")  # its record waits: the processor is stalled (no one applies it during the settle)
    result = run_reconcile(site, settle=0.5, sleep=lambda _: None)
    assert result.counted_total == true_total + 1
    site.process_stream()  # the processor recovers: the visit is added on top of the written total
    assert site.visits("site#total") == true_total + 2


def test_records_still_in_the_stream_move_the_total_during_the_settle_and_are_not_counted_twice(site: Site) -> None:
    # GIVEN visits whose records the processor has not applied yet (it runs within its batching window)
    true_total = seed(site, tags=5)
    for _ in range(7):
        site.get("/tags/t1")
    true_total += 7
    site.client.put_item(TableName=TABLE, Item={"pk": {"S": "site#total"}, "visits": {"N": "3"}})  # and wrong

    def settle(seconds: float) -> None:
        site.process_stream()  # the mapping delivers the pending batch while reconcile waits

    # WHEN reconcile waits its settle period
    result = run_reconcile(site, settle=2.0, attempts=3, sleep=settle)
    # THEN the reading during which the processor applied the batch was dropped, the next one is steady ...
    assert result.attempts == 2 and result.changed
    # ... and the total is exact, and stays exact once the stream is drained
    site.process_stream()
    assert site.visits("site#total") == true_total


def test_reconcile_while_visits_flow_is_never_wrong(site: Site) -> None:
    """The probe's scenario, eight runs while visits arrive in bursts and the processor applies them within a
    0.1 s batching window: each run writes from a steady reading or refuses, and the total stays exact."""
    true_total = seed(site, tags=10)
    site.client.put_item(TableName=TABLE, Item={"pk": {"S": "site#total"}, "visits": {"N": "0"}})  # wrong
    stop = threading.Event()
    sent = [0]

    def traffic() -> None:
        rng = random.Random(7)
        while not stop.is_set():
            burst_end = time.monotonic() + 0.4
            while time.monotonic() < burst_end and not stop.is_set():
                site.get(f"/tags/t{rng.randrange(10)}")
                sent[0] += 1
                stop.wait(0.003)
            stop.wait(0.8)  # a quiet moment

    def mapping() -> None:
        while not stop.wait(0.1):  # the batching window
            site.process_stream()

    workers = [threading.Thread(target=traffic), threading.Thread(target=mapping)]
    for worker in workers:
        worker.start()
    outcomes: list[Any] = []
    try:
        for _ in range(8):
            try:
                outcomes.append(run_reconcile(site, settle=0.3, attempts=2).changed)
            except TotalChanged:
                outcomes.append("not steady")
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    site.process_stream()
    tags = sum(int(item["visits"]["N"]) for item in site.scan() if item["pk"]["S"].startswith("tag#"))
    assert tags == true_total + sent[0]
    # The total was wrong before the first run; a run that wrote made it exact, and nothing counted twice since.
    print("outcomes:", outcomes)
    assert True in outcomes, outcomes
    assert site.visits("site#total") == tags, outcomes


FOREIGN_TABLES = {
    "composite key": {
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    },
    "other key name": {
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    },
    "numeric key": {
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "N"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    },
    "no stream": {
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    },
    "keys-only stream": {
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
    },
    # The probe's case: same key, same stream, another application. Only the tag tells them apart.
    "same schema and stream, no tag": {
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "Tags": [{"Key": "app", "Value": "orders"}],
    },
    "same schema and stream, another value of the tag": {
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "Tags": [{"Key": "tag-counter:table", "Value": "something-else"}],
    },
}


@pytest.mark.parametrize("kind", list(FOREIGN_TABLES))
def test_a_foreign_table_is_refused_and_left_untouched(site: Site, kind: str) -> None:
    site.client.create_table(TableName="foreign", BillingMode="PAY_PER_REQUEST", **FOREIGN_TABLES[kind])
    key_name = FOREIGN_TABLES[kind]["KeySchema"][0]["AttributeName"]
    item: dict[str, Any] = {key_name: {"N": "1"} if kind == "numeric key" else {"S": "tag#x"}, "visits": {"N": "3"}}
    if kind == "composite key":
        item["sk"] = {"S": "x"}
    site.client.put_item(TableName="foreign", Item=item)
    before = site.client.scan(TableName="foreign")["Items"]
    calls = record_calls(site.client)
    with pytest.raises(UnrecognisedTable) as refused:
        reconcile(site.client, "foreign", streams=site.streams)
    assert "foreign" in refused.value.reason
    assert {call.operation for call in calls} <= {"DescribeTable", "ListTagsOfResource"}
    assert site.client.scan(TableName="foreign")["Items"] == before
    if "no tag" in kind or "another value" in kind:
        assert "another application" in refused.value.reason


def test_a_missing_table_is_refused(site: Site) -> None:
    with pytest.raises(UnrecognisedTable, match="not found"):
        reconcile(site.client, "no-such-table", streams=site.streams)


@pytest.mark.parametrize(
    "options", [{"segments": 0}, {"segments": 65}, {"segments": 1_000_000}, {"attempts": 0}, {"settle": -1}]
)
def test_bounds_are_checked_before_anything_is_read(site: Site, options: dict[str, Any]) -> None:
    calls = record_calls(site.client)
    with pytest.raises(ValueError):
        run_reconcile(site, **options)
    assert calls == []


def test_cli_reports_and_exits_zero(admin: Admin, settle_at_once: None) -> None:
    true_total = seed(admin.site, tags=5)
    admin.site.client.put_item(TableName=TABLE, Item={"pk": {"S": "site#total"}, "visits": {"N": "0"}})
    result = admin("reconcile", "--dry-run", "--settle", "1")
    assert result.code == cli.OK and "dry run, nothing changed" in result.out
    result = admin("reconcile", "--segments", "2", "--settle", "1")
    assert result.code == cli.OK
    assert f"5 tags hold {true_total} visits" in result.out
    assert f"the total was 0: updated the total (0 -> {true_total})" in result.out
    result = admin("reconcile", "--settle", "1")
    assert result.code == cli.OK and "already right" in result.out


def test_cli_exits_1_only_when_no_reading_was_steady(
    admin: Admin, monkeypatch: pytest.MonkeyPatch, settle_at_once: None
) -> None:
    seed(admin.site, tags=3)

    def keep_visiting(model: Any, **_: Any) -> None:
        if model.name == "Scan":
            admin.site.get("/tags/t0")

    admin.site.client.meta.events.register("before-call.dynamodb", keep_visiting)
    result = admin("reconcile", "--settle", "1", "--attempts", "2")
    assert result.code == cli.NOT_STEADY and "no steady reading in 2 attempts" in result.err


def test_an_unexpected_crash_is_not_exit_1(admin: Admin, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "reconcile", broken)
    result = admin("reconcile")
    assert result.code == cli.BUG != cli.NOT_STEADY
    assert "Traceback" in result.err and "unexpected failure" in result.err


@pytest.mark.parametrize(
    "argv",
    [["--segments", "0"], ["--segments", "65"], ["--segments", "1000000"], ["--settle", "-1"], ["--attempts", "0"],
     ["--history-days", "61"], ["--segments", "x"], ["--settle", "0"], ["--settle", "0.5"], ["--settle", "601"],
     ["--settle", "nan"], ["--settle", "inf"]],
)
def test_cli_rejects_bad_arguments(admin: Admin, argv: list[str]) -> None:
    calls = record_calls(admin.site.client)
    with pytest.raises(SystemExit) as exited:
        admin("reconcile", *argv)
    assert exited.value.code == cli.BAD_INPUT
    assert calls == []  # refused before anything is read


@pytest.mark.parametrize("settle", ["0", "0.2", "0.999"])
def test_a_settle_period_too_short_to_mean_anything_is_refused_naming_the_minimum(
    admin: Admin, capsys: pytest.CaptureFixture[str], settle: str
) -> None:
    seed(admin.site, tags=2)
    admin.site.client.put_item(TableName=TABLE, Item={"pk": {"S": "site#total"}, "visits": {"N": "0"}})
    before = admin.site.scan()
    with pytest.raises(SystemExit) as exited:
        admin("reconcile", "--settle", settle)
    assert exited.value.code == cli.BAD_INPUT
    assert f"--settle must be from 1 to 600, got {settle}" in capsys.readouterr().err
    assert admin.site.scan() == before  # the wrong total stays for a run that can be trusted


def test_the_help_says_why_the_settle_period_has_a_minimum(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.run(["reconcile", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "at least 1 s because Lambda polls a stream's shard about four times a second" in text


def test_cli_refuses_a_foreign_table_with_exit_3(admin: Admin) -> None:
    result = admin("reconcile", table="no-such-table")
    assert result.code == cli.REFUSED
    assert "refused" in result.err and "not found" in result.err and "nothing was changed" in result.err


def test_cli_says_plainly_when_aws_cannot_be_reached() -> None:
    environment = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    completed = subprocess.run(
        [sys.executable, "-m", "admin", "reconcile", "--table", TABLE, "--region", "us-east-1",
         "--endpoint-url", "http://127.0.0.1:9"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == cli.AWS_ERROR, completed.stderr
    assert completed.stderr.startswith("AWS error:") and "Traceback" not in completed.stderr
