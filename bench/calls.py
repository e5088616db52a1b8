"""Watch every DynamoDB call made in this process: operation, parameters, HTTP round trips, items touched.

The functions build their own client (``functions.store.build_store``, at import and again when pointed at a
table), so the watcher wraps the methods of their client's class (``functions.dynamodb.Client``) for the block:
``call`` once per API call, ``_send`` once per HTTP attempt, so retries count as the round trips they are.
"""

from __future__ import annotations

import copy
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import definition
from bench import capacity
from functions.dynamodb import Client
from functions.keys import PARTITION_KEY

KEY_NAMES = (PARTITION_KEY,)


@dataclass
class Call:
    """One DynamoDB API call and what it cost."""

    operation: str
    params: dict[str, Any]
    round_trips: int = 0
    error: str | None = None
    consumed_capacity: Any = None
    """What DynamoDB (here moto) reported in ``ConsumedCapacity``, if it was asked and answered."""
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    def units(self) -> tuple[float, float]:
        """``(read units, write units)`` by DynamoDB's rules (see ``bench.capacity``)."""
        return capacity.call_units(self.operation, self.params, self.before, self.after, KEY_NAMES)


@dataclass
class CallLog:
    """The calls a watched block made, in order."""

    calls: list[Call] = field(default_factory=list)

    def round_trips(self) -> dict[str, int]:
        """HTTP round trips by operation."""
        counts: Counter[str] = Counter()
        for call in self.calls:
            counts[call.operation] += call.round_trips
        return dict(counts)

    def units(self) -> tuple[float, float]:
        """Total ``(read units, write units)``."""
        reads = writes = 0.0
        for call in self.calls:
            r, w = call.units()
            reads += r
            writes += w
        return reads, writes

    def clear(self) -> None:
        """Forget the calls seen so far."""
        self.calls.clear()


_state = threading.local()


def _current() -> Call | None:
    return getattr(_state, "call", None)


@contextmanager
def watch_dynamodb(
    snapshot: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
    *,
    ask_consumed_capacity: bool = False,
) -> Iterator[CallLog]:
    """Record every DynamoDB call the functions' clients make in the block (any client, any thread).

    ``snapshot(keys)`` returns the items at those keys (``capacity.key_of`` -> item or None); when given,
    it is called before and after each call, outside the watch, so capacity can be computed from real sizes.
    ``ask_consumed_capacity`` adds ``ReturnConsumedCapacity=TOTAL`` so the answer's figure is kept too.
    """
    log = CallLog()
    original_call, original_send = Client.call, Client._send
    lock = threading.Lock()

    def watched(self: Client, operation_name: str, api_params: Any) -> Any:
        if getattr(_state, "bypass", False):
            return original_call(self, operation_name, api_params)
        call = Call(operation_name, copy.deepcopy(dict(api_params)))
        keys = capacity.touched_keys(operation_name, api_params, KEY_NAMES)
        if snapshot is not None:
            call.before = _outside_watch(snapshot, keys)
        params = dict(api_params, ReturnConsumedCapacity="TOTAL") if ask_consumed_capacity else api_params
        _state.call = call
        try:
            response = original_call(self, operation_name, params)
            call.consumed_capacity = response.get("ConsumedCapacity")
            return response
        except Exception as error:  # recorded, then raised unchanged to the caller
            call.error = type(error).__name__
            raise
        finally:
            _state.call = None
            if snapshot is not None:
                call.after = _outside_watch(snapshot, keys)
            with lock:
                log.calls.append(call)

    def attempt(self: Client, headers: Any, body: bytes) -> Any:
        call = _current()
        if call is not None:
            call.round_trips += 1
        return original_send(self, headers, body)

    Client.call = watched  # type: ignore[method-assign]
    Client._send = attempt  # type: ignore[method-assign]
    try:
        yield log
    finally:
        Client.call = original_call  # type: ignore[method-assign]
        Client._send = original_send  # type: ignore[method-assign]


def _outside_watch(snapshot: Callable[[list[dict[str, Any]]], dict[str, Any]], keys: list[Any]) -> dict[str, Any]:
    _state.bypass = True
    try:
        return snapshot(keys)
    finally:
        _state.bypass = False


def table_snapshot(client: Any, table_name: str) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """A ``snapshot`` for ``watch_dynamodb`` that reads items with strongly consistent GetItems."""

    def read(keys: list[dict[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key in keys:
            item = client.get_item(TableName=table_name, Key=key, ConsistentRead=True).get("Item")
            found[capacity.key_of(key, KEY_NAMES)] = item
        return found

    return read


def reset_function_caches() -> None:
    """Rebuild the functions' module state (the store's client) against the current AWS (moto or not) and
    ``TABLE_NAME``, and drop any cached value a module keeps with ``functools.cache``."""
    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", "")
        if not name.startswith("functions."):
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == name:
                clear()
    from functions.store import build_store

    build_store()


@contextmanager
def functions_on_table(table_name: str, settings: definition.Settings | None = None) -> Iterator[None]:
    """The functions pointed at ``table_name`` (``TABLE_NAME``, fresh cached clients) with the environment the
    program gives them (``definition.function_environment`` of ``settings``, the defaults when not given);
    as before afterwards."""
    environment = definition.function_environment(settings or definition.Settings())
    wanted = {**environment, definition.TABLE_NAME_ENV: table_name}
    previous = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    reset_function_caches()
    try:
        yield
    finally:
        reset_function_caches()
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
