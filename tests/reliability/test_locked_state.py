"""A locked state file: another process holds SQLite's write lock on ``tags.sqlite3`` while visits come.

A visit is answered only once its count is saved. While the lock is held the visits already applied wait for
their save; once a save attempt has waited ``SAVE_WAIT_SECONDS`` the site refuses new visits before counting
them (503 with ``Retry-After``), each failure and the recovery are logged, and after the lock is released
and the site restarted the count is exactly the visits answered 200.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import localsite.state
from localsite.state import STATE_FILE
from tests.reliability.helpers import (
    Planned,
    dev_settings,
    drain,
    figures,
    running_site,
    tag_counts,
    total,
    visit_concurrently,
    wait_until,
)


def hold_write_lock(path: Path, seconds: float, held: threading.Event) -> None:
    """Take SQLite's write lock on ``path`` from another connection and keep it for ``seconds``."""
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        db.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        db.execute("ROLLBACK")
    finally:
        db.close()


def test_visits_wait_out_a_short_lock_and_none_is_lost(state_dir: Path) -> None:
    rng = random.Random(5)
    plan = [Planned(tag, tag) for tag in rng.choices([f"l-{n}" for n in range(10)], k=300)]
    with running_site(state_dir) as site:
        held = threading.Event()
        locker = threading.Thread(target=hold_write_lock, args=(site.store.path, 1.5, held), daemon=True)

        def lock_midway(done: int) -> None:
            if done == 100:
                locker.start()
                held.wait(10)

        # WHEN the state file is locked for 1.5 s in the middle of the load
        visits = visit_concurrently(site.port, "dev", plan, 8, on_answer=lock_midway)
        locker.join(30)
        assert held.is_set()
    with running_site(state_dir) as site:
        drain(site)
        result = figures(visits, tag_counts(site), total(site))
    result.show("a 1.5 s lock on the state file")
    # THEN every visit waited for its save and was answered, and all of them are there after a restart
    assert result.confirmed == len(plan) and result.lost == 0 and result.doubled == 0
    assert result.total == result.counted == len(plan)


def test_a_visit_waiting_for_its_save_past_the_function_timeout_is_answered_with_its_number(
    state_dir: Path,
) -> None:
    settings = dev_settings(route_timeout_seconds=1)
    with running_site(state_dir, settings=settings) as site:
        held = threading.Event()
        locker = threading.Thread(target=hold_write_lock, args=(site.store.path, 2.5, held), daemon=True)
        locker.start()
        assert held.wait(10)
        # WHEN a visit is applied while another process holds the state file 2.5 s, past the function's 1 s
        (visit,) = visit_concurrently(site.port, settings.stage_name, [Planned("slow-save", "slow-save")], 1)
        locker.join(30)
        # THEN it waited for its save and was told its number (the function itself took far less than 1 s),
        # not a timeout's 502 for a visit that counted
        assert visit.status == 200 and visit.number == 1
    with running_site(state_dir, settings=settings) as site:
        assert tag_counts(site) == {"slow-save": 1}


def test_a_lock_held_past_the_wait_refuses_new_visits_before_counting_them(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(localsite.state, "SAVE_WAIT_SECONDS", 0.3)
    settings = dev_settings()
    with caplog.at_level(logging.INFO, logger="localsite"):
        with running_site(state_dir, settings=settings) as site:
            held = threading.Event()
            locker = threading.Thread(target=hold_write_lock, args=(site.store.path, 3.0, held), daemon=True)
            locker.start()
            assert held.wait(10)
            # WHEN a visit comes while another process holds the lock for 3 s, and five more once its save
            # attempt has given up waiting
            first: list = []
            waiting = threading.Thread(target=lambda: first.extend(
                visit_concurrently(site.port, settings.stage_name, [Planned("held", "held")], 1)), daemon=True)
            waiting.start()
            wait_until(lambda: site.persister.stalled, what="a failed save attempt")
            later = visit_concurrently(site.port, settings.stage_name, [Planned("held", "held")] * 5, 5)
            waiting.join(30)
            locker.join(30)
            visits = first + later
            # THEN each was either saved and confirmed, or refused with "try again" before counting
            statuses = [visit.status for visit in visits]
            assert statuses[0] == 200  # applied before the stall: it waited for its save
            assert set(statuses) <= {200, 503} and 503 in statuses
            assert all(visit.retry_after for visit in visits if visit.status == 503)
            assert site.persister.failures > 0
            wait_until(lambda: not site.persister.stalled, what="a save after the lock")
            after = visit_concurrently(site.port, settings.stage_name, [Planned("held", "held")] * 2, 1)
            assert [visit.status for visit in after] == [200, 200]
    failures = [m for m in caplog.messages if "saving counts to" in m and "failed" in m]
    assert failures and all(str(state_dir / STATE_FILE) in m for m in failures)
    assert len(failures) <= 4  # one line a second at most, however many visits failed
    assert any("saved" in m and "after" in m and "failed attempts" in m for m in caplog.messages)
    # ... and after a restart the count is exactly the visits confirmed: none refused was counted
    confirmed = statuses.count(200) + 2
    with running_site(state_dir, settings=settings) as site:
        result = figures(visits + after, tag_counts(site), total(site))
    result.show("a 3 s lock, save attempts waiting 0.3 s")
    assert result.lost == 0
    assert result.counted == confirmed and [v.number for v in after] == [confirmed - 1, confirmed]
