"""The local site under load: requests per second for visit and count pages, and the stream lag meanwhile.

The site runs in this process exactly as ``./dev site`` runs it (moto, real handlers, the event source
mapping with the stack's settings, counts persisted to a state directory); the clients run in another process
(``bench.loadclient``). While the visits run, a poller here reads the site-wide total every
``POLL_SECONDS``. A visit's lag is the time from its response until the total includes it. The total holds no
names, so "includes it" is judged safely: when the total has grown by every visit answered by then plus
every visit still in flight (any of which might have been written first), this visit is certainly in.
That is an upper bound, tight to within one stream batch, and its resolution is the poll interval.
"""

from __future__ import annotations

import bisect
import json
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import definition
from bench.stats import median, percentile
from functions.keys import COUNT_ATTRIBUTE, total_key

POLL_SECONDS = 0.02
TAGS = 50
NEW_TAG_PAGE = "new-tag visit (GET /tags/{new tag})"
COUNT_PAGE = "count (GET /counts/{tag})"
NEW_TAG_RATIO_GOAL = 0.7
"""Visits to tags never seen before (the slowest visit: moto creates the item) against count pages, per second."""
NEW_TAG_GOAL_PER_SECOND = 150


@dataclass
class Throughput:
    """One page's load figures."""

    page: str
    clients: int
    requests: int
    errors: int
    seconds: float
    median_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        """Requests answered per second over the whole run."""
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class SiteLoad:
    """The local site's figures under load."""

    pages: list[Throughput] = field(default_factory=list)
    lag_median_ms: float = float("nan")
    lag_p99_ms: float = float("nan")
    lag_samples: int = 0
    lag_unresolved: int = 0
    """Visits the total never included before the drain deadline (a lost count if not zero)."""
    total_before: int = 0
    total_after: int = 0
    visits_answered: int = 0
    batch_window_seconds: int = 0
    batch_size: int = 0

    def page(self, name: str) -> Throughput | None:
        """The figures of one page (``None``: not measured)."""
        return next((page for page in self.pages if page.page == name), None)

    @property
    def new_tag_ratio(self) -> float:
        """New-tag visits per second against count pages per second, measured one after the other."""
        new, count = self.page(NEW_TAG_PAGE), self.page(COUNT_PAGE)
        return new.per_second / count.per_second if new and count and count.per_second else float("nan")


class _TotalPoller:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table_name = table_name
        self.times: list[float] = []
        self.totals: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-total-poller", daemon=True)

    def read(self) -> int:
        item = self.client.get_item(TableName=self.table_name, Key=total_key(), ConsistentRead=True).get("Item")
        return int(item[COUNT_ATTRIBUTE]["N"]) if item else 0

    def _run(self) -> None:
        while not self._stop.is_set():
            total = self.read()
            self.times.append(time.monotonic())
            self.totals.append(total)
            self._stop.wait(POLL_SECONDS)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def first_reaching(self, threshold: int, after: float) -> float | None:
        """The first poll at or after ``after`` whose total is at least ``threshold``."""
        start = bisect.bisect_left(self.times, after)
        for index in range(start, len(self.times)):
            if self.totals[index] >= threshold:
                return self.times[index]
        return None


def _load(url: str, paths: list[str], clients: int, requests: int, seconds: float) -> list[dict[str, float]]:
    command = [sys.executable, "-m", "bench.loadclient", url, "--clients", str(clients),
               "--requests", str(requests), "--seconds", str(seconds)]
    for path in paths:
        command += ["--path", path]
    done = subprocess.run(command, cwd=definition.ROOT, capture_output=True, text=True, timeout=seconds + 120,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"load clients failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def _throughput(page: str, clients: int, figures: list[dict[str, float]]) -> Throughput:
    if not figures:
        return Throughput(page, clients, 0, 0, 0.0, float("nan"), float("nan"))
    seconds = max(f["end"] for f in figures) - min(f["start"] for f in figures)
    latencies = [(f["end"] - f["start"]) * 1000 for f in figures]
    errors = sum(1 for f in figures if f["status"] != 200)
    return Throughput(page, clients, len(figures), errors, seconds, median(latencies), percentile(latencies, 99))


def measure_site(
    settings: definition.Settings,
    *,
    clients: int = 8,
    requests: int = 600,
    seconds: float = 60.0,
    drain_timeout: float = 60.0,
) -> SiteLoad:
    """Load the visit and count pages of a fresh local site, ``requests`` each, and measure the stream lag;
    then as many visits to tags never seen before, right after the count pages (their rates compared)."""
    from localsite.site import LocalSite  # imported here: it starts nothing until start()

    result = SiteLoad(batch_window_seconds=settings.stream_batching_window_seconds,
                      batch_size=settings.stream_batch_size)
    visit_paths = [f"/tags/bench-{index}" for index in range(TAGS)]
    count_paths = [f"/counts/bench-{index}" for index in range(TAGS)]
    with tempfile.TemporaryDirectory(prefix="tag-counter-site-") as state_dir:
        site = LocalSite(settings=settings, port=0, state_dir=state_dir, fresh=True)
        site.start()
        try:
            poller = _TotalPoller(site.dynamodb, site.table_name)
            site.drain(drain_timeout)
            result.total_before = poller.read()
            poller.start()
            visits = _load(site.url, visit_paths, clients, requests, seconds)
            site.drain(drain_timeout)
            time.sleep(3 * POLL_SECONDS)  # let the poller see the drained total
            poller.stop()
            result.total_after = poller.read()
            result.pages.append(_throughput("visit (GET /tags/{tag})", clients, visits))
            answered = [v for v in visits if v["status"] == 200]
            result.visits_answered = len(answered)
            lags = []
            for visit in answered:
                threshold = result.total_before + int(visit["answered"]) + int(visit["in_flight"])
                threshold = min(threshold, result.total_before + len(answered))
                reached = poller.first_reaching(threshold, visit["end"])
                if reached is None:
                    result.lag_unresolved += 1
                else:
                    lags.append((reached - visit["end"]) * 1000)
            result.lag_samples = len(lags)
            result.lag_median_ms = median(lags)
            result.lag_p99_ms = percentile(lags, 99)
            counts = _load(site.url, count_paths, clients, requests, seconds)
            result.pages.append(_throughput(COUNT_PAGE, clients, counts))
            new_paths = [f"/tags/bench-new-{index}" for index in range(requests)]  # each tag once
            result.pages.append(_throughput(NEW_TAG_PAGE, clients, _load(site.url, new_paths, clients, requests,
                                                                        seconds)))
        finally:
            site.stop()
    return result
