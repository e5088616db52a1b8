"""Fixtures for the operator command: the moto table of the function tests, and the command run in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from admin.cli import run
from admin.target import Target
from tests.functions.conftest import TABLE, Site, inject, site  # noqa: F401 - fixtures used by these tests

__all__ = ["Admin", "TABLE", "Site", "inject", "site"]


@dataclass
class Result:
    """What one run of the command did."""

    code: int
    out: str
    err: str


@dataclass
class Admin:
    """Runs ``./dev admin`` in-process against the moto table (target given, no resolving)."""

    site: Site
    capsys: pytest.CaptureFixture[str]
    answers: list[bool | None]

    def __call__(self, *argv: str, table: str = TABLE) -> Result:
        target = Target(table, self.site.client, self.site.streams, f"table {table!r}")
        self.capsys.readouterr()
        code = run(list(argv), target=target, ask=self._ask)
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def _ask(self, question: str) -> bool | None:
        return self.answers.pop(0) if self.answers else None  # None: no terminal to ask on

    def drain(self) -> None:
        """Apply every stream record written so far, as the event source mapping would."""
        self.site.process_stream()

    def tag_records(self) -> list[dict[str, Any]]:
        """Stream records of tag items written since the last read (not the total's, nor markers')."""
        return [r for r in self.site.reader.read() if r["dynamodb"]["Keys"]["pk"]["S"].startswith("tag#")]

    def counts(self) -> dict[str, int]:
        """Every tag's visits, and the total under ``site#total``."""
        found = {}
        for item in self.site.scan():
            key = item["pk"]["S"]
            if key.startswith("tag#") or key == "site#total":
                found[key.removeprefix("tag#")] = int(item.get("visits", {"N": "0"})["N"])
        return found


@pytest.fixture
def admin(site: Site, capsys: pytest.CaptureFixture[str]) -> Iterator[Admin]:  # noqa: F811
    yield Admin(site, capsys, [])


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """The command's backoff does not wait (the retries still happen)."""
    from admin import retry

    slept: list[float] = []
    monkeypatch.setattr(retry, "pause", slept.append)
    return slept.append


@pytest.fixture
def settle_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """``reconcile --settle`` (at least 1 s) ends at once: the moto stream is applied only by ``drain``, so
    waiting would change nothing but the suite's time; the command still says it waits."""
    import functools

    from admin import cli
    from admin.reconcile import reconcile

    monkeypatch.setattr(cli, "reconcile", functools.partial(reconcile, sleep=lambda _: None))
