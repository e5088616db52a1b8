"""The daily-history benchmark at tiny sizes: it measures real visits, and flags a visit that costs more."""

from __future__ import annotations

import definition
from bench import history
from bench.history import HistoryFigure, markdown_section, measure_history, regressions, summary_rows

SETTINGS = definition.Settings(history_days=2)


def test_visits_after_days_of_history_are_measured_and_within_the_design() -> None:
    figures = measure_history(SETTINGS, ages=(1, 4))
    assert [(f.days, f.tag) for f in figures] == [(age, tag) for age in (1, 4) for tag in history.TAGS.values()]
    assert regressions(figures) == []
    for figure in figures:
        assert figure.round_trips == {"UpdateItem": 1} and figure.write_units == 1.0
        assert figure.day_attributes == min(figure.days, SETTINGS.history_days)
        assert figure.total_bytes > 0 and figure.dollars_per_million == 0.625
    small, large = figures[2], figures[3]
    assert large.item_bytes - small.item_bytes == 256 - 5  # the longest key against "bench"
    text = "\n".join(markdown_section(figures, SETTINGS))
    assert "## Daily history" in text and "| a 5-letter tag | 4 |" in text
    assert all(met for *_, met in summary_rows(figures))


def test_a_visit_that_costs_more_fails_the_run() -> None:
    costly = [
        HistoryFigure("a tag", 30, 900, 30, 2.0, {"UpdateItem": 1}),
        HistoryFigure("a tag", 365, 400, 30, 1.0, {"UpdateItem": 2}),
    ]
    problems = regressions(costly)
    assert len(problems) == 2
    assert "after 30 days" in problems[0] and "2 write units" in problems[0]
    assert "2 UpdateItem" in problems[1]
    assert not any(met for *_, met in summary_rows(costly))
