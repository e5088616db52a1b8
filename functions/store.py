"""The data layer: every DynamoDB call the route functions make, one method per page.

Calls per request: a visit is one ``UpdateItem`` (two, once, after more than ``historyDays`` days of silence:
``record_visit``); a count page one ``BatchGetItem`` (plus one more per round of ``UnprocessedKeys``, rare); the
home page one ``GetItem``. The client is built once per container, at import (``build_store``), with short
timeouts, so a slow DynamoDB turns into an error page well inside the function timeout.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from functions import history
from functions.dynamodb import Client, ClientError
from functions.keys import COUNT_ATTRIBUTE, PARTITION_KEY, tag_key, total_key

TABLE_NAME_ENV = "TABLE_NAME"
LAMBDA_FUNCTION_ENV = "AWS_LAMBDA_FUNCTION_NAME"
"""Set by Lambda in every function's environment: tells a container from a test or the local site."""

# DynamoDB answers in milliseconds; a second without a connection or an answer means trouble, and three
# attempts (standard mode: throttling and transient errors, with backoff) still fit a 5-second route timeout.
MAX_ATTEMPTS = 3
TIMEOUT_SECONDS = 1.0

THROTTLING_ERRORS = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
"""DynamoDB error codes that mean "too many requests": the visitor gets a 503 and may retry."""

VISIT_WRITE_ATTEMPTS = 4
"""Bound on a visit's conditional writes: one as a rule, two after a long silence, more only under a race."""

UNPROCESSED_KEY_ROUNDS = 3
"""How many times ``read_counts`` asks again for keys BatchGetItem left unprocessed before giving up."""


class StoreBusy(Exception):
    """DynamoDB kept part of a read unprocessed (it does so under throttling), or a visit's write kept racing
    other writes: treated as throttling (503, try again), with nothing written."""


