"""``python -m localsite`` as a developer runs it: the URL, the log, a clean Ctrl-C, a busy port, a restart."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from definition import ROOT
from tests.localsite.helpers import parse_page, request, wait_until

STARTUP_TIMEOUT = 60


class Running:
    """A ``python -m localsite`` process, its output collected as it comes."""

    def __init__(self, args: list[str]) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "localsite", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._url = threading.Event()
        self.url = ""
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            found = re.search(r"running at (http://127\.0\.0\.1:\d+/\S*)", line)
            if found:
                self.url = found.group(1)
                self._url.set()

    def wait_for_url(self) -> str:
        assert self._url.wait(STARTUP_TIMEOUT), "".join(self.lines)
        return self.url

    def wait_for(self, pattern: str) -> None:
        """Wait until a line of output matches ``pattern``."""
        wait_until(lambda: re.search(pattern, self.output), timeout=STARTUP_TIMEOUT, what=pattern)

    def stop(self, signum: int = signal.SIGINT) -> int:
        self.process.send_signal(signum)
        return self.process.wait(STARTUP_TIMEOUT)

    @property
    def output(self) -> str:
        return "".join(self.lines)


@contextmanager
def localsite(*args: str) -> Iterator[Running]:
    running = Running(list(args))
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


def test_it_prints_the_url_logs_requests_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with localsite("--port", "0", "--state-dir", str(state)) as site:
        url = site.wait_for_url()
        assert url.endswith("/dev/")
        assert request(f"{url}tags/cli").status == 200
        assert request(f"{url}nowhere").status == 404
        site.wait_for(r"stream batch: \d+ records -> ok")  # after the dev stack's batching window
        code = site.stop(signal.SIGINT)
    assert code == 0, site.output
    assert "Traceback" not in site.output
    assert re.search(r"GET /dev/tags/cli 200 [\d.]+ ms", site.output)
    assert re.search(r"GET /dev/nowhere 404 [\d.]+ ms", site.output)
    assert re.search(r"stream batch: \d+ records -> ok", site.output)
    assert f"counts are kept in {state / 'tags.sqlite3'}" in site.output
    assert "stopped; counts saved" in site.output

    # WHEN it starts again on the same state, THEN the count is back; SIGTERM stops it just as cleanly
    with localsite("--port", "0", "--state-dir", str(state)) as again:
        url = again.wait_for_url()
        again.wait_for("1 tag restored")
        page = parse_page(request(f"{url}counts/cli").body)
        assert page.text_by_id["tag-visits"].strip() == "1"
        assert page.text_by_id["site-total"].strip() == "1"
        assert again.stop(signal.SIGTERM) == 0
    assert "Traceback" not in again.output


def test_a_busy_port_is_reported_plainly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "localsite", "--port", str(port), "--state-dir", str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_an_unknown_stack_is_reported_plainly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "localsite", "--stack", "nosuchstack", "--state-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
    )
    assert result.returncode == 2
    assert "Pulumi.nosuchstack.yaml" in result.stderr
    assert "Traceback" not in result.stderr
