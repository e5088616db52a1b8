"""The local site: the deployed site's routes, handlers, events and stream mapping, on 127.0.0.1.

:class:`LocalSite` starts moto (``localsite.aws.local_aws``), creates the table as the program declares it,
serves HTTP the way API Gateway's REST API would (each request becomes the same proxy event, stage prefix and
percent-encoded path parameters included, and goes to the route's real handler), and runs the stream
processor behind a local event source mapping with the stack's settings. Everything it serves comes from
``definition``: a new route, another path or another batch size there changes the local site too.

moto is one per process: run one ``LocalSite`` at a time, and not inside another ``mock_aws``.
"""

from __future__ import annotations

import base64
import binascii
import errno
import importlib
import io
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import boto3

import definition
from definition import PROJECT, STREAM_PROCESSOR, TABLE_NAME_ENV, Route, Settings
from localsite import endpoint, hooks
from functions.keys import PARTITION_KEY, TAG_PREFIX, VISITOR_PREFIX
from localsite.aws import LockedMotoServer, expire_items, local_aws, mark_answered, stream_end, trim_stream
from localsite.esm import EventSourceMapping, MappingOptions
from localsite.events import LambdaContext, match_route, rest_proxy_event
from localsite.faults import Faults, throttling_response
from localsite.state import NotSaved, StatePersister, StateStore, restore

log = logging.getLogger("localsite")

Handler = Callable[[dict[str, Any], Any], Any]

TABLE_NAME = f"{PROJECT}-local"
QUEUE_NAME = f"{PROJECT}-stream-failures"
ERROR_CACHE_CONTROL = "no-store"
RETRY_AFTER_SECONDS = 2
"""What the "try again" page says to a request that arrives while the site stops."""
REQUEST_QUEUE_SIZE = 128
"""Connections the listening socket holds before accepting them: a burst of visitors is queued, not reset."""
MAX_REQUEST_BYTES = 10_240
"""API Gateway's REST quota for the request line and the header values together."""
MAX_HEADERS = 100
MAX_BODY_BYTES = 10 * 1024 * 1024
"""API Gateway's payload quota (10 MB): a larger body is refused (413) on its ``Content-Length``, none of it read."""
BODY_PIECE_BYTES = 64 * 1024
"""A body within the quota is read and dropped in pieces this size (no route takes a body): it is never held whole."""
MAX_CONTENT_LENGTH_DIGITS = 18
"""A ``Content-Length`` of more digits is refused as unreadable (400), not parsed: 18 digits fit any 64-bit server."""
IDLE_TIMEOUT_SECONDS = 60.0
"""A connection on which nothing arrives (or can be sent) for this long is closed, a request half-sent or not.

API Gateway's documentation gives no figure for a REST API's client connections; like every front door it drops
idle ones. Without a bound each idle or abandoned connection holds one of the site's threads for ever."""
LINGER_SECONDS = 2.0
"""After answering a request whose body was left unread, what the client still sends is read and dropped for up
to this long before the connection closes: closing on unread bytes resets it, and the client may lose the answer."""
LOGGED_TARGET_CHARACTERS = 200
"""A request's path is cut to this in the log, so a 60 KB path makes one short line."""
HOUSEKEEPING_SECONDS = 1.0
"""How often the stream's records are trimmed."""
TTL_SWEEP_SECONDS = 30.0
"""How often items past their TTL are deleted (DynamoDB does it within days, typically much sooner)."""
STREAM_RECORDS_KEPT = 1_000
"""Records every local consumer has read that stay in the stream anyway, for replays of recent batches."""

COUNTING_WRITES = frozenset({"UpdateItem", "PutItem"})
COUNTED_PREFIXES = (TAG_PREFIX, VISITOR_PREFIX)
"""The items a visit writes: its tag's count, and the unique-visitor window's marker before it."""

