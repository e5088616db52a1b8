"""One rule for every number a visitor reads: grouped by thousands on every page and badge (``web.format_count``)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from functions import badge, web

from .conftest import DayClock, Site, parse_page

TAG_VISITS, TAG_TODAY, TAG_YESTERDAY = 74606, 12345, 1234
TOTAL, TOTAL_TODAY = 50437592, 23456


@pytest.fixture
def big(site: Site, clock: DayClock) -> Site:
    """A tag and a site-wide total with counts in the thousands and millions, today and yesterday included."""
    site.client.put_item(
        TableName=site.table_name,
        Item={
            "pk": {"S": "tag#hello"},
            "visits": {"N": str(TAG_VISITS)},
            "d20261201": {"N": str(TAG_TODAY)},
            "d20261130": {"N": str(TAG_YESTERDAY)},
            "last_day": {"N": "20261201"},
        },
    )
    site.client.put_item(
        TableName=site.table_name,
        Item={
            "pk": {"S": "site#total"},
            "visits": {"N": str(TOTAL)},
            "d20261201": {"N": str(TOTAL_TODAY)},
            "last_day": {"N": "20261201"},
        },
    )
    return site


class _Text(HTMLParser):
    """What a reader sees: the text outside tags, the stylesheet left out."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._style = self._style or tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._style = self._style and tag != "style"

    def handle_data(self, data: str) -> None:
        if not self._style:
            self.parts.append(data)


def ungrouped(body: str) -> list[str]:
    """Every run of four digits or more that is not grouped (the year of a date is not a count)."""
    reader = _Text()
    reader.feed(body)
    text = " ".join(reader.parts)
    return [run for run in re.findall(r"(?<![\d,])\d{4,}(?![\d,])", text) if run != "2026"]


@pytest.mark.parametrize(
    ("count", "shown"),
    [(0, "0"), (999, "999"), (1000, "1,000"), (74606, "74,606"), (50437592, "50,437,592"), (10**15, "1,000,000,000,000,000")],
)
def test_one_function_groups_every_count(count: int, shown: str) -> None:
    assert web.format_count(count) == shown
    assert web.environment().from_string("{{ n | count }}").render(n=count) == shown
    assert badge.format_count is web.format_count  # the badges' rule is the same function


def test_the_home_page_groups_the_total_today_and_the_chart(big: Site) -> None:
    body = big.get("/")["body"]
    page = parse_page(body)
    assert (page.texts["site-total"], page.texts["site-today"]) == ("50,437,592", "23,456")
    assert page.texts["site-days-sum"] == "23,456"
    assert "(23,456)" in body  # the chart's peak
    assert ungrouped(body) == []


def test_the_count_page_groups_the_tag_today_total_and_chart(big: Site) -> None:
    body = big.get("/counts/hello")["body"]
    page = parse_page(body)
    assert (page.texts["tag-visits"], page.texts["tag-today"], page.texts["site-total"]) == (
        "74,606",
        "12,345",
        "50,437,592",
    )
    assert page.texts["tag-days-sum"] == f"{TAG_TODAY + TAG_YESTERDAY:,}" == "13,579"
    assert "<td>1,234</td>" in body and "<td>12,345</td>" in body
    assert ungrouped(body) == []


def test_the_visit_page_groups_the_visits_number(big: Site) -> None:
    body = big.get("/tags/hello")["body"]
    assert parse_page(body).texts["visit-number"] == "74,607"
    assert ungrouped(body) == []
    bot = big.get("/tags/hello", user_agent="curl/8.5.0")["body"]  # shown the count, not counted
    assert parse_page(bot).texts["visit-number"] == "74,607"
    assert ungrouped(bot) == []


@pytest.mark.parametrize("path", ["/counts/hello/badge.svg", "/tags/hello/badge.svg"])
def test_badges_group_the_count_as_the_pages_do(big: Site, path: str) -> None:
    body = big.get(path, query=[("show", "both")])["body"]
    assert re.search(r"74,60[67] · 12,34[56] today", body), body
    assert ungrouped(body) == []


def test_the_shields_endpoint_groups_the_count_as_the_pages_do(big: Site) -> None:
    message = json.loads(big.get("/counts/hello/badge.json")["body"])["message"]
    assert message == "74,606"
