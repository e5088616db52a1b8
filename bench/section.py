"""What a benchmark section is, so that a new measurement joins ``./dev bench`` as one module and one line.

A section measures something, gives rows for the summary table and its own part of ``BENCHMARKS.md``, and may
name problems that fail the run. To add one: write ``bench/<name>.py`` with a ``SECTION = Section(...)``, and
add it to ``SECTIONS`` in ``bench/sections.py``. ``./dev bench --skip <name>`` then leaves it out, a failure
while measuring it is reported (not fatal), and ``tests/bench`` runs it at its quick size.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import definition

MET = "met"
NOT_MET = "NOT MET"
"""A speed or size goal this run did not reach: reported, never fatal (it depends on the machine)."""
FAILS = "FAILS"
"""A design budget broken (e.g. an extra DynamoDB round trip): the run exits 1."""
NO_GOAL = "-"
NOT_MEASURED = "skipped"
"""A figure this run did not measure (``--skip``, or it could not run: the report says why)."""

SUMMARY_WIDTH = 100
"""The summary table fits this many columns."""


@dataclass
class Row:
    """One figure of the summary: short enough for the table to fit ``SUMMARY_WIDTH`` columns."""

    figure: str
    value: str
    goal: str
    status: str


def status(met: bool | None) -> str:
    """``met`` / ``NOT MET`` for a goal, ``-`` when there is none."""
    return NO_GOAL if met is None else MET if met else NOT_MET


@dataclass(frozen=True)
class BenchRun:
    """What every section measures with: the stack's settings and the command line."""

    settings: definition.Settings
    options: argparse.Namespace
    """``./dev bench``'s options (``quick``, ``runs``, ``skip_layer``...)."""

    @property
    def quick(self) -> bool:
        """Fewer samples: the run should finish in under a minute."""
        return bool(getattr(self.options, "quick", False))


@dataclass(frozen=True)
class Section:
    """One pluggable measurement of ``./dev bench``."""

    name: str
    """For ``--skip`` and the progress line."""
    measure: Callable[[BenchRun], Any]
    """Measure and return a result (any object the three functions below understand)."""
    rows: Callable[[Any], Sequence[Row]]
    """The result's rows in the summary table."""
    markdown: Callable[[Any], Sequence[str]]
    """The result's part of ``BENCHMARKS.md``: lines of Markdown, its ``## heading`` first."""
    failures: Callable[[Any], Sequence[str]] = field(default=lambda result: ())
    """Problems that fail the run (exit 1), e.g. a broken budget; none by default."""
