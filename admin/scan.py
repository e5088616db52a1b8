"""A parallel scan of the tag items, streamed: pages flow to the reader as the segments read them.

Each segment is a thread running its own ``Scan`` pages (``Segment``/``TotalSegments``); pages pass through a
queue of at most two pages per segment, so memory stays bounded by that (DynamoDB pages are up to 1 MB),
whatever the table holds. Only tag items are read (``begins_with(pk, "tag#")``, checked again here): the total
and the stream processor's markers never leave the table.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from admin.retry import with_backoff
from functions.keys import PARTITION_KEY, TAG_PREFIX

MAX_SEGMENTS = 64
"""More segments than this gain nothing on one machine (each is a thread and a connection)."""
DEFAULT_SEGMENTS = 4

_DONE = object()


def scan_tag_items(
    client: Any, table_name: str, *, segments: int = DEFAULT_SEGMENTS, page_size: int | None = None
) -> Iterator[dict[str, Any]]:
    """Every tag item (DynamoDB JSON), strongly consistent, in the order the segments return them."""
    if not 1 <= segments <= MAX_SEGMENTS:
        raise ValueError(f"segments must be between 1 and {MAX_SEGMENTS}")
    pages: queue.Queue[Any] = queue.Queue(maxsize=2 * segments)
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                pages.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read(segment: int) -> None:
        request: dict[str, Any] = {
            "TableName": table_name,
            "Segment": segment,
            "TotalSegments": segments,
            "FilterExpression": "begins_with(#pk, :tag)",
            "ExpressionAttributeNames": {"#pk": PARTITION_KEY},
            "ExpressionAttributeValues": {":tag": {"S": TAG_PREFIX}},
            "ConsistentRead": True,
        }
        if page_size is not None:
            request["Limit"] = page_size
        try:
            while not stop.is_set():
                page = with_backoff(lambda: client.scan(**request))
                if not put(page.get("Items", [])):
                    return
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except BaseException as error:  # handed to the reader, which raises it
            put(error)
            return
        put(_DONE)

    threads = [threading.Thread(target=read, args=(segment,), daemon=True) for segment in range(segments)]
    for thread in threads:
        thread.start()
    try:
        finished = 0
        while finished < segments:
            value = pages.get()
            if value is _DONE:
                finished += 1
            elif isinstance(value, BaseException):
                raise value
            else:
                for item in value:
                    if item[PARTITION_KEY]["S"].startswith(TAG_PREFIX):
                        yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join()
