"""The charts of the count and home pages: inline SVG bars drawn on the server, and their text equivalent."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from datetime import date, timedelta


from functions import history
from functions.chart import PLOT_HEIGHT, bar_chart, bar_height

from .conftest import DayClock, Site, parse_page

DAYS = history.DEFAULT_HISTORY_DAYS


def figure(body: str, chart_id: str) -> ElementTree.Element:
    """The chart's ``<figure>``, parsed (it is well-formed XML on its own)."""
    match = re.search(rf'<figure class="chart" id="{chart_id}">.*?</figure>', body, re.S)
    assert match, f"no chart {chart_id}"
    return ElementTree.fromstring(match.group(0))


def bars(chart: ElementTree.Element) -> list[tuple[float, str]]:
    """(height, title) of each bar, left to right."""
    svg = chart.find("{http://www.w3.org/2000/svg}svg") or chart.find("svg")
    assert svg is not None
    return [(float(rect.get("height", "nan")), rect.findtext("title") or "") for rect in svg.iter("rect")]


def table_rows(chart: ElementTree.Element) -> list[tuple[str, str, str]]:
    """(datetime, day label, visits) of each row of the screen-reader table."""
    rows = []
    for row in chart.iter("tr"):
        time = row.find("th/time")
        if time is not None:
            rows.append((time.get("datetime") or "", time.text or "", row.findtext("td") or ""))
    return rows


def visit_on(site: Site, clock: DayClock, tag: str, per_day: dict[int, int]) -> None:
    """Visit ``tag`` ``per_day[offset]`` times on the day ``offset`` days before the clock's day."""
    today = clock.now
    for offset, times in per_day.items():
        clock.set(today - timedelta(days=offset))
        for _ in range(times):
            assert site.get(f"/tags/{tag}")["statusCode"] == 200
    clock.set(today)


def test_the_count_page_shows_today_and_thirty_bars(site: Site, clock: DayClock) -> None:
    visit_on(site, clock, "chart", {0: 2, 1: 4, 5: 1, 29: 3, 30: 9})  # 30 days ago: out of the window
    body = site.get("/counts/chart")["body"]
    page = parse_page(body)
    assert (page.texts["tag-visits"], page.texts["tag-today"]) == ("19", "2")
    chart = figure(body, "tag-days")
    drawn = bars(chart)
    assert len(drawn) == DAYS
    expected = {0: 2, 1: 4, 5: 1, 29: 3}
    days = history.window(clock.today, DAYS)
    for index, (height, title) in enumerate(drawn):
        visits = expected.get(DAYS - 1 - index, 0)
        assert height == round(visits / 4 * PLOT_HEIGHT, 2)  # the busiest day is the full height
        day = days[index]
        assert title == f"{day.strftime('%a')} {day.day} {day.strftime('%b')}: {visits}"
    assert drawn[-1][1] == "Tue 1 Dec: 2" and drawn[0][1] == "Mon 2 Nov: 3"
    assert page.texts["tag-days-sum"] == "10"
    assert "most on 30 November (4)" in body


def test_the_screen_reader_table_lists_every_figure(site: Site, clock: DayClock) -> None:
    visit_on(site, clock, "chart", {0: 1, 2: 5})
    chart = figure(site.get("/counts/chart")["body"], "tag-days")
    rows = table_rows(chart)
    assert len(rows) == DAYS
    assert rows[-1] == ("2026-12-01", "Tuesday 1 December 2026", "1")
    assert rows[-3] == ("2026-11-29", "Sunday 29 November 2026", "5")
    assert [visits for _, _, visits in rows].count("0") == DAYS - 2  # days without visits show as zero
    assert chart.find("div[@class='visually-hidden']/table") is not None
    # The bars themselves are hidden from screen readers, which read the table instead.
    svg = next(element for element in chart.iter() if element.tag.endswith("svg"))
    assert svg.get("aria-hidden") == "true"


def test_an_unvisited_tag_shows_a_chart_of_zeros(site: Site, clock: DayClock) -> None:
    body = site.get("/counts/never")["body"]
    chart = figure(body, "tag-days")
    assert [height for height, _ in bars(chart)] == [0.0] * DAYS
    assert {visits for _, _, visits in table_rows(chart)} == {"0"}
    assert parse_page(body).texts["tag-today"] == "0" and site.scan() == []


def test_the_home_page_shows_the_site_today_and_its_last_days(site: Site, clock: DayClock) -> None:
    visit_on(site, clock, "a", {0: 1, 3: 2})
    visit_on(site, clock, "b", {0: 2})
    assert site.process_stream() == {"batchItemFailures": []}
    body = site.get("/")["body"]
    page = parse_page(body)
    assert (page.texts["site-total"], page.texts["site-today"]) == ("5", "3")
    chart = figure(body, "site-days")
    heights = [height for height, _ in bars(chart)]
    assert len(heights) == DAYS and heights[-1] == PLOT_HEIGHT and heights[-4] == round(PLOT_HEIGHT * 2 / 3, 2)
    assert table_rows(chart)[-4] == ("2026-11-28", "Saturday 28 November 2026", "2")


def test_charts_use_no_style_attribute_and_nothing_external(site: Site, clock: DayClock) -> None:
    visit_on(site, clock, "a", {0: 1})
    for path in ("/", "/counts/a"):
        body = site.get(path)["body"]
        assert " style=" not in body and "<script" not in body
        assert "xlink:href" not in body and "url(" not in body


def test_a_small_day_beside_a_big_one_still_shows() -> None:
    today = date(2026, 12, 1)
    chart = bar_chart([(today - timedelta(days=1), 1), (today, 10_000)])
    assert [bar.height for bar in chart.bars] == [1.0, 100.0]
    assert bar_height(0, 10) == 0 and bar_height(5, 10) == 50
    assert bar_chart([]).bars == () and bar_chart([]).peak == 0
