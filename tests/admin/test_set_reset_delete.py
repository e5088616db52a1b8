"""set, reset and delete: normal writes whose stream records keep the total exact; invalid tags write nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from admin import cli
from admin.records import COUNT_RULE

from .conftest import TABLE, Admin


def visit(admin: Admin, tag: str, times: int) -> None:
    for _ in range(times):
        assert admin.site.get(f"/tags/{tag}")["statusCode"] == 200


def test_set_raises_a_count_and_the_stream_keeps_the_total_exact(admin: Admin) -> None:
    # GIVEN two tags with visits, the total caught up
    visit(admin, "hello", 3)
    visit(admin, "other", 2)
    admin.drain()
    # WHEN the owner brings hello's old count over from another service
    result = admin("set", "Hello", "1200")
    # THEN the tag holds it, and once the stream drains the total agrees with the tags
    assert result.code == cli.OK, result.err
    assert "hello: 3 -> 1200" in result.out
    admin.drain()
    assert admin.counts() == {"hello": 1200, "other": 2, "site#total": 1202}


def test_set_keeps_the_history_and_the_page_shows_the_new_count(admin: Admin) -> None:
    visit(admin, "hello", 2)
    before = {k: v for k, v in admin.site.scan()[0].items() if k.startswith("d")}
    assert admin("set", "hello", "50").code == cli.OK
    item = next(item for item in admin.site.scan() if item["pk"]["S"] == "tag#hello")
    assert item["visits"] == {"N": "50"}
    assert {k: v for k, v in item.items() if k.startswith("d")} == before
    page = admin.site.get("/counts/hello")
    assert page["statusCode"] == 200 and "50" in page["body"]


def test_setting_the_same_count_again_writes_nothing(admin: Admin) -> None:
    assert admin("set", "hello", "7").code == cli.OK
    records = len(admin.site.reader.read())
    result = admin("set", "hello", "7")
    assert result.code == cli.OK and "nothing to change" in result.out
    assert admin.tag_records() == [] and records > 0


@pytest.mark.parametrize("argv", [("set", "hello", "6"), ("reset", "hello"), ("delete", "hello")])
def test_lowering_asks_first_and_a_no_changes_nothing(admin: Admin, argv: tuple[str, ...]) -> None:
    visit(admin, "hello", 5)
    start = 5
    if argv[0] == "set":
        # a count may not go below its 5 days' visits: raised first, then lowered to 6, still above them
        assert admin("set", "hello", "9").code == cli.OK
        start = 9
    admin.drain()
    before = admin.site.scan()
    admin.answers = [False]
    refused = admin(*argv)
    assert refused.code == cli.NOT_CONFIRMED and "not confirmed" in refused.err and f"hello: {start} ->" in refused.err
    no_terminal = admin(*argv)  # no answer at all: a script without --yes
    assert no_terminal.code == cli.NOT_CONFIRMED and "--yes" in no_terminal.err
    assert admin.site.scan() == before
    admin.answers = [True]
    assert admin(*argv).code == cli.OK
    admin.drain()
    expected = {"set": 6, "reset": 0}.get(argv[0])
    counts = admin.counts()
    assert counts.get("hello") == expected and counts["site#total"] == (expected or 0)


def test_reset_clears_the_history_and_the_stream_takes_its_days_off_the_total(admin: Admin) -> None:
    visit(admin, "hello", 4)
    visit(admin, "other", 1)
    admin.drain()
    assert admin("reset", "hello", "--yes").code == cli.OK
    item = next(item for item in admin.site.scan() if item["pk"]["S"] == "tag#hello")
    assert set(item) == {"pk", "visits"} and item["visits"] == {"N": "0"}
    admin.drain()
    assert admin.counts()["site#total"] == 1


def test_delete_removes_the_item_and_its_visits_from_the_total(admin: Admin) -> None:
    visit(admin, "hello", 4)
    visit(admin, "other", 1)
    admin.drain()
    result = admin("delete", "HELLO", "--yes")
    assert result.code == cli.OK and "hello: 4 -> deleted" in result.out
    admin.drain()
    assert admin.counts() == {"other": 1, "site#total": 1}
    assert "nothing to change" in admin("delete", "hello", "--yes").out


def test_dry_run_says_what_would_change_and_writes_nothing(admin: Admin) -> None:
    visit(admin, "hello", 4)
    before = admin.site.scan()
    for argv in (("set", "hello", "40"), ("reset", "hello"), ("delete", "hello"), ("set", "new", "9")):
        result = admin(*argv, "--dry-run")
        assert result.code == cli.OK and "would change" in result.out and "nothing was written" in result.out
    assert admin.site.scan() == before


@pytest.mark.parametrize("tag", ["", "has space", "a/b", "x" * 65, "...", "%2541", "caf%C3"])
def test_an_invalid_tag_is_refused_and_nothing_is_written(admin: Admin, tag: str) -> None:
    before = admin.site.scan()
    result = admin("set", tag, "5")
    assert result.code == cli.BAD_INPUT
    assert "is invalid" in result.err and "Nothing was written" in result.err
    assert admin.site.scan() == before


def test_tags_are_normalized_as_the_pages_do(admin: Admin) -> None:
    assert admin("set", "CAF%C3%A9", "3").code == cli.OK  # decoded once, case-folded, normalized
    assert admin.counts() == {"café": 3}
    page = admin.site.get("/counts/caf%C3%A9")
    assert page["statusCode"] == 200 and ">3<" in page["body"].replace(" ", "")


BAD_COUNTS = ["-1", "1.5", "1e3", "abc", str(10**15 + 1), "5_000", "+5", "\u0665", "\u0663\u0664", "\uff15", "1 000",
              "1,000", "0x10", "", "9" * 5000]


@pytest.mark.parametrize("count", BAD_COUNTS, ids=lambda count: count if len(count) < 20 else f"{len(count)} digits")
def test_a_bad_count_is_refused(admin: Admin, capsys: pytest.CaptureFixture[str], count: str) -> None:
    with pytest.raises(SystemExit) as exited:
        admin("set", "hello", count)
    assert exited.value.code == cli.BAD_INPUT
    err = capsys.readouterr().err
    assert COUNT_RULE in err and len(err) < 1000  # the rule said, not 5,000 digits echoed back
    assert admin.site.scan() == []


@pytest.mark.parametrize("count", [*BAD_COUNTS, "0", "7", "007", " 7", str(10**15)])
def test_set_and_import_accept_the_same_counts(admin: Admin, tmp_path: Path, count: str) -> None:
    # One rule, records.parse_count: what import refuses, set refuses, and what one accepts the other does too.
    source = tmp_path / "one.csv"
    source.write_text(f"tag,visits\nhello,{count}\n", encoding="utf-8")
    imported = admin("import", str(source), "--dry-run").code
    try:
        given = admin("set", "hello", count, "--dry-run").code
    except SystemExit as exited:
        given = exited.code
    assert imported == given
    assert (given == cli.OK) == (count not in BAD_COUNTS)
    assert admin.site.scan() == []


@pytest.mark.parametrize("tag", [" hello", "hello ", "%0Ahello", "hello%0A", "%E3%80%80hello", "\u3000hello", "%09hello",
                                 "a" + "\u0301" * 5, "a%CC%81%CC%81%CC%81%CC%81%CC%81", "\u00e1" + "\u0301" * 4])
def test_a_tag_that_only_looks_like_another_is_refused_not_trimmed(admin: Admin, tag: str) -> None:
    # GIVEN hello (and a) counted, WHEN the owner names it with a blank end or an overloaded letter
    assert admin("set", "hello", "5").code == cli.OK
    assert admin("set", "a", "5").code == cli.OK
    before = admin.site.scan()
    result = admin("set", tag, "9")
    # THEN exit 2, the problem said, and neither tag changed
    assert result.code == cli.BAD_INPUT, result
    assert "is invalid" in result.err and "Nothing was written" in result.err
    assert "starts or ends with a space or a control character" in result.err or "combining marks" in result.err
    assert admin.site.scan() == before


def test_a_count_below_its_days_visits_is_refused(admin: Admin, tmp_path: Path) -> None:
    # GIVEN hello with 5 visits today, WHEN it is set to 3 (its days would hold more than its count)
    visit(admin, "hello", 5)
    before = admin.site.scan()
    result = admin("set", "hello", "3", "--yes")
    # THEN refused before anything is asked or written, saying what would do
    assert result.code == cli.BAD_INPUT, result
    assert "hello: 3 is below the 5 visits of its daily history; set at least 5, or reset the tag first" in result.err
    assert "Nothing was written." in result.err
    assert admin("set", "hello", "4", "--dry-run").code == cli.BAD_INPUT  # a dry run says so too
    # AND a count-only import says the same for each such tag
    source = tmp_path / "counts.csv"
    source.write_text("tag,visits\nhello,2\nfresh,1\n", encoding="utf-8")
    imported = admin("import", str(source), "--yes")
    assert imported.code == cli.BAD_INPUT and "hello: 2 is below the 5 visits" in imported.err
    assert admin.site.scan() == before
    # AND its own count, or reset then set, is accepted
    assert admin("set", "hello", "5").code == cli.OK
    assert admin("reset", "hello", "--yes").code == cli.OK and admin("set", "hello", "3").code == cli.OK


def test_a_table_of_another_application_is_refused(admin: Admin) -> None:
    # GIVEN another application's table with the same key name and a stream, but not tag-counter's tag
    admin.site.client.create_table(
        TableName="orders",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    for argv in (("set", "hello", "5"), ("delete", "hello", "--yes"), ("export",), ("reconcile",)):
        result = admin(*argv, table="orders")
        assert result.code == cli.REFUSED, (argv, result.err)
        assert "another application" in result.err and "nothing was changed" in result.err
    assert admin.site.client.scan(TableName="orders")["Items"] == []
    assert admin.site.scan() == []  # and tag-counter's own table was not touched either
    assert TABLE != "orders"
