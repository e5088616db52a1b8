"""Throttling: DynamoDB throttles some visit writes and some writes of the total (SPEC 3, 5, 6).

The fault hooks answer chosen requests with DynamoDB's real throttling error before moto sees them, so a
throttled attempt writes nothing; the SDK retries it (three attempts in all) and a visit whose every attempt
is throttled gets the 503 page. The stream processor's throttled transactions make the mapping retry the batch.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from functions.keys import PARTITION_KEY, TAG_PREFIX
from functions.store import MAX_ATTEMPTS
from localsite.faults import touches_tag_items
from tests.reliability.helpers import (
    Planned,
    drain,
    figures,
    numbers_by_tag,
    running_site,
    tag_counts,
    total,
    visit_concurrently,
)

SEED = 7
VISITS = 240
VISITORS = 16
ALWAYS_THROTTLED = "jammed"
"""A tag whose every write DynamoDB throttles: all its visits must be 503 pages, and nothing stored."""


def is_jammed(operation: str, params: Mapping[str, Any]) -> bool:
    return params.get("Key", {}).get(PARTITION_KEY, {}).get("S") == TAG_PREFIX + ALWAYS_THROTTLED


def test_throttled_visits_are_refused_uncounted_and_the_total_converges(state_dir: Path) -> None:
    rng = random.Random(SEED)
    tags = [f"busy-{n:02d}" for n in range(20)]
    plan = [Planned(tag, tag) for tag in rng.choices(tags, k=VISITS)]
    plan += [Planned(ALWAYS_THROTTLED, ALWAYS_THROTTLED)] * 8
    rng.shuffle(plan)
    with running_site(state_dir) as site:
        faults = site.faults
        # GIVEN DynamoDB throttles every write to one tag, half of all attempts to write the others,
        # the first transactions of the stream processor (a whole invocation's attempts), then 30% of them
        faults.throttle("UpdateItem", when=is_jammed)
        faults.throttle("UpdateItem", probability=0.5, when=touches_tag_items)
        faults.throttle("TransactWriteItems", count=MAX_ATTEMPTS)
        faults.throttle("TransactWriteItems", probability=0.3)

        # WHEN visitors keep coming, and the stream is drained with the faults still on
        visits = visit_concurrently(site.port, site.settings.stage_name, plan, VISITORS)
        drain(site)
        counts = tag_counts(site)
        site_total = total(site)
        result = figures(visits, counts, site_total)
        result.show("throttling")
        throttled = dict(faults.counts.throttled)
        stats = site.esm.stats
        print(
            f"[throttling] requests throttled {throttled}; batches reported failed by the processor "
            f"{stats.partial_failures}, retried {stats.retries}, invocations {stats.invocations}"
        )

        # THEN both kinds of fault really happened
        statuses = Counter(visit.status for visit in visits)
        assert set(statuses) == {200, 503}, statuses
        assert throttled["UpdateItem"] > statuses[503]  # some throttled attempts were retried into a success
        assert throttled["TransactWriteItems"] >= MAX_ATTEMPTS
        assert site.esm.stats.partial_failures >= 1 and site.esm.stats.retries >= 1
        # ... every 503 page says when to retry, and the jammed tag got nothing but 503 pages
        assert all(visit.retry_after for visit in visits if visit.status == 503)
        assert {visit.status for visit in visits if visit.planned.tag == ALWAYS_THROTTLED} == {503}
        assert ALWAYS_THROTTLED not in counts
        # ... visits refused were not counted, visits confirmed were counted once (numbers unique, 1..n)
        confirmed = Counter(visit.planned.tag for visit in visits if visit.status == 200)
        assert counts == dict(confirmed)
        assert numbers_by_tag(visits) == {tag: list(range(1, n + 1)) for tag, n in confirmed.items()}
        assert (result.lost, result.doubled, result.repeated_numbers) == (0, 0, 0)
        assert 0 < result.refused < len(plan)
        # ... and the total converged to the exact sum, with nothing left for the on-failure queue
        assert site_total == sum(counts.values()) == result.confirmed
        assert site.on_failure_messages() == []
