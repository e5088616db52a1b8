"""What the operator command reads and writes: one tag's count and history, as CSV or JSON Lines.

Both formats carry the same fields, one tag per line, so a file of any size is read and written a line at a
time (memory bounded by the longest accepted line, ``MAX_LINE_BYTES``, not by the file):

- CSV with a header: ``tag,visits`` (a count only: an import sets the count and keeps the tag's history), or
  ``tag,visits,last_day,days`` as ``export`` writes it, ``days`` like ``2026-11-30=1;2026-12-01=3``;
- JSON Lines, as ``export --format json`` writes it: ``{"tag": "hello", "visits": 12, "last_day": "2026-12-01",
  "days": {"2026-11-30": 1, "2026-12-01": 3}}``; ``last_day`` and ``days`` may be left out (count only).

Every row is checked before anything is written: tags are normalized exactly as the pages do
(``functions.tags.normalize_tag``) and two rows naming the same normalized tag are an error; counts are whole
numbers from 0 to ``MAX_VISITS`` read by ``parse_count`` (the one number rule, ``set``'s too: ASCII digits only),
in JSON Lines a JSON number, never text, a fraction or ``true``; an object naming a key twice is refused; a
row's days add up to no more than its count; days are real dates no later than tomorrow (UTC), within
``MAX_HISTORY_DAYS`` of ``last_day``. Each problem is reported with its line number.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import IO, Any

from admin import wording
from functions import history
from functions.keys import COUNT_ATTRIBUTE, PARTITION_KEY, TAG_PREFIX
from functions.tags import InvalidTag, normalize_tag

MAX_VISITS = 10**15
"""Largest count accepted: far above any counter's, far below DynamoDB's 38 digits."""
MAX_LINE_BYTES = 16 * 1024
"""Longest line accepted; a full row with 60 days of history is under 2 KB."""
MAX_REPORTED_ERRORS = 20
CSV_HEADER = ("tag", "visits")
CSV_EXPORT_HEADER = ("tag", "visits", "last_day", "days")
JSON_FIELDS = frozenset({"tag", "visits", "last_day", "days"})
FORMATS = ("csv", "json")

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_DIGITS = re.compile(r"[0-9]+")
COUNT_RULE = (
    f"a whole number from 0 to {wording.number(MAX_VISITS)} written with the digits 0-9 only "
    "(no sign, decimal point, exponent, separator or other script's digits)"
)
"""What a count is, in every message that refuses one (``set`` and ``import`` alike)."""


def parse_count(text: str) -> int:
    """A count the owner wrote (``set``'s N, a CSV field, a JSON number's text), or ``ValueError(COUNT_RULE)``.

    Only ASCII digits: ``int()`` alone would also take ``+5``, ``5_000``, an em space before ``5`` and
    Arabic-Indic digits, which a file's other reader would not. Spaces and tabs around the number are dropped
    (``hello, 12`` in a CSV), never inside (``1 000``). The length is checked before converting, so a 5,000-digit
    number is refused like any other too big (Python raises on converting more than 4,300 digits)."""
    digits = text.strip(" \t")
    if not _DIGITS.fullmatch(digits):
        raise ValueError(COUNT_RULE)
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(MAX_VISITS)) or int(significant) > MAX_VISITS:
        raise ValueError(COUNT_RULE)
    return int(significant)


class _JsonNumber(str):
    """A JSON number as written (``parse_int``/``parse_float``/``parse_constant`` keep the text, so that the limit
    is checked before any conversion and a fraction is told apart from a whole number)."""

    whole: bool = True

    def __repr__(self) -> str:
        return str(self)


class _JsonFraction(_JsonNumber):
    whole = False


class DuplicateKey(ValueError):
    """A JSON object naming a key twice (``json`` would keep the last silently)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in pairs:
        if key in row:
            raise DuplicateKey(key)
        row[key] = value
    return row


def _json_object(text: str) -> Any:
    return json.loads(
        text, parse_int=_JsonNumber, parse_float=_JsonFraction, parse_constant=_JsonFraction,
        object_pairs_hook=_unique_keys,
    )


@dataclass(frozen=True)
class TagRecord:
    """One tag as a file holds it: its count and, when the file says, its history."""

    tag: str
    """The normalized tag."""
    visits: int
    days: tuple[tuple[date, int], ...] | None = None
    """Its visits per UTC day, oldest first (no zero days); ``None``: the file says nothing about history."""
    last_day: date | None = None
    """The day of its newest write (``functions.history``); only with ``days``."""

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> TagRecord:
        """The record of a tag item in DynamoDB JSON."""
        tag = item[PARTITION_KEY]["S"][len(TAG_PREFIX) :]
        visits = int(item.get(COUNT_ATTRIBUTE, {"N": "0"})["N"])
        days = tuple(sorted((day, count) for day, count in history.item_days(item).items() if count))
        raw_last = item.get(history.LAST_DAY_ATTRIBUTE)
        last_day = _from_day_number(int(raw_last["N"])) if raw_last and "N" in raw_last else None
        return cls(tag, visits, days, last_day)


