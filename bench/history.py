"""Daily history's price: a visit's item size and write units after 1, 30 and 365 days of daily visits.

One visit a day, on a stopped clock moved a day at a time (``functions.history.utc_today``, the one place the
functions read the day), to a typical tag and to the largest key a tag can have (64 letters of four UTF-8
bytes). The measured visit is the real visit handler against moto, watched like the round-trip benchmark
(``bench.calls``): its round trips by operation, and its write units from the item before and after it by
DynamoDB's rules (``bench.capacity``). The stream processor runs before each measure, so the total item
carries the site's days as in production. A visit must stay exactly 1 ``UpdateItem`` and 1 write unit at every age:
``regressions`` says otherwise, and the benchmark then fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import boto3

import definition
from bench.section import FAILS, MET, Row, Section
from bench import capacity, prices
from bench.calls import functions_on_table, table_snapshot, watch_dynamodb
from bench.coldstart import matches_filter
from functions import history
from localsite.aws import StreamReader, local_aws
from localsite.events import LambdaContext, rest_proxy_event, stream_event

AGES = (1, 30, 365)
"""After how many days of daily visits a visit is measured."""
TAGS = {"bench": "a 5-letter tag", "\U00020000" * 64: "the largest key: 64 four-byte letters"}
FIRST_DAY = date(2026, 1, 1)
BUDGET = {"UpdateItem": 1}
WRITE_UNITS = 1.0


@dataclass
class HistoryFigure:
    """One measured visit: to which tag, after how many days, and what it cost."""

    tag: str
    days: int
    item_bytes: int
    """The tag item's size after the visit, by DynamoDB's rules."""
    day_attributes: int
    write_units: float
    round_trips: dict[str, int] = field(default_factory=dict)
    total_bytes: int = 0
    """The total item's size at that point (the stream processor's transaction writes it)."""

    @property
    def dollars_per_million(self) -> float:
        """DynamoDB's charge for a million such visits' writes."""
        return self.write_units * prices.DYNAMODB_WRITE_REQUEST_UNIT.dollars * 1e6


@contextmanager
def _day(start: date) -> Iterator[list[date]]:
    """``functions.history.utc_today`` answers the list's only element (the caller moves it)."""
    today = [start]
    real = history.utc_today
    history.utc_today = lambda now=None: today[0]  # type: ignore[assignment]
    try:
        yield today
    finally:
        history.utc_today = real  # type: ignore[assignment]


def measure_history(settings: definition.Settings, ages: Sequence[int] = AGES) -> list[HistoryFigure]:
    """Visit each tag once a day for ``max(ages)`` days; measure the visits of the days in ``ages``."""
    from functions import stream_processor, visit

    route = next(route for route in definition.ROUTES if route.function is definition.VISIT)
    table_name = f"tag-counter-bench-history-{uuid.uuid4().hex[:8]}"
    figures: list[HistoryFigure] = []
    with local_aws(), _day(FIRST_DAY) as today:
        client = boto3.client("dynamodb", region_name="us-east-1")
        stream_arn = definition.create_table(client, table_name)
        snapshot = table_snapshot(client, table_name)
        tail = StreamReader(table_name, "TRIM_HORIZON")
        with functions_on_table(table_name, settings):
            context = LambdaContext("visit", settings.route_timeout_seconds, settings.route_memory_mb)
            for age in range(1, max(ages) + 1):
                today[0] = FIRST_DAY + timedelta(days=age - 1)
                for tag in TAGS:
                    event = rest_proxy_event(route, route.path.replace("{tag}", "x"), {"tag": tag},
                                             stage=settings.stage_name)
                    if age not in ages:
                        visit.handler(event, context)
                        continue
                    with watch_dynamodb(snapshot) as log:
                        visit.handler(event, context)
                    item = _item(client, table_name, f"tag#{tag}")
                    figures.append(HistoryFigure(
                        tag=TAGS[tag], days=age, item_bytes=capacity.item_size(item),
                        day_attributes=len(history.item_days(item)), write_units=log.units()[1],
                        round_trips=log.round_trips(),
                    ))
                if age not in ages:
                    continue
                # The days the processor would have applied earlier have left the window: one batch of
                # every record since the last measure leaves the total as daily batches would.
                records = _new_records(tail)
                stream_processor.handler(stream_event(records, stream_arn), LambdaContext("stream", 30))
                total = capacity.item_size(_item(client, table_name, "site#total"))
                for figure in figures[-len(TAGS):]:
                    figure.total_bytes = total
    return figures


