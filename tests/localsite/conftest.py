"""Fixtures for the local site's tests: a running site on a free port, with its state in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localsite.site import LocalSite
from tests.localsite.helpers import FakeClock, running_site


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def site(state_dir: Path) -> Iterator[LocalSite]:
    """The local site with the dev stack's settings (no batching window), started fresh."""
    with running_site(state_dir) as started:
        yield started


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
