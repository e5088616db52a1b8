"""What reaches the local site that is not a well-formed request for a route: answered as API Gateway would.

Every such answer is a styled page (the site's stylesheet and security headers), nothing is counted, and
each makes one log line of bounded length.
"""

from __future__ import annotations

import logging
import select
import socket
import sys
import threading
from urllib.parse import quote

import pytest

from localsite.site import MAX_REQUEST_BYTES, LocalSite
from tests.localsite.helpers import request, tag_counts, visit, wait_until

CSP = "Content-Security-Policy"


def raw_exchange(site: LocalSite, data: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes as they are on a fresh connection; everything the site answers until it closes."""
    with socket.create_connection(("127.0.0.1", site.port), timeout=timeout) as connection:
        connection.sendall(data)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def head_of(answer: bytes) -> tuple[str, dict[str, str], str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return status_line, headers, body.decode("utf-8")


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET /dev/tags/nine\r\n", 400),  # HTTP/0.9: no version
        (b"GET /dev/tags/nine HTTP/1.1 extra\r\n\r\n", 400),
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET /dev/tags/nine HTTP/2.0\r\n\r\n", 505),
    ],
)
def test_malformed_request_lines_get_a_styled_error_and_count_nothing(
    site: LocalSite, data: bytes, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="localsite"):
        status_line, headers, body = head_of(raw_exchange(site, data))
    assert status_line.startswith(f"HTTP/1.") and f" {status} " in status_line + " "
    assert headers["content-type"] == "text/html; charset=utf-8" and CSP.lower() in headers
    assert "<style" in body and f"Error {status}." in body
    assert tag_counts(site) == {}
    assert any(f" {status} (" in message for message in caplog.messages)


@pytest.mark.parametrize("method", ["TRACE", "get", "BREW", "POST"])
def test_methods_the_gateway_does_not_route_get_its_styled_404_and_count_nothing(
    site: LocalSite, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    def lines() -> list[str]:
        return [m for m in caplog.messages if m.startswith(f"{method} /dev/tags/unrouted 404")]

    with caplog.at_level(logging.INFO, logger="localsite"):
        reply = request(f"{site.url}tags/unrouted", method=method)
        wait_until(lines, what="the request's log line")  # written once the answer has gone out
    # API Gateway answers MISSING_AUTHENTICATION_TOKEN; the stack's gateway response makes it this 404 page
    assert reply.status == 404
    assert reply.headers[CSP] and "Page not found" in reply.body
    assert tag_counts(site) == {}
    assert len(lines()) == 1


def test_an_oversized_request_line_is_refused_styled_and_logged_in_one_short_line(
    site: LocalSite, caplog: pytest.LogCaptureFixture
) -> None:
    path = "/dev/tags/" + "a" * 60_000
    with caplog.at_level(logging.INFO, logger="localsite"):
        status_line, headers, body = head_of(raw_exchange(site, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()))
    assert " 414 " in status_line and CSP.lower() in headers and "Address too long" in body
    logged = [m for m in caplog.messages if " 414 " in m]
    assert len(logged) == 1 and len(logged[0]) < 400, logged
    assert tag_counts(site) == {}


@pytest.mark.parametrize(
    "headers",
    [
        "".join(f"X-Many-{n}: {n}\r\n" for n in range(120)),  # more headers than the site takes
        f"X-Big: {'b' * (MAX_REQUEST_BYTES + 10)}\r\n",  # one header line past the limit
        "".join(f"X-Part-{n}: {'p' * 1000}\r\n" for n in range(12)),  # together past the gateway's quota
    ],
)
def test_oversized_headers_are_refused_styled_and_logged(
    site: LocalSite, headers: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="localsite"):
        status_line, answer_headers, body = head_of(
            raw_exchange(site, f"GET /dev/tags/heavy HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        )
    assert " 431 " in status_line and CSP.lower() in answer_headers and "Headers too large" in body
    assert sum(1 for m in caplog.messages if " 431 " in m) == 1
    assert tag_counts(site) == {}


def test_a_long_path_is_cut_in_the_request_log(site: LocalSite, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="localsite"):
        assert request(f"{site.url}nowhere/{'z' * 8000}").status == 404
        wait_until(lambda: any(m.startswith("GET /dev/nowhere/") for m in caplog.messages), what="the log line")
    line = next(m for m in caplog.messages if m.startswith("GET /dev/nowhere/"))
    assert len(line) < 400 and "characters)" in line


def test_raw_utf8_bytes_in_a_path_count_for_the_same_tag_as_their_percent_encoding(site: LocalSite) -> None:
    # GIVEN a client that sends "café" as raw UTF-8 bytes, and one that percent-encodes it
    answer = raw_exchange(site, "GET /dev/tags/café HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("utf-8"))
    status_line, _, body = head_of(answer)
    assert " 200 " in status_line, body
    visit(site, "caf%C3%A9")
    # THEN both count for one tag, shown as UTF-8 (not Latin-1 "cafÃ©")
    assert tag_counts(site) == {"tag#café": 2}
    assert "café" in body and "cafÃ©" not in body
    # ... and bytes that are not UTF-8 are an invalid tag, as %FF is
    status_line, _, _ = head_of(raw_exchange(site, b"GET /dev/tags/caf\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert " 400 " in status_line
    assert tag_counts(site) == {"tag#café": 2}


@pytest.mark.parametrize("tag", ["Рим", "хлеб", "Åsa", "voilà", "ｅｖｅ"])
def test_raw_utf8_whose_bytes_latin1_calls_whitespace_is_read_as_utf8_before_splitting(
    site: LocalSite, tag: str
) -> None:
    # GIVEN a raw UTF-8 path whose bytes include 0x85 or 0xA0 (whitespace, read as Latin-1)
    assert {0x85, 0xA0} & set(tag.encode("utf-8"))
    answer = raw_exchange(site, f"GET /dev/tags/{tag} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    status_line, _, body = head_of(answer)
    # THEN it is served as its tag, the same one its percent-encoding counts for
    assert " 200 " in status_line, body
    visit(site, quote(tag))
    counts = tag_counts(site)
    assert len(counts) == 1 and list(counts.values()) == [2]


@pytest.mark.parametrize("data", [
    b"GET /dev/tags/half HTTP/1.1\r\n",
    b"GET /dev/tags/half HTTP/1.1\r\nHost: x\r\n",
    b"GET /dev/tags/half HTTP/1.1\r\nHost: x",
])
def test_a_request_abandoned_before_its_head_is_complete_counts_nothing(site: LocalSite, data: bytes) -> None:
    # WHEN a client sends a request line (and perhaps headers) but never the blank line, then stops sending
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    # THEN nothing ran: no answer, no count (a complete request after it counts as usual)
    assert answer == b""
    visit(site, "other")
    assert tag_counts(site) == {"tag#other": 1}


@pytest.mark.parametrize("path", ["/dev/counts/hello", "/dev/tags/hello", "/dev/counts/hello/badge.svg", "/dev/nowhere"])
def test_head_carries_the_content_length_of_get(site: LocalSite, path: str) -> None:
    visit(site, "hello", times=5)  # the visit page's GET and HEAD show 6 and 5 visits: as many digits
    get = head_of(raw_exchange(site, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()))
    head_answer = raw_exchange(site, f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    head = head_of(head_answer)
    assert head[0] == get[0]
    assert int(head[1]["content-length"]) == int(get[1]["content-length"]) == len(get[2].encode()) > 0
    assert head_answer.endswith(b"\r\n\r\n")  # and no body


def test_the_server_header_names_the_site_and_nothing_else(site: LocalSite) -> None:
    answer = raw_exchange(site, b"GET /dev/counts/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"\r\nServer: tag-counter-local\r\n" in answer  # no trailing space, no Python version


def reset_arrived(connection: socket.socket) -> bool:
    """Whether the peer's reset (or close) has reached this socket, without reading any data."""
    if not select.select([connection], [], [], 0)[0]:
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except ConnectionResetError:
        return True


def test_a_client_that_leaves_early_makes_one_line_with_the_counted_status(
    site: LocalSite, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a visit whose answer is held until its client has reset the connection
    gone = threading.Event()
    original = site.respond

    def respond_after_the_client_left(*args, **kwargs):  # type: ignore[no-untyped-def]
        answer = original(*args, **kwargs)
        server_side = sys._getframe(1).f_locals["self"].connection  # the request handler's socket
        gone.wait(10)
        wait_until(lambda: reset_arrived(server_side), what="the client's reset to reach the site's socket")
        return answer

    monkeypatch.setattr(site, "respond", respond_after_the_client_left)
    with caplog.at_level(logging.INFO, logger="localsite"):
        connection = socket.create_connection(("127.0.0.1", site.port), timeout=10)
        connection.sendall(b"GET /dev/tags/leaver HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: tag_counts(site) == {"tag#leaver": 1}, what="the visit to count")
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        connection.close()  # a reset, as a closed browser tab sends
        gone.set()
        wait_until(lambda: any("leaver" in m for m in caplog.messages), what="the request's log line")
    lines = [m for m in caplog.messages if "leaver" in m]
    assert len(lines) == 1 and lines[0].startswith("GET /dev/tags/leaver 200 ")
    assert "the client left before the answer was sent" in lines[0]
    assert not [r for r in caplog.records if r.exc_info]


def test_a_burst_of_new_connections_waits_in_the_backlog_instead_of_being_dropped(site: LocalSite) -> None:
    # GIVEN a site that is not accepting connections for a moment (its accept loop paused)
    server = site._server
    assert server is not None
    server.shutdown()
    connections = []
    try:
        # WHEN 100 visitors connect at once
        for _ in range(100):
            connections.append(socket.create_connection(("127.0.0.1", site.port), timeout=1.0))
        for n, connection in enumerate(connections):
            connection.sendall(f"GET /dev/tags/burst HTTP/1.1\r\nHost: x\r\nX-N: {n}\r\n\r\n".encode())
    finally:
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    # THEN every one of them is answered once the site accepts again
    statuses = []
    for connection in connections:
        with connection:
            connection.settimeout(30)
            statuses.append(connection.recv(64).split(b" ")[1])
    assert statuses == [b"200"] * 100
    wait_until(lambda: tag_counts(site) == {"tag#burst": 100}, what="the burst to count")

