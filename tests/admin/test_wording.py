"""The command's messages say the same thing the same way everywhere: counts of things, the count limit, what
reconcile changed and what it waits for, where a bad import came from."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

from admin import cli, wording
from admin.records import MAX_VISITS
from admin.reconcile import ReconcileResult
from functions import history

from .conftest import TABLE, Admin
from .test_reconcile import seed

LIMIT = "1,000,000,000,000,000"
TODAY = history.utc_today()


def test_counts_of_things_agree_with_their_number() -> None:
    assert [wording.counted(n, "day") for n in (0, 1, 2, 1500)] == ["0 days", "1 day", "2 days", "1,500 days"]
    assert wording.counted(1, "entry", "entries") + ", " + wording.counted(3, "entry", "entries") == "1 entry, 3 entries"
    assert wording.number(MAX_VISITS) == LIMIT and wording.number(600.0) == "600" and wording.number(0.5) == "0.5"


def test_the_count_limit_reads_the_same_in_arguments_and_files(
    admin: Admin, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    # GIVEN a count above the limit on the command line, THEN argparse refuses it naming the limit grouped
    with pytest.raises(SystemExit) as stopped:
        cli.run(["set", "hello", str(MAX_VISITS + 1), "--table", TABLE])
    assert stopped.value.code == cli.BAD_INPUT
    err = capsys.readouterr().err
    assert f"N must be a whole number from 0 to {LIMIT} written with the digits 0-9 only" in err and "e+" not in err
    assert f"got '{MAX_VISITS + 1}'" in err
    # ... and in a file, the same words
    from pathlib import Path

    path = Path(str(tmp_path)) / "big.csv"
    path.write_text(f"tag,visits\nhello,{MAX_VISITS + 1}\n", encoding="utf-8")
    result = admin("import", str(path))
    assert result.code == cli.BAD_INPUT
    assert f"is not a whole number from 0 to {LIMIT}" in result.err and str(MAX_VISITS) not in result.err


def test_a_bad_file_on_standard_input_is_called_standard_input(admin: Admin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"tag,visits\nno spaces,4\n")))
    result = admin("import", "-")
    assert result.code == cli.BAD_INPUT
    assert "error: standard input was not imported:" in result.err and "- was not imported" not in result.err


def test_an_import_summary_says_already_as_asked_and_one_tag(admin: Admin, tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "two.csv"
    path.write_text("tag,visits\na,3\nb,5\n", encoding="utf-8")
    assert admin("set", "a", "3").code == cli.OK
    result = admin("import", str(path))
    assert result.code == cli.OK and result.out.endswith(": 1 tag changed, 1 already as asked\n"), result.out
    again = admin("import", str(path))
    assert again.out.endswith("nothing to change (2 already as asked)\n"), again.out


def test_a_history_change_counts_its_days_in_the_singular_too(admin: Admin, tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "one.jsonl"
    row = {"tag": "a", "visits": 2, "last_day": TODAY.isoformat(), "days": {TODAY.isoformat(): 2}}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    result = admin("import", str(path), "--dry-run")
    assert "would change a: 0 -> 2 (history: 0 days -> 1 day)" in result.out, result.out


def result(total: tuple[int, int], before: dict[int, int], after: dict[int, int]) -> ReconcileResult:
    """A reconcile's result: the total before and counted, and the days (days before today) before and counted."""
    days = lambda found: tuple(sorted((TODAY - timedelta(days=back), count) for back, count in found.items()))  # noqa: E731
    return ReconcileResult(total[0], total[1], 3, changed=True, days=days(after), previous_days=days(before))


@pytest.mark.parametrize(
    ("found", "dry_run", "said"),
    [
        (result((5, 7), {0: 7}, {0: 7}), False, "updated the total (5 -> 7)"),
        (result((7, 7), {0: 5}, {0: 7}), False, "updated the daily figures of 1 day (the total was already right)"),
        (result((7, 7), {0: 7, 40: 1}, {0: 7}), False, "updated the daily figures of 1 day (the total was already right)"),
        (
            result((1000, 2000), {}, {0: 1, 1: 1}),
            False,
            "updated the total (1,000 -> 2,000) and the daily figures of 2 days",
        ),
        (result((7, 7), {0: 7}, {0: 7}), False, "total and daily figures already right, nothing changed"),
        (
            result((5, 7), {0: 5}, {0: 7}),
            True,
            "dry run, nothing changed; would update the total (5 -> 7) and the daily figures of 1 day",
        ),
    ],
)
def test_reconcile_says_exactly_what_it_changed(found: ReconcileResult, dry_run: bool, said: str) -> None:
    assert cli.reconcile_outcome(found, dry_run) == said


def test_reconcile_on_a_table_whose_days_alone_are_wrong_says_so(admin: Admin, settle_at_once: None) -> None:
    true_total = seed(admin.site, tags=5)
    # GIVEN the total right but today's figure wrong
    day = history.day_attribute(history.utc_today())
    admin.site.client.update_item(
        TableName=TABLE, Key={"pk": {"S": "site#total"}}, UpdateExpression="SET #d = :wrong",
        ExpressionAttributeNames={"#d": day}, ExpressionAttributeValues={":wrong": {"N": "1"}},
    )
    # WHEN reconcile runs, THEN it says only the daily figures changed, and waits saying what for
    done = admin("reconcile", "--settle", "1")
    assert done.code == cli.OK, done.err
    assert done.out.endswith(
        f"the total was {true_total}: updated the daily figures of 1 day (the total was already right)\n"
    ), done.out
    assert "waiting " in done.err and "the total and the tags must stay unchanged" in done.err
    assert "no visit is arriving and the stream processor has applied every earlier visit" in done.err
    again = admin("reconcile", "--settle", "1")
    assert again.out.endswith("total and daily figures already right, nothing changed\n")


SUBCOMMANDS = ("set", "reset", "delete", "import", "export", "reconcile")


def test_the_exit_codes_are_listed_once_in_the_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.run(["--help"])
    assert stopped.value.code == 0
    top = capsys.readouterr().out
    assert cli.EXIT_CODES in top  # the whole table, as written
    for subcommand in SUBCOMMANDS:
        with pytest.raises(SystemExit):
            cli.run([subcommand, "--help"])
        shown = capsys.readouterr().out
        # Each subcommand points to it instead of repeating its 13 lines.
        assert "exit codes: the same for every subcommand, listed by ./dev admin --help" in shown, subcommand
        assert "interrupted (Ctrl-C)" not in shown and "unexpected error" not in shown, subcommand
