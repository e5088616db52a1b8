"""What the functions tell the stack's operations: one log line per counted visit (the visits metric the dashboard
shows and the stalled-processor alarm reads), and snippets on the site's own domain when the stack has one."""

from __future__ import annotations

import json
import logging

import pytest

import definition
from components.alarms import counted_visit_pattern
from functions.log import JsonFormatter
from functions.rules import VISITOR_KEY_ENV, WINDOW_MINUTES_ENV

from .conftest import Site, parse_page

BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def counted(caplog: pytest.LogCaptureFixture) -> list[dict]:
    """The counted-visit lines the functions logged so far, as Lambda's JSON log format writes them."""
    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(record)) for record in caplog.records]
    return [line for line in lines if line["message"] == definition.VISIT_COUNTED_MESSAGE]


def test_each_counted_visit_logs_one_line_and_nothing_else_does(
    site: Site, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="functions")
    site.get("/tags/hello")
    site.get("/tags/hello/badge.svg")
    assert [line["tag"] for line in counted(caplog)] == ["hello", "hello"]
    # Not counted, so not logged: a HEAD, a bot, a repeat visitor, a bad tag, and every read-only page.
    site.get("/tags/hello", method="HEAD")
    site.get("/tags/hello", user_agent=BOT)
    site.get("/tags/a%2Fb")
    for path in ("/", "/counts/hello", "/counts/hello/badge.svg", "/counts/hello/badge.json"):
        site.get(path)
    monkeypatch.setenv(WINDOW_MINUTES_ENV, "30")
    monkeypatch.setenv(VISITOR_KEY_ENV, "test-key")
    site.get("/tags/other")
    site.get("/tags/other")
    assert [line["tag"] for line in counted(caplog)] == ["hello", "hello", "other"]
    assert site.visits("tag#hello") == 2 and site.visits("tag#other") == 1


def test_the_metric_filter_matches_the_line_as_logged(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="functions")
    site.get("/tags/hello")
    [line] = counted(caplog)
    # The filter's pattern, { $.message = "<message>" }, selects on the JSON object's message field.
    assert counted_visit_pattern() == '{ $.message = "%s" }' % line["message"]
    assert line["level"] == "INFO"


def test_with_a_domain_the_snippets_point_at_it_from_the_execute_api_address(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = definition.Settings(
        domain_name="counter.example.com", hosted_zone_id="Z0123456789ABCDEFGHIJ", base_path="c"
    )
    for name, value in definition.function_environment(settings).items():
        monkeypatch.setenv(name, value)
    event = site.event("/counts/hello")
    assert event["headers"]["Host"].endswith(".execute-api.us-east-1.amazonaws.com")
    page = parse_page(site.call(event)["body"])
    assert page.texts["counting-markdown"] == (
        "[![visits to hello](https://counter.example.com/c/tags/hello/badge.svg)]"
        "(https://counter.example.com/c/counts/hello)"
    )
    assert "execute-api" not in page.texts["shields-url"]
    # The page's own links stay relative: they work at either address.
    assert all("://" not in href for href in page.links)
