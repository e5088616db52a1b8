"""Changing counts: plan what a set, reset, delete or import changes, then write it, in parallel.

Every change is an ordinary write to a tag item, so its stream record carries the old and the new image and the
stream processor adds exactly ``new - old`` to the total and to each day: the command never writes the total.
"Set the count to N" means: after the write, the item holds N; visits that land on that tag at the same moment
are overwritten with it (a correction wins over a concurrent visit), and the total still equals the sum of the tags.

- ``set`` writes the count only (``SET visits``): the tag's history stays, it holds real visits, so a count
  below the visits of its days is refused (``Change.history_above_count``: the pages would show more visits today
  than in all, and the export of it would be a file ``import`` refuses);
- ``reset`` writes the count 0 and removes the tag's history (a fresh start);
- ``delete`` removes the item (the stream subtracts what it held);
- ``import`` sets each row's tag to what the row says: its count (CSV ``tag,visits``), or its count and its
  history exactly (the export's rows: the days the item holds and the row does not are removed).

Planning reads the current items (``BatchGetItem``, 100 keys a call, in parallel) and keeps only the rows that
change something: a second run of the same import finds nothing to write, and a run cut short (throttling that
outlasted the retries, Ctrl-C) resumes where it stopped when run again. Writes are one ``UpdateItem`` or
``DeleteItem`` per changed tag, ``workers`` at a time (on-demand tables take thousands of writes a second; one
item takes one write at a time), each retried with exponential backoff and jitter while DynamoDB throttles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date
from typing import Any

from admin import retry
from admin.progress import Progress
from admin.records import TagRecord
from admin.retry import MAX_ATTEMPTS, Sleep, delay, with_backoff
from admin.wording import counted
from functions import history
from functions.keys import COUNT_ATTRIBUTE, tag_key

BATCH_GET_KEYS = 100
"""DynamoDB's limit of keys per ``BatchGetItem``."""
MAX_WORKERS = 64
"""More parallel writes than this gain nothing from one machine (each is a thread and a connection)."""
DEFAULT_WORKERS = 16


@dataclass(frozen=True)
class Change:
    """One tag's change: what its item holds now and what it will hold."""

    before: TagRecord | None
    """The item as read (``None``: no item)."""
    after: TagRecord | None
    """What to write (``None``: delete the item); ``days is None`` means: the count only, history kept."""

    @property
    def tag(self) -> str:
        return (self.after or self.before).tag  # type: ignore[union-attr]

    @property
    def visits_before(self) -> int:
        return self.before.visits if self.before else 0

    @property
    def visits_after(self) -> int:
        return self.after.visits if self.after else 0

    def _days(self, record: TagRecord | None) -> dict[date, int]:
        return dict(record.days or ()) if record else {}

    @property
    def lowers(self) -> bool:
        """Whether it destroys counts: a lower count, or fewer visits on some day."""
        if self.visits_after < self.visits_before:
            return True
        if self.after is not None and self.after.days is None:
            return False  # the history stays as it is
        after_days = self._days(self.after)
        return any(after_days.get(day, 0) < count for day, count in self._days(self.before).items())

    @property
    def history_above_count(self) -> int | None:
        """The visits the kept history holds, when a count-only change would leave fewer in all (else ``None``)."""
        if self.after is None or self.after.days is not None:
            return None  # a delete, or a change that writes its own history (checked against its count on reading)
        kept = sum(count for _, count in self.before.days or ()) if self.before else 0
        return kept if kept > self.after.visits else None

    def describe(self) -> str:
        """``hello: 12 -> 0`` (and what happens to the history)."""
        if self.after is None:
            return f"{self.tag}: {self.visits_before} -> deleted"
        text = f"{self.tag}: {self.visits_before} -> {self.visits_after}"
        if self.after.days is not None and self._days(self.after) != self._days(self.before):
            before, after = len(self._days(self.before)), len(self._days(self.after))
            text += f" (history: {counted(before, 'day')} -> {counted(after, 'day')})"
        return text


def _state(record: TagRecord | None) -> tuple[int, tuple[tuple[date, int], ...], date | None]:
    if record is None:
        return 0, (), None
    return record.visits, record.days or (), record.last_day


def _needed(before: TagRecord | None, after: TagRecord | None) -> bool:
    if after is None or before is None:
        return before is not None or after is not None  # a tag named gets an item, even at 0 (as exported)
    if after.days is None:
        return _state(before)[0] != after.visits
    return _state(before) != _state(after)


