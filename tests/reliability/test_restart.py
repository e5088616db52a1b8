"""Restart: the local site is stopped and started again (same state folder, same port) in the middle of a load.

Visitors keep coming through the restart; a visitor whose connection is refused while the site is down tries
again, as someone reloading the page would. Just before the stop DynamoDB starts throttling, so visits are
caught mid-request by the stop (in the SDK's retry backoff). No count confirmed to a visitor (a visit number on
a success page) may be lost, no number may be handed out twice, a visit in flight at the stop must end with a
page (not a 500) and never reach past moto, and after the restart's reconcile and a drain the total is exact.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from pathlib import Path

from localsite.faults import touches_tag_items
from localsite.site import LocalSite
from tests.reliability.helpers import (
    FAST_MAPPING,
    Planned,
    dev_settings,
    drain,
    figures,
    numbers_by_tag,
    tag_counts,
    total,
    visit_concurrently,
    wait_until,
)

SEED = 8
VISITS = 300
VISITORS = 12
RESTART_AFTER = 100
"""Answers received before the site is stopped."""
REFUSED_RETRY_SECONDS = 60.0
"""How long a visitor keeps reloading while the site is down (a bound against a hang, not a timing)."""


def test_a_restart_under_load_loses_no_confirmed_count(state_dir: Path) -> None:
    rng = random.Random(SEED)
    tags = [f"r-{n:02d}" for n in range(30)]
    plan = [Planned(tag, tag) for tag in rng.choices(tags, weights=range(30, 0, -1), k=VISITS)]
    settings = dev_settings()
    first = LocalSite(settings, port=0, state_dir=state_dir, mapping_options=FAST_MAPPING).start()
    port = first.port
    sites: list[LocalSite] = [first]
    halfway = threading.Event()
    restarted = threading.Event()
    problems: list[BaseException] = []
    answers = {"before the restart": 0, "after it": 0}
    lock = threading.Lock()

    def on_answer(done: int) -> None:
        with lock:
            if not halfway.is_set():
                answers["before the restart"] += 1
            elif restarted.is_set():
                answers["after it"] += 1
        if done >= RESTART_AFTER:
            halfway.set()

    stop_began: list[float] = []

    def restart() -> None:
        try:
            halfway.wait(300)
            # DynamoDB throttles as the stop comes: visits are in flight, some of them in retry backoff
            first.faults.throttle("UpdateItem", probability=0.5, when=touches_tag_items)
            wait_until(lambda: first.faults.counts.throttled.get("UpdateItem", 0) >= VISITORS // 2, timeout=30)
            stop_began.append(time.monotonic())
            first.stop()
            sites.append(LocalSite(settings, port=port, state_dir=state_dir, mapping_options=FAST_MAPPING).start())
        except BaseException as error:  # reported by the test below, not lost in a thread
            problems.append(error)
        finally:
            restarted.set()

    restarter = threading.Thread(target=restart, name="restarter", daemon=True)
    restarter.start()
    try:
        # WHEN visitors keep visiting while the site stops and starts again
        visits = visit_concurrently(
            port, settings.stage_name, plan, VISITORS, on_answer=on_answer, retry_refused=REFUSED_RETRY_SECONDS
        )
        assert restarted.wait(300) and problems == [], problems
        second = sites[-1]
        assert second is not first
        drain(second)
        counts = tag_counts(second)
        site_total = total(second)
    finally:
        restarter.join(60)
        for site in sites:
            site.stop()

    result = figures(visits, counts, site_total)
    result.show("restart under load")
    in_flight = [v for v in visits if v.status is not None and v.started < stop_began[0] < v.ended]
    cut = Counter(visit.error.split("(")[0] for visit in visits if visit.status is None)
    print(
        f"[restart under load] answers {answers}; in flight when the stop began and answered {len(in_flight)} "
        f"{dict(Counter(v.status for v in in_flight))}; unanswered {dict(cut)}; "
        f"tag items restored {second.restored}"
    )

    # THEN the restart really happened mid-load, with counts to restore
    assert second.restored > 0
    assert answers["before the restart"] >= RESTART_AFTER - VISITORS and answers["after it"] > 0
    assert in_flight, "no visit was in flight when the stop began"
    # ... every visit was answered with a success page, a 503 (throttled), or (cut by the stop) not at all
    assert {visit.status for visit in visits} <= {200, 503, None}, sorted({str(v.status) for v in visits})
    # ... no confirmed count was lost, and no visit number was handed out twice
    assert result.lost == 0
    assert result.repeated_numbers == 0
    for tag, numbers in numbers_by_tag(visits).items():
        assert numbers[-1] <= counts[tag], (tag, numbers[-1], counts[tag])
    # ... nothing counted beyond the visits sent, and the total is exact after the reconcile and the drain
    assert result.doubled == 0
    assert site_total == sum(counts.values())


def test_a_request_that_arrives_while_the_site_stops_gets_a_try_again_page(state_dir: Path) -> None:
    settings = dev_settings()
    site = LocalSite(settings, port=0, state_dir=state_dir, mapping_options=FAST_MAPPING).start()
    try:
        # GIVEN a visitor's keep-alive connection that already carried one visit
        connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=30)
        connection.request("GET", f"/{settings.stage_name}/tags/kept")
        first = connection.getresponse()
        first.read()
        assert first.status == 200
    finally:
        # WHEN the site stops (moto, the mapping and the saved state go away with it)
        site.stop()
    try:
        # ... and the same connection carries another visit
        connection.request("GET", f"/{settings.stage_name}/tags/kept")
        second = connection.getresponse()
        body = second.read().decode("utf-8")
    finally:
        connection.close()
    # THEN it gets the "try again" page, the connection closes, and the visit reached no function
    assert second.status == 503
    assert second.getheader("Retry-After") == "2" and second.getheader("Connection") == "close"
    assert second.getheader("Content-Type") == "text/html; charset=utf-8"
    assert "<h1>Too many visits right now</h1>" in body
    with LocalSite(settings, port=0, state_dir=state_dir, mapping_options=FAST_MAPPING) as again:
        assert tag_counts(again) == {"kept": 1}
        assert total(again) == 1


def test_a_stop_waits_for_running_requests_but_not_forever() -> None:
    from localsite.site import _InFlight

    requests = _InFlight()
    assert requests.enter() and requests.enter()
    requests.leave()
    # One request still runs: closing lets no new one in, and gives up waiting after its grace period
    assert requests.close(timeout=0.05) is False
    assert requests.enter() is False
    requests.leave()
    assert requests.close(timeout=0.05) is True
