"""Daily history: the visits of the last ``historyDays`` UTC days, kept on each item beside its count.

A day is a top-level number attribute named ``d<YYYYMMDD>`` (``d20261201``); the item also keeps ``last_day``
(the ``YYYYMMDD`` of its newest day). A visit on day T is still one ``UpdateItem``: ``ADD visits :1, d<T> :1``,
``SET last_day = T`` and ``REMOVE`` the days that have just left the window, on condition that the item was
last written at most ``historyDays`` days ago (or has no ``last_day``). Under that condition every day the item
holds lies in ``[last_day - N + 1, last_day]``, so removing ``expired_days(T)`` leaves only days of the window:
an item never holds more than N day attributes, however its visits are spread.

The first visit after a longer silence fails that condition (DynamoDB returns the old item with the failure)
and is written again, removing exactly the days the old item holds: two round trips, once per silence.

These helpers are pure: names, windows and the reading of an item's days; ``functions.store`` and the stream
processor build their writes from them, the pages and the operator command read with them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, ClassVar

HISTORY_DAYS_ENV = "HISTORY_DAYS"
"""The environment variable holding the stack's ``historyDays`` (the functions' only source for it)."""
DEFAULT_HISTORY_DAYS = 30
MAX_HISTORY_DAYS = 45
"""Bound on ``historyDays``, so that a visit always costs 1 write unit (under 1 KB of item).

The largest tag item: ``pk`` of ``tag#`` and 64 four-byte letters (262 bytes), ``visits`` below 10^16
(15 bytes), ``last_day`` (13 bytes) and N + 1 days (the window and one day of clock margin) of 14 bytes each
(a 9-byte name and a count below 10^8; numbers take 1 byte per 2 digits, plus 1). At 45 days that is
934 bytes; at 30 (the default) 724. At 60 it would be 1,144 bytes: 2 write units per visit."""

DAY_PREFIX = "d"
LAST_DAY_ATTRIBUTE = "last_day"

# Days that may have left the window since the item's last write are removed with a margin of this many
# days beyond it: a write stamped just before midnight UTC can land after one stamped just after.
CLOCK_MARGIN_DAYS = 1


def history_days() -> int:
    """The window's length from ``HISTORY_DAYS`` (default 30); a bad value is a deploy error, not a page error."""
    raw = os.environ.get(HISTORY_DAYS_ENV)
    if not raw:
        return DEFAULT_HISTORY_DAYS
    days = int(raw)
    if not 1 <= days <= MAX_HISTORY_DAYS:
        raise ValueError(f"{HISTORY_DAYS_ENV} must be between 1 and {MAX_HISTORY_DAYS}, got {days}")
    return days


def utc_today(now: float | None = None) -> date:
    """Today's date in UTC (``now`` as a Unix time, default the clock)."""
    moment = datetime.now(timezone.utc) if now is None else datetime.fromtimestamp(now, timezone.utc)
    return moment.date()


def day_number(day: date) -> int:
    """``2026-12-01`` -> ``20261201``: ordered like the dates, so conditions can compare them."""
    return day.year * 10_000 + day.month * 100 + day.day


def day_attribute(day: date) -> str:
    """The attribute holding a day's visits: ``d20261201``."""
    return f"{DAY_PREFIX}{day_number(day)}"