_PROTOCOL_PAGES: Mapping[int, tuple[str, str]] = {
    400: ("Bad request", "The request could not be understood (its first line or its headers are malformed)."),
    413: ("Request too large", "The request's body is larger than the site accepts (10 MB)."),
    414: ("Address too long", "The address of this request is longer than the site accepts."),
    431: ("Headers too large", "The request's headers are larger than the site accepts."),
    505: ("HTTP version not supported", "Use HTTP/1.1 or HTTP/1.0."),
}
"""What the front door answers to requests that never reach a route (the gateway's own plain errors, styled)."""


_one_at_a_time = threading.Lock()
"""moto keeps one state per process: a second site would share (and reset) the first one's AWS."""


class PortInUse(OSError):
    """The port is taken by another program."""


class MalformedResponse(ValueError):
    """A handler answered with something API Gateway's proxy integration would reject (a 502)."""


def import_handler(dotted: str) -> Handler:
    """The function a ``module.function`` handler path names (as Lambda resolves it)."""
    module_name, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def check_proxy_response(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of a proxy integration response; ``MalformedResponse`` where API Gateway 502s."""
    if not isinstance(response, Mapping):
        raise MalformedResponse(f"response is a {type(response).__name__}, not an object")
    status = response.get("statusCode")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode {status!r} is not an HTTP status integer")
    body = response.get("body")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise MalformedResponse(f"body is a {type(body).__name__}, not a string")
    encoded = response.get("isBase64Encoded", False)
    if not isinstance(encoded, bool):
        raise MalformedResponse("isBase64Encoded is not a boolean")
    try:
        payload = base64.b64decode(body, validate=True) if encoded else body.encode("utf-8")
    except (binascii.Error, ValueError):
        raise MalformedResponse("body is not valid base64") from None
    headers: list[tuple[str, str]] = []
    single = response.get("headers") or {}
    multi = response.get("multiValueHeaders") or {}
    if not isinstance(single, Mapping) or not isinstance(multi, Mapping):
        raise MalformedResponse("headers must be objects")
    for name, value in single.items():
        if not isinstance(value, str):
            raise MalformedResponse(f"header {name!r} is a {type(value).__name__}, not a string")
        headers.append((str(name), value))
    for name, values in multi.items():
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise MalformedResponse(f"multiValueHeaders {name!r} must be a list of strings")
        headers.extend((str(name), value) for value in values)
    return status, headers, payload


class _InFlight:
    """The requests being answered: a stop lets no new one in and waits for the others to finish.

    A request still running when moto, the stream mapping and the saved state go away (one in the SDK's retry
    backoff, say) would write where nothing saves it (a count its visitor was shown, lost at the next start),
    or land in the next site's table before its mapping starts, or, with moto gone, reach for real AWS.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = 0
        self._closed = False

    def enter(self) -> bool:
        """Count a request in; ``False`` once the site is stopping."""
        with self._cond:
            if self._closed:
                return False
            self._running += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self._running -= 1
            self._cond.notify_all()

    def close(self, timeout: float) -> bool:
        """Let no new request in; wait up to ``timeout`` seconds for those running (``False``: some still are)."""
        with self._cond:
            self._closed = True
            return self._cond.wait_for(lambda: self._running == 0, timeout)


def shown(text: str, limit: int = LOGGED_TARGET_CHARACTERS) -> str:
    """``text`` for a log line: control characters escaped, cut to ``limit`` characters with its length said."""
    safe = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[: limit + 1])
    if len(text) > limit:
        return f"{safe[:limit]}... ({len(text)} characters)"
    return safe


_NON_ASCII = re.compile(rb"[\x80-\xff]")


def utf8_target(target: str) -> str:
    """A request target as sent, its raw non-ASCII bytes percent-encoded (as a browser encodes UTF-8).

    ``http.server`` reads the request line as Latin-1; the bytes are put back and every byte above 0x7F
    becomes ``%XX``, so ``/tags/café`` sent raw reaches the handler as ``caf%C3%A9``, exactly as its
    percent-encoded form does, and bytes that are not UTF-8 are refused by the tag rules like ``%FF``.
    """
    raw = target.encode("latin-1", errors="replace")
    return _NON_ASCII.sub(lambda byte: b"%%%02X" % byte.group()[0], raw).decode("ascii")


