"""Soak: the local site under steady visits to many tags holds no more of moto's objects, and every count.

What moto kept before grew with each visit: every object it ever made (its registry), a shard iterator per
read, every stream record (1-100 MB per 1,000 visits). Resident memory needs thousands of visits before such
growth stands out of the allocator's own settling, and it depends on the machine; the number of moto's objects
alive in the site's process does not. So the site runs in this process, a warm-up visits every tag (the table
then holds every item it will hold, and the stream as many read records as the site keeps), and moto's live
objects are counted after each round of visits to the same tags: beyond the table's own items, they must not
grow. With each of those three fixes in ``localsite/aws.py`` undone, this test fails (0.7 to 3.4 objects kept
per visit, against a bound of 0.01). The transactions' whole-table copies were transient, not kept: their
test is in ``tests/localsite/test_aws.py``. The site's resident memory over a long run is a benchmark
(``./dev bench``, the ``sitesoak`` section), not a test.
"""

from __future__ import annotations

import dataclasses
import gc
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from localsite.aws import ACCOUNT_ID, REGION, dynamodb_backends, serialised
from localsite.site import LocalSite
from tests.reliability.helpers import (
    Planned,
    Visit,
    drain,
    figures,
    running_site,
    tag_counts,
    total,
    visit_concurrently,
)

TAGS = 200
ROUNDS = 3
ROUND_VISITS = 200
VISITORS = 8
MAX_GROWTH_PER_VISIT = 0.01
"""moto objects allowed to stay alive per visit after the warm-up (each leak fixed kept one or more per visit)."""


ATTRIBUTE_CLASSES = frozenset({"DynamoType", "LimitedSizeDict"})
"""What a stored item's attributes are made of: they grow with the table (the processor's markers stay for their
TTL, as in DynamoDB), so the items are counted instead, as ``Item`` objects beyond the items the table holds."""
STREAM_RECORDS_KEPT = 100
"""Read stream records the site keeps (1,000 when it runs): fewer here, so the stream is full after the warm-up."""


def moto_objects(site: LocalSite) -> Counter[str]:
    """moto's live DynamoDB and Streams objects by class, once the garbage collector has run, less the table's
    items (a request's own objects, alive while it runs, are moto.core's and not counted)."""
    gc.collect()
    found: Counter[str] = Counter()
    with serialised():
        for obj in gc.get_objects():
            module = type(obj).__dict__.get("__module__")
            if not isinstance(module, str) or not module.startswith("moto.dynamodb"):
                continue
            if type(obj).__name__ not in ATTRIBUTE_CLASSES:
                found[type(obj).__qualname__] += 1
        found["Item"] -= len(dynamodb_backends[ACCOUNT_ID][REGION].get_table(site.table_name))
    return found


def settle(site: LocalSite) -> None:
    """Let the stream processor catch up, then trim the stream as the site's sweep does every 30 seconds."""
    drain(site)
    site.trim_stream()


def _light(visits: Sequence[Visit]) -> list[Visit]:
    # The pages' HTML is not needed to judge the counts.
    return [dataclasses.replace(visit, body="") for visit in visits]


def test_moto_objects_stay_flat_and_every_visit_counts_under_steady_visits(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("localsite.site.STREAM_RECORDS_KEPT", STREAM_RECORDS_KEPT)
    rng = random.Random(16)
    tags = [f"soak-{n:04d}" for n in range(TAGS)]
    visits: list[Visit] = []
    samples: list[tuple[int, Counter[str]]] = []
    with running_site(state_dir) as site:
        # GIVEN every tag visited once, and a few more visits to let caches and pools settle
        warm_up = [Planned(tag, tag) for tag in tags] + [Planned(tag, tag) for tag in rng.choices(tags, k=100)]
        visits += _light(visit_concurrently(site.port, "dev", warm_up, VISITORS))
        settle(site)
        samples.append((len(visits), moto_objects(site)))
        # WHEN visits keep coming to the same tags
        for _ in range(ROUNDS):
            plan = [Planned(tag, tag) for tag in rng.choices(tags, k=ROUND_VISITS)]
            visits += _light(visit_concurrently(site.port, "dev", plan, VISITORS))
            settle(site)
            samples.append((len(visits), moto_objects(site)))
        counts = tag_counts(site)
        site_total = total(site)

    (start_visits, start), (end_visits, end) = samples[0], samples[-1]
    grown = {name: end[name] - start[name] for name in end if end[name] > start[name]}
    per_visit = sum(grown.values()) / (end_visits - start_visits)
    print("\n[soak] visits: moto objects alive: " + ", ".join(f"{n}: {sum(c.values())}" for n, c in samples))
    print(f"[soak] growth after the warm-up: {per_visit:.3f} per visit (bound {MAX_GROWTH_PER_VISIT}): {grown}")
    result = figures(visits, counts, site_total)
    result.show("soak")
    # THEN moto holds no more objects for more visits, and every confirmed visit is counted once, the total too
    assert per_visit <= MAX_GROWTH_PER_VISIT, grown
    assert result.confirmed == len(visits) and result.lost == 0 and result.doubled == 0
    assert site_total == sum(counts.values()) == len(visits)
