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
import json
import logging
import os
import secrets
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
from localsite import hooks
from localsite.aws import local_aws
from localsite.esm import EventSourceMapping, MappingOptions
from localsite.events import LambdaContext, match_route, rest_proxy_event
from localsite.faults import Faults
from localsite.state import StatePersister, StateStore, restore

log = logging.getLogger("localsite")

Handler = Callable[[dict[str, Any], Any], Any]

TABLE_NAME = f"{PROJECT}-local"
QUEUE_NAME = f"{PROJECT}-stream-failures"
ERROR_CACHE_CONTROL = "no-store"
RETRY_AFTER_SECONDS = 2
"""What the "try again" page says to a request that arrives while the site stops."""


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


class _RequestHandler(BaseHTTPRequestHandler):
    """Turns one HTTP request into what API Gateway would do with it."""

    server_version = "tag-counter-local"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    site: LocalSite  # set on the subclass each LocalSite makes

    def _serve(self) -> None:
        started = time.monotonic()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > 0:
            self.rfile.read(length)  # keep the connection usable; no route takes a body
        stopping = not self.site._in_flight.enter()
        if stopping:
            # Nothing reaches a function once the site is stopping: "try again", and no keep-alive past the stop.
            status, headers, body = self.site._stopping_page()
        else:
            try:
                status, headers, body = self.site.respond(
                    self.command, self.path, list(self.headers.items()), source_ip=self.client_address[0]
                )
            except Exception:  # a fault of the local site itself: answer, log, keep serving
                log.exception("could not answer %s %s", self.command, self.path)
                status, headers, body = 500, [("Content-Type", "text/plain; charset=utf-8")], b"local site error\n"
            finally:
                self.site._in_flight.leave()
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if stopping:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        log.info("%s %s %d %.1f ms", self.command, self.path, status, (time.monotonic() - started) * 1000)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        # Requests are logged once, by _serve; this only hears of protocol errors.
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
        self.restored = 0
        self.stream_arn = ""
        self.queue_url = ""
        self.dynamodb: Any = None
        self.sqs: Any = None

    # -- lifecycle -----------------------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The site's address, as the stack's ``url`` output: the stage root, with its trailing slash."""
        return f"{self.origin}/{self.settings.stage_name}/"

    def start(self) -> LocalSite:
        """Bind the port, start moto and the stream mapping, restore saved counts, then serve."""
        if not _one_at_a_time.acquire(blocking=False):
            raise RuntimeError("another LocalSite is running in this process; stop it first")
        self._stack.callback(_one_at_a_time.release)
        self._in_flight = _InFlight()
        try:
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
        return self

    def _finish_requests(self) -> None:
        grace = self.settings.route_timeout_seconds + 5
        if not self._in_flight.close(grace):
            log.warning("requests still running %d s after the stop began; stopping anyway", grace)

    def _bind(self) -> None:
        handler = type("Handler", (_RequestHandler,), {"site": self})
        try:
            server = ThreadingHTTPServer((self.host, self.port), handler)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUse(errno.EADDRINUSE, f"port {self.port} on {self.host} is already in use") from None
            raise
        server.daemon_threads = True
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
        streams = boto3.client("dynamodbstreams")
        self.sqs = boto3.client("sqs")
        self.stream_arn = definition.create_table(self.dynamodb, self.table_name)
        self.queue_url = self.sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]

        starting_position = self.settings.stream_starting_position
        if self.state_dir is not None:
            self.store = StateStore(self.state_dir)
            self._stack.callback(self.store.close)
            if self.fresh:
                self.store.clear()
            self.restored = restore(self.store, self.dynamodb, self.table_name)
            if self.restored:
                from admin.reconcile import reconcile

                # Nothing flows yet (the site serves only once started): no settle period is needed.
                reconcile(self.dynamodb, self.table_name, streams=streams, history_days=self.settings.history_days)
                # The restored items' records are in the stream now: counting them again would double the total.
                starting_position = "LATEST"
            self.persister = StatePersister(self.store, streams, self.stream_arn)
            self.persister.start()
            hooks.add_after_write(self.persister.wake)
            self._stack.callback(self.persister.stop)
            self._stack.callback(hooks.remove, self.persister.wake)

        processor = self._processor or import_handler(STREAM_PROCESSOR.handler)
        self.esm = EventSourceMapping(
            streams,
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
        started = time.monotonic()
        try:
            response = self.handler(route)(event, context)
            if time.monotonic() - started > timeout:
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

    @staticmethod
    def _error_page(status: int, page: int) -> tuple[int, list[tuple[str, str]], bytes]:
        from functions.web import render_error_page, security_headers

        headers = list(security_headers(ERROR_CACHE_CONTROL).items())
        return status, headers, render_error_page(page).encode("utf-8")


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
