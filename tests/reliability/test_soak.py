"""Soak: the local site under steady visits to thousands of tags keeps its memory flat and every count.

The site runs as ``./dev site`` runs it, in its own process, so its resident memory is its own (not the
visitors', not pytest's). Visits go to 1,500 tags: a warm-up visits each once (the table then holds every
item it will hold), then rounds of visits to the same tags, with the site's memory sampled after each round.
What moto kept before (a copy of the whole table per stream batch, a shard iterator per read, every stream
record) grew by megabytes per thousand visits; the bound below is a small fraction of that.
"""

from __future__ import annotations

import dataclasses
import random
import signal
from collections.abc import Sequence
from pathlib import Path

from bench.sitesoak import resident_mb
from localsite.site import LocalSite
from tests.reliability.helpers import (
    FAST_MAPPING,
    STARTUP_TIMEOUT,
    Planned,
    Visit,
    dev_settings,
    drain,
    figures,
    start_site,
    tag_counts,
    total,
    visit_concurrently,
    wait_until,
)

TAGS = 1_500
ROUNDS = 4
ROUND_VISITS = 1_000
VISITORS = 8
MAX_GROWTH_MB_PER_THOUSAND = 0.5
"""Memory growth allowed per 1,000 visits after the warm-up (each of the leaks fixed grew 1-100 MB per 1,000)."""


def _light(visits: Sequence[Visit]) -> list[Visit]:
    # The pages' HTML is not needed to judge the counts.
    return [dataclasses.replace(visit, body="") for visit in visits]


def test_memory_stays_flat_and_every_visit_counts_under_steady_visits(state_dir: Path) -> None:
    rng = random.Random(16)
    tags = [f"soak-{n:04d}" for n in range(TAGS)]
    visits: list[Visit] = []
    samples: list[tuple[int, float]] = []
    process, port = start_site(state_dir)
    try:
        # GIVEN every tag visited once, and a few more visits to let caches and pools settle
        warm_up = [Planned(tag, tag) for tag in tags] + [Planned(tag, tag) for tag in rng.choices(tags, k=500)]
        visits += _light(visit_concurrently(port, "dev", warm_up, VISITORS))
        samples.append((len(visits), resident_mb(process.pid)))
        # WHEN visits keep coming to the same tags
        for _ in range(ROUNDS):
            plan = [Planned(tag, tag) for tag in rng.choices(tags, k=ROUND_VISITS)]
            visits += _light(visit_concurrently(port, "dev", plan, VISITORS))
            samples.append((len(visits), resident_mb(process.pid)))
        process.send_signal(signal.SIGTERM)
        assert process.wait(STARTUP_TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    (start_visits, start_mb), (end_visits, end_mb) = samples[1], samples[-1]
    growth = (end_mb - start_mb) * 1000 / (end_visits - start_visits)
    print("\n[soak] visits: site's resident MB: " + ", ".join(f"{n}: {mb:.1f}" for n, mb in samples))
    print(f"[soak] growth after the warm-up: {growth:.2f} MB per 1,000 visits (bound {MAX_GROWTH_MB_PER_THOUSAND})")
    with LocalSite(dev_settings(), port=0, state_dir=state_dir, mapping_options=FAST_MAPPING) as site:
        drain(site)
        counts = tag_counts(site)
        wait_until(lambda: total(site) == sum(counts.values()), what="the total after the restart")
        site_total = total(site)
    result = figures(visits, counts, site_total)
    result.show("soak")
    # THEN memory per visit does not grow, and every confirmed visit is counted once, the total with them
    assert growth < MAX_GROWTH_MB_PER_THOUSAND, samples
    assert result.confirmed == len(visits) and result.lost == 0 and result.doubled == 0
    assert site_total == sum(counts.values()) == len(visits)