def read_items(
    client: Any, table_name: str, tags: Sequence[str], *, workers: int = DEFAULT_WORKERS, sleep: Sleep | None = None
) -> dict[str, TagRecord]:
    """The current records of ``tags`` that have an item (strongly consistent, 100 keys per call, in parallel)."""

    def read(chunk: Sequence[str]) -> list[dict[str, Any]]:
        request: dict[str, Any] = {table_name: {"Keys": [tag_key(tag) for tag in chunk], "ConsistentRead": True}}
        items: list[dict[str, Any]] = []
        for attempt in range(MAX_ATTEMPTS):
            response = with_backoff(lambda: client.batch_get_item(RequestItems=request), sleep)
            items.extend(response.get("Responses", {}).get(table_name, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
            (sleep or retry.pause)(delay(attempt))  # DynamoDB leaves keys unprocessed when it throttles
        raise RuntimeError("DynamoDB kept leaving keys unprocessed; try again later")

    chunks = [tags[start : start + BATCH_GET_KEYS] for start in range(0, len(tags), BATCH_GET_KEYS)]
    found: dict[str, TagRecord] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(chunks)))) as pool:
        for items in pool.map(read, chunks):
            for item in items:
                record = TagRecord.from_item(item)
                found[record.tag] = record
    return found


def plan(
    client: Any,
    table_name: str,
    targets: Iterable[tuple[str, TagRecord | None]],
    *,
    workers: int = DEFAULT_WORKERS,
    sleep: Sleep | None = None,
) -> list[Change]:
    """The changes that writing ``targets`` (tag, record or ``None`` to delete) would make, unchanged ones left out."""
    targets = list(targets)
    current = read_items(client, table_name, [tag for tag, _ in targets], workers=workers, sleep=sleep)
    changes = []
    for tag, after in targets:
        before = current.get(tag)
        if _needed(before, after):
            changes.append(Change(before, after))
    return changes


def _write(client: Any, table_name: str, change: Change) -> None:
    key = tag_key(change.tag)
    if change.after is None:
        client.delete_item(TableName=table_name, Key=key)
        return
    names = {"#visits": COUNT_ATTRIBUTE}
    values: dict[str, Any] = {":visits": {"N": str(change.after.visits)}}
    sets = ["#visits = :visits"]
    removes: list[str] = []
    if change.after.days is not None:
        after_days = dict(change.after.days)
        for index, (day, count) in enumerate(sorted(after_days.items())):
            names[f"#d{index}"] = history.day_attribute(day)
            values[f":d{index}"] = {"N": str(count)}
            sets.append(f"#d{index} = :d{index}")
        stale = sorted(set(dict(change.before.days or ()) if change.before else ()) - set(after_days))
        for index, day in enumerate(stale):
            names[f"#r{index}"] = history.day_attribute(day)
            removes.append(f"#r{index}")
        names["#last"] = history.LAST_DAY_ATTRIBUTE
        if change.after.last_day is not None:
            values[":last"] = {"N": str(history.day_number(change.after.last_day))}
            sets.append("#last = :last")
        else:
            removes.append("#last")
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    client.update_item(
        TableName=table_name,
        Key=key,
        UpdateExpression=expression,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


class PartlyApplied(Exception):
    """Writing stopped on an error; ``written`` of ``total`` changes were made (run the command again)."""

    def __init__(self, written: int, total: int, cause: BaseException) -> None:
        super().__init__(f"{written} of {total} changes were written before: {cause}")
        self.written = written
        self.total = total
        self.cause = cause


def apply(
    client: Any,
    table_name: str,
    changes: Sequence[Change],
    *,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
    sleep: Sleep | None = None,
) -> int:
    """Write ``changes``, ``workers`` at a time; return how many were written, or raise ``PartlyApplied``.

    On the first error no new write starts; those already running finish, so the count is exact.
    """
    written = 0
    failure: BaseException | None = None
    queued = iter(changes)
    running: set[Future[Any]] = set()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        try:
            while True:
                while failure is None and len(running) < 2 * workers:
                    change = next(queued, None)
                    if change is None:
                        break
                    running.add(pool.submit(with_backoff, lambda change=change: _write(client, table_name, change), sleep))
                if not running:
                    break
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    error = future.exception()
                    if error is not None:
                        failure = failure or error
                    else:
                        written += 1
                        if progress is not None:
                            progress.advance()
        except BaseException as interrupted:  # Ctrl-C: let running writes finish, then say how far it got
            for future in running:
                future.cancel()
            wait(running)
            written += sum(1 for future in running if not future.cancelled() and future.exception() is None)
            raise PartlyApplied(written, len(changes), interrupted) from interrupted
    if failure is not None:
        raise PartlyApplied(written, len(changes), failure) from failure
    return written
