"""The gateway's limits on bodies and connections, over real sockets: a body over the 10 MB quota, a length that
cannot be read, a ``Transfer-Encoding`` body, an idle connection. None of them runs a second request or counts."""

from __future__ import annotations

import logging
import re
import socket
import threading
from pathlib import Path

import pytest

import localsite.site
from localsite.site import IDLE_TIMEOUT_SECONDS, MAX_BODY_BYTES, LocalSite
from tests.localsite.helpers import running_site, tag_counts, visit, wait_until
from tests.localsite.test_protocol import CSP, head_of, raw_exchange


def read_to_end(connection: socket.socket) -> bytes:
    """Everything the site sends on ``connection`` until it closes it (the socket's own timeout is the deadline)."""
    answer = b""
    while chunk := connection.recv(65536):
        answer += chunk
    return answer


def statuses(answer: bytes) -> list[bytes]:
    """The status of every answer in ``answer`` (a page's HTML never says "HTTP/1.1 " followed by a status)."""
    return re.findall(rb"HTTP/1\.[01] (\d{3}) ", answer)


def test_a_body_over_the_quota_gets_413_on_its_length_alone(site: LocalSite) -> None:
    # GIVEN a request announcing a 400 MB body, of which the client sends nothing
    with socket.create_connection(("127.0.0.1", site.port), timeout=30) as connection:
        connection.sendall(f"GET /dev/tags/big HTTP/1.1\r\nHost: x\r\nContent-Length: {400 * 2**20}\r\n\r\n".encode())
        # THEN the answer comes without the site waiting for (or holding) any of the body, and the connection closes
        status_line, headers, body = head_of(read_to_end(connection))
    assert " 413 " in status_line
    assert headers["connection"] == "close" and CSP.lower() in headers
    assert "<style" in body and "Request too large" in body
    assert tag_counts(site) == {}


def test_a_body_one_byte_over_the_quota_is_refused_while_it_is_being_sent(
    site: LocalSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a client sending a body just over 10 MB, made of requests that would count if read as requests
    monkeypatch.setattr(localsite.site, "LINGER_SECONDS", 60.0)  # a generous bound: the client ends it first
    smuggled = b"GET /dev/tags/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    body = (smuggled * (MAX_BODY_BYTES // len(smuggled) + 1))[: MAX_BODY_BYTES + 1]
    with socket.create_connection(("127.0.0.1", site.port), timeout=30) as connection:
        connection.sendall(f"GET /dev/tags/big HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode())

        def send_body() -> None:
            try:
                connection.sendall(body)
                connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the site may have closed first; the answer is what the test reads

        sender = threading.Thread(target=send_body)
        sender.start()
        answer = read_to_end(connection)
        sender.join(30)
    # THEN one answer, the 413, and nothing in the body was served or counted
    assert statuses(answer) == [b"413"]
    assert tag_counts(site) == {}


def test_a_body_within_the_quota_is_read_and_the_connection_serves_the_next_request(site: LocalSite) -> None:
    body = b"x" * (MAX_BODY_BYTES - 1)
    first = f"GET /dev/tags/kept HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    second = b"GET /dev/tags/kept HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = raw_exchange(site, first + second, timeout=30)
    assert statuses(answer) == [b"200", b"200"]
    assert tag_counts(site) == {"tag#kept": 2}


def test_100_continue_is_said_only_for_a_body_the_site_accepts(site: LocalSite) -> None:
    asking = "GET /dev/tags/asked HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", site.port), timeout=30) as connection:
        connection.sendall(asking.format(3).encode())
        interim = b""
        while not interim.endswith(b"\r\n\r\n") and (chunk := connection.recv(1)):
            interim += chunk
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        connection.sendall(b"abc")
        connection.shutdown(socket.SHUT_WR)
        assert statuses(read_to_end(connection)) == [b"200"]
    refused = raw_exchange(site, asking.format(400 * 2**20).encode())
    assert statuses(refused) == [b"413"]
    assert tag_counts(site) == {"tag#asked": 1}


