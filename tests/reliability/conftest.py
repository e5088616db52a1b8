"""Fixtures for the reliability tests: a state folder per test, and a guard that keeps every test on loopback.

The guard matters most when the site stops under load: a request still being served after moto stopped
would go to the real DynamoDB endpoint. Name resolution is where every such attempt starts (botocore and
urllib3 resolve the endpoint's host first), so resolving anything but the loopback address is refused and
recorded, and the test fails on it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class OffLoopback:
    """Hosts something in this process tried to reach that are not the loopback address."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hosts: list[str] = []

    def add(self, host: str) -> None:
        with self._lock:
            self.hosts.append(host)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[OffLoopback]:
    """Refuse (and record) name resolution of anything but the loopback address for the test's duration."""
    attempts = OffLoopback()
    original = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in LOOPBACK_HOSTS:
            attempts.add(name)
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: the reliability tests stay on loopback")
        return original(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield attempts
    assert attempts.hosts == [], f"something tried to leave loopback: {sorted(set(attempts.hosts))}"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """Where the local site keeps its counts during one test."""
    return tmp_path / "state"