def is_throttling(error: BaseException) -> bool:
    """Whether ``error`` is DynamoDB saying "slow down" (retry later), as opposed to a real failure.

    From the functions' client or from botocore's (the operator command's): both raise a ``ClientError`` whose
    ``response`` is botocore's, so the code is read the same way from either.
    """
    if isinstance(error, StoreBusy):
        return True
    response = getattr(error, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") in THROTTLING_ERRORS


def _count(item: dict[str, Any] | None) -> int:
    if not item or COUNT_ATTRIBUTE not in item:
        return 0
    return int(item[COUNT_ATTRIBUTE]["N"])


@dataclass(frozen=True)
class TagCounts:
    """What an item (a tag, or the site-wide total) says: its visits and its visits per UTC day."""

    visits: int
    """All visits."""
    today: int
    """Visits on the current UTC day."""
    days: tuple[tuple[date, int], ...] = ()
    """The window's days, oldest first, each with its visits (0 for none); empty when not read."""

    @classmethod
    def of(cls, item: dict[str, Any] | None, today: date, days: int | None = None) -> TagCounts:
        """The counts of an item in DynamoDB JSON (``None``: no item, all zero); ``days`` fills the window."""
        held = history.item_days(item)
        window = tuple(history.series(item, today, days)) if days else ()
        return cls(_count(item), held.get(today, 0), window)


class Store:
    """Tag visits and the site-wide total in one DynamoDB table (keys from ``functions.keys``).

    ``history_days`` is the window of daily visits the items keep (default: ``HISTORY_DAYS``).
    """

    def __init__(self, client: Any, table_name: str, history_days: int | None = None) -> None:
        self.client = client
        self.table_name = table_name
        self.history_days = history.history_days() if history_days is None else history_days

    def record_visit(self, tag: str) -> TagCounts:
        """Add one visit to a normalized tag and to today's visits, atomically; return its new counts.

        One ``UpdateItem`` (see ``functions.history``). Only the first visit after more than ``history_days``
        days of silence fails its condition; it is written again from the old item DynamoDB returns with the
        failure, conditioned on that item's ``last_day``, so a visit racing it is never lost. Each failed
        attempt means another write changed the item, so a few attempts always suffice in practice; after
        ``VISIT_WRITE_ATTEMPTS`` the visit is refused as busy (503), having written nothing.
        """
        today = history.utc_today()
        today_name = history.day_attribute(today)
        seen: dict[str, Any] | None = None
        for _ in range(VISIT_WRITE_ATTEMPTS):
            write = history.day_write(today, self.history_days, seen)
            expression = f"ADD #visits :one, {today_name} :one SET #last = :today"
            if write.remove:
                expression += " REMOVE " + ", ".join(write.remove)
            try:
                response = self.client.update_item(
                    TableName=self.table_name,
                    Key=tag_key(tag),
                    UpdateExpression=expression,
                    ConditionExpression=write.condition,
                    ExpressionAttributeNames={"#visits": COUNT_ATTRIBUTE, **write.names},
                    ExpressionAttributeValues={":one": {"N": "1"}, **write.values},
                    # The new count and today's visits, for the page; the old item when the condition fails.
                    ReturnValues="UPDATED_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                seen = error.response.get("Item")  # None when the item has been deleted since
                continue
            return TagCounts.of(response.get("Attributes"), today)
        raise StoreBusy(f"the visit's write kept failing its condition ({VISIT_WRITE_ATTEMPTS} attempts)")

    def read_tag(self, tag: str) -> TagCounts:
        """A normalized tag's counts, without counting (strongly consistent: one's own visit shows)."""
        response = self.client.get_item(
            TableName=self.table_name,
            Key=tag_key(tag),
            ConsistentRead=True,
        )
        return TagCounts.of(response.get("Item"), history.utc_today())

    def _window_projection(self, today: date, *names: str) -> dict[str, Any]:
        # Only the window's days: an item may still hold days a write has not yet removed.
        placeholders = {f"#{name}": name for name in names}
        days = history.projection_names(today, self.history_days)
        return {
            "ProjectionExpression": ", ".join([*placeholders, *days]),
            "ExpressionAttributeNames": placeholders,
        }

    def read_counts(self, tag: str) -> tuple[TagCounts, TagCounts]:
        """A normalized tag's counts and the site-wide total's, with their windows, in one round trip.

        A missing item counts 0, and a day without visits too.
        """
        today = history.utc_today()
        request: dict[str, Any] = {
            self.table_name: {
                "Keys": [tag_key(tag), total_key()],
                **self._window_projection(today, PARTITION_KEY, COUNT_ATTRIBUTE),
                # Strongly consistent: a visitor who just counted a visit must see it on the count page.
                "ConsistentRead": True,
            }
        }
        found: dict[str, dict[str, Any]] = {}
        for attempt in range(UNPROCESSED_KEY_ROUNDS + 1):
            if attempt:
                time.sleep(0.05 * 2**attempt)  # DynamoDB leaves keys unprocessed when throttled: back off
            response = self.client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self.table_name, []):
                found[item[PARTITION_KEY]["S"]] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise StoreBusy("BatchGetItem left keys unprocessed")
        tag_item = found.get(tag_key(tag)[PARTITION_KEY]["S"])
        total_item = found.get(total_key()[PARTITION_KEY]["S"])
        return (
            TagCounts.of(tag_item, today, self.history_days),
            TagCounts.of(total_item, today, self.history_days),
        )

    def read_total(self) -> TagCounts:
        """The site-wide total and its window (all 0 before the first visit has been processed)."""
        today = history.utc_today()
        response = self.client.get_item(
            TableName=self.table_name,
            Key=total_key(),
            **self._window_projection(today, COUNT_ATTRIBUTE),
        )
        return TagCounts.of(response.get("Item"), today, self.history_days)


def dynamodb_client() -> Client:
    """A DynamoDB client with the timeouts and retries every function uses (``functions.dynamodb``: the standard
    library, not botocore, whose import and client were most of a cold start). Region, credentials and endpoint
    come from the environment, as Lambda sets them."""
    return Client(max_attempts=MAX_ATTEMPTS, timeout=TIMEOUT_SECONDS)


_store: Store | None = None


def build_store() -> Store | None:
    """Build the container's one Store from ``TABLE_NAME`` (none without it); ``get_store`` returns it.

    Called once at import, i.e. in Lambda's init phase, which runs at full CPU whatever the memory (a request
    runs at the memory's share). Tests and the local site call it again once moto is set up, or after changing
    ``TABLE_NAME``: a client made before moto starts would not be answered by it.
    """
    global _store
    table_name = os.environ.get(TABLE_NAME_ENV)
    if not table_name:
        _store = None
        return None
    freeze_container_objects()  # the modules: so that building the client does not walk them
    _store = Store(dynamodb_client(), table_name)
    freeze_container_objects()  # and the client
    return _store


def get_store() -> Store:
    """The container's one Store (built at import by ``build_store``); ``RuntimeError`` without ``TABLE_NAME``."""
    if _store is None:
        raise RuntimeError(f"{TABLE_NAME_ENV} is not set")
    return _store


def freeze_container_objects() -> None:
    """In Lambda, hide what the container built at init (modules, client, templates) from the cyclic collector.

    Those objects live as long as the container. Left in the collector's generations, the first full collection,
    which a first request triggers, walks all of them (about 60,000 objects, 20-40 ms, measured) to free next to
    nothing. Frozen, they are still freed by reference counting; only cycles among them would stay.
    Does nothing outside Lambda: a test run or the local site rebuilds the module state many times and keeps
    its garbage collected as usual.
    """
    if os.environ.get(LAMBDA_FUNCTION_ENV):
        gc.freeze()


build_store()  # at import: Lambda's init
