"""Hard kills: the local site is SIGKILLed under concurrent visits, several times, and started again.

Each round starts ``./dev site``'s process on the same state folder, sends visits from 16 visitors on
loopback, and kills it (SIGKILL: no signal handler, no clean stop, as the OOM killer does) after a number of
answers. The counts are written through before each answer leaves, so after the last restart every visit a
visitor was told about (a success page with its number) is counted, none is counted beyond the visits sent,
no visit number was handed out twice, and the total (recomputed at each start) equals the tags.
"""

from __future__ import annotations

import random
import subprocess
import threading
from pathlib import Path

from localsite.site import LocalSite
from tests.reliability.helpers import (
    FAST_MAPPING,
    Planned,
    dev_settings,
    drain,
    figures,
    STARTUP_TIMEOUT,
    numbers_by_tag,
    start_site,
    tag_counts,
    total,
    visit_concurrently,
)

ROUNDS = 2
VISITS_PER_ROUND = 250
KILL_AFTER = 100
"""Answers received in a round before its site is killed."""
VISITORS = 16
def test_sigkill_under_load_loses_no_confirmed_visit_and_reissues_no_number(state_dir: Path) -> None:
    rng = random.Random(23)
    tags = [f"k-{n:02d}" for n in range(20)]
    visits = []
    answered_before_kill = []
    for _ in range(ROUNDS):
        plan = [Planned(tag, tag) for tag in rng.choices(tags, weights=range(20, 0, -1), k=VISITS_PER_ROUND)]
        process, port = start_site(state_dir)
        killed = threading.Event()

        def kill_after(done: int, process: subprocess.Popen[str] = process, killed: threading.Event = killed) -> None:
            if done >= KILL_AFTER and not killed.is_set():
                killed.set()
                process.kill()

        try:
            # WHEN visitors keep visiting and the site is SIGKILLed mid-load
            round_visits = visit_concurrently(port, "dev", plan, VISITORS, on_answer=kill_after)
        finally:
            process.kill()
            process.wait(STARTUP_TIMEOUT)
        assert killed.is_set(), "the site was not killed mid-load"
        answered_before_kill.append(sum(1 for visit in round_visits if visit.status == 200))
        visits += round_visits

    with LocalSite(dev_settings(), port=0, state_dir=state_dir, mapping_options=FAST_MAPPING) as site:
        drain(site)
        counts = tag_counts(site)
        site_total = total(site)
    result = figures(visits, counts, site_total)
    result.show(f"{ROUNDS} SIGKILLs under load")
    print(f"[kill] success pages per round: {answered_before_kill}")
    # THEN every round confirmed visits before its kill, and the kills cut some requests
    assert all(confirmed >= KILL_AFTER - VISITORS for confirmed in answered_before_kill)
    assert {visit.status for visit in visits} <= {200, None}
    # ... no confirmed visit was lost, none counted beyond those sent, no number shown twice
    assert result.lost == 0
    assert result.doubled == 0
    assert result.repeated_numbers == 0
    for tag, numbers in numbers_by_tag(visits).items():
        assert numbers[-1] <= counts[tag], (tag, numbers[-1], counts[tag])
    # ... and the total equals the tags
    assert site_total == sum(counts.values())
