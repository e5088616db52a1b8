"""The events AWS hands our functions, built the way AWS builds them.

``rest_proxy_event`` is what API Gateway's REST (v1) ``AWS_PROXY`` integration sends a route function;
``stream_event`` is what a DynamoDB event source mapping sends the stream processor. The local site, the
tests and the benchmarks use these, so every reader sees the same shapes as a deployed function.
"""

from __future__ import annotations

import re
import time
import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from definition import ROUTES, Route

ACCOUNT_ID = "123456789012"
API_ID = "local"


def _route_pattern(path: str) -> re.Pattern[str]:
    # A REST path parameter matches one whole, non-empty segment.
    parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", path)
    regex = "".join(
        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part) for part in parts
    )
    return re.compile(f"^{regex}$")


def match_route(path: str, routes: Sequence[Route] = ROUTES) -> tuple[Route, dict[str, str]] | None:
    """The route a raw (still percent-encoded) resource path belongs to, with its path parameters."""
    for route in routes:
        found = _route_pattern(route.path).match(path)
        if found:
            return route, dict(found.groupdict())
    return None


def rest_proxy_event(
    route: Route,
    path: str,
    path_parameters: Mapping[str, str] | None,
    *,
    stage: str,
    method: str = "GET",
    headers: Iterable[tuple[str, str]] = (),
    query: Iterable[tuple[str, str]] = (),
    source_ip: str = "127.0.0.1",
    domain_name: str = "127.0.0.1",
) -> dict[str, Any]:
    """A REST API proxy event for ``path`` (without the stage prefix, still percent-encoded).

    Path parameters stay percent-encoded, as REST APIs deliver them; ``requestContext.path`` carries the
    stage prefix, as it does on the default execute-api domain. ``requestContext.identity`` carries the client's
    address (``source_ip``) and its ``User-Agent`` header (``None`` when it sent none), as API Gateway fills it.
    """
    header_list = list(headers)
    query_list = list(query)
    multi_headers: dict[str, list[str]] = {}
    for name, value in header_list:
        multi_headers.setdefault(name, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for name, value in query_list:
        multi_query.setdefault(name, []).append(value)
    now = time.time()
    user_agent = next((v for k, v in header_list if k.lower() == "user-agent"), None)
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": method,
        "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": f"{zlib.crc32(route.path.encode()) % 10**6:06d}",
            "resourcePath": route.path,
            "httpMethod": method,
            "extendedRequestId": uuid.uuid4().hex[:16],
            "requestTime": datetime.fromtimestamp(now, timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": domain_name.split(".")[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
            "domainName": domain_name,
            "apiId": API_ID,
        },
        "body": None,
        "isBase64Encoded": False,
    }


def stream_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """One DynamoDB Streams ``GetRecords`` record (as boto3 returns it) in Lambda's event form.

    Lambda sends ``ApproximateCreationDateTime`` as epoch seconds, adds ``eventSourceARN``, and spells a TTL
    deletion's ``userIdentity`` in camel case (``{"type": "Service", "principalId": "dynamodb.amazonaws.com"}``).
    """
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = float(int(created.timestamp()))
    event = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", "us-east-1"),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }
    identity = record.get("userIdentity")
    if identity:
        event["userIdentity"] = {"type": identity.get("Type"), "principalId": identity.get("PrincipalId")}
    return event


def stream_event(records: Iterable[Mapping[str, Any]], stream_arn: str) -> dict[str, Any]:
    """The event a DynamoDB event source mapping sends: ``{"Records": [...]}`` in Lambda's form."""
    return {"Records": [stream_record(record, stream_arn) for record in records]}


class LambdaContext:
    """The parts of Lambda's context object our handlers use, with a real deadline."""

    def __init__(self, function_name: str, timeout_seconds: float, memory_mb: int = 256) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
