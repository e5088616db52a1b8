"""The reconcile command: recomputes the exact total from the tag items, refuses foreign tables (SPEC 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from functions.reconcile import ReconcileResult, UnrecognisedTable, main, reconcile

from .conftest import TABLE, Site, record_calls

ROOT = Path(__file__).resolve().parents[2]


def seed(site: Site, tags: int = 30) -> int:
    """Visit ``tags`` tags (tag i gets i % 4 + 1 visits), process the stream; return the true total."""
    total = 0
    for i in range(tags):
        for _ in range(i % 4 + 1):
            site.get(f"/tags/t{i}")
            total += 1
    site.process_stream()
    return total


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
    result = reconcile(site.client, TABLE, segments=4, page_size=7)
    assert result == ReconcileResult(previous or 0, true_total, 30, changed=True)
    assert site.visits("site#total") == true_total
    segments = {call.params["Segment"] for call in calls if call.operation == "Scan"}
    assert segments == {0, 1, 2, 3}
    assert sum(1 for call in calls if call.operation == "Scan") > 4  # pages followed, not just the first


def test_markers_and_the_total_are_not_counted(site: Site) -> None:
    true_total = seed(site, tags=5)
    assert any(item["pk"]["S"].startswith("batch#") for item in site.scan())
    result = reconcile(site.client, TABLE)
    assert (result.counted_total, result.tags, result.changed) == (true_total, 5, False)


def test_dry_run_changes_nothing(site: Site) -> None:
    true_total = seed(site, tags=5)
    site.client.put_item(TableName=TABLE, Item={"pk": {"S": "site#total"}, "visits": {"N": "1"}})
    before = site.scan()
    result = reconcile(site.client, TABLE, dry_run=True)
    assert (result.previous_total, result.counted_total, result.changed) == (1, true_total, False)
    assert site.scan() == before


def test_an_empty_table_gets_a_zero_total(site: Site) -> None:
    result = reconcile(site.client, TABLE, segments=1)
    assert result == ReconcileResult(0, 0, 0, changed=True)
    assert site.visits("site#total") == 0


def test_a_total_written_during_the_scan_is_not_overwritten(site: Site) -> None:
    from functions.reconcile import TotalChanged

    true_total = seed(site, tags=5)
    site.client.put_item(TableName=TABLE, Item={"pk": {"S": "site#total"}, "visits": {"N": "2"}})
    written = []

    def processor_writes(model: Any, **_: Any) -> None:
        if model.name == "Scan" and not written:
            written.append(True)
            site.client.update_item(
                TableName=TABLE,
                Key={"pk": {"S": "site#total"}},
                UpdateExpression="ADD visits :d",
                ExpressionAttributeValues={":d": {"N": "5"}},
            )

    site.client.meta.events.register("before-call.dynamodb", processor_writes)
    with pytest.raises(TotalChanged):
        reconcile(site.client, TABLE, segments=1)
    assert site.visits("site#total") == 7 != true_total


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
        reconcile(site.client, "foreign")
    assert "foreign" in refused.value.reason
    assert [call.operation for call in calls] == ["DescribeTable"]
    assert site.client.scan(TableName="foreign")["Items"] == before


def test_a_missing_table_is_refused(site: Site) -> None:
    with pytest.raises(UnrecognisedTable, match="not found"):
        reconcile(site.client, "no-such-table")


def test_cli_reports_and_exits_zero(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    true_total = seed(site, tags=5)
    site.client.put_item(TableName=TABLE, Item={"pk": {"S": "site#total"}, "visits": {"N": "0"}})
    assert main(["--table", TABLE, "--dry-run"], client=site.client) == 0
    assert "dry run, nothing changed" in capsys.readouterr().out
    assert main(["--table", TABLE, "--segments", "2"], client=site.client) == 0
    out = capsys.readouterr().out
    assert f"5 tags hold {true_total} visits; the total was 0: total updated" in out
    assert main(["--table", TABLE], client=site.client) == 0
    assert "already right" in capsys.readouterr().out


def test_cli_refuses_a_foreign_table_with_exit_3(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--table", "no-such-table"], client=site.client) == 3
    err = capsys.readouterr().err
    assert "refused" in err and "not found" in err and "nothing was changed" in err


def test_cli_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--table", TABLE, "--segments", "0"], client=object()) == 2
    assert "--segments" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2


def test_cli_says_plainly_when_aws_cannot_be_reached() -> None:
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    completed = subprocess.run(
        [sys.executable, "-m", "functions.reconcile", "--table", TABLE, "--region", "us-east-1",
         "--endpoint-url", "http://127.0.0.1:9"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 4
    assert completed.stderr.startswith("AWS error:") and "Traceback" not in completed.stderr
