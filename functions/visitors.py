"""The unique-visitor window: within ``uniqueVisitorWindowMinutes``, one visitor counts once per tag.

A visitor is ``HMAC-SHA256(stack secret, [tag, source address, User-Agent])``, truncated to 128 bits: the address
and the User-Agent are never stored or logged, the tag inside the hash keeps one visitor's markers for two tags
unlinkable, and without the secret (``VISITOR_KEY``, created by the Pulumi program, never in plain config) nobody
holding the table can test a guessed address against it. The marker item ``visitor#<hash>`` holds only its key and
``expires_at``, the table's TTL attribute, so DynamoDB deletes it after the window (within a day or two; the
condition below does not rely on that).

A counted visit is two writes, in this order:
1. ``PutItem`` of the marker on condition that there is none or it has expired; failing the condition means
   "already counted in this window" and nothing else is written;
2. then ``Store.record_visit`` adds the visit.
A failure between the two (a throttled or crashed step 2) leaves the marker without the visit: that one visit is
not counted, and the visitor's reloads inside the window are not either. It can never count twice: the count is only
added after this request won the marker, and only one request per visitor and window can win it (DynamoDB applies
conditional writes on one item one at a time). A lost answer to step 1 is retried by the SDK and then fails its
condition: again one visit under-counted, never two.

Why not one ``TransactWriteItems`` with both writes: it would be all-or-nothing, but it costs twice the write units
(4 instead of 2 per counted visit, transactions bill double) and returns no values, so showing this visit's number
would need a third call (a read, which would not even be this visit's own number under concurrency). Two plain
writes: 2 write units and 2 round trips per counted visit, and for a repeat 1 write unit (a failed conditional write
is billed) plus the read of the count.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from functions.dynamodb import ClientError
from functions.keys import PARTITION_KEY, TTL_ATTRIBUTE, visitor_key

DIGEST_BYTES = 16
"""128 bits of the HMAC: collisions between visitors of one tag are out of reach, and the key stays short."""

clock: Callable[[], float] = time.time
"""Where the window's time comes from (tests replace it with a fake clock)."""


def visitor_digest(secret: bytes, tag: str, source_ip: str | None, user_agent: str | None) -> str:
    """The keyed hash naming one visitor of one tag (hex); JSON keeps the three parts from running together."""
    message = json.dumps([tag, source_ip or "", user_agent or ""], ensure_ascii=False).encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).digest()[:DIGEST_BYTES].hex()


def claim(client: Any, table_name: str, digest: str, minutes: int, now: float | None = None) -> bool:
    """Write the visitor's marker unless one is still in its window; ``True`` when this request may count.

    Step 1 of a counted visit (see the module's docstring): only a request that wins the marker counts.
    """
    moment = int(clock() if now is None else now)
    try:
        client.put_item(
            TableName=table_name,
            Item={**visitor_key(digest), TTL_ATTRIBUTE: {"N": str(moment + minutes * 60)}},
            # An expired marker may linger until TTL deletes it: it no longer holds the window.
            ConditionExpression="attribute_not_exists(#pk) OR #expires <= :now",
            ExpressionAttributeNames={"#pk": PARTITION_KEY, "#expires": TTL_ATTRIBUTE},
            ExpressionAttributeValues={":now": {"N": str(moment)}},
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True
