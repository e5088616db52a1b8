"""Load: many concurrent visitors over hot tags and a long tail, through the local site over HTTP (SPEC 5, 6, 8).

After the stream drains, every tag's count equals the visits sent to it, the total equals their sum, and the
visit numbers the pages showed are exactly 1..n for each tag: no visit lost, none counted twice.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from tests.reliability.helpers import (
    Planned,
    drain,
    figures,
    http_get,
    numbers_by_tag,
    running_site,
    tag_counts,
    total,
    visit_concurrently,
)

SEED = 6
VISITS = 600
VISITORS = 16
TAIL = 100

# Hot tags, each reached through several spellings that must all count for the one normalized tag.
HOT: dict[str, tuple[str, ...]] = {
    "hello": ("hello", "Hello", "HELLO", "%68ello"),  # the last percent-encoded
    "café": ("caf%C3%A9", "CAF%C3%89", "cafe%CC%81"),  # composed, upper case, decomposed
    "日本": ("%E6%97%A5%E6%9C%AC",),
    "total": ("TOTAL", "total"),  # looks like the internal total: just a tag
    "a.b-c_d": ("a.b-c_d", "A.B-C_D"),
}


def load_plan(rng: random.Random) -> list[Planned]:
    """About 55% of visits to five hot tags, the rest over a long tail with Zipf-like weights."""
    tail = [f"tail-{rank:03d}" for rank in range(1, TAIL + 1)]
    tail_weights = [1 / rank**1.1 for rank in range(1, TAIL + 1)]
    hot = list(HOT)
    hot_weights = [40, 25, 15, 12, 8]
    plan: list[Planned] = []
    for _ in range(VISITS):
        if rng.random() < 0.55:
            tag = rng.choices(hot, hot_weights)[0]
            plan.append(Planned(rng.choice(HOT[tag]), tag))
        else:
            tag = rng.choices(tail, tail_weights)[0]
            plan.append(Planned(tag, tag))
    return plan


def test_concurrent_visitors_over_many_tags_are_all_counted_exactly_once(state_dir: Path) -> None:
    # GIVEN the site with the dev stack's settings and a seeded mix of hot tags and a long tail
    plan = load_plan(random.Random(SEED))
    sent = Counter(planned.tag for planned in plan)
    with running_site(state_dir) as site:
        # WHEN many visitors visit at once
        visits = visit_concurrently(site.port, site.settings.stage_name, plan, VISITORS)
        drain(site)
        counts = tag_counts(site)
        site_total = total(site)
        result = figures(visits, counts, site_total)
        result.show(f"load: {len(sent)} tags, {VISITORS} visitors")
        print(
            f"[load] hottest tag {sent.most_common(1)[0]}; tags visited once: "
            f"{sum(1 for n in sent.values() if n == 1)}; mapping: {site.esm.stats}"
        )

        # THEN every visit got a success page that named its normalized tag
        assert [v.status for v in visits].count(200) == VISITS, Counter(v.status for v in visits)
        assert all(v.shown_tag == v.planned.tag for v in visits)
        # ... every tag holds exactly the visits sent to it, and the total is their sum
        assert counts == dict(sent)
        assert site_total == VISITS == sum(counts.values())
        assert (result.lost, result.doubled, result.repeated_numbers, result.total_off) == (0, 0, 0, 0)
        # ... each tag's pages showed the numbers 1..n, each once: the atomic ADD handed out every number
        assert numbers_by_tag(visits) == {tag: list(range(1, n + 1)) for tag, n in sent.items()}
        # ... and a count page, read over HTTP, agrees
        page = http_get(site.port, f"/{site.settings.stage_name}/counts/HELLO").body
        assert f'id="tag-visits">{sent["hello"]}<' in page
        assert f'id="site-total">{VISITS}<' in page
        assert site.on_failure_messages() == []
