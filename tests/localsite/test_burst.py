"""A burst of visits to one tag: every answer tells the truth about its count (issue: 'saves waited 3.0 s')."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.helpers import Planned, dev_settings, figures, running_site, tag_counts, total, visit_concurrently

BURST = 200


def test_a_burst_of_concurrent_visits_is_counted_exactly_as_answered(state_dir: Path) -> None:
    settings = dev_settings()
    with running_site(state_dir, settings=settings) as site:
        # WHEN 200 visitors open one tag's page at once
        visits = visit_concurrently(site.port, settings.stage_name, [Planned("burst", "burst")] * BURST, BURST)
        statuses = [visit.status for visit in visits]
        # THEN nearly all are counted, any other is a "try again" for a visit not counted, and none is lost
        assert set(statuses) <= {200, 503}, sorted(set(statuses, key=str))
        assert statuses.count(200) >= 0.9 * BURST
        assert all(visit.retry_after for visit in visits if visit.status == 503)
        result = figures(visits, tag_counts(site), total(site))
        assert tag_counts(site).get("burst", 0) == statuses.count(200)
        assert sorted(v.number for v in visits if v.status == 200) == list(range(1, statuses.count(200) + 1))
        assert result.lost == 0 and result.doubled == 0
