"""Helpers for tests that run the local site: start it, talk HTTP to it, read its table and stream."""

from __future__ import annotations

import dataclasses
import http.client
from html.parser import HTMLParser
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


from definition import Settings, stack_settings
from functions.keys import COUNT_ATTRIBUTE, PARTITION_KEY, TAG_PREFIX, total_key
from localsite.aws import StreamReader
from localsite.esm import MappingOptions
from localsite.site import LocalSite

# Short waits and backoffs: the mapping's behaviour is the same, the tests just do not sit idle.
FAST_MAPPING = MappingOptions(poll_interval=0.02, idle_interval_max=0.1, retry_backoff=0.01, retry_backoff_max=0.05)


class FakeClock:
    """A clock the mapping reads for its batching window and record ages; it moves only when told."""

    def __init__(self) -> None:
        self._now = time.time()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def set(self, now: float) -> None:
        with self._lock:
            self._now = now


def test_settings(**overrides: Any) -> Settings:
    """The dev stack's settings, without a batching window unless a test asks for one."""
    values: dict[str, Any] = {"stream_batching_window_seconds": 0}
    values.update(overrides)
    settings = dataclasses.replace(stack_settings("dev"), **values)
    settings.validate()
    return settings


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@contextmanager
def running_site(state_dir: Path, **kwargs: Any) -> Iterator[LocalSite]:
    """A started local site on a free port, stopped afterwards."""
    kwargs.setdefault("settings", test_settings())
    kwargs.setdefault("mapping_options", FAST_MAPPING)
    site = LocalSite(port=0, state_dir=state_dir, **kwargs)
    site.start()
    try:
        yield site
    finally:
        site.stop()


@dataclasses.dataclass
class Reply:
    """One HTTP response."""

    status: int
    headers: http.client.HTTPMessage
    body: str


def request(url: str, method: str = "GET", body: bytes | None = None) -> Reply:
    """One HTTP request, redirects not followed."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target or "/", body=body)
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read().decode("utf-8"))
    finally:
        connection.close()


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds (a hang, not a measurement)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def total(site: LocalSite) -> int:
    """The site-wide total item's visits (0 if it does not exist yet)."""
    item = site.dynamodb.get_item(TableName=site.table_name, Key=total_key(), ConsistentRead=True).get("Item")
    return int(item[COUNT_ATTRIBUTE]["N"]) if item else 0


def tag_counts(site: LocalSite) -> dict[str, int]:
    """Every tag item's visits, by stored key (a full scan)."""
    counts: dict[str, int] = {}
    for page in site.dynamodb.get_paginator("scan").paginate(TableName=site.table_name, ConsistentRead=True):
        for item in page["Items"]:
            key = item[PARTITION_KEY]["S"]
            if key.startswith(TAG_PREFIX):
                counts[key] = int(item.get(COUNT_ATTRIBUTE, {"N": "0"})["N"])
    return counts


def all_items(site: LocalSite) -> list[dict[str, Any]]:
    """Every item in the table, sorted (to compare before and after)."""
    items: list[dict[str, Any]] = []
    for page in site.dynamodb.get_paginator("scan").paginate(TableName=site.table_name, ConsistentRead=True):
        items.extend(page["Items"])
    return sorted(items, key=lambda item: item[PARTITION_KEY]["S"])


def stream_records(site: LocalSite) -> list[dict[str, Any]]:
    """Every record of the table's stream so far, read from moto's stream from the start."""
    reader = StreamReader(site.table_name, "TRIM_HORIZON")
    records: list[dict[str, Any]] = []
    while batch := reader.read():
        records.extend(batch)
    return records


def tag_records(site: LocalSite) -> list[dict[str, Any]]:
    """The stream records of tag items (what the mapping's filter lets through)."""
    return [r for r in stream_records(site) if r["dynamodb"]["Keys"][PARTITION_KEY]["S"].startswith(TAG_PREFIX)]


def visit(site: LocalSite, tag: str, times: int = 1) -> None:
    """Visit a tag's page through HTTP, asserting each visit counted."""
    for _ in range(times):
        reply = request(f"{site.url}tags/{tag}")
        assert reply.status == 200, reply.body


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.by_id: dict[str, dict[str, str]] = {}
        self.text_by_id: dict[str, str] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "a" and "href" in attributes:
            self.links.append(attributes["href"])
        if "id" in attributes:
            self.by_id[attributes["id"]] = attributes
            self.text_by_id[attributes["id"]] = ""
            self._open.append(attributes["id"])

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag in ("p", "span", "a", "h1"):
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element_id in self._open:
            self.text_by_id[element_id] += data


def parse_page(html: str) -> _PageParser:
    """Links, attributes and text by element id of a page."""
    parser = _PageParser()
    parser.feed(html)
    return parser
