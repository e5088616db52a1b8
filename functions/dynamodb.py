"""The functions' DynamoDB client, on the standard library: the calls they make, as botocore makes them.

JSON 1.0 protocol (``X-Amz-Target: DynamoDB_20120810.<Op>``), SigV4 with the session token, credentials and
region from Lambda's environment variables, ``AWS_ENDPOINT_URL_DYNAMODB`` / ``AWS_ENDPOINT_URL`` as the SDKs
read them, one kept-alive connection per client with short timeouts, botocore's standard-mode retries
(throttling and transient errors, 5xx, connection errors, a DynamoDB CRC32 mismatch; the same attempt bound,
backoff and retry quota), and errors raised as botocore raises them: ``ClientError`` with ``response["Error"]
["Code"]`` and the modeled fields beside it (``Item``, ``CancellationReasons``).

Request and response parameters are botocore's: the same keyword arguments in, the same dictionaries out.
Importing botocore and building its client was most of every function's cold start (BENCHMARKS.md, Cold start).

One seam: the ``Transport`` that sends one signed request and returns its answer. In Lambda it is
``HTTPTransport``, the kept-alive connection; the local site and the tests hand the same signed requests to
moto in their own process (``localsite.transport``, installed with ``use_transport`` by
``localsite.aws.local_aws``), where fault hooks and call recorders see them.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import random
import sys
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

SERVICE = "dynamodb"
TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"
USER_AGENT = "tag-counter-dynamodb/1 Python/" + ".".join(map(str, sys.version_info[:3]))

MAX_ATTEMPTS = 3
"""Attempts per call, the first included (botocore's ``total_max_attempts``)."""
TIMEOUT_SECONDS = 1.0
"""To connect, and to wait for each read of an answer."""

THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown",
    "PriorRequestNotComplete", "EC2ThrottledException",
})
"""Error codes botocore's standard mode retries as throttling (longer backoff)."""
TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"})
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
MODELED_CODES = frozenset({
    "ConditionalCheckFailedException", "TransactionCanceledException", "ResourceNotFoundException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "ItemCollectionSizeLimitExceededException",
    "TransactionConflictException", "InternalServerError", "IdempotentParameterMismatchException",
    "InvalidEndpointException", "ThrottlingException", "ReplicatedWriteConflictException",
})
"""Errors DynamoDB's model names for these operations: a 429 with one of these is not retried for its status."""

MAX_BACKOFF_SECONDS = 20.0
THROTTLING_BASE_SECONDS = 1.0
TRANSIENT_BASE_SECONDS = 0.025  # botocore's figure for DynamoDB
RETRY_AFTER_HEADER = "x-amz-retry-after"
QUOTA_CAPACITY, RETRY_COST, THROTTLING_RETRY_COST, NO_RETRY_INCREMENT = 500, 14, 5, 1


Transport = Callable[[str, str, Mapping[str, str], bytes], tuple[int, Mapping[str, str], bytes]]
"""``transport(method, url, headers, body) -> (status, headers, body)``: one HTTP exchange. No answer (the
connection failed, the answer did not come in time) is an ``OSError`` or ``http.client.HTTPException``."""


class HTTPClientError(Exception):
    """No answer: the connection failed or the answer did not come in time (botocore's ``HTTPClientError``)."""


class ConnectionError(HTTPClientError):  # noqa: A001 (botocore's name, which the callers catch)
    """The connection to DynamoDB could not be made or broke (botocore's ``ConnectionError``)."""


class ChecksumError(Exception):
    """The answer's CRC32 did not match ``x-amz-crc32`` on every attempt."""


