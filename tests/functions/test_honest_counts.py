"""Honest counts (SPEC section 8): bots are shown the count without adding to it, the optional unique-visitor
window counts a visitor once per tag, and no address, User-Agent or secret is kept or logged anywhere.

The real handlers and ``count_visit`` run against moto; User-Agents and source addresses arrive in
``requestContext.identity`` as API Gateway fills it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import definition
from functions import counting, rules, visitors
from functions.keys import TTL_ATTRIBUTE, VISITOR_PREFIX
from functions.log import JsonFormatter
from functions.store import get_store
from functions.web import Request
from localsite.esm import matches_filters
from localsite.events import LambdaContext

from .conftest import BROWSER, Fault, Site, intercept, parse_page, record_calls

# (who, User-Agent, counted). Real strings, as each sends them.
USER_AGENTS: list[tuple[str, str | None, bool]] = [
    ("chrome-windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36", True),
    ("firefox-windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", True),
    ("firefox-linux", BROWSER, True),
    ("safari-macos", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Safari/605.1.15", True),
    ("edge-windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", True),
    ("opera-windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36 OPR/114.0.0.0", True),
    ("safari-iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/18.1 Mobile/15E148 Safari/604.1", True),
    ("safari-ipad", "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.7 Mobile/15E148 Safari/604.1", True),
    ("chrome-android", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Mobile Safari/537.36", True),
    ("samsung-internet", "Mozilla/5.0 (Linux; Android 14; SM-S928B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", True),
    ("chrome-ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", True),
    ("firefox-android", "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", True),
    ("github-camo", "github-camo (876de43e)", True),
    ("empty", "", True),
    ("missing", None, True),
    ("googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", False),
    ("googlebot-smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
     "+http://www.google.com/bot.html)", False),
    ("bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", False),
    ("bingbot-chrome", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
     "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36", False),
    ("facebookexternalhit", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", False),
    ("slackbot-link-expanding", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", False),
    ("slackbot", "Slackbot 1.0 (+https://api.slack.com/robots)", False),
    ("twitterbot", "Twitterbot/1.0", False),
    ("discordbot", "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", False),
    ("linkedinbot", "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)", False),
    ("whatsapp", "WhatsApp/2.23.20.0", False),
    ("telegrambot", "TelegramBot (like TwitterBot)", False),
    ("curl", "curl/8.5.0", False),
    ("python-requests", "python-requests/2.32.3", False),
    ("wget", "Wget/1.21.4", False),
    ("go-http-client", "Go-http-client/1.1", False),
    ("uptimerobot", "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", False),
    ("pingdom", "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", False),
    ("route53-health-check", "Amazon-Route53-Health-Check-Service (ref 9b9b0c8c-1234; report "
     "http://amzn.to/1vsZADi)", False),
    ("gptbot", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
     "+https://openai.com/gptbot)", False),
    ("applebot", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)", False),
    ("yandexbot", "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", False),
    ("headless-chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "HeadlessChrome/131.0.0.0 Safari/537.36", False),
]
BOT = USER_AGENTS[[who for who, _, _ in USER_AGENTS].index("googlebot")][1]
KEY = "test-visitor-key-9f2c41d7e0b5a8"
"""The window's secret in these tests: it must never show up in a page or a log line."""


@pytest.fixture
def window(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Turn the unique-visitor window on (minutes, the key) as the program's environment would."""

    def turn_on(minutes: int = 30, key: str | None = KEY) -> None:
        settings = definition.Settings(unique_visitor_window_minutes=minutes)
        for name, value in {**definition.function_environment(settings),
                            **definition.visitor_key_environment(settings, key)}.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)

    return turn_on