def parse_day_attribute(name: str) -> date | None:
    """The date of a ``d<YYYYMMDD>`` attribute name, or ``None`` for any other attribute."""
    if len(name) != 9 or not name.startswith(DAY_PREFIX) or not name[1:].isdigit() or not name.isascii():
        return None
    number = int(name[1:])
    try:
        return date(number // 10_000, number // 100 % 100, number % 100)
    except ValueError:
        return None


def window(today: date, days: int) -> list[date]:
    """The window's days, oldest first, ending with ``today``."""
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def horizon(today: date, days: int) -> int:
    """The oldest ``last_day`` (as a day number) for which ``expired_days`` removes every stale day."""
    return day_number(today - timedelta(days=days))


def expired_days(today: date, days: int) -> list[date]:
    """Days a write on ``today`` removes: those that left the window since a write at most ``days`` days ago."""
    first = today - timedelta(days=2 * days + CLOCK_MARGIN_DAYS - 1)
    return [first + timedelta(days=offset) for offset in range(days + CLOCK_MARGIN_DAYS)]


def item_days(item: Mapping[str, Any] | None) -> dict[date, int]:
    """Every day an item (in DynamoDB JSON) holds, with its visits; other attributes are ignored."""
    found: dict[date, int] = {}
    for name, value in (item or {}).items():
        day = parse_day_attribute(name)
        if day is not None and isinstance(value, Mapping) and isinstance(value.get("N"), str):
            found[day] = int(value["N"])
    return found


def series(item: Mapping[str, Any] | None, today: date, days: int) -> list[tuple[date, int]]:
    """The window ending ``today``, oldest first, each day with its visits (0 for a day with none)."""
    held = item_days(item)
    return [(day, held.get(day, 0)) for day in window(today, days)]


def projection_names(today: date, days: int) -> list[str]:
    """The attribute names a page reads to show the window ending ``today``."""
    return [day_attribute(day) for day in window(today, days)]


@functools.lru_cache(maxsize=4)
def accepted_days(today: date, days: int) -> frozenset[str]:
    """The day attributes a write on ``today`` may add to: the window, and ``CLOCK_MARGIN_DAYS`` ahead of it.

    The margin admits a day stamped by a writer whose clock has already passed midnight UTC; every older day
    has left the window (and is, or will be, removed by the writes), so it is never added to.
    """
    ahead = [today + timedelta(days=offset) for offset in range(1, CLOCK_MARGIN_DAYS + 1)]
    return frozenset(day_attribute(day) for day in window(today, days) + ahead)


@dataclass(frozen=True)
class DayWrite:
    """The history half of a write on a day: the days it removes and the condition that makes that enough."""

    remove: tuple[str, ...]
    """Day attributes to ``REMOVE``."""
    condition: str
    """``ConditionExpression``, using ``#last`` for ``last_day``."""
    values: dict[str, Any]
    """The condition's expression values (``:horizon`` or ``:seen``) and ``:today``, the new ``last_day``."""

    names: ClassVar[dict[str, str]] = {"#last": LAST_DAY_ATTRIBUTE}
    """Expression attribute names the condition and ``SET #last = :today`` use."""


def day_write(today: date, days: int, seen: Mapping[str, Any] | None = None) -> DayWrite:
    """What a write on ``today`` removes, on which condition (see the module docstring).

    ``seen`` is the item a failed condition returned (``ReturnValuesOnConditionCheckFailure=ALL_OLD``). When it
    was last written before the horizon, the write removes exactly the days it holds outside the window, on
    condition that nobody wrote it since (``last_day`` unchanged); otherwise (no item, or one written since)
    the usual write applies.
    """
    today_value = {":today": {"N": str(day_number(today))}}
    last = (seen or {}).get(LAST_DAY_ATTRIBUTE)
    last_day = last.get("N") if isinstance(last, Mapping) else None
    if isinstance(last_day, str) and last_day.isdigit() and int(last_day) < horizon(today, days):
        current = set(window(today, days))
        stale = sorted(day for day in item_days(seen) if day not in current)
        return DayWrite(
            tuple(day_attribute(day) for day in stale),
            "#last = :seen",
            {":seen": {"N": last_day}, **today_value},
        )
    return _usual_write(today, days)


@functools.lru_cache(maxsize=4)
def _usual_write(today: date, days: int) -> DayWrite:
    # The same for every write of the day: built once (a visit would otherwise spend ~15 us on dates).
    return DayWrite(
        tuple(day_attribute(day) for day in expired_days(today, days)),
        "attribute_not_exists(#last) OR #last >= :horizon",
        {":horizon": {"N": str(horizon(today, days))}, ":today": {"N": str(day_number(today))}},
    )
