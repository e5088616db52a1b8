"""What the reliability tests share: the site as the dev stack configures it, visitors over HTTP, the figures.

Visitors are threads speaking HTTP to 127.0.0.1 with ``http.client``, one connection per visit, as separate
browsers would. Every visit's outcome is kept (status, the visit number a success page showed), so a test
can compare what visitors were told with what the table holds: visits sent, counted, lost, doubled.
"""

from __future__ import annotations

import dataclasses
import html
import http.client
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from definition import ROOT, Settings, stack_settings
from functions.keys import COUNT_ATTRIBUTE, PARTITION_KEY, TAG_PREFIX, total_key
from localsite.aws import StreamReader
from localsite.esm import MappingOptions
from localsite.site import LocalSite
from tests.localsite.helpers import wait_until  # one polling helper for both suites

# Local polling knobs only (not settings of the deployed mapping): the tests do not sit idle between polls.
FAST_MAPPING = MappingOptions(poll_interval=0.02, idle_interval_max=0.1, retry_backoff=0.01, retry_backoff_max=0.05)

DRAIN_TIMEOUT = 90.0
"""Seconds a drain may take before the test fails as a hang (not a speed limit: drains take ~1-3 s here)."""

_NUMBER = re.compile(r'id="visit-number">\s*([\d,]+)\s*<')  # grouped by thousands, as every page shows it
_SHOWN_TAG = re.compile(r'<span class="tag" id="tag" dir="auto">(.*?)</span>', re.S)


def dev_settings(**overrides: Any) -> Settings:
    """The dev stack's settings (``Pulumi.dev.yaml``), with the given fields changed."""
    settings = dataclasses.replace(stack_settings("dev"), **overrides)
    settings.validate()
    return settings


@contextmanager
def running_site(state_dir: Path, **kwargs: Any) -> Iterator[LocalSite]:
    """A started local site on a free port (or the one given), with the dev stack's settings unless given."""
    kwargs.setdefault("settings", dev_settings())
    kwargs.setdefault("mapping_options", FAST_MAPPING)
    kwargs.setdefault("port", 0)
    site = LocalSite(state_dir=state_dir, **kwargs)
    site.start()
    try:
        yield site
    finally:
        site.stop()


STARTUP_TIMEOUT = 60
"""Seconds a ``python -m localsite`` process may take to print its URL (a hang, not a measurement)."""


def start_site(state_dir: Path) -> tuple[subprocess.Popen[str], int]:
    """``./dev site``'s process (``--quiet``) on a free port; the process and its port once it prints its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "localsite", "--port", "0", "--state-dir", str(state_dir), "--quiet"],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    found = threading.Event()
    port: list[int] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = re.search(r"running at http://127\.0\.0\.1:(\d+)/", line)
            if match:
                port.append(int(match.group(1)))
                found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(STARTUP_TIMEOUT):
        process.kill()
        raise AssertionError("the local site did not start")
    return process, port[0]


def drain(site: LocalSite) -> None:
    """Wait until the stream mapping has handled every record written so far; fail if it never does."""
    assert site.drain(DRAIN_TIMEOUT), "the stream did not drain"


# -- HTTP -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One HTTP response, body decoded."""

    status: int
    headers: dict[str, str]
    body: str


