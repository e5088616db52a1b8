"""The table's key design: one partition key, four namespaces that can never collide.

A tag is stored under ``tag#<normalized tag>``; the site-wide total lives at ``site#total``;
the stream processor's idempotency markers live under ``batch#<first sequence number>``; the unique-visitor
window's markers live under ``visitor#<keyed hash>`` (``functions.visitors``), expire by TTL and, not being tag
items, never reach the stream processor or the total.
A tag named ``total`` is stored at ``tag#total`` and so can never address the total item.
"""

from __future__ import annotations

PARTITION_KEY = "pk"
TAG_PREFIX = "tag#"
TOTAL_KEY = "site#total"
MARKER_PREFIX = "batch#"
VISITOR_PREFIX = "visitor#"

COUNT_ATTRIBUTE = "visits"
TTL_ATTRIBUTE = "expires_at"


def tag_key(tag: str) -> dict[str, dict[str, str]]:
    """The DynamoDB key of a normalized tag's item."""
    return {PARTITION_KEY: {"S": TAG_PREFIX + tag}}


def total_key() -> dict[str, dict[str, str]]:
    """The DynamoDB key of the site-wide total item."""
    return {PARTITION_KEY: {"S": TOTAL_KEY}}


def marker_key(batch_id: str) -> dict[str, dict[str, str]]:
    """The DynamoDB key of a stream batch's idempotency marker."""
    return {PARTITION_KEY: {"S": MARKER_PREFIX + batch_id}}


def visitor_key(digest: str) -> dict[str, dict[str, str]]:
    """The DynamoDB key of a visitor's window marker for one tag (``digest``: the keyed hash, never the visitor)."""
    return {PARTITION_KEY: {"S": VISITOR_PREFIX + digest}}
