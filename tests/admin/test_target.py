"""Where to act: --local (the site's endpoint.json, stale or missing), --stack (a fake pulumi on PATH), --table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from admin import cli
from tests.localsite.helpers import running_site, tag_counts

from .conftest import TABLE, Site

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def moto_server(site: Site) -> Iterator[str]:
    """moto over HTTP on a free loopback port, serving the same state as the in-process ``site``."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def command(*argv: str, path: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m admin ...`` in its own process and session (no terminal to ask on), dummy credentials."""
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": str(ROOT),
    }
    if path is not None:
        environment["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "admin", *argv],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=120, start_new_session=True,
        stdin=subprocess.DEVNULL,
    )


def publish(state_dir: Path, endpoint_url: str, pid: int | None = None, **extra: object) -> None:
    """A hand-written ``endpoint.json`` in the local site's format, for files a running site never leaves."""
    state_dir.mkdir(exist_ok=True)
    endpoint = {
        "endpoint_url": endpoint_url,
        "table_name": TABLE,
        "region": "us-east-1",
        "pid": os.getpid() if pid is None else pid,
        "site_url": "http://127.0.0.1:8000/dev/",
        **extra,
    }
    (state_dir / "endpoint.json").write_text(json.dumps(endpoint), encoding="utf-8")


def test_local_acts_on_the_site_that_published_its_endpoint(tmp_path: Path) -> None:
    state = tmp_path / "state"
    # GIVEN a real local site, which publishes its own endpoint.json in its state folder
    with running_site(state) as site:
        # It says how many days of history the site keeps, which reconcile then keeps too.
        assert json.loads((state / "endpoint.json").read_text())["history_days"] == site.settings.history_days
        done = command("set", "hello", "42", "--local", "--state-dir", str(state))
        assert done.returncode == cli.OK, done.stderr
        assert f"the local site at {site.url}: hello: 0 -> 42" in done.stdout
        assert tag_counts(site) == {"tag#hello": 42}
        exported = command("--local", "--state-dir", str(state), "export", "--format", "json")  # options before, too
        assert exported.returncode == cli.OK and json.loads(exported.stdout)["visits"] == 42
    # WHEN it has stopped, THEN the command says no site is running there
    done = command("export", "--local", "--state-dir", str(state))
    assert done.returncode == cli.REFUSED and "(no endpoint.json)" in done.stderr


def a_finished_process() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(
    "case, message",
    [
        ("no folder", "no local site is running with state folder"),
        ("no endpoint file", "(no endpoint.json)"),
        ("stale file", "which is not running"),
        ("nothing listening", "does not answer at http://127.0.0.1:9"),
        ("not json", "cannot be read"),
        ("other fields", "is not a local site's endpoint file"),
        ("remote endpoint", "not a local address"),
    ],
)
def test_local_says_plainly_when_no_site_is_running(site: Site, tmp_path: Path, case: str, message: str) -> None:
    state = tmp_path / "state"
    if case != "no folder":
        state.mkdir()
    if case == "stale file":
        publish(state, "http://127.0.0.1:9", pid=a_finished_process())
    elif case == "nothing listening":
        publish(state, "http://127.0.0.1:9")
    elif case == "not json":
        (state / "endpoint.json").write_text("{", encoding="utf-8")
    elif case == "other fields":
        (state / "endpoint.json").write_text('{"url": "x"}', encoding="utf-8")
    elif case == "remote endpoint":
        publish(state, "https://dynamodb.us-east-1.amazonaws.com")
    done = command("set", "hello", "1", "--local", "--state-dir", str(state))
    assert done.returncode == cli.REFUSED, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert site.visits("tag#hello") is None


FAKE_PULUMI = """#!/bin/sh
# A stand-in for the Pulumi CLI: answers the two questions the operator command asks.
echo "$@" >> "$(dirname "$0")/calls.log"
case "$*" in
  "stack output table_name --stack dev") echo "{table}" ;;
  "config get aws:region --stack dev") echo "us-east-1" ;;
  *"--stack gone"*) echo "error: no stack named 'gone' found" >&2; exit 255 ;;
  *) exit 1 ;;
esac
"""


@pytest.fixture
def fake_pulumi(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "pulumi"
    script.write_text(FAKE_PULUMI.format(table=TABLE), encoding="utf-8")
    script.chmod(0o755)
    return folder


def test_stack_reads_the_table_from_the_stack_outputs(site: Site, moto_server: str, fake_pulumi: Path) -> None:
    path = f"{fake_pulumi}:{os.environ['PATH']}"
    done = command("set", "hello", "7", "--stack", "dev", "--endpoint-url", moto_server, path=path)
    assert done.returncode == cli.OK, done.stderr
    assert f"stack 'dev' (table '{TABLE}'): hello: 0 -> 7" in done.stdout
    assert site.visits("tag#hello") == 7
    calls = (fake_pulumi / "calls.log").read_text(encoding="utf-8").splitlines()
    assert calls == ["stack output table_name --stack dev", "config get aws:region --stack dev"]


def test_a_stack_without_outputs_is_refused(site: Site, fake_pulumi: Path) -> None:
    done = command("export", "--stack", "gone", path=f"{fake_pulumi}:{os.environ['PATH']}")
    assert done.returncode == cli.REFUSED
    assert "stack 'gone' has no table_name output" in done.stderr and "no stack named 'gone'" in done.stderr


def test_no_pulumi_on_path_is_said_plainly(tmp_path: Path) -> None:
    done = command("export", "--stack", "dev", path=str(tmp_path))
    assert done.returncode == cli.REFUSED and "pulumi command is not on PATH" in done.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export"], "exactly one of --stack NAME, --table NAME or --local"),
        (["export", "--table", "a", "--local"], "exactly one of"),
        (["export", "--table", "a", "--state-dir", "x"], "--state-dir goes with --local"),
        (["export", "--local", "--region", "eu-west-1"], "--local reads its endpoint"),
    ],
)
def test_where_to_act_must_be_said_once(argv: list[str], message: str) -> None:
    done = command(*argv)
    assert done.returncode == cli.BAD_INPUT and message in done.stderr


def test_relative_paths_are_taken_from_where_dev_admin_is_run(tmp_path: Path) -> None:
    # ./dev changes into the project folder; `./dev admin` goes back so that FILE means what the operator typed
    (tmp_path / "counts.csv").write_text("tag,visits\nno spaces,1\n", encoding="utf-8")
    done = subprocess.run(
        [str(ROOT / "dev"), "admin", "import", "counts.csv", "--table", "x"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, start_new_session=True, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == cli.BAD_INPUT, done.stderr
    assert "counts.csv was not imported" in done.stderr and "line 2: tag 'no spaces' is invalid" in done.stderr
