"""Fixtures for the function tests: a moto table with its stream, events as AWS sends them, fault injection.

Every test runs against moto through ``localsite.aws.local_aws`` (DynamoDB's per-request atomicity included),
calls the real handlers with ``localsite.events`` events, and reads stream records from moto's real stream.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from definition import ROUTES, Settings, create_table, function_environment
from functions import dynamodb, history
from functions.dynamodb import Client
from functions.store import build_store
from localsite.aws import local_aws, mark_answered
from localsite.events import LambdaContext, match_route, rest_proxy_event, stream_event

TABLE = "tag-counter-test"
STAGE = "dev"
EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
HANDLERS = {route.path: route.function.handler for route in ROUTES}
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
"""The User-Agent of the events' visitor unless a test says otherwise: a person's browser, which counts."""


def load_event(name: str) -> dict[str, Any]:
    """A captured-style event from ``tests/events/``."""
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


def handler_for(resource: str) -> Callable[[dict, Any], dict]:
    """The real handler the definition names for a REST resource path."""
    import importlib

    module_name, _, function_name = HANDLERS[resource].rpartition(".")
    return getattr(importlib.import_module(module_name), function_name)


class PageParser(HTMLParser):
    """Collects what the tests check on a page: links, texts and attributes by id, the inline stylesheet, scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.texts: dict[str, str] = {}
        self.styles: list[str] = []
        self.tags: list[str] = []
        self.attributes: dict[str, dict[str, str | None]] = {}
        self._open_ids: list[tuple[str, str]] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "a" and values.get("href") is not None:
            self.links.append(values["href"] or "")
        if tag == "style":
            self._in_style = True
            self.styles.append("")
        if tag == "html":
            self.attributes["html"] = values
        if values.get("id"):
            self.attributes[values["id"] or ""] = values
            self.texts[values["id"] or ""] = ""
            if tag not in ("img", "br", "input", "meta", "link"):  # void elements never close
                self._open_ids.append((tag, values["id"] or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False
        if self._open_ids and self._open_ids[-1][0] == tag:
            self._open_ids.pop()

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles[-1] += data
        for _, element_id in self._open_ids:
            self.texts[element_id] += data


def parse_page(body: str) -> PageParser:
    """Parse a page's HTML."""
    parser = PageParser()
    parser.feed(body)
    parser.close()
    return parser


@dataclass
class StreamReader:
    """Reads new records from moto's real stream, as the event source mapping would."""

    streams: Any
    stream_arn: str
    after: str | None = None

    def read(self) -> list[dict[str, Any]]:
        """Every record written since the previous read, in order."""
        description = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        records: list[dict[str, Any]] = []
        for shard in description["Shards"]:
            if self.after is None:
                position = {"ShardIteratorType": "TRIM_HORIZON"}
            else:
                position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self.after}
            iterator = self.streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard["ShardId"], **position
            )["ShardIterator"]
            while iterator:
                page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                records.extend(page["Records"])
                if not page["Records"]:
                    break
                iterator = page.get("NextShardIterator")
        if records:
            self.after = records[-1]["dynamodb"]["SequenceNumber"]
        return records

    def event(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The records as Lambda's event source mapping delivers them."""
        return stream_event(records, self.stream_arn)


@dataclass
class Site:
    """One moto table, the real handlers and helpers to drive and inspect them."""

    client: Any
    streams: Any
    stream_arn: str
    table_name: str = TABLE
    stage: str = STAGE
    reader: StreamReader = field(init=False)

    def __post_init__(self) -> None:
        self.reader = StreamReader(self.streams, self.stream_arn)

    def event(
        self,
        path: str,
        *,
        method: str = "GET",
        stage: str | None = None,
        user_agent: str | None = BROWSER,
        headers: list[tuple[str, str]] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """A REST proxy event for a raw (percent-encoded) path, as API Gateway builds it (``user_agent=None``:
        the request had no User-Agent header; ``source_ip=...`` sets the client's address; ``headers`` added)."""
        found = match_route(path)
        assert found is not None, f"no route for {path}"
        route, parameters = found
        sent = [("Host", "abc123.execute-api.us-east-1.amazonaws.com"), ("X-Forwarded-Proto", "https")]
        if user_agent is not None:
            sent.append(("User-Agent", user_agent))
        return rest_proxy_event(
            route,
            path,
            parameters,
            stage=self.stage if stage is None else stage,
            method=method,
            headers=sent + list(headers or []),
            **kwargs,
        )

    def call(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the route's real handler with an event."""
        return handler_for(event["resource"])(event, LambdaContext("route", 5))

    def get(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """GET a raw path of the site through its handler."""
        return self.call(self.event(path, **kwargs))

    def scan(self) -> list[dict[str, Any]]:
        """Every item of the table, sorted by key (to compare before/after)."""
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        while True:
            page = self.client.scan(**request)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(items, key=lambda item: item["pk"]["S"])

    def visits(self, key: str) -> int | None:
        """The visits attribute of the item at ``key`` (None when there is no such item)."""
        item = self.client.get_item(TableName=self.table_name, Key={"pk": {"S": key}}, ConsistentRead=True).get(
            "Item"
        )
        return None if item is None else int(item.get("visits", {"N": "0"})["N"])

    def process_stream(self, context_seconds: float = 30) -> dict[str, Any]:
        """Hand every new stream record to the stream processor as one batch."""
        from functions import stream_processor

        records = self.reader.read()
        return stream_processor.handler(self.reader.event(records), LambdaContext("stream", context_seconds))


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """A fresh moto table (stream and TTL on) named by ``TABLE_NAME``; the store is rebuilt for it."""
    with local_aws():
        # What the program sets on every function (the route table for links included), then the table.
        for name, value in function_environment(Settings()).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("TABLE_NAME", TABLE)
        build_store()  # now that moto is up: the client made at import would not reach it
        client = boto3.client("dynamodb", region_name="us-east-1")
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        stream_arn = create_table(client, TABLE)
        try:
            yield Site(client, streams, stream_arn)
        finally:
            build_store()


def page_url(event: dict[str, Any], host: str = "https://abc123.execute-api.us-east-1.amazonaws.com") -> str:
    """The URL the browser had open for an event (``requestContext.path`` carries the stage)."""
    return host + event["requestContext"]["path"]


def resolve(event: dict[str, Any], href: str) -> str:
    """Where a link on the page of ``event`` leads, resolved as a browser would."""
    return urlsplit(urljoin(page_url(event), href)).path


# --- fault injection ------------------------------------------------------------------------------

ERROR_TYPES = {
    "ProvisionedThroughputExceededException": "com.amazonaws.dynamodb.v20120810#",
    "ThrottlingException": "com.amazon.coral.availability#",
    "RequestLimitExceeded": "com.amazonaws.dynamodb.v20120810#",
    "AccessDeniedException": "com.amazon.coral.service#",
    "InternalServerError": "com.amazonaws.dynamodb.v20120810#",
    "ValidationException": "com.amazon.coral.validate#",
    "TransactionConflictException": "com.amazonaws.dynamodb.v20120810#",
}


Answer = tuple[int, dict[str, str], bytes]
"""``(status, headers, body)``: one HTTP answer, as ``functions.dynamodb``'s transports return it."""


def intercept(client: Client, answer: Callable[[str, str, Mapping[str, str], bytes], Answer | None]) -> None:
    """Put ``answer`` in front of the functions' client's transport: it answers a request itself (moto never
    sees it) or returns ``None`` to let it through. Gone when the store is rebuilt (the ``site`` fixture does)."""
    send = client.transport

    def transport(method: str, url: str, headers: Mapping[str, str], body: bytes) -> Any:
        return answer(method, url, headers, body) or send(method, url, headers, body)

    client.transport = transport


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@dataclass
class Fault:
    """A DynamoDB error returned for one operation, before moto sees the request."""

    operation: str
    code: str
    status: int
    message: str
    times: int | None = None
    body: dict[str, Any] | None = None
    sent: int = 0

    def answer(self, target: str) -> Answer | None:
        """The error for a request of ``X-Amz-Target`` ``target``, or ``None`` to let it through."""
        if not target.endswith("." + self.operation):
            return None
        if self.times is not None and self.sent >= self.times:
            return None
        self.sent += 1
        headers = {"x-amzn-requestid": "fault", "content-type": "application/x-amz-json-1.0"}
        payload = self.body
        if payload is None:
            error_type = ERROR_TYPES.get(self.code, "com.amazonaws.dynamodb.v20120810#") + self.code
            payload = {"__type": error_type, "message": self.message}
        return self.status, headers, json.dumps(payload).encode()

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        """As a botocore ``before-send`` handler, for a boto3 client (the operator command's)."""
        target = request.headers.get("X-Amz-Target", b"")
        answered = self.answer(target.decode() if isinstance(target, bytes) else target)
        if answered is None:
            return None
        # botocore calls every before-send handler (then uses the first response): without the mark,
        # moto would still apply the request this fault answers.
        mark_answered(request)
        status, headers, body = answered
        return AWSResponse(request.url, status, headers, _RawBody(body))


@pytest.fixture
def inject(site: Site, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Fault]:
    """Put a ``Fault`` ahead of moto on a client: the functions' (its transport) or a boto3 one (``before-send``,
    registered first); retries do not sleep."""
    from botocore.retries.standard import ExponentialBackoff

    # The real retry path runs (same number of attempts); only its waiting is skipped to keep tests fast.
    monkeypatch.setattr(dynamodb, "retry_delay", lambda attempt, throttled, retry_after: 0)
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)

    def add(
        client: Any,
        operation: str,
        code: str,
        *,
        status: int = 400,
        message: str = "",
        times: int | None = None,
        body: dict[str, Any] | None = None,
    ) -> Fault:
        fault = Fault(operation, code, status, message, times, body)
        if isinstance(client, Client):
            intercept(client, lambda method, url, headers, body: fault.answer(headers.get("x-amz-target", "")))
        else:
            client.meta.events.register_first("before-send.dynamodb", fault)
        return fault

    return add


@dataclass
class Call:
    """One DynamoDB API call a client made."""

    operation: str
    params: dict[str, Any]


def record_calls(client: Any) -> list[Call]:
    """Record every DynamoDB operation ``client`` makes: the functions' (``Client.call``) or a boto3 one
    (botocore ``before-call`` hook); retries are not calls."""
    calls: list[Call] = []
    if isinstance(client, Client):
        call = client.call

        def recorded(operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
            calls.append(Call(operation, json.loads(json.dumps(params))))  # as DynamoDB receives them
            return call(operation, params)

        client.call = recorded  # type: ignore[method-assign]
        return calls

    def hook(model: Any, params: dict[str, Any], **_: Any) -> None:
        body = params.get("body")  # the serialized JSON request DynamoDB would receive
        calls.append(Call(model.name, json.loads(body) if body else {}))

    client.meta.events.register("before-call.dynamodb", hook)
    return calls


# --- the UTC day the functions see ---------------------------------------------------------------


@dataclass
class DayClock:
    """The clock behind ``functions.history.utc_today``, the one place every function reads the day from."""

    now: datetime

    @property
    def today(self) -> date:
        """The UTC day the functions see."""
        return self.now.date()

    def set(self, moment: datetime) -> None:
        """Move to ``moment`` (UTC)."""
        self.now = moment

    def advance(self, *, days: float = 0, seconds: float = 0) -> None:
        """Move forward (or back, with negative values)."""
        self.now += timedelta(days=days, seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> DayClock:
    """A stopped clock at 2026-12-01 12:00 UTC, for every function's ``utc_today``."""
    stopped = DayClock(datetime(2026, 12, 1, 12, tzinfo=timezone.utc))
    real = history.utc_today
    monkeypatch.setattr(history, "utc_today", lambda now=None: real(stopped.now.timestamp() if now is None else now))
    return stopped
