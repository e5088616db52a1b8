"""DynamoDB round trips and capacity units per page and per stream batch, measured against moto.

Every DynamoDB call the real handlers make is recorded (``bench.calls``): HTTP attempts by operation, and the
items each call touched before and after it, from which capacity units follow DynamoDB's rules. The budget
below is the design (SPEC section 5 and 6); ``regressions`` lists every way a measurement departs from it,
and the benchmark fails loudly when that list is not empty.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3

import definition
from bench.calls import CallLog, functions_on_table, table_snapshot, watch_dynamodb
from bench.coldstart import StreamFeed
from localsite.aws import local_aws
from localsite.events import LambdaContext, rest_proxy_event

BUDGET: Mapping[str, Mapping[str, int]] = {
    "home": {"GetItem": 1},
    "visit": {"UpdateItem": 1},
    "count": {"BatchGetItem": 1},
    "visit-badge": {"UpdateItem": 1},
    "count-badge": {"GetItem": 1},
    "count-badge-json": {"GetItem": 1},
    "visit-json": {"UpdateItem": 1},
    "count-json": {"GetItem": 1},
    "stream": {"TransactWriteItems": 1},
}
"""DynamoDB round trips by operation that each page, and each stream batch whatever its size, may make."""

STREAM_BATCH_SIZES = (1, 100, 1000)
TAG = "bench"

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class RoundTrips:
    """What one page view or one stream batch cost in DynamoDB."""

    subject: str
    """``home``, ``visit``, ``count`` or ``stream``."""
    label: str
    """What was measured, e.g. ``GET /counts/{tag}`` or ``stream batch of 100 records``."""
    round_trips: dict[str, int]
    read_units: float
    write_units: float
    moto_consumed: list[Any] = field(default_factory=list)
    """``ConsumedCapacity`` as moto reported it (fixed figures, shown for comparison only)."""
    batch_size: int | None = None
    answer: str = ""
    body_bytes: int = 0
    """Size of the page the visitor receives (UTF-8 body), for the cost model's data transfer."""

    @property
    def total_round_trips(self) -> int:
        """All round trips, whatever the operation."""
        return sum(self.round_trips.values())


def regressions(results: Sequence[RoundTrips], budget: Mapping[str, Mapping[str, int]] = BUDGET) -> list[str]:
    """Every measurement whose round trips differ from the budget, as one sentence each (empty: all good)."""
    problems = []
    for result in results:
        expected = dict(budget[result.subject])
        measured = {operation: count for operation, count in result.round_trips.items() if count}
        if measured != expected:
            problems.append(f"{result.label}: made {_describe(measured)}, the design allows {_describe(expected)}")
    return problems


def _describe(counts: Mapping[str, int]) -> str:
    if not counts:
        return "no DynamoDB call"
    return ", ".join(f"{count} {operation}" for operation, count in sorted(counts.items()))


def _handler(spec: definition.FunctionSpec) -> Handler:
    module_name, function_name = spec.handler.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), function_name)


def _summarise(subject: str, label: str, log: CallLog, answer: str, batch_size: int | None = None,
               body_bytes: int = 0) -> RoundTrips:
    reads, writes = log.units()
    return RoundTrips(
        subject=subject,
        label=label,
        round_trips=log.round_trips(),
        read_units=reads,
        write_units=writes,
        moto_consumed=[call.consumed_capacity for call in log.calls if call.consumed_capacity is not None],
        batch_size=batch_size,
        answer=answer,
        body_bytes=body_bytes,
    )


def measure_round_trips(
    settings: definition.Settings,
    *,
    batch_sizes: Sequence[int] = STREAM_BATCH_SIZES,
    handlers: Mapping[str, Handler] | None = None,
) -> tuple[list[RoundTrips], dict[str, Any]]:
    """Round trips and capacity of each page and of stream batches of ``batch_sizes`` records, against moto.

    ``handlers`` replaces a function's handler by name (the smoke test uses it to prove the guard fails on
    a regression). Returns the results and, for the warm benchmark, the captured calls and stream events
    (``{"calls": {name: (operation, params)}, "stream_events": {1 and the configured size: event}}``).
    """
    chosen = {spec.name: _handler(spec) for spec in definition.FUNCTIONS}
    chosen.update(handlers or {})
    table_name = f"tag-counter-bench-rt-{uuid.uuid4().hex[:8]}"
    results: list[RoundTrips] = []
    captured: dict[str, Any] = {"calls": {}, "stream_events": {}}
    with local_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        stream_arn = definition.create_table(client, table_name)
        snapshot = table_snapshot(client, table_name)
        with functions_on_table(table_name):
            # The total exists, as on any site that has had a visit: pages read a real item.
            client.put_item(TableName=table_name, Item={"pk": {"S": "site#total"}, "visits": {"N": "1234"}})
            for route in definition.ROUTES:
                name = route.function.name
                path = route.path.replace("{tag}", TAG)
                parameters = {"tag": TAG} if "{tag}" in route.path else None
                event = rest_proxy_event(route, path, parameters, stage=settings.stage_name)
                context = LambdaContext(name, settings.route_timeout_seconds, settings.route_memory_mb)
                with watch_dynamodb(snapshot, ask_consumed_capacity=True) as log:
                    response = chosen[name](event, context)
                body = str(response.get("body") or "").encode("utf-8")
                results.append(_summarise(name, f"GET {route.path}", log, f"HTTP {response.get('statusCode')}",
                                          body_bytes=len(body)))
                _keep_first_call(captured, name, log)
            feed = StreamFeed(client, table_name, stream_arn)
            feed.prime()
            sizes = list(batch_sizes)
            for extra in (1, settings.stream_batch_size):  # the warm benchmark's batches, reported or not
                if extra not in sizes:
                    sizes.append(extra)
            for size in sizes:
                event = feed.event(size)
                context = LambdaContext("stream", settings.processor_timeout_seconds, settings.processor_memory_mb)
                with watch_dynamodb(snapshot, ask_consumed_capacity=True) as log:
                    response = chosen["stream"](event, context)
                failures = len(response.get("batchItemFailures") or [])
                if size in batch_sizes:
                    label = f"stream batch of {size} record{'s' if size != 1 else ''}"
                    results.append(_summarise("stream", label, log, f"{failures} failed records", batch_size=size))
                if size in (1, settings.stream_batch_size):
                    captured["stream_events"][size] = event
                    _keep_first_call(captured, "stream", log)
    return results, captured


def _keep_first_call(captured: dict[str, Any], name: str, log: CallLog) -> None:
    if log.calls and name not in captured["calls"]:
        captured["calls"][name] = (log.calls[0].operation, log.calls[0].params)
