"""Warm overhead per request: each handler with DynamoDB answered in-process, against the bare call alone.

A stub transport on the functions' client and on a bare client of the same kind (``functions.dynamodb``)
answers every DynamoDB request with a canned, well-formed response, so no network or emulator time is in either
figure: what remains is the handler's own work (parsing the event, validating the tag, rendering the page,
building the response, logging) on top of the client building, signing and parsing the same call. Logging is
on, formatted as Lambda's JSON log format does, into a byte counter: its cost is part of a request, and its
volume feeds the cost model.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import definition
from bench.calls import functions_on_table
from bench.stats import median, percentile
from functions.dynamodb import Client
from functions.keys import COUNT_ATTRIBUTE, PARTITION_KEY, TAG_PREFIX, TOTAL_KEY
from localsite.aws import use_dummy_credentials
from bench.honest import PERSON
from localsite.events import LambdaContext, rest_proxy_event

ABSOLUTE_GOAL_MS = 1.0
"""The handler's overhead (its time minus the bare call's): this product's own work per warm request."""
TAG = "bench"


@dataclass
class WarmResult:
    """One handler's warm time per request against the bare stubbed DynamoDB call it makes."""

    function: str
    operation: str
    iterations: int
    handler_ms: float
    """Median time of one handler call."""
    bare_ms: float
    """Median time of the same DynamoDB call made directly, answered the same way."""
    handler_p99_ms: float
    log_bytes_per_request: float
    records: int | None = None

    @property
    def ratio(self) -> float:
        """Handler median over bare-call median."""
        return self.handler_ms / self.bare_ms

    @property
    def overhead_ms(self) -> float:
        """What the handler adds to the call it makes (median difference)."""
        return self.handler_ms - self.bare_ms

    @property
    def met(self) -> bool:
        """The overhead (what the handler adds to its call) under ``ABSOLUTE_GOAL_MS``.

        Only the overhead has a goal. The ratio to the bare call had one (1.5x) while the call was botocore's
        (about 0.3 ms); the client on the standard library makes the same call in about 0.02 ms, so a ratio to
        it now says how cheap the call is, not how much the handler wastes. It is still printed.
        """
        return self.overhead_ms < ABSOLUTE_GOAL_MS


def canned_answers(table_name: str) -> dict[str, dict[str, Any]]:
    """Well-formed DynamoDB answers for the operations the functions make (an existing tag and total)."""
    tag_item = {PARTITION_KEY: {"S": TAG_PREFIX + TAG}, COUNT_ATTRIBUTE: {"N": "4321"}}
    total_item = {PARTITION_KEY: {"S": TOTAL_KEY}, COUNT_ATTRIBUTE: {"N": "1234567"}}
    return {
        "GetItem": {"Item": {COUNT_ATTRIBUTE: total_item[COUNT_ATTRIBUTE]}},
        "UpdateItem": {"Attributes": {COUNT_ATTRIBUTE: tag_item[COUNT_ATTRIBUTE]}},
        "BatchGetItem": {"Responses": {table_name: [tag_item, total_item]}, "UnprocessedKeys": {}},
        "TransactWriteItems": {},
    }


def stub_transport(answers: Mapping[str, Mapping[str, Any]]) -> Callable[..., tuple[int, dict[str, str], bytes]]:
    """A ``functions.dynamodb`` transport answering each operation from ``answers`` (HTTP 200)."""
    bodies = {operation: json.dumps(answer).encode() for operation, answer in answers.items()}
    headers = {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "bench"}

    def answer(method: str, url: str, request_headers: Mapping[str, str], body: bytes) -> tuple[int, dict, bytes]:
        operation = request_headers["x-amz-target"].rsplit(".", 1)[-1]
        content = bodies.get(operation)
        if content is None:
            raise RuntimeError(f"no canned answer for DynamoDB {operation}")
        return 200, headers, content

    return answer


class _ByteCounter(io.TextIOBase):
    def __init__(self) -> None:
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode("utf-8"))
        return len(text)