def _new_records(reader: StreamReader) -> list[dict[str, Any]]:
    """The table's new stream records since the last read, filtered as the event source mapping does."""
    records: list[dict[str, Any]] = []
    while batch := reader.read():
        records.extend(record for record in batch if matches_filter(record))
    return records


def _item(client: Any, table_name: str, key: str) -> dict[str, Any] | None:
    return client.get_item(TableName=table_name, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")


def regressions(figures: Sequence[HistoryFigure]) -> list[str]:
    """Every measured visit that was not exactly 1 UpdateItem and 1 write unit, one sentence each."""
    problems = []
    for figure in figures:
        measured = {operation: count for operation, count in figure.round_trips.items() if count}
        if measured != BUDGET or figure.write_units != WRITE_UNITS:
            problems.append(
                f"a visit to {figure.tag} after {figure.days} days of daily visits: made "
                f"{', '.join(f'{n} {op}' for op, n in sorted(measured.items())) or 'no call'} and "
                f"{figure.write_units:g} write units, the design allows 1 UpdateItem and 1 write unit"
            )
    return problems


def summary_rows(figures: Sequence[HistoryFigure]) -> list[tuple[str, str, str, bool]]:
    """(figure, value, goal, met) for the benchmark's summary."""
    # Short enough for the summary's 100 columns; the Markdown section names each tag in full.
    return [
        (f"visit on day {f.days}, {'longest key' if 'largest' in f.tag else 'short tag'}",
         f"{f.item_bytes} B item, {f.write_units:g} WRU, {sum(f.round_trips.values())} call(s)",
         "1 UpdateItem, 1 WRU",
         not regressions([f]))
        for f in figures
    ]


def markdown_section(figures: Sequence[HistoryFigure], settings: definition.Settings) -> list[str]:
    """The section of ``BENCHMARKS.md``."""
    if not figures:
        return []
    header = ["tag", "days of visits", "tag item", "day attributes", "round trips", "write units",
              "writes per million visits", "total item"]
    rows = [
        "| " + " | ".join((
            f.tag, str(f.days), f"{f.item_bytes} bytes", str(f.day_attributes),
            ", ".join(f"{n} {op}" for op, n in sorted(f.round_trips.items())) or "none",
            f"{f.write_units:g}", f"${f.dollars_per_million:.3f}", f"{f.total_bytes} bytes",
        )) + " |"
        for f in figures
    ]
    return [
        "## Daily history",
        "",
        f"One visit a day to each tag for up to {max(f.days for f in figures)} days (`historyDays` = "
        f"{settings.history_days}), on a clock moved a day at a time; the visit of the given day is the real visit "
        "handler against moto. Sizes and write units by DynamoDB's rules (`bench/capacity.py`); the writes' "
        "cost is at DynamoDB's on-demand price (`bench/prices.py`) and is the same line as in the cost model "
        "below: history does not change what a visit costs. The run fails if any visit is more than 1 "
        "UpdateItem or 1 write unit.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *rows,
        "",
    ]


def _rows(figures: Sequence[HistoryFigure]) -> list[Row]:
    return [Row(figure, value, goal, MET if met else FAILS) for figure, value, goal, met in summary_rows(figures)]


SECTION = Section(
    name="history",
    measure=lambda run: (measure_history(run.settings), run.settings),
    rows=lambda result: _rows(result[0]),
    markdown=lambda result: markdown_section(*result),
    failures=lambda result: regressions(result[0]),
)
"""A visit's item size and write units after 1, 30 and 365 days of daily visits (moto); a visit that costs more
than 1 UpdateItem and 1 write unit fails the run."""
