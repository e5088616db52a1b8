"""Fault hooks for reliability tests: make DynamoDB throttle, make the stream processor fail, deliver twice.

Everything is off until a test asks for it, and every switch is thread-safe (the site serves requests on many
threads while the stream mapping runs on its own).

- :meth:`Faults.throttle` answers chosen DynamoDB requests with a real throttling error, from a
  ``localsite.hooks`` before-send listener that runs before moto: the client (the functions' or boto3's)
  parses it, retries it, and raises it exactly as it would a throttle from DynamoDB. Each attempt (retries
  included) is one request a rule can catch.
- :meth:`Faults.fail_processor` makes the stream mapping's invocation of the processor fail, either before
  the processor runs (nothing written) or after it returned (its write committed, then the invocation fails
  as a timeout would: Lambda sees an error and retries a batch whose effect is already applied).
- :meth:`Faults.redeliver` delivers the next successful batches a second time, as Lambda does when the
  response of an invocation is lost.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from functions.keys import PARTITION_KEY, TAG_PREFIX
from localsite import hooks
from localsite.aws import mark_answered

THROTTLING_CODES = ("ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded")

RequestPredicate = Callable[[str, Mapping[str, Any]], bool]
"""``predicate(operation, params)``: whether a DynamoDB request (its JSON parameters) should be throttled."""
BatchPredicate = Callable[[Sequence[Mapping[str, Any]]], bool]
"""``predicate(records)``: whether a batch of stream records (boto3's form) should fail."""


class InjectedFault(RuntimeError):
    """The stream processor's invocation failed because a test asked it to."""


def touches_tag_items(operation: str, params: Mapping[str, Any]) -> bool:
    """Whether a request reads or writes a tag item (``tag#...``): the predicate for "throttle tag writes"."""
    keys: list[Any] = []
    if "Key" in params:
        keys.append(params["Key"])
    if "Item" in params:
        keys.append(params["Item"])
    for entry in params.get("TransactItems", ()):
        for action in entry.values():
            keys.append(action.get("Key") or action.get("Item") or {})
    for table in (params.get("RequestItems") or {}).values():
        if isinstance(table, Mapping):  # BatchGetItem
            keys.extend(table.get("Keys", ()))
        else:  # BatchWriteItem
            for request in table:
                for action in request.values():
                    keys.append(action.get("Key") or action.get("Item") or {})
    return any(str(key.get(PARTITION_KEY, {}).get("S", "")).startswith(TAG_PREFIX) for key in keys)


@dataclass
class _Rule:
    """One armed fault: fires while ``remaining`` (``None`` = forever) lasts, where ``matches`` says so."""

    matches: Callable[..., bool]
    remaining: int | None
    probability: float | None
    rng: random.Random
    payload: Any = None
    fired: int = 0

    def take(self, *args: Any) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if not self.matches(*args):
            return False
        if self.probability is not None and self.rng.random() >= self.probability:
            return False
        if self.remaining is not None:
            self.remaining -= 1
        self.fired += 1
        return True


@dataclass
class FaultCounts:
    """How often each fault fired, for tests to check their fault was really exercised."""

    throttled: dict[str, int] = field(default_factory=dict)
    """Requests answered with a throttling error, by operation."""
    failed_before: int = 0
    failed_after: int = 0
    redelivered: int = 0


class Faults:
    """The fault switches of one local site (all off by default)."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._throttles: list[_Rule] = []
        self._before: list[_Rule] = []
        self._after: list[_Rule] = []
        self._redeliveries = 0
        self.counts = FaultCounts()

    # -- DynamoDB throttling -------------------------------------------------------------------------------

    def throttle(
        self,
        operation: str | None = None,
        *,
        count: int | None = None,
        probability: float | None = None,
        when: RequestPredicate | None = None,
        code: str = "ProvisionedThroughputExceededException",
    ) -> None:
        """Throttle DynamoDB requests: of ``operation`` (any if ``None``) that satisfy ``when``.

        ``count`` limits how many requests are throttled (``None``: until :meth:`clear`); ``probability``
        throttles only that share of them (seeded, so a test run is repeatable). Examples: the next 3
        ``UpdateItem`` on tag items: ``throttle("UpdateItem", count=3, when=touches_tag_items)``;
        20% of ``TransactWriteItems``: ``throttle("TransactWriteItems", probability=0.2)``.
        """
        if code not in THROTTLING_CODES:
            raise ValueError(f"code must be one of {THROTTLING_CODES}")
        if probability is not None and not 0 <= probability <= 1:
            raise ValueError("probability must be between 0 and 1")

        def matches(op: str, params: Mapping[str, Any]) -> bool:
            return (operation is None or op == operation) and (when is None or when(op, params))

        with self._lock:
            self._throttles.append(_Rule(matches, count, probability, self._rng, payload=code))

    def _before_send(self, operation: str, params: dict[str, Any], request: AWSPreparedRequest) -> AWSResponse | None:
        with self._lock:
            rule = next((r for r in self._throttles if r.take(operation, params)), None)
            if rule is None:
                return None
            self.counts.throttled[operation] = self.counts.throttled.get(operation, 0) + 1
        mark_answered(request)  # the request must fail, not also succeed behind the error
        return throttling_response(request, rule.payload, operation, "injected")

    # -- the stream processor ------------------------------------------------------------------------------

    def fail_processor(
        self, stage: str = "before", *, count: int | None = 1, when: BatchPredicate | None = None
    ) -> None:
        """Make invocations of the stream processor fail, ``before`` it runs or ``after`` it returned.

        ``count`` invocations fail (``None``: every one until :meth:`clear`), only those whose batch
        satisfies ``when`` if given.
        """
        if stage not in ("before", "after"):
            raise ValueError("stage must be 'before' or 'after'")
        rule = _Rule(when or (lambda records: True), count, None, self._rng)
        with self._lock:
            (self._before if stage == "before" else self._after).append(rule)

    def redeliver(self, count: int = 1) -> None:
        """Deliver each of the next ``count`` successful batches a second time, right after the first."""
        with self._lock:
            self._redeliveries += count

    def before_invoke(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Raise :class:`InjectedFault` if a "before" fault takes this batch (called by the mapping)."""
        with self._lock:
            fire = any(rule.take(records) for rule in self._before)
            if fire:
                self.counts.failed_before += 1
        if fire:
            raise InjectedFault("injected failure before the stream processor ran")

    def after_invoke(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Raise :class:`InjectedFault` if an "after" fault takes this batch (its write is already done)."""
        with self._lock:
            fire = any(rule.take(records) for rule in self._after)
            if fire:
                self.counts.failed_after += 1
        if fire:
            raise InjectedFault("injected failure after the stream processor ran (as a timeout)")

    def take_redelivery(self) -> bool:
        """Whether the batch that just succeeded should be delivered again (called by the mapping)."""
        with self._lock:
            if self._redeliveries <= 0:
                return False
            self._redeliveries -= 1
            self.counts.redelivered += 1
            return True

    # -- lifecycle -----------------------------------------------------------------------------------------

    def clear(self) -> None:
        """Switch every fault off (the counts stay)."""
        with self._lock:
            self._throttles.clear()
            self._before.clear()
            self._after.clear()
            self._redeliveries = 0

    def attach(self) -> None:
        """Start answering DynamoDB requests (the throttles need this; the local site calls it)."""
        hooks.add_before_send(self._before_send)

    def detach(self) -> None:
        """Stop seeing DynamoDB requests."""
        hooks.remove(self._before_send)


class _RawBody:
    """The ``raw`` part of a botocore response (which ``localsite.transport`` reads too): streams the body."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any):  # type: ignore[no-untyped-def]
        yield self._body


def throttling_response(request: AWSPreparedRequest, code: str, operation: str, why: str) -> AWSResponse:
    """DynamoDB's throttling error ``code`` for ``request`` (HTTP 400, the type in ``__type``), ``why`` in its message."""
    body = json.dumps(
        {
            "__type": f"com.amazonaws.dynamodb.v20120810#{code}",
            "message": f"Throughput exceeds the current capacity for one or more resources ({operation}, {why})",
        }
    ).encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-RequestId": str(uuid.uuid4()),
        "Content-Length": str(len(body)),
    }
    return AWSResponse(request.url, 400, headers, _RawBody(body))
