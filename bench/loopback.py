"""moto's in-process DynamoDB served over plain HTTP on 127.0.0.1, for other processes to call.

The cold-start runs are fresh interpreters that must not import moto (that would be part of what they
measure), so they reach DynamoDB the way a function does: over HTTP, through ``AWS_ENDPOINT_URL``. moto's own
server needs Flask; this one is a small ``http.server`` that hands each request to the same dispatcher
``mock_aws`` uses for in-process clients, so both processes see one table, answered the same way.
Use it inside ``localsite.aws.local_aws()``, which also makes each request apply atomically.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from botocore.awsrequest import AWSPreparedRequest
from botocore.compat import HTTPHeaders
from moto.core.models import botocore_stubber

REGION = "us-east-1"
# The JSON protocol's target prefix names the service; moto dispatches on the AWS host name.
_HOSTS = {
    "DynamoDB_20120810": f"dynamodb.{REGION}.amazonaws.com",
    "DynamoDBStreams_20120810": f"streams.dynamodb.{REGION}.amazonaws.com",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        target = (self.headers.get("X-Amz-Target") or "").split(".")[0]
        host = _HOSTS.get(target)
        if host is None:
            self._answer(400, {"Content-Type": "text/plain"}, b"only DynamoDB is served here")
            return
        headers = HTTPHeaders()
        for name, value in self.headers.items():
            if name.lower() != "host":
                headers[name] = value
        headers["Host"] = host
        request = AWSPreparedRequest(
            method="POST", url=f"https://{host}/", headers=headers, body=body, stream_output=False
        )
        response = botocore_stubber("before-send.dynamodb", request)
        if response is None:  # moto is not active: say so instead of hanging the caller
            self._answer(503, {"Content-Type": "text/plain"}, b"moto is not running")
            return
        self._answer(response.status_code, dict(response.headers), response.content)

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        """Quiet: the benchmark prints figures, not access logs."""


class LoopbackDynamoDB:
    """An HTTP endpoint on 127.0.0.1 (free port) in front of moto's DynamoDB; a context manager."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-dynamodb", daemon=True)

    @property
    def url(self) -> str:
        """The endpoint URL to put in ``AWS_ENDPOINT_URL``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LoopbackDynamoDB:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
