"""``python -m localsite`` as a developer runs it: the URL, the log, a clean Ctrl-C, a busy port, a restart."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

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
            found = re.search(r"running at (http://127\.0\.0\.\d+:\d+/\S*)", line)
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
    assert f"stopped on SIGINT; counts saved in {state / 'tags.sqlite3'}" in site.output

    # WHEN it starts again on the same state, THEN the count is back; SIGTERM stops it just as cleanly
    with localsite("--port", "0", "--state-dir", str(state)) as again:
        url = again.wait_for_url()
        again.wait_for("1 tag restored")
        page = parse_page(request(f"{url}counts/cli").body)
        assert page.text_by_id["tag-visits"].strip() == "1"
        assert page.text_by_id["site-total"].strip() == "1"
        assert again.stop(signal.SIGTERM) == 0
    assert "Traceback" not in again.output


def test_sigterm_logs_one_line_saying_it_stopped_and_the_counts_are_saved(tmp_path: Path) -> None:
    state = tmp_path / "state"
    # GIVEN the site run as a supervisor runs it: stdout and the log (stderr) apart
    process = subprocess.Popen(
        [sys.executable, "-m", "localsite", "--port", "0", "--state-dir", str(state)],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
        reader.start()
        wait_until(lambda: any("running at" in line for line in lines), timeout=STARTUP_TIMEOUT, what="the URL")
        url = re.search(r"running at (\S+)", "".join(lines))
        assert url, lines
        assert request(f"{url.group(1)}tags/supervised").status == 200
        # WHEN the supervisor sends SIGTERM
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=STARTUP_TIMEOUT)
        reader.join(timeout=STARTUP_TIMEOUT)
        out, err = "".join(lines), process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # THEN it exits 0 and its log ends with one line saying it stopped and where the counts are saved
    assert process.returncode == 0, err
    stopping = [line for line in err.splitlines() if "stopped" in line]
    assert len(stopping) == 1, err
    assert re.fullmatch(rf"\d\d:\d\d:\d\d stopped on SIGTERM; counts saved in {re.escape(str(state / 'tags.sqlite3'))}", stopping[0])
    assert err.splitlines()[-1] == stopping[0]
    assert "stopped" not in out


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


def run_localsite(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m localsite`` to its end (for arguments that make it stop at once)."""
    return subprocess.run(
        [sys.executable, "-m", "localsite", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        env={**os.environ, **(env or {})},
    )


def test_a_second_site_on_the_same_state_folder_refuses_naming_the_folder(tmp_path: Path) -> None:
    state = tmp_path / "shared"
    with localsite("--port", "0", "--state-dir", str(state)) as first:
        url = first.wait_for_url()
        assert request(f"{url}tags/shared").status == 200
        second = run_localsite("--port", "0", "--state-dir", str(state))
        # THEN the second one stops before serving anything, saying which folder and what to do
        assert second.returncode == 1
        assert str(state) in second.stderr and "--state-dir" in second.stderr
        assert "another local site" in second.stderr and "Traceback" not in second.stderr
        assert "running at" not in second.stdout
        assert request(f"{url}tags/shared").status == 200  # the first one is untouched
        assert first.stop() == 0


def test_a_state_dir_that_is_a_file_or_cannot_be_made_is_reported_as_what_it_is(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    result = run_localsite("--port", "0", "--state-dir", str(a_file))
    assert result.returncode == 1
    assert f"the state folder {a_file} is a file, not a folder" in result.stderr
    assert "listen" not in result.stderr and "Traceback" not in result.stderr
    result = run_localsite("--port", "0", "--state-dir", "/proc/nope")
    assert result.returncode == 1
    assert "cannot use the state folder /proc/nope" in result.stderr
    assert "listen" not in result.stderr and "Traceback" not in result.stderr


def test_a_corrupt_state_file_is_explained_and_fresh_recovers_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "tags.sqlite3").write_text("x\n")
    result = run_localsite("--port", "0", "--state-dir", str(state))
    assert result.returncode == 1
    assert f"{state / 'tags.sqlite3'} is not a state file" in result.stderr and "--fresh" in result.stderr
    assert "Traceback" not in result.stderr
    # WHEN it starts with --fresh, THEN it starts over, and says so without suggesting --fresh again
    with localsite("--port", "0", "--state-dir", str(state), "--fresh") as fresh:
        url = fresh.wait_for_url()
        fresh.wait_for("starting from zero, as --fresh asked")
        assert request(f"{url}tags/again").status == 200
        assert fresh.stop() == 0
    assert "--fresh starts over" not in fresh.output


def test_quiet_leaves_only_warnings_and_errors(tmp_path: Path) -> None:
    with localsite("--port", "0", "--state-dir", str(tmp_path / "state"), "--quiet") as site:
        url = site.wait_for_url()
        assert request(f"{url}tags/hush").status == 200
        wait_until(lambda: parse_page(request(f"{url}counts/hush").body).text_by_id["site-total"].strip() == "1",
                   what="the stream processor's batch")
        assert site.stop() == 0
    assert '"level": "INFO"' not in site.output and "batch processed" not in site.output
    assert "GET /dev/tags/hush" not in site.output and "stream batch" not in site.output
    assert "running at" in site.output  # stdout still says where the site is


def test_usage_and_argument_errors_speak_of_dev_site(tmp_path: Path) -> None:
    result = run_localsite("--port", "http")
    assert result.returncode == 2
    assert "usage: ./dev site" in result.stderr
    assert "'http' is not a port number" in result.stderr and "_port" not in result.stderr
    helped = run_localsite("--help")
    assert helped.returncode == 0 and "usage: ./dev site" in helped.stdout and "--host" in helped.stdout


def test_a_host_that_is_not_loopback_is_warned_about(tmp_path: Path) -> None:
    from localsite.site import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the bind fails plainly (and nobody can reach it)
    result = run_localsite("--host", "192.0.2.1", "--port", "0", "--state-dir", str(tmp_path / "state"))
    assert result.returncode == 1 and "cannot listen on 192.0.2.1:0" in result.stderr
    assert "anyone who can reach" not in result.stderr
    assert "Traceback" not in result.stderr
    # On every address with --port 0, the warning names the port the site was given, not 0
    with localsite("--host", "0.0.0.0", "--port", "0", "--state-dir", str(tmp_path / "open")) as site:
        site.wait_for(r"running at http://0\.0\.0\.0:\d+/")
        port = re.search(r"running at http://0\.0\.0\.0:(\d+)/", site.output).group(1)  # type: ignore[union-attr]
        site.wait_for("anyone who can reach")
        assert site.stop() == 0
    assert int(port) > 0
    assert f"listening on 0.0.0.0: anyone who can reach this machine on port {port} can see and add visits" in site.output
    assert "on port 0 " not in site.output


def test_another_loopback_host_is_served_without_a_warning(tmp_path: Path) -> None:
    with localsite("--host", "127.0.0.2", "--port", "0", "--state-dir", str(tmp_path / "state")) as site:
        url = site.wait_for_url()
        assert url.startswith("http://127.0.0.2:")
        assert request(f"{url}tags/second-loopback").status == 200
        assert site.stop() == 0
    assert "anyone who can reach" not in site.output


def test_dev_help_exits_zero_with_its_usage() -> None:
    result = subprocess.run(["bash", str(ROOT / "dev"), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "usage: ./dev COMMAND" in result.stdout and "./dev site" in result.stdout
    unknown = subprocess.run(["bash", str(ROOT / "dev"), "sight"], capture_output=True, text=True, timeout=30)
    assert unknown.returncode == 2 and "unknown command 'sight'" in unknown.stderr


def test_dev_rebuilds_a_broken_venv_and_refuses_a_wrong_chromium(tmp_path: Path) -> None:
    # GIVEN a project folder whose .venv has no pip (python3 -m venv --without-pip .venv)
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "dev", project / "dev")
    (project / "requirements.txt").write_text("# nothing to install\n")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True, timeout=120)
    env = {**os.environ, "PIP_NO_INDEX": "1", "PYTHON": sys.executable, "CHROMIUM": str(tmp_path / "no-chrome")}
    result = subprocess.run(["bash", "dev", "test"], cwd=project, capture_output=True, text=True, timeout=300, env=env)
    # THEN it says so and rebuilds it, then refuses the CHROMIUM that names nothing
    assert ".venv is broken" in result.stderr and "rebuilding it" in result.stderr, result.stderr
    assert subprocess.run([str(project / ".venv/bin/python"), "-m", "pip", "--version"], capture_output=True,
                          timeout=60).returncode == 0
    assert result.returncode == 1
    assert f"CHROMIUM={tmp_path / 'no-chrome'} is not an executable file" in result.stderr


def test_a_chromium_path_that_names_nothing_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from localsite.browser import chromium_path

    monkeypatch.setenv("CHROMIUM", str(tmp_path / "chrome"))
    with pytest.raises(FileNotFoundError, match="is not an executable file"):
        chromium_path()