def test_a_body_cut_short_runs_nothing(site: LocalSite) -> None:
    # WHEN a client announces 100 bytes, sends 10 and stops sending
    with socket.create_connection(("127.0.0.1", site.port), timeout=30) as connection:
        connection.sendall(b"GET /dev/tags/short HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        connection.shutdown(socket.SHUT_WR)
        # THEN nothing ran: no answer, no count
        assert read_to_end(connection) == b""
    visit(site, "other")
    assert tag_counts(site) == {"tag#other": 1}


@pytest.mark.parametrize(
    "lengths",
    [["-1"], ["abc"], ["1_000"], ["+5"], ["0x10"], ["1e3"], ["5, 5"], [""], ["\u0663".encode().decode("latin-1")],
     ["9" * 19], ["9" * 5000], ["5", "5"]],
    ids=["negative", "letters", "underscore", "plus", "hex", "exponent", "list", "empty", "arabic-indic", "19-digits",
         "5000-digits", "twice"],
)
def test_a_content_length_that_is_not_a_length_gets_400_and_no_address_is_logged(
    site: LocalSite, lengths: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    fields = "".join(f"Content-Length: {value}\r\n" for value in lengths)
    with caplog.at_level(logging.DEBUG):
        with socket.create_connection(("127.0.0.1", site.port), timeout=30) as connection:
            client_port = connection.getsockname()[1]
            connection.sendall(f"GET /dev/tags/len HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode("latin-1"))
            status_line, headers, body = head_of(read_to_end(connection))
        wait_until(lambda: any(" 400 (" in m for m in caplog.messages), what="the refusal's log line")
    # THEN a styled 400 page, the connection closed, nothing counted
    assert " 400 " in status_line and headers["connection"] == "close"
    assert CSP.lower() in headers and "Bad request" in body
    assert tag_counts(site) == {}
    # ... one short log line, which names no client address (nor does any other line)
    logged = [m for m in caplog.messages if " 400 (" in m]
    assert len(logged) == 1 and "invalid Content-Length" in logged[0] and len(logged[0]) < 400
    assert not [m for m in caplog.messages if "127.0.0.1" in m or str(client_port) in m]


def test_a_connection_error_outside_a_request_is_logged_without_the_client_address(
    site: LocalSite, caplog: pytest.LogCaptureFixture
) -> None:
    server = site._server
    assert server is not None
    with caplog.at_level(logging.INFO, logger="localsite"):
        try:
            raise ConnectionAbortedError("gone")
        except ConnectionAbortedError:
            server.handle_error(None, ("203.0.113.9", 40404))
    assert caplog.messages == ["a connection ended: ConnectionAbortedError"]


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


@pytest.mark.parametrize(("path", "status"), [("/dev/nowhere", b"404"), ("/dev/tags/front", b"200"), ("/", b"302")])
@pytest.mark.parametrize(
    "framing",
    [
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: gzip, chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 5",
    ],
    ids=["chunked", "gzip-chunked", "with-content-length"],
)
def test_a_transfer_encoding_body_is_never_read_as_a_second_request(
    site: LocalSite, path: str, status: bytes, framing: str
) -> None:
    # GIVEN a request whose chunked body is itself a request for a tag, on a routed path or not
    inner = b"GET /dev/tags/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = raw_exchange(site, f"GET {path} HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n".encode() + chunked(inner), 30)
    # THEN one answer, to the outer request, closing the connection; the body's request is neither served nor counted
    assert statuses(answer) == [status]
    assert head_of(answer)[1]["connection"] == "close"
    assert "tag#smuggled" not in tag_counts(site)


def test_an_idle_connection_is_closed_by_default_after_the_named_timeout(site: LocalSite) -> None:
    assert site.idle_timeout == IDLE_TIMEOUT_SECONDS == 60.0
    assert LocalSite().idle_timeout == IDLE_TIMEOUT_SECONDS


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /dev/tags/idle", b"GET /dev/tags/idle HTTP/1.1\r\nHost: x\r\n",
     b"GET /dev/tags/idle HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"],
    ids=["nothing", "half-a-line", "half-a-head", "half-a-body"],
)
def test_a_silent_connection_is_closed_and_its_half_request_counts_nothing(state_dir: Path, sent: bytes) -> None:
    with running_site(state_dir, idle_timeout=0.2) as site:
        with socket.create_connection(("127.0.0.1", site.port), timeout=30) as connection:
            connection.sendall(sent)
            # THEN the site closes it (recv's end of file), with nothing answered and nothing counted
            assert read_to_end(connection) == b""
        assert tag_counts(site) == {}
        visit(site, "after")
        assert tag_counts(site) == {"tag#after": 1}


def test_a_kept_alive_connection_is_closed_once_idle_and_its_thread_ends(state_dir: Path) -> None:
    with running_site(state_dir, idle_timeout=0.2) as site:
        before = threading.active_count()
        # GIVEN 50 connections: 25 that never send, 25 that make one visit and keep the connection open
        connections = [socket.create_connection(("127.0.0.1", site.port), timeout=30) for _ in range(50)]
        for connection in connections[25:]:
            connection.sendall(b"GET /dev/tags/kept HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answers = [read_to_end(connection) for connection in connections]
        finally:
            for connection in connections:
                connection.close()
        # THEN each is closed by the site, the visits answered first; and no thread is left holding one
        assert answers[:25] == [b""] * 25
        assert [statuses(answer) for answer in answers[25:]] == [[b"200"]] * 25
        wait_until(lambda: threading.active_count() <= before, timeout=30, what="the connections' threads to end")
        assert tag_counts(site) == {"tag#kept": 25}