class BadInput(ValueError):
    """A file the command will not apply; ``problems`` lists each bad line (nothing was written)."""

    def __init__(self, problems: list[str], more: int = 0) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.more = more
        """How many further problems were found but not listed."""


def _from_day_number(number: int) -> date | None:
    try:
        return date(number // 10_000, number // 100 % 100, number % 100)
    except ValueError:
        return None


# -- reading ---------------------------------------------------------------------------------------------


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) for each line; ``None`` for a line longer than ``MAX_LINE_BYTES`` (skipped unread)."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES:
            while line and not line.endswith(b"\n"):
                line = stream.readline(MAX_LINE_BYTES)
            yield number, None
            continue
        yield number, line


class _Checker:
    """Checks rows one at a time, remembering tags seen and collecting problems."""

    def __init__(self, today: date) -> None:
        self.latest_day = today + timedelta(days=1)
        self.seen: dict[str, int] = {}
        self.problems: list[str] = []
        self.count = 0
        self.json = False
        """Whether the row being checked is JSON (its counts are numbers, not text)."""

    def problem(self, line: int, text: str) -> None:
        self.count += 1
        if len(self.problems) < MAX_REPORTED_ERRORS:
            self.problems.append(f"line {line}: {text}")

    def tag(self, line: int, raw: Any) -> str | None:
        if not isinstance(raw, str) or isinstance(raw, _JsonNumber):
            self.problem(line, "the tag is not text")
            return None
        try:
            tag = normalize_tag(raw)
        except InvalidTag as error:
            self.problem(line, f"tag {_show(raw)} is invalid: {error.problem} {error.reason}")
            return None
        first = self.seen.get(tag)
        if first is not None:
            self.problem(line, f"tag {tag!r} is already on line {first} (tags are compared as the pages normalize them)")
            return None
        self.seen[tag] = line
        return tag

    def visits(self, line: int, raw: Any, what: str = "visits") -> int | None:
        """A CSV field (text) or a JSON number (``_JsonNumber``) read by ``parse_count``; JSON text, fractions and
        booleans are refused: ``export`` writes counts as JSON numbers."""
        if isinstance(raw, _JsonNumber):
            if not raw.whole:
                self.problem(line, f"{what} {_show(raw)} is not {COUNT_RULE}")
                return None
        elif self.json:
            shown = "null" if raw is None else str(raw).lower() if isinstance(raw, bool) else _show(raw)
            kind = "text" if isinstance(raw, str) else "not a number"
            self.problem(line, f"{what} {shown} is {kind}; a count is a JSON number, {COUNT_RULE}")
            return None
        try:
            return parse_count(raw)
        except ValueError:
            self.problem(line, f"{what} {_show(raw)} is not {COUNT_RULE}")
            return None

    def day(self, line: int, raw: Any, what: str) -> date | None:
        if isinstance(raw, str) and _ISO_DAY.fullmatch(raw):
            try:
                day = date.fromisoformat(raw)
            except ValueError:
                day = None
            if day is not None:
                if day > self.latest_day:
                    self.problem(line, f"{what} {raw} is in the future")
                    return None
                return day
        self.problem(line, f"{what} {_show(raw)} is not a date like 2026-12-01")
        return None

    def days_within_count(self, line: int, visits: int, days: tuple[tuple[date, int], ...] | None) -> bool:
        """Whether the row's days add up to no more than its count: every visit of a day is one of the tag's."""
        in_days = sum(count for _, count in days or ())
        if in_days > visits:
            self.problem(line, f"its days add up to {in_days:,} visits, more than its count of {visits:,}")
            return False
        return True

    def history(
        self, line: int, raw_days: Mapping[Any, Any] | None, raw_last: Any
    ) -> tuple[bool, tuple[tuple[date, int], ...] | None, date | None]:
        """(ok, days, last_day) of a row; ``days`` is None when the row gives no history at all."""
        if raw_days is None and raw_last is None:
            return True, None, None
        ok = True
        days: dict[date, int] = {}
        for raw_day, raw_count in (raw_days or {}).items():
            day = self.day(line, raw_day, "day")
            count = self.visits(line, raw_count, f"the visits of day {_show(raw_day)}")
            if day is None or count is None:
                ok = False
            elif count:
                days[day] = count
        last_day = None
        if raw_last is not None:
            last_day = self.day(line, raw_last, "last_day")
            ok = ok and last_day is not None
        elif days:
            last_day = max(days)
        if ok and days and last_day is not None:
            oldest = last_day - timedelta(days=history.MAX_HISTORY_DAYS - 1)
            if max(days) > last_day or min(days) < oldest:
                self.problem(
                    line, f"its days must lie within the {history.MAX_HISTORY_DAYS} days ending on last_day {last_day}"
                )
                ok = False
        return ok, tuple(sorted(days.items())), last_day


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse_csv_days(text: str) -> dict[str, str] | None:
    if not text.strip():
        return {}
    days: dict[str, str] = {}
    for part in text.split(";"):
        day, equals, count = part.strip().partition("=")
        if not equals or day in days:
            return None
        days[day] = count
    return days