class ClientError(Exception):
    """DynamoDB answered with an error; ``response`` is botocore's: ``Error`` (``Code``, ``Message``),
    ``ResponseMetadata``, and the error's own fields (``Item``, ``CancellationReasons``...)."""

    def __init__(self, response: dict[str, Any], operation_name: str) -> None:
        error = response.get("Error", {})
        super().__init__(
            f"An error occurred ({error.get('Code', 'Unknown')}) when calling the {operation_name} operation"
            + (f" (reached max retries: {response['ResponseMetadata'].get('RetryAttempts', 0)})"
               if response.get("ResponseMetadata", {}).get("MaxAttemptsReached") else "")
            + f": {error.get('Message', '')}"
        )
        self.response = response
        self.operation_name = operation_name


def _sign(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret_key: str, day: str, region: str, service: str = SERVICE) -> bytes:
    """SigV4's derived key for one day (``YYYYMMDD``), region and service."""
    key = _sign(("AWS4" + secret_key).encode("utf-8"), day)
    return _sign(_sign(_sign(key, region), service), "aws4_request")


def canonical_request(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> tuple[str, str]:
    """SigV4's canonical request and its signed-header list, for headers already lower-cased and trimmed."""
    names = sorted(headers)
    lines = "".join(f"{name}:{headers[name]}\n" for name in names)
    signed = ";".join(names)
    return "\n".join([method, path, query, lines, signed, hashlib.sha256(body).hexdigest()]), signed


def authorization(
    *, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, timestamp: str,
    region: str, access_key: str, secret_key: str, service: str = SERVICE, key: bytes | None = None,
) -> str:
    """The ``Authorization`` header SigV4 gives a request at ``timestamp`` (``YYYYMMDDTHHMMSSZ``).

    ``headers``: every header to sign, names lower-cased, values trimmed (``x-amz-date`` and the session
    token included). ``key``: the day's ``signing_key``, when already derived.
    """
    request, signed = canonical_request(method, path, query, headers, body)
    scope = f"{timestamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", timestamp, scope, hashlib.sha256(request.encode("utf-8")).hexdigest()])
    key = key or signing_key(secret_key, timestamp[:8], region, service)
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"


def endpoint_url(environ: Mapping[str, str], region: str) -> str:
    """Where the client sends its requests: the environment's endpoint for DynamoDB, else AWS's."""
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
        for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"):
            if environ.get(name):
                return environ[name]
    return f"https://dynamodb.{region}.amazonaws.com"


def _host(parts: Any) -> str:
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


class HTTPTransport:
    """One kept-alive HTTP(S) connection to ``url``'s host, opened on first use and again after a failure."""

    def __init__(self, url: str, timeout: float = TIMEOUT_SECONDS) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._address = (parts.hostname, parts.port)
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes
                 ) -> tuple[int, dict[str, str], bytes]:
        try:
            connection = self._connection
            if connection is None:
                kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                connection = self._connection = kind(*self._address, timeout=self.timeout)
            connection.request(method, urlsplit(url).path or "/", body, dict(headers))
            response = connection.getresponse()
            content = response.read()
            answer_headers = {name.lower(): value for name, value in response.getheaders()}
            if response.will_close:
                self.close()
            return response.status, answer_headers, content
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


_local_transport: Transport | None = None


def use_transport(transport: Transport | None) -> Transport | None:
    """Make clients built from now on send through ``transport`` (``None``: over HTTP); returns the previous one.

    For the local site and the tests, which answer from moto in their own process; Lambda never calls it.
    """
    global _local_transport
    previous, _local_transport = _local_transport, transport
    return previous


