"""A limit the specification does not cover: a visit whose write committed but whose answer was lost.

The visit function's DynamoDB client retries a timed-out call (standard retry mode, read timeout 1 s). An
``ADD`` is not idempotent: when DynamoDB applied it and the answer never arrived (a read timeout, a dropped
connection), the SDK's retry adds the visit again. The visitor sees number n+1, number n is never shown, and
since the tag item itself holds the extra visit, the total agrees with it and the reconcile command cannot
see it. This test shows that behaviour with a real moto write and a timeout where the client waits for its
answer (``localsite.transport`` raises it after moto applied the write), so a change to it (e.g. a conditional
write keyed by the request) is noticed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSPreparedRequest
from moto.core.models import botocore_stubber

from functions.keys import PARTITION_KEY, TAG_PREFIX
from localsite import hooks
from tests.reliability.helpers import Planned, drain, figures, running_site, tag_counts, total, visit_page

LOST_TAG = "unlucky"


class LoseAnswers:
    """Lets moto apply the first attempt of chosen ``UpdateItem`` calls, then makes the client time out as if
    the answer was lost (the SDK's retry then goes through untouched)."""

    def __init__(self, count: int) -> None:
        self.remaining = count
        self.lost = 0
        self._lock = threading.Lock()

    def __call__(self, operation: str, params: Mapping[str, Any], request: AWSPreparedRequest) -> None:
        if operation != "UpdateItem" or params.get("Key", {}).get(PARTITION_KEY, {}).get("S") != TAG_PREFIX + LOST_TAG:
            return None
        attempt = request.headers.get("amz-sdk-request", b"")
        if not (attempt.decode() if isinstance(attempt, bytes) else attempt).startswith("attempt=1;"):
            return None
        with self._lock:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
            self.lost += 1
        botocore_stubber(f"before-send.dynamodb.{operation}", request)  # DynamoDB applies the write...
        raise TimeoutError("timed out")  # ... and its answer never reaches the function


def test_a_lost_answer_to_a_visit_write_counts_the_visit_twice(state_dir: Path) -> None:
    lose = LoseAnswers(count=2)
    with running_site(state_dir) as site:
        hooks.add_before_send(lose)
        try:
            # WHEN three visitors visit, the answers to the first two writes being lost once each
            visits = [visit_page(site.port, site.settings.stage_name, Planned(LOST_TAG, LOST_TAG)) for _ in range(3)]
        finally:
            hooks.remove(lose)
        drain(site)
        counts = tag_counts(site)
        result = figures(visits, counts, total(site))
        result.show("lost answers")
        print(f"[lost answers] answers lost {lose.lost}; numbers shown {[v.number for v in visits]}")

        # THEN every visitor got a success page, but each lost answer added one visit more
        assert lose.lost == 2
        assert [visit.status for visit in visits] == [200, 200, 200]
        assert [visit.number for visit in visits] == [2, 4, 5]  # 1 and 3 were never shown to anyone
        assert counts == {LOST_TAG: 5}
        assert result.doubled == lose.lost
        # ... and the total agrees with the (over-counted) tag: nothing downstream can tell
        assert result.total == 5 and result.total_off == 0
