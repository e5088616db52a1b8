"""The command line's own behaviour: the progress bar on a terminal, interruptions, crashes, a closed pipe."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from admin import changes, cli
from admin.progress import Progress

from admin.target import Target

from .conftest import TABLE, Admin


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_tqdm_bar_and_a_pipe_plain_lines() -> None:
    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress(200, "import", stream=stream)
        for _ in range(200):
            progress.advance()
        progress.close()
    assert "\r" in terminal.getvalue() and "200/200" in terminal.getvalue() and "tags/s" in terminal.getvalue()
    lines = pipe.getvalue().splitlines()
    assert lines[0] == "import: 20/200 (10%)" and lines[-1] == "import: 200/200 (100%)" and len(lines) == 10


def rows(tmp_path: Path, count: int) -> str:
    path = tmp_path / "rows.csv"
    path.write_text("tag,visits\n" + "".join(f"t{i},{i + 1}\n" for i in range(count)), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "error, code, said",
    [(KeyboardInterrupt(), cli.INTERRUPTED, "interrupted"), (ZeroDivisionError("a bug"), cli.BUG, "Traceback")],
)
def test_an_import_stopped_midway_says_how_far_it_got_and_the_rerun_finishes(
    admin: Admin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, code: int, said: str
) -> None:
    real_write = changes._write
    calls, done = [0], [0]

    def write(client: Any, table_name: str, change: changes.Change) -> None:
        calls[0] += 1
        if calls[0] == 20:
            raise error
        real_write(client, table_name, change)
        done[0] += 1

    monkeypatch.setattr(changes, "_write", write)
    path = rows(tmp_path, 50)
    first = admin("import", path, "--workers", "1")
    assert first.code == code != cli.NOT_STEADY
    # A write already queued when the 20th failed still finishes: the message counts what really was written.
    assert done[0] in (19, 20)
    assert f"{done[0]} of 50 changes written" in first.err and "Run the same command again" in first.err
    assert said in first.err
    monkeypatch.setattr(changes, "_write", real_write)
    second = admin("import", path)
    assert second.code == cli.OK and f"{50 - done[0]} tags changed, {done[0]} already as asked" in second.out
    admin.drain()
    assert admin.counts()["site#total"] == sum(range(1, 51))


def test_export_into_a_closed_pipe_stops_quietly(admin: Admin, monkeypatch: pytest.MonkeyPatch) -> None:
    assert admin("set", "a", "1").code == cli.OK

    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    target = Target(TABLE, admin.site.client, admin.site.streams, "table")
    assert cli.run(["export"], target=target) == cli.OK  # `export | head`: no traceback, no error code
