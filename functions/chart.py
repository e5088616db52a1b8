"""The numbers of a bar chart of visits per day; ``templates/chart.html`` draws it as inline SVG.

The geometry is worked out here, in plain Python, and the labels of a date are made once per container
(``_labels`` is cached): the template only writes the figures out, which keeps a page's rendering cheap.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

SLOT = 10
"""Width of one day in the SVG's user units (a bar and its gap)."""
GAP = 2
PLOT_HEIGHT = 100
"""Height of the tallest bar in user units; the SVG is stretched to the page's width and the CSS height."""
MIN_BAR = 1.0
"""A day with any visit gets at least this height, so it never looks like a day without."""


class Bar(NamedTuple):
    """One day of the chart (a named tuple: thirty are made per page, and a tuple is the cheapest)."""

    day: date
    visits: int
    x: int
    y: float
    height: float
    short_label: str
    """``Tue 1 Dec``."""
    long_label: str
    """``Tuesday 1 December 2026``, for the screen-reader table."""


@dataclass(frozen=True)
class Chart:
    """A chart of a window of days, oldest first."""

    bars: tuple[Bar, ...]
    total: int
    peak: int
    peak_label: str
    """The first day with the most visits (``1 December``), empty when no day has any."""
    width: int
    height: int = PLOT_HEIGHT
    bar_width: int = SLOT - GAP

    @property
    def first_label(self) -> str:
        """The axis label of the oldest day."""
        return _labels(self.bars[0].day)[2] if self.bars else ""

    @property
    def last_label(self) -> str:
        """The axis label of the newest day."""
        return _labels(self.bars[-1].day)[2] if self.bars else ""


@functools.lru_cache(maxsize=256)
def _labels(day: date) -> tuple[str, str, str, str]:
    # English names whatever the locale: the pages are in English (lang="en").
    weekday = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")[day.weekday()]
    month = (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    )[day.month - 1]  # fmt: skip
    return (
        f"{weekday[:3]} {day.day} {month[:3]}",
        f"{weekday} {day.day} {month} {day.year}",
        f"{day.day} {month[:3]}",
        f"{day.day} {month}",
    )


def bar_height(visits: int, peak: int) -> float:
    """A day's bar height in user units: proportional to the busiest day, at least ``MIN_BAR`` when not 0."""
    if visits <= 0 or peak <= 0:
        return 0.0
    return round(max(visits / peak * PLOT_HEIGHT, MIN_BAR), 2)


def bar_chart(days: Sequence[tuple[date, int]]) -> Chart:
    """The chart of ``days`` (oldest first, each with its visits; a day without visits is 0)."""
    peak = max((visits for _, visits in days), default=0)
    bars = []
    for index, (day, visits) in enumerate(days):
        height = bar_height(visits, peak)
        short, long, _, _ = _labels(day)
        bars.append(Bar(day, visits, index * SLOT + GAP // 2, PLOT_HEIGHT - height, height, short, long))
    peak_label = next((_labels(day)[3] for day, visits in days if peak and visits == peak), "")
    return Chart(tuple(bars), sum(visits for _, visits in days), peak, peak_label, len(days) * SLOT)