def measure_warm(
    settings: definition.Settings,
    calls: Mapping[str, tuple[str, dict[str, Any]]],
    stream_events: Mapping[int, dict[str, Any]],
    *,
    iterations: int = 2000,
    functions: tuple[definition.FunctionSpec, ...] = definition.FUNCTIONS,
) -> list[WarmResult]:
    """Warm handler and bare-call medians for each function, interleaved, after a warm-up.

    ``calls`` maps a function's name to the ``(operation, params)`` its handler makes (from the round-trip
    run, against moto); ``stream_events`` maps a batch size to a real batch the stream processor is timed on.
    """
    use_dummy_credentials()
    table_name = f"tag-counter-bench-warm-{uuid.uuid4().hex[:8]}"
    store = importlib.import_module("functions.store")
    stub = stub_transport(canned_answers(table_name))
    counter = _ByteCounter()
    log_handler = logging.StreamHandler(counter)
    log_handler.setFormatter(importlib.import_module("functions.log").JsonFormatter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(log_handler)
    root.setLevel(logging.INFO)
    results = []
    with functions_on_table(table_name):
        bare_client = Client(transport=stub)
        functions_client = store.get_store().client
        functions_client.transport, previous_transport = stub, functions_client.transport
        try:
            routes = {route.function.name: route for route in definition.ROUTES}
            for spec in functions:
                if spec.name not in calls:
                    continue
                operation, params = calls[spec.name]
                params = _retarget(params, table_name)
                module_name, function_name = spec.handler.rsplit(".", 1)
                handler = getattr(importlib.import_module(module_name), function_name)
                if spec is definition.STREAM_PROCESSOR:
                    timeout = settings.processor_timeout_seconds
                    cases = [(event, len(event["Records"])) for _, event in sorted(stream_events.items())]
                else:
                    route = routes[spec.name]
                    parameters = {"tag": TAG} if "{tag}" in route.path else None
                    # A browser's User-Agent, as people send: the visit runs its bot check.
                    event = rest_proxy_event(route, route.path.replace("{tag}", TAG), parameters,
                                             stage=settings.stage_name, headers=[("User-Agent", PERSON)])
                    timeout = settings.route_timeout_seconds
                    cases = [(event, None)]
                def bare(operation: str = operation, **params: Any) -> Any:
                    return bare_client.call(operation, params)

                for event, records in cases:
                    results.append(_time_one(spec, operation, handler, bare, params, event, records, timeout,
                                             iterations, counter))
        finally:
            root.removeHandler(log_handler)
            root.setLevel(previous_level)
            functions_client.transport = previous_transport
    return results


def _time_one(spec: definition.FunctionSpec, operation: str, handler: Callable[..., Any],
              bare: Callable[..., Any], params: dict[str, Any], event: dict[str, Any], records: int | None,
              timeout: float, iterations: int, counter: _ByteCounter) -> WarmResult:
    handler_times: list[float] = []
    bare_times: list[float] = []
    warmup = max(20, iterations // 20)
    for index in range(warmup + iterations):
        context = LambdaContext(spec.name, timeout)  # fresh deadline each call, outside the timing
        if index == warmup:
            counter.bytes = 0
        started = time.perf_counter_ns()
        handler(event, context)
        middle = time.perf_counter_ns()
        bare(**params)
        ended = time.perf_counter_ns()
        if index >= warmup:
            handler_times.append((middle - started) / 1e6)
            bare_times.append((ended - middle) / 1e6)
    return WarmResult(
        function=spec.name,
        operation=operation,
        iterations=iterations,
        handler_ms=median(handler_times),
        bare_ms=median(bare_times),
        handler_p99_ms=percentile(handler_times, 99),
        log_bytes_per_request=counter.bytes / iterations,
        records=records,
    )


def _retarget(params: dict[str, Any], table_name: str) -> dict[str, Any]:
    """The captured call, addressed to this run's table name (the canned answers use it)."""
    text = json.dumps(params)
    for old in {p.get("TableName") for p in _walk(params) if isinstance(p, dict) and "TableName" in p}:
        text = text.replace(json.dumps(old), json.dumps(table_name))
    retargeted = json.loads(text)
    if "RequestItems" in retargeted:
        retargeted["RequestItems"] = {table_name: next(iter(retargeted["RequestItems"].values()))}
    return retargeted


def _walk(value: Any) -> Any:
    yield value
    if isinstance(value, dict):
        for inner in value.values():
            yield from _walk(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _walk(inner)