def retry_delay(attempt: int, throttled: bool, retry_after: float | None) -> float:
    """Seconds to wait before retry ``attempt + 1`` (botocore's standard mode: full jitter, capped)."""
    base = THROTTLING_BASE_SECONDS if throttled else TRANSIENT_BASE_SECONDS
    delay = random.random() * min(base * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
    return max(delay, min(retry_after or 0.0, delay + 5))


class Client:
    """A DynamoDB client for one container: build it once, at init, and reuse it (one kept-alive connection).

    Credentials (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``) and region
    (``AWS_REGION``, else ``AWS_DEFAULT_REGION``) come from ``environ``, as Lambda sets them. Its HTTP
    transport is not thread-safe: a Lambda container serves one request at a time. (The local site's threads
    share one client through ``localsite.transport``, which keeps no connection.)
    """

    def __init__(self, environ: Mapping[str, str] | None = None, *, max_attempts: int = MAX_ATTEMPTS,
                 timeout: float = TIMEOUT_SECONDS, transport: Transport | None = None) -> None:
        env = os.environ if environ is None else environ
        self.region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
        if not self.region:
            raise ValueError("no region: set AWS_REGION or AWS_DEFAULT_REGION")
        self.access_key = env.get("AWS_ACCESS_KEY_ID", "")
        self.secret_key = env.get("AWS_SECRET_ACCESS_KEY", "")
        if not self.access_key or not self.secret_key:
            raise ValueError("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        self.session_token = env.get("AWS_SESSION_TOKEN") or None
        self.url = endpoint_url(env, self.region)
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) endpoint URL: {self.url!r}")
        self.host = _host(parts)
        self.path = parts.path or "/"
        self.request_url = f"{parts.scheme}://{parts.netloc}{self.path}"
        """What each request is sent to: the endpoint, with its path."""
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.transport: Transport = transport or _local_transport or HTTPTransport(self.url, timeout)
        self._keys: dict[str, bytes] = {}
        self._quota = QUOTA_CAPACITY
        self._last_cost = RETRY_COST

    # The operations the functions call.
    def get_item(self, **params: Any) -> dict[str, Any]:
        """``GetItem``."""
        return self.call("GetItem", params)

    def put_item(self, **params: Any) -> dict[str, Any]:
        """``PutItem``."""
        return self.call("PutItem", params)

    def update_item(self, **params: Any) -> dict[str, Any]:
        """``UpdateItem``."""
        return self.call("UpdateItem", params)

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        """``BatchGetItem``."""
        return self.call("BatchGetItem", params)

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        """``TransactWriteItems``."""
        return self.call("TransactWriteItems", params)

    def signed_headers(self, operation: str, body: bytes, timestamp: str) -> dict[str, str]:
        """The headers of one request of ``operation`` with ``body``, signed at ``timestamp``."""
        headers = {
            "content-type": CONTENT_TYPE,
            "host": self.host,
            "x-amz-date": timestamp,
            "x-amz-target": TARGET_PREFIX + operation,
        }
        if self.session_token:
            headers["x-amz-security-token"] = self.session_token
        day = timestamp[:8]
        key = self._keys.get(day)
        if key is None:
            self._keys = {day: signing_key(self.secret_key, day, self.region)}
            key = self._keys[day]
        headers["authorization"] = authorization(
            method="POST", path=self.path, query="", headers=headers, body=body, timestamp=timestamp,
            region=self.region, access_key=self.access_key, secret_key=self.secret_key, key=key,
        )
        headers["user-agent"] = USER_AGENT
        return headers

    def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Make one call, retried as botocore's standard mode does; the parsed answer, or ``ClientError``."""
        body = json.dumps(params, separators=(",", ":")).encode("utf-8")
        attempt = 0
        while True:
            attempt += 1
            timestamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            headers = self.signed_headers(operation, body, timestamp)
            # Unsigned, as botocore sends it: which attempt this is (servers and tests may tell retries apart).
            headers["amz-sdk-request"] = f"attempt={attempt}; max={self.max_attempts}"
            status, answer_headers, content, failure = self._send(headers, body)
            retry, throttled = self._retryable(status, answer_headers, content, failure)
            if retry and attempt < self.max_attempts and self._acquire(throttled):
                time.sleep(retry_delay(attempt, throttled, _retry_after(answer_headers)))
                continue
            metadata = {
                "RequestId": answer_headers.get("x-amzn-requestid", ""),
                "HTTPStatusCode": status,
                "HTTPHeaders": answer_headers,
                "RetryAttempts": attempt - 1,
            }
            if retry and attempt >= self.max_attempts:
                metadata["MaxAttemptsReached"] = True
            if failure is not None:
                raise failure
            if status is not None and 200 <= status < 300:
                if _crc_mismatch(answer_headers, content):
                    raise ChecksumError(f"{operation}: the answer's CRC32 does not match x-amz-crc32")
                # The retry quota gets back what the last retry took, or a little for a call without retries.
                self._quota = min(QUOTA_CAPACITY, self._quota + (self._last_cost if attempt > 1 else NO_RETRY_INCREMENT))
                parsed = json.loads(content) if content else {}
                parsed["ResponseMetadata"] = metadata
                return parsed
            raise ClientError(_error_response(status or 0, answer_headers, content, metadata), operation)

    def _acquire(self, throttled: bool) -> bool:
        """Take a retry's cost from the quota (botocore's: it runs dry only when most calls fail)."""
        cost = THROTTLING_RETRY_COST if throttled else RETRY_COST
        if cost > self._quota:
            return False
        self._quota -= cost
        self._last_cost = cost
        return True

    def _retryable(self, status: int | None, headers: Mapping[str, str], content: bytes,
                   failure: BaseException | None) -> tuple[bool, bool]:
        """``(retry, throttled)`` for one attempt's outcome, as botocore's standard mode decides."""
        if failure is not None:
            return True, False
        assert status is not None
        if 200 <= status < 300:
            return _crc_mismatch(headers, content), False
        code = _error_code(status, headers, content)
        if code in THROTTLING_CODES:
            return True, True
        if code in TRANSIENT_CODES or status in TRANSIENT_STATUSES:
            return True, False
        if status == 429 and code not in MODELED_CODES:
            return True, True
        return False, False

    def _send(self, headers: Mapping[str, str], body: bytes
              ) -> tuple[int | None, dict[str, str], bytes, HTTPClientError | None]:
        """One attempt: ``(status, lower-cased headers, body, None)`` or ``(None, {}, b"", the failure)``."""
        try:
            status, answer_headers, content = self.transport("POST", self.request_url, headers, body)
        except (OSError, http.client.HTTPException) as error:
            failure = ConnectionError(f"{type(error).__name__} on {self.url}: {error}")
            failure.__cause__ = error
            return None, {}, b"", failure
        return status, {name.lower(): value for name, value in answer_headers.items()}, content, None

    def close(self) -> None:
        """Close the kept-alive connection, if the transport keeps one (the next call opens a new one)."""
        close = getattr(self.transport, "close", None)
        if close is not None:
            close()


def _crc_mismatch(headers: Mapping[str, str], content: bytes) -> bool:
    expected = headers.get("x-amz-crc32")
    return expected is not None and zlib.crc32(content) & 0xFFFFFFFF != int(expected)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        value = int(headers[RETRY_AFTER_HEADER]) / 1000
    except (KeyError, ValueError, OverflowError):
        return None
    return value if value >= 0 else None


def _error_body(content: bytes) -> dict[str, Any]:
    if not content:
        return {}
    try:
        body = json.loads(content.decode("utf-8"))
    except ValueError:
        return {"message": content.decode("utf-8", "replace")}
    return body if isinstance(body, dict) else {"message": str(body)}


def _error_code(status: int, headers: Mapping[str, str], content: bytes) -> str:
    code = str(_error_body(content).get("__type") or headers.get("x-amzn-errortype") or status)
    return code.split(":", 1)[0].rsplit("#", 1)[-1]


def _error_response(status: int, headers: dict[str, str], content: bytes, metadata: dict[str, Any]) -> dict[str, Any]:
    """botocore's parsed error: the error's own fields, ``Error`` and ``ResponseMetadata``."""
    body = _error_body(content)
    fields = {name: value for name, value in body.items() if name not in ("__type", "message", "Message")}
    return {
        **fields,
        "Error": {"Code": _error_code(status, headers, content), "Message": body.get("message", body.get("Message", ""))},
        "ResponseMetadata": metadata,
    }
