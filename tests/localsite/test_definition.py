"""One definition: the local site serves what ``definition`` and the stack file say, with no edit of its own."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import definition
from definition import stack_settings
from tests.localsite.helpers import FakeClock, parse_page, request, running_site, tag_records, total, visit, wait_until


def test_a_changed_route_path_changes_the_local_site(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the program's definition serves visits at /hit/{tag} instead of /tags/{tag}
    routes = tuple(
        dataclasses.replace(route, path="/hit/{tag}") if route.path == "/tags/{tag}" else route
        for route in definition.ROUTES
    )
    monkeypatch.setattr(definition, "ROUTES", routes)
    with running_site(state_dir) as site:
        # THEN the local site serves the new path with the same handler, and the old one is gone
        reply = request(f"{site.url}hit/moved")
        assert reply.status == 200
        assert parse_page(reply.body).text_by_id["visit-number"].strip() == "1"
        assert request(f"{site.url}tags/moved").status == 404


def test_the_stack_file_sets_the_batch_size_and_the_stage(tmp_path: Path, state_dir: Path) -> None:
    # GIVEN a stack file with another batch size, window and stage name
    (tmp_path / "Pulumi.other.yaml").write_text(
        "config:\n"
        "  tag-counter:stageName: qa\n"
        "  tag-counter:streamBatchSize: '2'\n"
        "  tag-counter:streamBatchingWindowSeconds: '1'\n",
        encoding="utf-8",
    )
    settings = stack_settings("other", root=tmp_path)
    assert settings.stream_batch_size == 2
    clock = FakeClock()
    with running_site(state_dir, settings=settings, clock=clock) as site:
        # THEN the site lives under /qa/ ...
        assert site.url.endswith("/qa/")
        assert request(f"{site.origin}/dev/").status == 404
        visit(site, "small", times=4)
        # ... and the mapping sends batches of 2, never more
        expected = len(tag_records(site))
        wait_until(lambda: site.esm.stats.records_succeeded + site.esm.buffered == expected)
        clock.advance(2)
        assert site.drain()
        sizes = [entry.size for entry in site.esm.history]
        assert max(sizes) == 2 and sum(sizes) == expected and len(sizes) >= 2
        assert total(site) == 4


def test_the_dev_stack_file_batches_everything_at_once(state_dir: Path) -> None:
    # The same visits with the dev stack's batch size (100) and its window: one batch.
    clock = FakeClock()
    with running_site(state_dir, settings=stack_settings("dev"), clock=clock) as site:
        assert site.settings.stream_batch_size == 100
        visit(site, "small", times=4)
        expected = len(tag_records(site))
        wait_until(lambda: site.esm.buffered == expected)
        clock.advance(site.settings.stream_batching_window_seconds + 1)
        assert site.drain()
        assert [entry.size for entry in site.esm.history] == [expected]