class Clock:
    """A fake clock for the window (``functions.visitors.clock``)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(visitors, "clock", fake)
    return fake


def visit(site: Site, tag: str = "hello", **kwargs: Any) -> dict[str, Any]:
    """GET the visit page; the response must be a 200 page."""
    response = site.get(f"/tags/{tag}", **kwargs)
    assert response["statusCode"] == 200, response["body"]
    return response


def note(response: dict[str, Any]) -> str | None:
    return parse_page(response["body"]).texts.get("visit-note")


def number(response: dict[str, Any]) -> int:
    return int(parse_page(response["body"]).texts["visit-number"].strip())


# --- bots -----------------------------------------------------------------------------------------------------


def test_visit_page_counts_people_and_not_bots(site: Site) -> None:
    wrong = []
    for who, user_agent, counted in USER_AGENTS:
        tag = f"ua-{who}"
        visit(site, tag)  # one visit already there, so a bot is shown a real count
        calls = record_calls(get_store().client)
        response = visit(site, tag, user_agent=user_agent)
        expected_note = None if counted else "This visit was not counted: looks like a bot."
        # A bot gets one strongly consistent read for the count, and no write.
        expected_calls = [("UpdateItem", None)] if counted else [("GetItem", True)]
        seen = (site.visits(f"tag#{tag}"), number(response), note(response),
                [(call.operation, call.params.get("ConsistentRead")) for call in calls])
        expected = (2 if counted else 1, 2 if counted else 1, expected_note, expected_calls)
        if seen != expected:
            wrong.append((who, seen, expected))
    assert wrong == []


def test_count_visit_applies_the_same_rule_for_every_counting_route(site: Site) -> None:
    # The counting badge calls count_visit with its own request: the rule is the same.
    wrong = []
    for who, user_agent, counted in USER_AGENTS:
        event = site.event(f"/tags/ua-{who}", user_agent=user_agent)
        result = counting.count_visit(Request(event, LambdaContext("badge", 5)), f"ua-{who}")
        seen = (result.counted, result.visits, result.reason)
        expected = (counted, 1 if counted else 0, None if counted else counting.BOT)
        if seen != expected:
            wrong.append((who, seen, expected))
    assert wrong == []


def test_count_bots_setting_counts_them_too(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    environment = definition.function_environment(definition.Settings(count_bots=True))
    assert environment[rules.COUNT_BOTS_ENV] == "true"
    monkeypatch.setenv(rules.COUNT_BOTS_ENV, environment[rules.COUNT_BOTS_ENV])
    for _, user_agent, _ in USER_AGENTS:
        assert note(visit(site, "all", user_agent=user_agent)) is None
    assert site.visits("tag#all") == len(USER_AGENTS)


def test_a_bot_on_a_new_tag_sees_zero_and_creates_nothing(site: Site) -> None:
    response = visit(site, "brand-new", user_agent=BOT)
    assert number(response) == 0
    assert site.scan() == []


def test_a_bad_count_bots_value_is_an_error_page_and_writes_nothing(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(rules.COUNT_BOTS_ENV, "sometimes")
    assert site.get("/tags/hello")["statusCode"] == 500
    assert site.scan() == []


# --- the unique-visitor window --------------------------------------------------------------------------------


def test_window_off_every_load_counts(site: Site) -> None:
    for _ in range(3):
        visit(site)
    assert site.visits("tag#hello") == 3
    assert not [item for item in site.scan() if item["pk"]["S"].startswith(VISITOR_PREFIX)]


def test_same_visitor_counts_once_within_the_window(site: Site, window: Callable[..., None], clock: Clock) -> None:
    window(30)
    first = visit(site, source_ip="198.51.100.7")
    assert note(first) is None and number(first) == 1
    calls = record_calls(get_store().client)
    clock.now += 29 * 60
    again = visit(site, source_ip="198.51.100.7")
    assert note(again) == "This visit was already counted within 30 minutes."
    assert number(again) == 1
    assert [call.operation for call in calls] == ["PutItem", "GetItem"]  # the failed claim, then the count
    assert site.visits("tag#hello") == 1


def test_another_visitor_counts(site: Site, window: Callable[..., None], clock: Clock) -> None:
    window(30)
    visit(site, source_ip="198.51.100.7")
    assert note(visit(site, source_ip="198.51.100.8")) is None  # another address
    other_browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
    assert note(visit(site, source_ip="198.51.100.7", user_agent=other_browser)) is None  # another browser
    assert note(visit(site, "other-tag", source_ip="198.51.100.7")) is None  # another tag
    assert site.visits("tag#hello") == 3
    assert site.visits("tag#other-tag") == 1


def test_after_the_window_the_visitor_counts_again(site: Site, window: Callable[..., None], clock: Clock) -> None:
    window(30)
    visit(site)
    clock.now += 30 * 60 - 1
    assert note(visit(site)) is not None
    clock.now += 1  # the window is over: the lingering marker (TTL has not deleted it yet) no longer holds
    assert note(visit(site)) is None
    assert note(visit(site)) is not None  # and a new window starts with that visit
    assert site.visits("tag#hello") == 2


def test_one_minute_window_says_minute(site: Site, window: Callable[..., None], clock: Clock) -> None:
    window(1)
    visit(site)
    assert note(visit(site)) == "This visit was already counted within 1 minute."


def test_many_threads_of_one_visitor_count_once(site: Site, window: Callable[..., None], clock: Clock) -> None:
    window(30)
    start = threading.Barrier(16)

    def load(_: int) -> dict[str, Any]:
        start.wait()
        return visit(site, source_ip="198.51.100.9")

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(load, range(64)))
    assert sum(note(response) is None for response in responses) == 1
    assert site.visits("tag#hello") == 1
    # A repeat that reads while the winner's count is still on its way shows 0: the count as it then was.
    assert {number(response) for response in responses} <= {0, 1}


def test_a_bot_is_not_counted_with_the_window_either_and_writes_no_marker(
    site: Site, window: Callable[..., None], clock: Clock
) -> None:
    window(30)
    assert note(visit(site, user_agent=BOT)) == "This visit was not counted: looks like a bot."
    assert site.scan() == []


def test_the_marker_holds_a_keyed_hash_and_its_expiry_only(site: Site, window: Callable[..., None], clock: Clock) -> None:
    window(30)
    visit(site, source_ip="198.51.100.7")
    markers = [item for item in site.scan() if item["pk"]["S"].startswith(VISITOR_PREFIX)]
    assert len(markers) == 1
    [marker] = markers
    assert set(marker) == {"pk", TTL_ATTRIBUTE}
    assert int(marker[TTL_ATTRIBUTE]["N"]) == int(clock.now) + 30 * 60
    digest = marker["pk"]["S"][len(VISITOR_PREFIX):]
    assert digest == visitors.visitor_digest(KEY.encode(), "hello", "198.51.100.7", BROWSER)
    assert len(digest) == 2 * visitors.DIGEST_BYTES
    # Nothing the visitor sent is stored: not the address, not the User-Agent, not the secret.
    stored = repr(site.scan())
    for secret in ("198.51.100.7", BROWSER, "Firefox", KEY):
        assert secret not in stored


def test_the_digest_depends_on_the_key_and_every_part() -> None:
    base = visitors.visitor_digest(b"k1", "tag", "198.51.100.7", "ua")
    assert visitors.visitor_digest(b"k2", "tag", "198.51.100.7", "ua") != base
    assert visitors.visitor_digest(b"k1", "tag2", "198.51.100.7", "ua") != base
    assert visitors.visitor_digest(b"k1", "tag", "198.51.100.8", "ua") != base
    assert visitors.visitor_digest(b"k1", "tag", "198.51.100.7", "ub") != base
    # The parts cannot run into each other.
    assert visitors.visitor_digest(b"k1", "ab", "c", "") != visitors.visitor_digest(b"k1", "a", "bc", "")


def test_markers_never_reach_the_stream_processor_or_the_total(
    site: Site, window: Callable[..., None], clock: Clock
) -> None:
    window(30)
    for address in ("198.51.100.1", "198.51.100.2", "198.51.100.1"):
        visit(site, source_ip=address)
    records = site.reader.read()
    marker_records = [r for r in records if r["dynamodb"]["Keys"]["pk"]["S"].startswith(VISITOR_PREFIX)]
    assert marker_records, "the markers are in the stream: the filter must be what keeps them out"
    event = site.reader.event(records)
    # The event source mapping's filter drops them ...
    for record in event["Records"]:
        is_marker = record["dynamodb"]["Keys"]["pk"]["S"].startswith(VISITOR_PREFIX)
        assert matches_filters(definition.STREAM_FILTER_PATTERNS, record) is not is_marker
    # ... and the processor, handed them anyway, ignores them.
    from functions import stream_processor

    assert stream_processor.handler(event, LambdaContext("stream", 30)) == {"batchItemFailures": []}
    assert site.visits("site#total") == 2 == site.visits("tag#hello")


def test_a_failure_between_the_steps_under_counts_one_visit_never_two(
    site: Site, window: Callable[..., None], clock: Clock, inject: Callable[..., Fault]
) -> None:
    window(30)
    visit(site)
    clock.now += 31 * 60
    # The marker is written, then the count's UpdateItem fails on every attempt.
    fault = inject(get_store().client, "UpdateItem", "ProvisionedThroughputExceededException", times=3)
    assert site.get("/tags/hello")["statusCode"] == 503
    assert fault.sent == 3
    assert site.visits("tag#hello") == 1
    # The reload inside the new window is not counted: this visit is lost, none is counted twice.
    assert note(visit(site)) is not None
    assert site.visits("tag#hello") == 1


def test_window_without_its_key_fails_and_writes_nothing(site: Site, window: Callable[..., None]) -> None:
    window(30, key=None)
    with pytest.raises(rules.MissingVisitorKey):
        rules.visitor_key()
    assert site.get("/tags/hello")["statusCode"] == 500
    assert site.scan() == []


# --- nothing personal, nothing secret, in any page or log line ------------------------------------------------


ADDRESS = "203.0.113.77"
AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0 Zq7Marker"


def test_no_page_or_log_line_holds_the_address_the_user_agent_or_the_secret(
    site: Site, window: Callable[..., None], clock: Clock, inject: Callable[..., Fault], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    window(30)
    bot = "curl/8.5.0 Zq7Marker"
    pages = [
        site.get("/tags/hello", source_ip=ADDRESS, user_agent=AGENT),  # counted
        site.get("/tags/hello", source_ip=ADDRESS, user_agent=AGENT),  # repeat
        site.get("/tags/hello", source_ip=ADDRESS, user_agent=bot),  # bot
        site.get("/tags/a%2Fb", source_ip=ADDRESS, user_agent=AGENT),  # 400
        site.get("/counts/hello", source_ip=ADDRESS, user_agent=AGENT),
        site.get("/", source_ip=ADDRESS, user_agent=AGENT),
    ]
    clock.now += 3600
    inject(get_store().client, "UpdateItem", "ProvisionedThroughputExceededException", times=3)
    pages.append(site.get("/tags/hello", source_ip=ADDRESS, user_agent=AGENT))  # 503
    inject(get_store().client, "PutItem", "InternalServerError", status=500, message="internal error", times=3)
    clock.now += 3600
    pages.append(site.get("/tags/hello", source_ip="198.51.100.3", user_agent=AGENT))  # 500
    window(30, key=None)
    pages.append(site.get("/tags/hello", source_ip=ADDRESS, user_agent=AGENT))  # 500: no key
    site.process_stream()
    assert [page["statusCode"] for page in pages] == [200, 200, 200, 400, 200, 200, 503, 500, 500]
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert len(lines) > 20, "the functions and botocore logged: the check reads real lines"
    for line in lines:
        assert ADDRESS not in line
        assert "Zq7Marker" not in line
        assert KEY not in line
    for page in pages:
        text = repr(page)
        assert ADDRESS not in text and "Zq7Marker" not in text and KEY not in text


def test_a_lost_answer_to_the_marker_write_under_counts_never_doubles(
    site: Site, window: Callable[..., None], clock: Clock, inject: Callable[..., Fault]
) -> None:
    # GIVEN DynamoDB applies the marker's PutItem but its answer is lost (a read timeout): the SDK retries it
    # (``inject`` is there for its retries without sleeping)
    window(30)
    lost: list[str] = []
    send = get_store().client.transport

    def lose_first_answer(method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        target, attempt = headers.get("x-amz-target", ""), headers.get("amz-sdk-request", "")
        if target.endswith(".PutItem") and attempt.startswith("attempt=1;"):
            lost.append(target)
            send(method, url, headers, body)  # applied...
            raise TimeoutError("timed out")  # ... and never answered

    intercept(get_store().client, lose_first_answer)
    # WHEN the visitor loads the page
    response = visit(site)
    # THEN the retry finds the marker and the visit is not counted: one under-counted, none twice
    assert lost == ["DynamoDB_20120810.PutItem"]
    assert note(response) == "This visit was already counted within 30 minutes."
    assert site.visits("tag#hello") is None
