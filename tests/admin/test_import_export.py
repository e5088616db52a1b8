"""import and export: CSV and JSON Lines, every bad input refused with its line, throttling, the round trip."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from admin import cli
from admin.records import MAX_LINE_BYTES, BadInput, read_records
from functions import history

from .conftest import TABLE, Admin

TODAY = history.utc_today()


def write(tmp_path: Path, text: str | bytes, name: str = "counts.csv") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return str(path)


def day(offset: int) -> str:
    return (TODAY - timedelta(days=offset)).isoformat()


def test_csv_import_sets_every_count_and_the_total_follows(admin: Admin, tmp_path: Path) -> None:
    assert admin.site.get("/tags/keep")["statusCode"] == 200
    rows = "".join(f"tag{i},{i * 10}\n" for i in range(250))
    result = admin("import", write(tmp_path, "tag,visits\n" + rows), "--workers", "8")
    assert result.code == cli.OK, result.err
    assert "250 tags changed, 0 already as asked" in result.out
    admin.drain()
    counts = admin.counts()
    assert counts["tag7"] == 70 and counts["keep"] == 1
    assert counts["site#total"] == sum(i * 10 for i in range(250)) + 1
    assert "import: 250/250 (100%)" in result.err  # plain progress lines: standard error is not a terminal


def test_importing_the_same_file_twice_writes_nothing_the_second_time(admin: Admin, tmp_path: Path) -> None:
    path = write(tmp_path, "tag,visits\na,1\nb,2\n")
    assert admin("import", path).code == cli.OK
    admin.drain()
    again = admin("import", path)
    assert again.code == cli.OK and "nothing to change (2 already as asked)" in again.out
    assert admin.tag_records() == []
    assert admin.counts() == {"a": 1, "b": 2, "site#total": 3}


def test_an_import_that_lowers_counts_asks_first(admin: Admin, tmp_path: Path) -> None:
    assert admin("set", "a", "10").code == cli.OK
    path = write(tmp_path, "tag,visits\na,3\nb,5\n")
    refused = admin("import", path)
    assert refused.code == cli.NOT_CONFIRMED and "a: 10 -> 3" in refused.err
    assert admin.counts() == {"a": 10}
    assert admin("import", path, "--yes").code == cli.OK
    assert admin.counts() == {"a": 3, "b": 5}


def test_dry_run_lists_each_change(admin: Admin, tmp_path: Path) -> None:
    assert admin("set", "a", "10").code == cli.OK
    assert admin("set", "a2", "10").code == cli.OK
    result = admin("import", write(tmp_path, "tag,visits\na,3\nb,5\nc,0\na2,10\n"), "--dry-run")
    assert result.code == cli.OK
    assert "would change a: 10 -> 3" in result.out and "would change b: 0 -> 5" in result.out
    assert "would change c: 0 -> 0" in result.out  # a tag named gets its item, as an export lists it
    assert "3 to change, 1 unchanged; nothing was written" in result.out
    assert admin.counts() == {"a": 10, "a2": 10}


def test_standard_input_is_read_with_dash(admin: Admin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b'{"tag": "x", "visits": 4}\n')))
    assert admin("import", "-").code == cli.OK
    assert admin.counts() == {"x": 4}


BAD_FILES = {
    "wrong columns": ("tag,count\na,1\n", "line 1: the header is 'tag,count'"),
    "no header": ("a,1\nb,2\n", "line 1: the header is 'a,1'"),
    "empty": ("", "the file is empty"),
    "too many fields": ("tag,visits\na,1,2\n", "line 2: 3 columns where the header has 2"),
    "negative count": ("tag,visits\na,1\nb,-4\n", "line 3: visits '-4' is not a whole number"),
    "non-integer count": ("tag,visits\na,1.5\n", "line 2: visits '1.5' is not a whole number"),
    "huge count": ("tag,visits\na,99999999999999999999\n", "line 2: visits"),
    "duplicate tags": ("tag,visits\nHello,1\nx,2\nhello,3\n", "line 4: tag 'hello' is already on line 2"),
    "invalid tag": ("tag,visits\nok,1\nno spaces,2\n", "line 3: tag 'no spaces' is invalid"),
    "latin-1": ("tag,visits\ncafé,1\n".encode("latin-1"), "line 2: the line is not UTF-8 text"),
    "utf-16": ("tag,visits\na,1\n".encode("utf-16"), "line 1: the line is not UTF-8 text"),
    "json not an object": ('[1, 2]\n', "line 1: expected an object"),
    "json broken": ('{"tag": "a", "visits": 1}\n{"tag": "b", \n', "line 2: not JSON"),
    "json unknown field": ('{"tag": "a", "visits": 1, "count": 2}\n', "unknown fields ['count']"),
    "json missing visits": ('{"tag": "a"}\n', "missing fields ['visits']"),
    "json string count": ('{"tag": "a", "visits": "x"}\n', "line 1: visits 'x' is text; a count is a JSON number"),
    "json numeric string count": ('{"tag": "a", "visits": "5"}\n', "line 1: visits '5' is text; a count is a JSON"),
    "json float count": ('{"tag": "a", "visits": 2.0}\n', "line 1: visits 2.0 is not a whole number"),
    "json exponent count": ('{"tag": "a", "visits": 1e3}\n', "line 1: visits 1e3 is not a whole number"),
    "json negative count": ('{"tag": "a", "visits": -5}\n', "line 1: visits -5 is not a whole number"),
    "json NaN count": ('{"tag": "a", "visits": NaN}\n', "line 1: visits NaN is not a whole number"),
    "json boolean count": ('{"tag": "a", "visits": true}\n', "line 1: visits true is not a number; a count is a JSON"),
    "json null count": ('{"tag": "a", "visits": null}\n', "line 1: visits null is not a number"),
    "json too big count": ('{"tag": "a", "visits": 1000000000000001}\n', "line 1: visits 1000000000000001 is not"),
    "json 5,000-digit count": (
        '{"tag": "a", "visits": 1}\n{"tag": "b", "visits": %s}\n' % ("9" * 5000), "line 2: visits 99999"
    ),
    "json string day count": (
        '{"tag": "a", "visits": 5, "days": {"%s": "1"}}\n' % day(0),
        "line 1: the visits of day '%s' '1' is text" % day(0),
    ),
    "json duplicate key": ('{"tag": "a", "visits": 1}\n{"tag": "b", "visits": 1, "visits": 9}\n',
                           "line 2: the key 'visits' is given twice in one object"),
    "json duplicate tag key": ('{"tag": "a", "tag": "b", "visits": 1}\n', "line 1: the key 'tag' is given twice"),
    "json duplicate day": (
        '{"tag": "a", "visits": 5, "days": {"%s": 1, "%s": 2}}\n' % (day(0), day(0)),
        "line 1: the key '%s' is given twice" % day(0),
    ),
    "json number tag": ('{"tag": 12, "visits": 1}\n', "line 1: the tag is not text"),
    "json nested too deep": ("[" * 8000 + "]" * 8000 + "\n", "line 1: not a row: arrays or objects nested too deeply"),
    "json days above count": (
        '{"tag": "a", "visits": 1}\n{"tag": "b", "visits": 2, "days": {"%s": 2, "%s": 1}}\n' % (day(0), day(1)),
        "line 2: its days add up to 3 visits, more than its count of 2",
    ),
    "json tag with a leading newline": (
        '{"tag": "\\nhello", "visits": 1}\n', "line 1: tag '\\nhello' is invalid: The tag starts or ends with a space"
    ),
    "json tag with a trailing space": ('{"tag": "hello ", "visits": 1}\n', "line 1: tag 'hello ' is invalid"),
    "json tag with five marks on a": ('{"tag": "a\u0301\u0301\u0301\u0301\u0301", "visits": 1}\n', "combining marks"),
    "json bad day": ('{"tag": "a", "visits": 1, "days": {"2026-02-30": 1}}\n', "day '2026-02-30' is not a date"),
    "json future day": (
        '{"tag": "a", "visits": 1, "days": {"%s": 1}}\n' % (TODAY + timedelta(days=5)).isoformat(), "is in the future"
    ),
    "json negative day": ('{"tag": "a", "visits": 1, "days": {"%s": -1}}\n' % day(0), "is not a whole number"),
    "json days too spread": (
        '{"tag": "a", "visits": 5, "days": {"%s": 1, "%s": 1}}\n' % (day(0), day(70)), f"must lie within the {history.MAX_HISTORY_DAYS} days"
    ),
    "csv bad days": ("tag,visits,last_day,days\na,1,,2026-11-30:1\n", "line 2: days '2026-11-30:1' is not like"),
    "csv underscore count": ("tag,visits\na,5_000\n", "line 2: visits '5_000' is not a whole number"),
    "csv plus sign": ("tag,visits\na,+5\n", "line 2: visits '+5' is not a whole number"),
    "csv Arabic-Indic digits": ("tag,visits\na,\u0665\n", "line 2: visits '\u0665' is not a whole number"),
    "csv space inside a count": ("tag,visits\na,1 000\n", "line 2: visits '1 000' is not a whole number"),
    "csv 5,000-digit count": ("tag,visits\na,1\nb,%s\n" % ("9" * 5000), "line 3: visits '99999"),
    "csv day count with a sign": (
        "tag,visits,last_day,days\na,5,,%s=+1\n" % day(0), "line 2: the visits of day '%s' '+1' is not" % day(0)
    ),
    "csv days above count": (
        "tag,visits,last_day,days\na,1,,\nb,3,,%s=2;%s=2\n" % (day(0), day(1)),
        "line 3: its days add up to 4 visits, more than its count of 3",
    ),
    "csv tag with a leading space": ("tag,visits\na,1\n hello,2\n", "line 3: tag ' hello' is invalid: The tag starts"),
    "csv tag with an ideographic space": ("tag,visits\n\u3000hello,2\n", "line 2: tag '\\u3000hello' is invalid"),
    "csv tag with five marks on a": ("tag,visits\na\u0301\u0301\u0301\u0301\u0301,2\n", "line 2: tag"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_malformed_file_is_refused_with_its_line_and_nothing_is_written(
    admin: Admin, tmp_path: Path, kind: str
) -> None:
    assert admin("set", "a", "10").code == cli.OK
    before = admin.site.scan()
    text, message = BAD_FILES[kind]
    result = admin("import", write(tmp_path, text), "--yes")
    assert result.code == cli.BAD_INPUT, result
    assert message in result.err and "Nothing was written." in result.err
    assert "Traceback" not in result.err
    assert admin.site.scan() == before


def test_a_50_mb_line_is_refused_with_bounded_memory(admin: Admin, tmp_path: Path) -> None:
    import tracemalloc

    path = tmp_path / "huge.csv"
    with path.open("wb") as out:
        out.write(b"tag,visits\nok,1\n")
        out.write(b"x" * (50 * 1024 * 1024) + b",1\n")
        out.write(b"fine,2\n")
    tracemalloc.start()
    try:
        with path.open("rb") as stream, pytest.raises(BadInput) as refused:
            read_records(stream)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.problems == [f"line 3: the line is longer than {MAX_LINE_BYTES} bytes"]
    assert peak < 2 * 1024 * 1024, peak  # the line was never held: memory stays near one read's size
    result = admin("import", str(path))
    assert result.code == cli.BAD_INPUT and "line 3" in result.err
    assert admin.site.scan() == []


def test_many_bad_lines_are_listed_up_to_a_limit(admin: Admin, tmp_path: Path) -> None:
    result = admin("import", write(tmp_path, "tag,visits\n" + "a b,1\n" * 30))
    assert result.code == cli.BAD_INPUT
    assert "line 21:" in result.err and "line 22:" not in result.err and "... and 10 more" in result.err


def test_a_missing_file_is_a_clear_error(admin: Admin, tmp_path: Path) -> None:
    result = admin("import", str(tmp_path / "nope.csv"))
    assert result.code == cli.BAD_INPUT and "cannot read" in result.err and "No such file" in result.err


def test_throttling_mid_import_backs_off_and_ends_exact(admin: Admin, tmp_path: Path, inject, no_sleep) -> None:
    # GIVEN DynamoDB throttling 25 writes in the middle of a 120-row import
    rows = "".join(f"t{i},{i + 1}\n" for i in range(120))
    fault = inject(admin.site.client, "UpdateItem", "ProvisionedThroughputExceededException", times=25)
    # WHEN the import runs
    result = admin("import", write(tmp_path, "tag,visits\n" + rows), "--workers", "4")
    # THEN every throttled write was retried and the counts are exact
    assert result.code == cli.OK, result.err
    assert fault.sent == 25
    admin.drain()
    counts = admin.counts()
    assert all(counts[f"t{i}"] == i + 1 for i in range(120))
    assert counts["site#total"] == sum(range(1, 121))


def test_throttling_that_outlasts_the_retries_stops_and_the_rerun_finishes(
    admin: Admin, tmp_path: Path, inject, no_sleep
) -> None:
    from admin import retry

    rows = "".join(f"t{i},{i + 1}\n" for i in range(60))
    path = write(tmp_path, "tag,visits\n" + rows)
    # the botocore client retries 3 times per call, the command MAX_ATTEMPTS times: a long outage beats both
    fault = inject(admin.site.client, "UpdateItem", "ThrottlingException", times=3 * retry.MAX_ATTEMPTS * 3)
    first = admin("import", path, "--workers", "2")
    assert first.code == cli.AWS_ERROR
    assert "changes written, then" in first.err and "Run the same command again" in first.err
    written = sum(1 for key in admin.counts() if key.startswith("t"))
    assert written < 60
    fault.times = fault.sent  # the outage is over
    second = admin("import", path)
    assert second.code == cli.OK, second.err
    assert f"{60 - written} tags changed, {written} already as asked" in second.out
    admin.drain()
    assert admin.counts()["site#total"] == sum(range(1, 61))


def test_export_writes_every_tag_with_its_history_and_no_internal_item(admin: Admin) -> None:
    for tag, times in (("hello", 3), ("café", 1)):
        for _ in range(times):
            admin.site.get(f"/tags/{tag}")
    admin.drain()  # the total and a marker now exist too
    keys = {item["pk"]["S"] for item in admin.site.scan()}
    assert "site#total" in keys and any(key.startswith("batch#") for key in keys)
    result = admin("export", "--format", "json", "--sort")
    assert result.code == cli.OK
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert [(row["tag"], row["visits"]) for row in rows] == [("café", 1), ("hello", 3)]
    assert all(set(row) <= {"tag", "visits", "last_day", "days"} for row in rows)
    assert "exported 2 tags" in result.err
    csv_out = admin("export", "--segments", "3").out.splitlines()
    assert csv_out[0] == "tag,visits,last_day,days" and sorted(csv_out[1:])[0].startswith("café,1,")


def test_export_carries_the_days_and_import_restores_them(admin: Admin, tmp_path: Path) -> None:
    row = {"tag": "old", "visits": 40, "last_day": day(1), "days": {day(3): 2, day(1): 5}}
    assert admin("import", write(tmp_path, json.dumps(row) + "\n", "in.json")).code == cli.OK
    item = next(item for item in admin.site.scan() if item["pk"]["S"] == "tag#old")
    assert history.item_days(item) == {date.fromisoformat(day(3)): 2, date.fromisoformat(day(1)): 5}
    assert item["last_day"] == {"N": day(1).replace("-", "")}
    exported = admin("export", "--format", "json").out
    assert json.loads(exported) == {"tag": "old", "visits": 40, "last_day": day(1), "days": {day(3): 2, day(1): 5}}
    # importing other days replaces the history exactly: a day the file lacks is removed
    row["days"] = {day(1): 5}
    assert admin("import", write(tmp_path, json.dumps(row) + "\n", "in2.json"), "--yes").code == cli.OK
    item = next(item for item in admin.site.scan() if item["pk"]["S"] == "tag#old")
    assert history.item_days(item) == {date.fromisoformat(day(1)): 5}


def test_export_to_a_file_is_complete_or_absent(admin: Admin, tmp_path: Path, inject) -> None:
    assert admin("set", "a", "1").code == cli.OK
    target = tmp_path / "backup.csv"
    assert admin("export", "--output", str(target)).code == cli.OK
    assert target.read_text(encoding="utf-8") == "tag,visits,last_day,days\na,1,,\n"
    inject(admin.site.client, "Scan", "AccessDeniedException", message="not allowed")
    failed = admin("export", "--output", str(tmp_path / "other.csv"))
    assert failed.code == cli.AWS_ERROR and "AccessDenied" in failed.err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["backup.csv"]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_round_trip_export_fresh_table_import_export_is_identical(admin: Admin, tmp_path: Path, fmt: str) -> None:
    from definition import create_table

    # GIVEN a table with visits, imported history, a reset tag and a Unicode tag
    for tag, times in (("hello", 3), ("ünïcode", 2), ("zero", 1)):
        for _ in range(times):
            admin.site.get(f"/tags/{tag}")
    rows = [{"tag": "old", "visits": 40, "last_day": day(2), "days": {day(9): 2, day(2): 5}}]
    assert admin("import", write(tmp_path, "".join(json.dumps(r) + "\n" for r in rows), "h.json")).code == cli.OK
    assert admin("reset", "zero", "--yes").code == cli.OK
    for i in range(40):
        assert admin("set", f"bulk-{i}", str(i * 7 + 1)).code == cli.OK
    first = admin("export", "--format", fmt, "--sort", "--output", str(tmp_path / f"a.{fmt}"))
    assert first.code == cli.OK
    # WHEN it is imported into a fresh table and exported again
    create_table(admin.site.client, "fresh")
    assert admin("import", str(tmp_path / f"a.{fmt}"), table="fresh").code == cli.OK
    assert admin("export", "--format", fmt, "--sort", "--output", str(tmp_path / f"b.{fmt}"), table="fresh").code == 0
    # THEN both exports are byte for byte the same
    exported = (tmp_path / f"a.{fmt}").read_bytes()
    assert exported == (tmp_path / f"b.{fmt}").read_bytes()
    assert exported.count(b"\n") == 44 + (fmt == "csv")
    assert TABLE != "fresh"


def test_keys_left_unprocessed_by_a_throttled_read_are_read_again(admin: Admin, tmp_path: Path, inject, no_sleep) -> None:
    # GIVEN existing counts, and DynamoDB answering the first BatchGetItem with every key unprocessed
    assert admin("set", "a", "5").code == cli.OK
    keys = [{"pk": {"S": "tag#a"}}, {"pk": {"S": "tag#b"}}]
    inject(
        admin.site.client, "BatchGetItem", "", status=200, times=1,
        body={"Responses": {TABLE: []}, "UnprocessedKeys": {TABLE: {"Keys": keys, "ConsistentRead": True}}},
    )
    # WHEN an import plans against them, THEN it reads them again and sees a's count (so it asks before lowering)
    result = admin("import", write(tmp_path, "tag,visits\na,2\nb,1\n"))
    assert result.code == cli.NOT_CONFIRMED and "a: 5 -> 2" in result.err


def test_a_throttled_export_backs_off_and_completes(admin: Admin, inject, no_sleep) -> None:
    for i in range(30):
        assert admin("set", f"t{i}", str(i)).code == cli.OK
    fault = inject(admin.site.client, "Scan", "ProvisionedThroughputExceededException", times=8)
    result = admin("export", "--segments", "2")
    assert result.code == cli.OK and fault.sent == 8
    assert len(result.out.splitlines()) == 31
