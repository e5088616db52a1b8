"""Counts survive a restart of the local site (unless it starts fresh), and the total is exact again."""

from __future__ import annotations

from pathlib import Path

import pytest

from localsite.state import STATE_FILE
from tests.localsite.helpers import FakeClock, request, running_site, tag_counts, total, visit


def test_a_restart_keeps_the_counts_and_the_total_is_recomputed(state_dir: Path) -> None:
    with running_site(state_dir) as site:
        visit(site, "kept", times=3)
        visit(site, "caf%C3%A9")
        assert site.drain()
        before = tag_counts(site)
    assert (state_dir / STATE_FILE).is_file()
    with running_site(state_dir) as site:
        # THEN the tags are back, the total equals their sum, and the restored items are not counted again
        assert site.restored == 2
        assert tag_counts(site) == before == {"tag#kept": 3, "tag#café": 1}
        assert total(site) == 4
        assert site.drain()
        assert total(site) == 4
        assert site.esm.stats.invocations == 0
        visit(site, "kept")
        assert site.drain()
        assert total(site) == 5
        assert "4" in request(f"{site.url}counts/kept").body


def test_a_visit_just_before_the_stop_is_saved(state_dir: Path) -> None:
    with running_site(state_dir) as site:
        visit(site, "last", times=2)
    with running_site(state_dir) as site:
        assert tag_counts(site) == {"tag#last": 2}
        assert total(site) == 2


def test_saving_does_not_wait_for_the_stream_processor(state_dir: Path) -> None:
    # GIVEN a processor that fails every time: the total never moves while the site runs
    with running_site(state_dir) as site:
        site.faults.fail_processor("before", count=None)
        visit(site, "stuck", times=2)
        assert total(site) == 0
    # THEN the visits were still saved, and the restart's reconcile makes the total exact
    with running_site(state_dir) as site:
        assert tag_counts(site) == {"tag#stuck": 2}
        assert total(site) == 2


def test_fresh_starts_from_zero_and_forgets_the_saved_counts(state_dir: Path) -> None:
    with running_site(state_dir) as site:
        visit(site, "gone", times=2)
    with running_site(state_dir, fresh=True) as site:
        assert site.restored == 0
        assert tag_counts(site) == {}
        assert total(site) == 0
    with running_site(state_dir) as site:
        assert tag_counts(site) == {}


def test_without_a_state_dir_nothing_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from localsite.site import LocalSite
    from tests.localsite.helpers import FAST_MAPPING, test_settings

    monkeypatch.chdir(tmp_path)
    site = LocalSite(test_settings(), port=0, mapping_options=FAST_MAPPING)
    with site:
        visit(site, "air")
        assert site.store is None and site.persister is None
    assert list(tmp_path.iterdir()) == []


def test_the_count_page_says_how_soon_the_total_catches_up_from_the_configured_window(tmp_path: Path) -> None:
    from tests.localsite.helpers import test_settings

    for window, said in ((0, "within a second or so"), (4, "within about 5 seconds")):
        with running_site(tmp_path / f"w{window}", settings=test_settings(stream_batching_window_seconds=window)) as site:
            assert f"The site-wide total catches up {said} of each visit." in request(f"{site.url}counts/w").body


def test_the_state_folder_is_locked_while_a_store_holds_it(state_dir: Path) -> None:
    from localsite.state import StateFolderInUse, StateStore

    store = StateStore(state_dir)
    try:
        with pytest.raises(StateFolderInUse, match=f"another local site .* is using the state folder {state_dir}"):
            StateStore(state_dir)
    finally:
        store.close()
    StateStore(state_dir).close()  # released with the store


def test_fresh_starts_over_whatever_the_state_file_is(state_dir: Path) -> None:
    from localsite.state import StateFileCorrupt, StateStore

    (state_dir / STATE_FILE).mkdir(parents=True)  # not even a file
    with pytest.raises(StateFileCorrupt, match="--fresh"):
        StateStore(state_dir)
    with running_site(state_dir, fresh=True) as site:
        visit(site, "anew")
    with running_site(state_dir) as site:
        assert tag_counts(site) == {"tag#anew": 1}


def test_the_processors_markers_expire_as_ttl_deletes_them_and_nothing_else_changes(
    state_dir: Path, clock: FakeClock
) -> None:
    from functions.keys import MARKER_PREFIX
    from functions.stream_processor import MARKER_TTL_SECONDS
    from tests.localsite.helpers import all_items, stream_records

    with running_site(state_dir, clock=clock) as site:
        visit(site, "ttl", times=3)
        assert site.drain() and total(site) == 3
        markers = [i for i in all_items(site) if i["pk"]["S"].startswith(MARKER_PREFIX)]
        assert markers
        assert site.expire_items() == 0  # not yet
        # WHEN the markers' TTL has passed
        clock.advance(MARKER_TTL_SECONDS + 60)
        assert site.expire_items() == len(markers)
        # THEN they are gone with REMOVE records from the TTL process; the tag and the total are untouched
        assert not [i for i in all_items(site) if i["pk"]["S"].startswith(MARKER_PREFIX)]
        removed = [r for r in stream_records(site) if r["eventName"] == "REMOVE"]
        assert len(removed) == len(markers)
        assert all(r["userIdentity"]["PrincipalId"] == "dynamodb.amazonaws.com" for r in removed)
        assert site.drain()
        assert tag_counts(site) == {"tag#ttl": 3} and total(site) == 3
