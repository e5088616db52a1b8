"""The local-site soak as a benchmark section, at a tiny size: real visits to a real site in a fresh interpreter.

No figure is compared with a time: speed lives in the benchmark's output, never in a test.
"""

from __future__ import annotations

import dataclasses

from bench import sitesoak
from bench.__main__ import parse_args
from bench.section import MET, NO_GOAL, NOT_MET, Row
from bench.sections import SECTIONS
from bench.sitesoak import SAVINGS, Soak, SoakPlan, measure_section

TINY = SoakPlan(visits=40, chunk=20, compare_visits=20, compare_runs=1)


def test_the_soak_section_measures_the_site_and_writes_its_part_of_the_report() -> None:
    # GIVEN the site run by `python -m bench.sitesoak --json` in fresh interpreters, WHEN the section measures
    result = measure_section("dev", TINY, clients=2)
    soak = result.soak
    # THEN every visit was answered, chunk by chunk, and the site's memory was read before and after
    assert [chunk.visits for chunk in soak.chunks] == [20, 40]
    assert soak.visits == 40 and soak.errors == 0
    assert soak.per_second > 0 and soak.median_ms <= soak.p99_ms
    assert soak.start_mb > 0 and soak.end_mb > 0
    assert Soak.from_json(soak.to_json()) == soak
    # AND each way of saving was run once, the site's own last
    assert [saving.label for saving in result.savings] == [label for label, _, _ in SAVINGS]
    assert all(saving.runs == 1 and saving.per_second > 0 for saving in result.savings)
    # AND the summary has its four figures, and the report its tables
    rows = sitesoak.summary_rows(result)
    assert [row.figure for row in rows] == ["site soak: throughput", "site soak: p99", "site soak: memory after",
                                            "site soak: memory growth"]
    assert "40 visits" in rows[0].value and rows[0].goal == ">= 150 req/s" and rows[0].status in (MET, NOT_MET)
    # A visit not answered 200 is a row of its own
    result.soak.chunks[-1] = dataclasses.replace(result.soak.chunks[-1], errors=3)
    assert sitesoak.summary_rows(result)[-1] == Row("site soak: errors", "3 visits not answered 200", "none",
                                                    NOT_MET)
    result.soak.chunks[-1] = dataclasses.replace(result.soak.chunks[-1], errors=0)
    text = "\n".join(sitesoak.markdown(result))
    assert text.startswith("## The local site left running")
    assert "| 40 | 0 |" in text and "MB per 1,000 visits" in text
    assert "| written through and fsynced, `synchronous=FULL` (the site's) |" in text


def test_the_soak_is_a_section_of_the_benchmark_that_can_be_skipped() -> None:
    assert sitesoak.SECTION in SECTIONS
    assert parse_args(["--skip", "sitesoak"]).skip == ["sitesoak"]
    # A quick run sends a thousand visits (and a few hundred per way of saving), a full run 30,000
    assert sitesoak.QUICK.visits == 1_000 and sitesoak.FULL.visits == 30_000


def chunk(visits: int, resident_mb: float) -> sitesoak.Chunk:
    return sitesoak.Chunk(visits=visits, errors=0, seconds=1.0, per_second=visits, median_ms=1.0, p99_ms=2.0,
                          resident_mb=resident_mb)


def test_memory_growth_is_said_in_figures_or_as_not_measured_never_nan() -> None:
    # GIVEN a run of several chunks, THEN the growth after the first is in MB per 1,000 visits
    soak = Soak(clients=2, chunks=[chunk(1000, 100.0), chunk(2000, 101.0), chunk(3000, 102.5)], start_mb=90.0)
    assert sitesoak.growth_text(soak) == "1.25 MB per 1,000 visits"
    # WHEN the run is one chunk (`--visits 1000` with the default --chunk) or none, THEN it says why there is none
    one = Soak(clients=2, chunks=[chunk(1000, 100.0)], start_mb=90.0, median_ms=1.0, p99_ms=2.0)
    assert sitesoak.growth_text(one) == (
        "not measured: one chunk only (growth is read after the first; send more visits than --chunk)"
    )
    assert sitesoak.growth_text(Soak(clients=2)).startswith("not measured: no chunk")
    # ... in every place the figure is shown
    figures = sitesoak.SoakFigures(one, TINY)
    shown = [sitesoak.render(one), sitesoak.summary_rows(figures)[-1].value, "\n".join(sitesoak.markdown(figures))]
    assert all("nan" not in text and "not measured: one chunk only" in text for text in shown), shown
    assert "memory growth after the first chunk: not measured: one chunk only" in sitesoak.render(one)