def http_get(port: int, target: str, method: str = "GET", timeout: float = 30.0) -> Reply:
    """One request to 127.0.0.1:``port`` on its own connection (``OSError`` when it cannot be made)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, target, headers={"User-Agent": "tag-counter-reliability"})
        response = connection.getresponse()
        body = response.read().decode("utf-8")
        return Reply(response.status, {name.lower(): value for name, value in response.getheaders()}, body)
    finally:
        connection.close()


@dataclass(frozen=True)
class Planned:
    """One visit to make: the path segment as sent (percent-encoded) and the tag it must count for."""

    raw: str
    tag: str
    """The normalized tag, written out by the test (not computed by the product's code)."""


@dataclass(frozen=True)
class Visit:
    """What one visitor saw."""

    planned: Planned
    status: int | None
    """HTTP status; ``None`` when no answer came (connection refused, reset or cut)."""
    number: int | None = None
    """The visit number a success page showed."""
    shown_tag: str | None = None
    retry_after: str | None = None
    sent: bool = True
    """Whether the request may have reached the site (False: the connection was refused, so it did not)."""
    body: str = ""
    error: str = ""
    """Why no answer came, when none did."""
    started: float = 0.0
    ended: float = 0.0
    """When the request was sent and its answer read (``time.monotonic``), to tell what a stop interrupted."""


def visit_page(port: int, stage: str, planned: Planned) -> Visit:
    """Open one tag's visit page and read what it says."""
    started = time.monotonic()
    visit = _visit_page(port, stage, planned)
    return dataclasses.replace(visit, started=started, ended=time.monotonic())


def _visit_page(port: int, stage: str, planned: Planned) -> Visit:
    try:
        reply = http_get(port, f"/{stage}/tags/{planned.raw}")
    except ConnectionRefusedError as error:
        return Visit(planned, None, sent=False, error=repr(error))
    except (OSError, http.client.HTTPException) as error:
        # The request went out, the answer did not come back: whether it counted, nobody can tell.
        return Visit(planned, None, error=repr(error))
    number = shown = None
    if reply.status == 200:
        found = _NUMBER.search(reply.body)
        number = int(found.group(1).replace(",", "")) if found else None
        tag = _SHOWN_TAG.search(reply.body)
        shown = html.unescape(tag.group(1)) if tag else None
    return Visit(planned, reply.status, number, shown, reply.headers.get("retry-after"), body=reply.body)


def visit_concurrently(
    port: int,
    stage: str,
    plan: Sequence[Planned],
    threads: int,
    *,
    on_answer: Callable[[int], None] | None = None,
    retry_refused: float = 0.0,
) -> list[Visit]:
    """Make every planned visit from ``threads`` visitor threads; the outcomes in plan order.

    ``on_answer(n)`` is called after each answer with how many visits are done. With ``retry_refused`` > 0,
    a visit whose connection is refused (the site is not listening: it cannot have counted) is tried again
    for up to that many seconds, as a visitor reloading a page would.
    """
    outcomes: list[Visit | None] = [None] * len(plan)
    lock = threading.Lock()
    state = {"next": 0, "done": 0}

    def visitor() -> None:
        while True:
            with lock:
                index = state["next"]
                if index >= len(plan):
                    return
                state["next"] += 1
            deadline = time.monotonic() + retry_refused
            outcome = visit_page(port, stage, plan[index])
            while not outcome.sent and time.monotonic() < deadline:
                time.sleep(0.02)
                outcome = visit_page(port, stage, plan[index])
            with lock:
                outcomes[index] = outcome
                state["done"] += 1
                done = state["done"]
            if on_answer is not None:
                on_answer(done)

    workers = [threading.Thread(target=visitor, name=f"visitor-{n}", daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(600)
    assert all(not worker.is_alive() for worker in workers), "a visitor hung"
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


# -- the table --------------------------------------------------------------------------------------------------


def all_items(site: LocalSite) -> dict[str, dict[str, Any]]:
    """Every item of the table by key (a consistent scan)."""
    items: dict[str, dict[str, Any]] = {}
    for page in site.dynamodb.get_paginator("scan").paginate(TableName=site.table_name, ConsistentRead=True):
        for item in page["Items"]:
            items[item[PARTITION_KEY]["S"]] = item
    return items


def tag_counts(site: LocalSite) -> dict[str, int]:
    """Every tag's visits, by tag (prefix removed)."""
    return {
        key[len(TAG_PREFIX) :]: int(item.get(COUNT_ATTRIBUTE, {"N": "0"})["N"])
        for key, item in all_items(site).items()
        if key.startswith(TAG_PREFIX)
    }


def total(site: LocalSite) -> int:
    """The site-wide total (0 before the stream processor first wrote it)."""
    item = site.dynamodb.get_item(TableName=site.table_name, Key=total_key(), ConsistentRead=True).get("Item")
    return int(item[COUNT_ATTRIBUTE]["N"]) if item else 0


def tag_records(site: LocalSite) -> list[dict[str, Any]]:
    """Every tag item's record in the table's stream so far, read from moto's stream from its start."""
    reader = StreamReader(site.table_name, "TRIM_HORIZON")
    records: list[dict[str, Any]] = []
    while batch := reader.read():
        records.extend(batch)
    return [r for r in records if r["dynamodb"]["Keys"][PARTITION_KEY]["S"].startswith(TAG_PREFIX)]


def record_delta(record: dict[str, Any]) -> int:
    """What a tag record changes in the tag's visits, read from its images (independently of the processor)."""
    data = record["dynamodb"]
    new = int(data.get("NewImage", {}).get(COUNT_ATTRIBUTE, {"N": "0"})["N"]) if record["eventName"] != "REMOVE" else 0
    old = int(data.get("OldImage", {}).get(COUNT_ATTRIBUTE, {"N": "0"})["N"]) if record["eventName"] != "INSERT" else 0
    return new - old


# -- the figures ------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """What visitors were told against what the table holds."""

    sent: int
    """Visits sent (requests that may have reached the site)."""
    confirmed: int
    """Success pages (200 with a visit number)."""
    refused: int
    """Error pages that say "try again" (503)."""
    unanswered: int
    """Requests sent whose answer never came (connection cut): counted or not, nobody knows."""
    other: int
    """Any other status."""
    counted: int
    """Visits the tag items hold."""
    lost: int
    """Confirmed visits the table does not hold (per tag: confirmed beyond the count)."""
    doubled: int
    """Visits the table holds beyond those confirmed or unanswered (per tag)."""
    repeated_numbers: int
    """Visit numbers shown to two visitors of the same tag."""
    total: int
    """The site-wide total item."""

    @property
    def total_off(self) -> int:
        return self.total - self.counted

    def show(self, label: str) -> None:
        """Print the figures (run pytest with ``-s`` to see them)."""
        print(
            f"\n[{label}] visits sent {self.sent}: success pages {self.confirmed}, 503 pages {self.refused}, "
            f"unanswered {self.unanswered}, other {self.other}; counted {self.counted}, lost {self.lost}, "
            f"doubled {self.doubled}, visit numbers shown twice {self.repeated_numbers}; "
            f"total {self.total} (off by {self.total_off})"
        )


def figures(visits: Sequence[Visit], counts: dict[str, int], site_total: int) -> Figures:
    """Compare the visits' outcomes with the tag counts (``counts`` by tag) and the total."""
    confirmed: Counter[str] = Counter()
    unanswered: Counter[str] = Counter()
    numbers: dict[str, list[int]] = defaultdict(list)
    refused = other = 0
    for visit in visits:
        if not visit.sent:
            continue
        if visit.status == 200:
            confirmed[visit.planned.tag] += 1
            if visit.number is not None:
                numbers[visit.planned.tag].append(visit.number)
        elif visit.status is None:
            unanswered[visit.planned.tag] += 1
        elif visit.status == 503:
            refused += 1
        else:
            other += 1
    tags = set(confirmed) | set(counts)
    return Figures(
        sent=sum(1 for visit in visits if visit.sent),
        confirmed=sum(confirmed.values()),
        refused=refused,
        unanswered=sum(unanswered.values()),
        other=other,
        counted=sum(counts.values()),
        lost=sum(max(0, confirmed[tag] - counts.get(tag, 0)) for tag in tags),
        doubled=sum(max(0, counts.get(tag, 0) - confirmed[tag] - unanswered[tag]) for tag in tags),
        repeated_numbers=sum(len(found) - len(set(found)) for found in numbers.values()),
        total=site_total,
    )


def numbers_by_tag(visits: Sequence[Visit]) -> dict[str, list[int]]:
    """The visit numbers success pages showed, by tag, sorted."""
    found: dict[str, list[int]] = defaultdict(list)
    for visit in visits:
        if visit.status == 200 and visit.number is not None:
            found[visit.planned.tag].append(visit.number)
    return {tag: sorted(values) for tag, values in found.items()}
