"""Where the operator command acts: a deployed stack, a named table, or the running local site.

- ``--stack NAME``: the table is the stack's ``table_name`` output (``pulumi stack output table_name --stack NAME``
  run in the project folder) and the region its ``aws:region`` config, when set; credentials as usual.
- ``--table NAME``: that table, with credentials and region from the usual AWS environment (``--region``,
  ``--endpoint-url`` for an emulator).
- ``--local [--state-dir DIR]``: the local site running with that state folder publishes
  ``<DIR>/endpoint.json`` = ``{"endpoint_url", "table_name", "region", "pid", "site_url"}``; the command reaches
  its DynamoDB there with dummy credentials (a real key never goes to a local endpoint).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import definition

DEFAULT_STATE_DIR = definition.ROOT / ".local-site"
"""Where ``./dev site`` keeps its state unless told otherwise (it runs in the project folder)."""
ENDPOINT_FILE = "endpoint.json"
ENDPOINT_FIELDS = ("endpoint_url", "table_name", "region", "pid", "site_url")
PULUMI_TIMEOUT_SECONDS = 120
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local", "aws_session_token": "local"}


class NoTarget(Exception):
    """There is nothing to act on where the command was pointed (no stack output, no running site)."""


@dataclass(frozen=True)
class Target:
    """A table to act on, the clients that reach it, and how to name it in messages."""

    table_name: str
    dynamodb: Any
    streams: Any
    where: str
    """``table 'x'``, ``stack 'dev' (table 'x')``, ``the local site at http://...``."""
    history_days: int | None = None
    """The stack's ``historyDays`` when known (its stack file), else ``None``."""


def client_config(workers: int) -> Any:
    """Short timeouts, standard retries; a connection per worker."""
    from botocore.config import Config

    return Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"mode": "standard", "total_max_attempts": 3},
        max_pool_connections=max(10, workers + 2),
    )


def _clients(region: str | None, endpoint_url: str | None, workers: int, **credentials: str) -> tuple[Any, Any]:
    import boto3

    session = boto3.session.Session(region_name=region, **credentials)
    config = client_config(workers)
    streams_endpoint = endpoint_url  # an emulator serves DynamoDB and its Streams at one address
    return (
        session.client("dynamodb", endpoint_url=endpoint_url, config=config),
        session.client("dynamodbstreams", endpoint_url=streams_endpoint, config=config),
    )


def _pulumi(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("pulumi")
    if executable is None:
        raise NoTarget("the pulumi command is not on PATH; install the Pulumi CLI, or name the table with --table")
    try:
        return subprocess.run(
            [executable, *arguments],
            cwd=definition.ROOT,
            capture_output=True,
            text=True,
            timeout=PULUMI_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise NoTarget(f"`pulumi {' '.join(arguments)}` did not answer in {PULUMI_TIMEOUT_SECONDS} s") from None


def stack_table(stack: str) -> tuple[str, str | None]:
    """The stack's table name and region (``None`` when the stack sets none) from the Pulumi CLI."""
    output = _pulumi(["stack", "output", "table_name", "--stack", stack])
    name = output.stdout.strip()
    if output.returncode != 0 or not name:
        said = (output.stderr or output.stdout).strip().splitlines()
        detail = f": {said[-1]}" if said else ""
        raise NoTarget(f"stack {stack!r} has no table_name output (was it deployed with `pulumi up`?){detail}")
    region = _pulumi(["config", "get", "aws:region", "--stack", stack])
    return name, (region.stdout.strip() or None) if region.returncode == 0 else None


def _stack_history_days(stack: str) -> int | None:
    if not (definition.ROOT / f"Pulumi.{stack}.yaml").is_file():
        return None
    try:
        return definition.stack_settings(stack).history_days
    except ValueError as error:
        raise NoTarget(f"Pulumi.{stack}.yaml cannot be read: {error}") from None


def read_endpoint(state_dir: Path) -> dict[str, Any]:
    """The local site's published endpoint; ``NoTarget`` saying plainly when no site is running there."""
    path = state_dir / ENDPOINT_FILE
    start = "start one with `./dev site`"
    if not state_dir.is_dir():
        raise NoTarget(f"no local site is running with state folder {state_dir} (the folder does not exist); {start}")
    try:
        endpoint = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NoTarget(f"no local site is running with state folder {state_dir} (no {ENDPOINT_FILE}); {start}") from None
    except (OSError, ValueError) as error:
        raise NoTarget(f"{path} cannot be read ({error}); is a local site running there? {start}") from None
    if not isinstance(endpoint, dict) or any(field not in endpoint for field in ENDPOINT_FIELDS):
        raise NoTarget(f"{path} is not a local site's endpoint file (expected the fields {', '.join(ENDPOINT_FIELDS)})")
    pid = endpoint["pid"]
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not _alive(pid):
        raise NoTarget(
            f"no local site is running with state folder {state_dir}: {ENDPOINT_FILE} names process {pid}, "
            f"which is not running (a site that did not stop cleanly leaves it behind); {start}"
        )
    url = urlsplit(str(endpoint["endpoint_url"]))
    if url.scheme != "http" or url.hostname not in ("127.0.0.1", "localhost", "::1") or not url.port:
        raise NoTarget(f"{path} names endpoint {endpoint['endpoint_url']!r}, not a local address")
    try:
        socket.create_connection((url.hostname, url.port), timeout=2).close()
    except OSError:
        raise NoTarget(
            f"the local site of {state_dir} (process {pid}) does not answer at {endpoint['endpoint_url']}; {start}"
        ) from None
    return endpoint


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def resolve(
    *,
    stack: str | None = None,
    table: str | None = None,
    local: bool = False,
    state_dir: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    workers: int = 16,
) -> Target:
    """The target the options name (exactly one of ``stack``, ``table``, ``local``)."""
    if local:
        folder = Path(state_dir).resolve() if state_dir else DEFAULT_STATE_DIR
        endpoint = read_endpoint(folder)
        dynamodb, streams = _clients(endpoint["region"], endpoint["endpoint_url"], workers, **LOCAL_CREDENTIALS)
        days = endpoint.get("history_days")
        return Target(
            endpoint["table_name"],
            dynamodb,
            streams,
            f"the local site at {endpoint['site_url']}",
            days if isinstance(days, int) and not isinstance(days, bool) else None,
        )
    if stack is not None:
        name, stack_region = stack_table(stack)
        dynamodb, streams = _clients(region or stack_region, endpoint_url, workers)
        return Target(name, dynamodb, streams, f"stack {stack!r} (table {name!r})", _stack_history_days(stack))
    assert table is not None
    dynamodb, streams = _clients(region, endpoint_url, workers)
    return Target(table, dynamodb, streams, f"table {table!r}")
