"""How another process reaches a running local site's DynamoDB: ``<state dir>/endpoint.json``.

A local site with a state folder serves its moto over HTTP on a loopback port (``localsite.aws.LockedMotoServer``)
and, once it is ready, writes where: ``{"endpoint_url", "table_name", "region", "pid", "site_url",
"history_days"}``. A clean stop removes the file; a killed site leaves it behind, so :func:`read` checks that the process is alive and that the
endpoint answers before handing it out. Clients use any dummy credentials (moto's account is the same for all)::

    found = endpoint.read(Path(".local-site"))
    client = boto3.client("dynamodb", endpoint_url=found.endpoint_url, region_name=found.region,
                          aws_access_key_id="local", aws_secret_access_key="local")
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

ENDPOINT_FILE = "endpoint.json"


class NoLocalSite(Exception):
    """No running local site publishes its endpoint in that folder; the message says why."""


@dataclass(frozen=True)
class Endpoint:
    """Where a running local site's DynamoDB answers."""

    endpoint_url: str
    """``http://127.0.0.1:<port>``: moto's HTTP server, the same state the site serves."""
    table_name: str
    region: str
    pid: int
    """The site's process."""
    site_url: str
    """The site's home page."""
    history_days: int = 30
    """The site's ``historyDays`` (its stack file's): the operator command's reconcile keeps that many days."""


def publish(state_dir: Path, found: Endpoint) -> Path:
    """Write ``endpoint.json`` atomically (a reader never sees half a file); return its path."""
    path = state_dir / ENDPOINT_FILE
    partial = path.with_name(f".{ENDPOINT_FILE}.{os.getpid()}")
    partial.write_text(json.dumps(asdict(found), indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def withdraw(state_dir: Path) -> None:
    """Remove ``endpoint.json`` (a clean stop)."""
    (state_dir / ENDPOINT_FILE).unlink(missing_ok=True)


def read(state_dir: Path | str, *, timeout: float = 2.0) -> Endpoint:
    """The endpoint of the local site running on ``state_dir``; :class:`NoLocalSite` saying why there is none.

    Refused, with the reason: no file (no site ever ran there, or it stopped cleanly), a file that does not
    parse, a process that is gone (the site was killed), an endpoint that does not accept connections.
    """
    path = Path(state_dir) / ENDPOINT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        found = Endpoint(**{name: data[name] for name in Endpoint.__dataclass_fields__ if name in data})
    except FileNotFoundError:
        raise NoLocalSite(f"no local site is running on {Path(state_dir)} (no {ENDPOINT_FILE}); start one with ./dev site") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise NoLocalSite(f"{path} is unreadable ({type(error).__name__}: {error}); restart the local site") from None
    if not _alive(found.pid):
        raise NoLocalSite(f"the local site that wrote {path} (process {found.pid}) is no longer running; start it again with ./dev site")
    parts = urlsplit(found.endpoint_url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout):
            pass
    except OSError as error:
        raise NoLocalSite(f"the local site's DynamoDB at {found.endpoint_url} does not answer ({error.strerror or error}); "
                          f"restart the local site") from None
    return found


def _alive(pid: int) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