class _Server(ThreadingHTTPServer):
    request_queue_size = REQUEST_QUEUE_SIZE
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A connection that broke outside a request (a client gone between requests): one line, no traceback,
        # and no client address (no log line of the site names one; API Gateway's access log is opt-in).
        import sys

        error = sys.exc_info()[1]
        log.info("a connection ended: %s", type(error).__name__ if error else "unknown error")


class _HeadTooLarge(Exception):
    """A request's line and headers are larger than API Gateway's quota."""


class _BodyCutShort(Exception):
    """The client stopped sending before the body its ``Content-Length`` announced was complete."""


_DIGITS = re.compile(r"[0-9]+")


class _RequestHandler(BaseHTTPRequestHandler):
    """Turns one HTTP request into what API Gateway would do with it."""

    server_version = "tag-counter-local"

    def version_string(self) -> str:  # http.server adds " " + the Python version, which no one needs to know
        return self.server_version
    protocol_version = "HTTP/1.1"
    site: LocalSite  # set on the subclass each LocalSite makes
    timeout = IDLE_TIMEOUT_SECONDS  # the connection's socket timeout (socketserver sets it); LocalSite(idle_timeout=)
    _body_unread = False

    def handle_one_request(self) -> None:
        """Read one request and answer it: every method goes to the site (the gateway routes them, not us)."""
        self._started = time.monotonic()
        self.requestline, self.command, self.path, self.request_version = "", "", "", ""
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_BYTES + 1)
            if len(self.raw_requestline) > MAX_REQUEST_BYTES:
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline.split()) == 2:
                # "GET /path" with no version (HTTP/0.9): refused before any header is waited for; an answer
                # without a status line or headers, as http.server would give, is no answer.
                self.requestline = self.raw_requestline.decode("latin-1").rstrip("\r\n")
                self.send_error(400, "HTTP/0.9 request")
                return
            # Raw UTF-8 in the target is read as UTF-8, before any splitting: http.server would read the line as
            # Latin-1 and split it on what that makes whitespace (0x85 and 0xA0 are in "Рим", "voilà").
            self.raw_requestline = _NON_ASCII.sub(lambda byte: b"%%%02X" % byte.group()[0], self.raw_requestline)
            try:
                head = self._read_head()
            except _HeadTooLarge:
                self.send_error(431)
                return
            if head is None:
                self.close_connection = True  # abandoned before its head was complete: nothing runs
                return
            rfile, self.rfile = self.rfile, io.BytesIO(head)
            try:
                parsed = self.parse_request()
            finally:
                self.rfile = rfile
            if not parsed:
                return  # an error page has been sent and logged
            header_bytes = sum(len(name) + len(value) for name, value in self.headers.items())
            if len(self.raw_requestline) + header_bytes > MAX_REQUEST_BYTES:
                self.send_error(431)
                return
            try:
                refused = self._take_body()
            except _BodyCutShort:
                self.close_connection = True  # abandoned before its body was complete: nothing runs
                return
            if refused:
                self.send_error(refused, "invalid Content-Length" if refused == 400 else None)
                return
            self._serve()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _read_head(self) -> bytes | None:
        """The header lines up to and including the blank line that ends them; ``None`` if the client stopped first.

        API Gateway runs nothing for a request whose head never completes; ``http.server`` would parse what it
        has at end of file and run it. Raises :class:`_HeadTooLarge` past the gateway's quota.
        """
        lines: list[bytes] = []
        size = len(self.raw_requestline)
        while True:
            line = self.rfile.readline(MAX_REQUEST_BYTES + 1)
            size += len(line)
            if size > MAX_REQUEST_BYTES or len(lines) > MAX_HEADERS:
                raise _HeadTooLarge
            if not line.endswith(b"\n"):
                return None  # end of file (or the connection's timeout) before the blank line
            lines.append(line)
            if line in (b"\r\n", b"\n"):
                return b"".join(lines)

    def _take_body(self) -> int:
        """Read and drop the request's body before anything runs (no route takes one); a status refusing it, or 0.

        The length is decided on the headers alone: ``Content-Length`` must be ASCII digits, once (else 400),
        and at most :data:`MAX_BODY_BYTES` (else 413, nothing read). A ``Transfer-Encoding`` body (chunked or any
        other) is not read at all. Either way a body left unread makes the answer close the connection
        (``Connection: close``), so no byte of it is ever read as the next request.
        """
        if self.headers.get_all("Transfer-Encoding"):
            # Its length is known only by decoding it, which the site does not do: answered, then closed.
            self._body_unread = True
            return 0
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return 0
        value = values[0].strip()
        if len(values) > 1 or not _DIGITS.fullmatch(value) or len(value) > MAX_CONTENT_LENGTH_DIGITS:
            self._body_unread = True
            return 400
        remaining = int(value)
        if remaining > MAX_BODY_BYTES:
            self._body_unread = True
            return 413
        expects = self.headers.get("Expect", "").lower() == "100-continue" and self.request_version != "HTTP/1.0"
        if remaining and expects:
            self.send_response_only(100)  # deferred until the length is accepted (see handle_expect_100)
            self.end_headers()
        while remaining:
            piece = self.rfile.read(min(remaining, BODY_PIECE_BYTES))
            if not piece:
                raise _BodyCutShort
            remaining -= len(piece)
        return 0

    def handle_expect_100(self) -> bool:
        # http.server would say "100 Continue" while parsing the headers, inviting a body the site may refuse:
        # _take_body says it once the length is accepted.
        return True

    def finish(self) -> None:
        super().finish()
        if self._body_unread:
            self._linger()

    def _linger(self) -> None:
        """Tell the client the answer is complete, then drop what it still sends (for a bounded time) before closing."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(BODY_PIECE_BYTES):
                    break
        except OSError:
            pass  # timed out, reset or gone: the connection closes either way

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The front door's answer to a request that reaches no route: a styled page and one log line."""
        if self.request_version in ("", "HTTP/0.9"):
            self.request_version = "HTTP/1.0"  # a status line and headers, whatever the request said
        self.close_connection = True
        status, headers, body = self.site._protocol_error_page(code)
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass  # the client is gone; the line below still tells what happened
        first_line = getattr(self, "requestline", "") or self.raw_requestline.decode("latin-1", "replace").strip()
        reason = message or _PROTOCOL_PAGES.get(code, ("", ""))[0] or self.responses.get(code, ("",))[0]
        log.info("%s %d (%s) %.1f ms", shown(first_line) or "-", status, reason,
                 (time.monotonic() - getattr(self, "_started", time.monotonic())) * 1000)

    def _serve(self) -> None:
        started = self._started
        target = utf8_target(self.path)
        stopping = not self.site._in_flight.enter()
        if stopping:
            # Nothing reaches a function once the site is stopping: "try again", and no keep-alive past the stop.
            status, headers, body = self.site._stopping_page()
        else:
            try:
                status, headers, body = self.site.respond(
                    self.command, target, list(self.headers.items()), source_ip=self.client_address[0]
                )
            except Exception:  # a fault of the local site itself: answer, log, keep serving
                log.exception("could not answer %s %s", self.command, shown(target))
                status, headers, body = 500, [("Content-Type", "text/plain; charset=utf-8")], b"local site error\n"
            finally:
                self.site._in_flight.leave()
        note = ""
        try:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            if stopping or self._body_unread:
                # No keep-alive past the stop, nor past a body left unread (its bytes are not a next request).
                self.send_header("Connection", "close")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The visit (if it was one) counted all the same: say so on its one line.
            self.close_connection = True
            note = " (the client left before the answer was sent)"
        log.info("%s %s %d %.1f ms%s", shown(self.command, 20), shown(target), status,
                 (time.monotonic() - started) * 1000, note)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        # Requests and protocol errors are logged once, by _serve and send_error.
        log.debug("http: " + format, *args)