def read_records(stream: IO[bytes], fmt: str = "auto", today: date | None = None) -> list[TagRecord]:
    """Every row of a CSV or JSON Lines file, checked; ``BadInput`` listing the bad lines if any is wrong."""
    checker = _Checker(today or history.utc_today())
    records: list[TagRecord] = []
    header: tuple[str, ...] | None = None
    for number, raw in _lines(stream):
        if raw is None:
            checker.problem(number, f"the line is longer than {MAX_LINE_BYTES} bytes")
            continue
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            checker.problem(number, "the line is not UTF-8 text (save the file as UTF-8)")
            if number == 1:
                break  # the whole file is in another encoding: one message says it
            continue
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        if fmt == "auto":
            fmt = "json" if text.lstrip().startswith(("{", "[")) else "csv"
        checker.json = fmt == "json"
        if fmt == "json":
            record = _json_row(checker, number, text)
        elif header is None:
            header = tuple(field.strip().lower() for field in next(csv.reader([text])))
            if header not in (CSV_HEADER, CSV_EXPORT_HEADER):
                checker.problem(
                    number, f"the header is {','.join(header)!r}; expected 'tag,visits' or 'tag,visits,last_day,days'"
                )
                break  # every row would be read against the wrong columns
            continue
        else:
            record = _csv_row(checker, number, text, header)
        if record is not None:
            records.append(record)
    if header is None and not records and not checker.count:
        checker.problem(1, "the file is empty; expected the header 'tag,visits' or JSON Lines")
    if checker.count:
        raise BadInput(checker.problems, checker.count - len(checker.problems))
    return records


def _csv_row(checker: _Checker, number: int, text: str, header: tuple[str, ...]) -> TagRecord | None:
    fields = next(csv.reader([text]))
    if len(fields) != len(header):
        checker.problem(number, f"{len(fields)} columns where the header has {len(header)} ({','.join(header)})")
        return None
    tag = checker.tag(number, fields[0])
    visits = checker.visits(number, fields[1])
    ok, days, last_day = True, None, None
    if len(header) == 4:
        raw_days = _parse_csv_days(fields[3])
        if raw_days is None:
            checker.problem(number, f"days {_show(fields[3])} is not like 2026-11-30=1;2026-12-01=3")
            return None
        ok, days, last_day = checker.history(number, raw_days, fields[2].strip() or None)
        if days is None:
            days = ()  # the export form always states the history, even when empty
    if tag is None or visits is None or not ok or not checker.days_within_count(number, visits, days):
        return None
    return TagRecord(tag, visits, days, last_day)


def _json_row(checker: _Checker, number: int, text: str) -> TagRecord | None:
    try:
        row = _json_object(text)
    except DuplicateKey as error:
        checker.problem(number, f"the key {str(error)!r} is given twice in one object")
        return None
    except json.JSONDecodeError as error:
        checker.problem(number, f"not JSON ({error.msg} at column {error.colno})")
        return None
    except RecursionError:
        # Brackets nested thousands deep fit in one line; the decoder gives up rather than a row being read.
        checker.problem(number, "not a row: arrays or objects nested too deeply")
        return None
    if not isinstance(row, dict):
        checker.problem(number, 'expected an object like {"tag": "hello", "visits": 12}')
        return None
    unknown = sorted(set(row) - JSON_FIELDS)
    missing = sorted({"tag", "visits"} - set(row))
    if unknown or missing:
        said = [f"unknown fields {unknown}"] * bool(unknown) + [f"missing fields {missing}"] * bool(missing)
        checker.problem(number, f"{' and '.join(said)}; a row has tag, visits and optionally last_day, days")
        return None
    tag = checker.tag(number, row["tag"])
    visits = checker.visits(number, row["visits"])
    raw_days = row.get("days")
    if raw_days is not None and not isinstance(raw_days, dict):
        checker.problem(number, 'days must be an object like {"2026-12-01": 3}')
        return None
    ok, days, last_day = checker.history(number, raw_days, row.get("last_day"))
    if tag is None or visits is None or not ok or not checker.days_within_count(number, visits, days):
        return None
    return TagRecord(tag, visits, days, last_day)


# -- writing ---------------------------------------------------------------------------------------------


def _days_text(record: TagRecord) -> str:
    return ";".join(f"{day.isoformat()}={count}" for day, count in record.days or ())


def csv_lines(records: Iterable[TagRecord]) -> Iterator[str]:
    """The export's CSV, a line at a time, header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_EXPORT_HEADER)
    yield buffer.getvalue()
    for record in records:
        buffer.seek(0)
        buffer.truncate()
        last_day = record.last_day.isoformat() if record.last_day else ""
        writer.writerow((record.tag, record.visits, last_day, _days_text(record)))
        yield buffer.getvalue()


def json_lines(records: Iterable[TagRecord]) -> Iterator[str]:
    """The export's JSON Lines: one object per tag."""
    for record in records:
        row: dict[str, Any] = {"tag": record.tag, "visits": record.visits}
        if record.last_day is not None:
            row["last_day"] = record.last_day.isoformat()
        row["days"] = {day.isoformat(): count for day, count in record.days or ()}
        yield json.dumps(row, ensure_ascii=False) + "\n"
