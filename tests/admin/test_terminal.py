"""The real question on a real terminal: the command in its own session with a pseudo-terminal as its terminal.

The other tests give the command their own ``ask``; these reach ``default_ask`` and ``/dev/tty`` as an owner's
shell does, and answer it by typing on the pseudo-terminal's other side.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from admin import cli
from localsite.site import LocalSite
from tests.localsite.helpers import running_site, tag_counts

from .test_target import ROOT, command

# The child opens the pseudo-terminal after starting its own session, which makes it the session's controlling
# terminal (/dev/tty), then becomes the command.
BECOME_THE_COMMAND = (
    "import os, sys; os.open(sys.argv[1], os.O_RDWR); "
    "os.execv(sys.executable, [sys.executable, '-m', 'admin', *sys.argv[2:]])"
)
DEADLINE = 60.0  # a hang, not a measurement


class Terminal:
    """The command running on a pseudo-terminal: what it showed there, and keys typed on it."""

    def __init__(self, *argv: str) -> None:
        self.master, slave = os.openpty()
        environment = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONPATH": str(ROOT),
        }
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", BECOME_THE_COMMAND, os.ttyname(slave), *argv],
                cwd=ROOT, env=environment, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
            )
        finally:
            os.close(slave)  # the command holds the only other end: reading it ends when the command does
        self.shown = ""

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the command has closed the terminal."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: no process holds the terminal any more
            return False
        self.shown += chunk.decode("utf-8", "replace")
        return bool(chunk)

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while text not in self.shown:
            if time.monotonic() > deadline or not self._read(deadline - time.monotonic()):
                raise AssertionError(f"the terminal never showed {text!r}; it showed:\n{self.shown}")

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode("utf-8"))

    def finish(self) -> int:
        """Read to the end and return the exit code."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline and self._read(deadline - time.monotonic()):
            pass
        return self.process.wait(timeout=DEADLINE)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[LocalSite, tuple[str, ...]]]:
    state = tmp_path / "state"
    with running_site(state) as site:
        done = command("set", "hello", "1000", "--local", "--state-dir", str(state))
        assert done.returncode == cli.OK, done.stderr
        yield site, ("--local", "--state-dir", str(state))


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


def test_yes_on_the_terminal_lowers_the_count(local: tuple[LocalSite, tuple[str, ...]], terminals: list[Terminal]) -> None:
    site, where = local
    # GIVEN the owner lowers hello from 1000 to 5 on a terminal
    terminal = Terminal("set", "hello", "5", *where)
    terminals.append(terminal)
    # WHEN the command asks and the owner answers yes
    terminal.wait_for("Lower or delete 1 count? [y/N] ")
    terminal.type("y\n")
    # THEN the count is lowered
    assert terminal.finish() == cli.OK, terminal.shown
    assert "hello: 1000 -> 5" in terminal.shown
    assert "no terminal to ask" not in terminal.shown
    assert tag_counts(site) == {"tag#hello": 5}


def test_no_on_the_terminal_changes_nothing(local: tuple[LocalSite, tuple[str, ...]], terminals: list[Terminal]) -> None:
    site, where = local
    # GIVEN the owner deletes hello on a terminal
    terminal = Terminal("delete", "hello", *where)
    terminals.append(terminal)
    # WHEN the command asks and the owner answers no (Enter: the default)
    terminal.wait_for("[y/N] ")
    terminal.type("\n")
    # THEN nothing is written and the exit code says it was not confirmed
    assert terminal.finish() == cli.NOT_CONFIRMED, terminal.shown
    assert "not confirmed. Nothing was written." in terminal.shown
    assert tag_counts(site) == {"tag#hello": 1000}