class LocalSite:
    """The whole site on one machine: moto, the table, the HTTP routes and the stream mapping."""

    def __init__(
        self,
        settings: Settings | None = None,
        routes: Sequence[Route] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        state_dir: Path | str | None = None,
        fresh: bool = False,
        mapping_options: MappingOptions | None = None,
        clock: Callable[[], float] = time.time,
        processor: Handler | None = None,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    ) -> None:
        self.settings = settings or Settings()
        # Read at construction, not import: whatever definition.ROUTES says now is what is served.
        self.routes = tuple(routes if routes is not None else definition.ROUTES)
        self.host = host
        self.port = port
        self.state_dir = Path(state_dir).resolve() if state_dir is not None else None
        self.fresh = fresh
        self.mapping_options = mapping_options
        self.clock = clock
        self.idle_timeout = idle_timeout
        """Seconds a connection may stay silent (see :data:`IDLE_TIMEOUT_SECONDS`)."""
        self.table_name = TABLE_NAME
        self.faults = Faults()
        self._processor = processor
        self._stack = ExitStack()
        self._server: ThreadingHTTPServer | None = None
        self._in_flight = _InFlight()
        self._handlers: dict[str, Handler] = {}
        self.esm: EventSourceMapping | None = None
        self.persister: StatePersister | None = None
        self.store: StateStore | None = None
        self.moto_server: LockedMotoServer | None = None
        self.restored = 0
        self.expired = 0
        """Items deleted because their TTL passed."""
        self._housekeeping_stop = threading.Event()
        self.stream_arn = ""
        self.queue_url = ""
        self.dynamodb: Any = None
        self.sqs: Any = None

    # -- lifecycle -----------------------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """``http://<host>:<port>`` (the host in brackets if it is an IPv6 address)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The site's address, as the stack's ``url`` output: the stage root, with its trailing slash."""
        return f"{self.origin}/{self.settings.stage_name}/"

    def start(self) -> LocalSite:
        """Lock the state folder, bind the port, start moto and the stream mapping, restore saved counts, serve.

        Raises ``localsite.state.StateError`` (folder in use, unusable, or a corrupt state file) before
        binding anything, and :class:`PortInUse` or ``OSError`` if the port cannot be had.
        """
        if not _one_at_a_time.acquire(blocking=False):
            raise RuntimeError("another LocalSite is running in this process; stop it first")
        self._stack.callback(_one_at_a_time.release)
        self._in_flight = _InFlight()
        try:
            if self.state_dir is not None:
                self.store = StateStore(self.state_dir, fresh=self.fresh)
                self._stack.callback(self.store.close)
            self._bind()
            self._stack.enter_context(local_aws())
            self._start_aws()
        except BaseException:
            self._stack.close()
            if self._server is not None:
                self._server.server_close()
            raise
        server = self._server
        assert server is not None
        # A short poll keeps stop() quick: shutdown() waits for the loop to look again.
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="http", daemon=True)
        thread.start()
        self._stack.callback(thread.join, 10)
        # Runs right after shutdown() (last in, first out): requests already being answered finish while moto,
        # the mapping and the saved state are still there.
        self._stack.callback(self._finish_requests)
        self._stack.callback(server.shutdown)
        if self.state_dir is not None:
            # Last: the endpoint is published once everything behind it works, and withdrawn first at a stop.
            endpoint.publish(self.state_dir, self._endpoint())
            self._stack.callback(endpoint.withdraw, self.state_dir)
        return self

    def _endpoint(self) -> endpoint.Endpoint:
        assert self.moto_server is not None
        return endpoint.Endpoint(
            endpoint_url=self.moto_server.url,
            table_name=self.table_name,
            region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            pid=os.getpid(),
            site_url=self.url,
            history_days=self.settings.history_days,
        )

    def _finish_requests(self) -> None:
        grace = self.settings.route_timeout_seconds + 5
        if not self._in_flight.close(grace):
            log.warning("requests still running %d s after the stop began; stopping anyway", grace)

    def _bind(self) -> None:
        handler = type("Handler", (_RequestHandler,), {"site": self, "timeout": self.idle_timeout})
        server_class: type[ThreadingHTTPServer] = _Server
        if _is_ipv6(self.host):
            server_class = type("Server6", (_Server,), {"address_family": socket.AF_INET6})
        try:
            server = server_class((self.host, self.port), handler)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUse(errno.EADDRINUSE, f"port {self.port} on {self.host} is already in use") from None
            raise
        self._server = server
        self.port = server.server_address[1]
        self._stack.callback(server.server_close)

    def _start_aws(self) -> None:
        # What the program sets on every deployed function, set here for the same handlers; the unique-visitor
        # window's key is random per run (the window's markers are not saved across restarts either).
        environment = {
            **definition.function_environment(self.settings, self.routes),
            **definition.visitor_key_environment(self.settings, secrets.token_urlsafe(32)),
            TABLE_NAME_ENV: self.table_name,
        }
        for name, value in environment.items():
            self._stack.callback(_restore_env, name, os.environ.get(name))
            os.environ[name] = value
        hooks.install()
        self._rebuild_function_state()  # their client must be made now: inside moto, with the hooks
        self._stack.callback(self._rebuild_function_state)
        self.faults.attach()
        self._stack.callback(self.faults.detach)

        self.dynamodb = boto3.client("dynamodb")
        self.sqs = boto3.client("sqs")
        self.stream_arn = definition.create_table(self.dynamodb, self.table_name)
        self.queue_url = self.sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]

        starting_position = self.settings.stream_starting_position
        if self.store is not None:
            restored = restore(self.store, self.table_name)
            self.restored = len(restored)
            if restored:
                from admin.reconcile import set_total_from

                # The total is not saved (it lags the tags by the stream): recomputed from the tags, as reconcile
                # does; nothing flows yet (the site serves only once started), so no steady reading is needed.
                set_total_from(self.dynamodb, self.table_name, restored, history_days=self.settings.history_days)
                # Only what is written from now on goes to the processor: the restored counts are in the total.
                starting_position = "LATEST"
            self.persister = StatePersister(self.store, self.table_name, lambda: stream_end(self.table_name))
            self.persister.start()
            hooks.add_before_send(self._refuse_counts_while_stalled)
            self._stack.callback(hooks.remove, self._refuse_counts_while_stalled)
            # Written through: every write is saved before its SDK call returns, so before any page says so.
            hooks.add_after_write(self.persister.on_write)
            self._stack.callback(self.persister.stop)
            self._stack.callback(hooks.remove, self.persister.on_write)

        processor = self._processor or import_handler(STREAM_PROCESSOR.handler)
        self.esm = EventSourceMapping(
            self.table_name,
            self.stream_arn,
            processor,
            self.settings,
            filter_patterns=definition.STREAM_FILTER_PATTERNS,
            on_failure=self._send_to_on_failure_queue,
            faults=self.faults,
            starting_position=starting_position,
            function_name=f"{PROJECT}-{STREAM_PROCESSOR.name}",
            clock=self.clock,
            options=self.mapping_options,
        )
        self.esm.start()
        hooks.add_after_write(self.esm.wake)
        self._stack.callback(self.esm.stop)
        self._stack.callback(hooks.remove, self.esm.wake)

        self._housekeeping_stop.clear()
        housekeeping = threading.Thread(target=self._housekeep, name="housekeeping", daemon=True)
        housekeeping.start()
        self._stack.callback(housekeeping.join, 10)
        self._stack.callback(self._housekeeping_stop.set)

        if self.state_dir is not None:
            # The operator command, in another process, reaches this moto through HTTP.
            self.moto_server = LockedMotoServer(after_write=self._remote_write).start()
            self._stack.callback(self.moto_server.stop)

    def _refuse_counts_while_stalled(self, operation: str, params: dict[str, Any], request: Any) -> Any:
        """While saves fail, refuse a count (or a visitor marker) before it is applied: a 503, nothing counted."""
        if self.persister is None or not self.persister.stalled or operation not in COUNTING_WRITES:
            return None
        key = params.get("Key") or params.get("Item") or {}
        if not str(key.get(PARTITION_KEY, {}).get("S", "")).startswith(COUNTED_PREFIXES):
            return None
        mark_answered(request)
        return throttling_response(request, "ThrottlingException", operation, "the local site cannot save counts now")

    def _remote_write(self, operation: str) -> None:
        try:
            hooks.notify_write(operation)
        except NotSaved:
            pass  # logged by the persister, which keeps the records and retries

    # -- what DynamoDB does on its own ---------------------------------------------------------------------

    def housekeeping(self) -> None:
        """Trim the stream and delete expired items now (the housekeeping thread does it every second)."""
        self.trim_stream()
        self.expire_items()

    def trim_stream(self) -> int:
        """Drop the stream records past retention, and those both local consumers have read (but the newest)."""
        consumers = [self.esm, self.persister]
        positions = [consumer.position for consumer in consumers if consumer is not None]
        read_by = None if not positions or None in positions else min(p for p in positions if p is not None)
        return trim_stream(self.table_name, read_by=read_by, keep=STREAM_RECORDS_KEPT, now=self.clock())

    def expire_items(self) -> int:
        """Delete the items whose TTL has passed (by the site's clock), as DynamoDB's TTL process would."""
        deleted = expire_items(self.table_name, self.clock())
        if deleted:
            self.expired += len(deleted)
            log.info("TTL: %d expired item%s deleted", len(deleted), "" if len(deleted) == 1 else "s")
            try:
                hooks.notify_write("DeleteItem")
            except NotSaved:
                pass  # logged by the persister, which keeps the records and retries
        return len(deleted)

    def _housekeep(self) -> None:
        last_sweep = time.monotonic()
        while not self._housekeeping_stop.wait(HOUSEKEEPING_SECONDS):
            try:
                self.trim_stream()
                if time.monotonic() - last_sweep >= TTL_SWEEP_SECONDS:
                    last_sweep = time.monotonic()
                    self.expire_items()
            except Exception:  # the next round tries again; serving never depends on it
                log.exception("housekeeping failed")

    @staticmethod
    def _rebuild_function_state() -> None:
        from functions.store import build_store

        build_store()

    def stop(self) -> None:
        """Stop serving, stop the mapping, save the counts, stop moto (in that order)."""
        self._stack.close()

    def __enter__(self) -> LocalSite:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until the stream mapping has handled every record written so far."""
        assert self.esm is not None, "the site is not started"
        return self.esm.drain(timeout)

    # -- the on-failure destination ------------------------------------------------------------------------

    def _send_to_on_failure_queue(self, message: dict[str, Any]) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message))

    def on_failure_messages(self) -> list[dict[str, Any]]:
        """The messages in the on-failure queue, read from SQS and left there."""
        messages: list[dict[str, Any]] = []
        handles: list[str] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60)
            received = batch.get("Messages", [])
            if not received:
                break
            for message in received:
                handles.append(message["ReceiptHandle"])
                messages.append(json.loads(message["Body"]))
        for start in range(0, len(handles), 10):
            # Visible again at once: looking at the queue must not take messages from it.
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for index, handle in enumerate(handles[start : start + 10])
                ],
            )
        return messages

    # -- HTTP ----------------------------------------------------------------------------------------------

    def handler(self, route: Route) -> Handler:
        """The route's handler, imported once from its dotted path."""
        found = self._handlers.get(route.function.handler)
        if found is None:
            found = self._handlers[route.function.handler] = import_handler(route.function.handler)
        return found

    def respond(
        self, method: str, target: str, headers: list[tuple[str, str]], source_ip: str = "127.0.0.1"
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """What API Gateway would answer to ``method target`` (target: path and query, as sent) from ``source_ip``."""
        raw_path, _, query = target.partition("?")
        stage = self.settings.stage_name
        if raw_path == "/":
            return 302, [("Location", f"/{stage}/"), ("Cache-Control", "no-store")], b""
        prefix = f"/{stage}"
        if raw_path != prefix and not raw_path.startswith(prefix + "/"):
            return self._not_found()
        path = raw_path[len(prefix) :] or "/"
        found = match_route(path, self.routes)
        # API Gateway routes GET and HEAD on every route (a HEAD goes to the GET's function).
        if found is None or found[0].method != ("GET" if method == "HEAD" else method):
            # API Gateway answers an unknown path or method with MISSING_AUTHENTICATION_TOKEN; the stack's
            # gateway response turns it into this 404 page.
            return self._not_found()
        route, parameters = found
        event = rest_proxy_event(
            route,
            path,
            parameters,
            stage=stage,
            method=method,
            # API Gateway sets X-Forwarded-Proto itself (https); here it is http.
            headers=[(k, v) for k, v in headers if k.lower() != "x-forwarded-proto"]
            + [("X-Forwarded-Proto", "http")],
            query=parse_qsl(query, keep_blank_values=True),
            source_ip=source_ip,
            domain_name=self.host,
        )
        if raw_path == prefix:
            event["requestContext"]["path"] = prefix  # the stage root without its slash, as the browser asked
        return self._invoke(route, event)

    def _invoke(self, route: Route, event: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        timeout = self.settings.route_timeout_seconds
        context = LambdaContext(f"{PROJECT}-{route.name}", timeout, self.settings.route_memory_mb)
        saves = self.persister.waited if self.persister is not None else lambda: 0.0
        started, saved_before = time.monotonic(), saves()
        try:
            response = self.handler(route)(event, context)
            # The wait for the site's own save is not the function's: a visit it applied is answered once saved.
            if time.monotonic() - started - (saves() - saved_before) > timeout:
                raise TimeoutError(f"Task timed out after {timeout} seconds")
            return check_proxy_response(response)
        except Exception:  # what a deployed function's failure becomes: the gateway's 502, details in the log
            log.exception("%s handler failed for %s: API Gateway would answer 502", route.name, event["path"])
            return self._error_page(502, 500)

    def _stopping_page(self) -> tuple[int, list[tuple[str, str]], bytes]:
        status, headers, body = self._error_page(503, 503)
        return status, [*headers, ("Retry-After", str(RETRY_AFTER_SECONDS))], body

    def _not_found(self) -> tuple[int, list[tuple[str, str]], bytes]:
        return self._error_page(404, 404)

    @property
    def home_href(self) -> str:
        """The home link of the site's own pages (404, 502, 503, the front door's): the deployed gateway pages' link
        (``definition.GATEWAY_HOME_HREF``) with the stage put in, as API Gateway does when it answers."""
        return definition.GATEWAY_HOME_HREF.replace("$context.stage", self.settings.stage_name)

    def _protocol_error_page(self, status: int) -> tuple[int, list[tuple[str, str]], bytes]:
        from functions.web import gateway_headers, render

        title, explanation = _PROTOCOL_PAGES.get(status, _PROTOCOL_PAGES[400])
        page = render(
            "error.html", status=status, title=title, explanation=explanation, problem=None, home_href=self.home_href
        )
        return status, list(gateway_headers(ERROR_CACHE_CONTROL).items()), page.encode("utf-8")

    def _error_page(self, status: int, page: int) -> tuple[int, list[tuple[str, str]], bytes]:
        from functions.web import gateway_headers, render_error_page

        headers = list(gateway_headers(ERROR_CACHE_CONTROL).items())
        return status, headers, render_error_page(page, home_href=self.home_href).encode("utf-8")


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
