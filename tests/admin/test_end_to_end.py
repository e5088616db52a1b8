"""End to end: the command in its own process against a running local site, pages read over HTTP.

The local site publishes its DynamoDB in ``<state dir>/endpoint.json`` once its endpoint publishing lands; until
then this test serves the site's own moto state over HTTP with moto's ``ThreadedMotoServer`` (serialised with
the site's in-process requests, as the site itself must do) and writes the file by hand in that format.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from admin import cli
from localsite import aws as local_aws_module
from localsite.site import LocalSite
from tests.localsite.helpers import request, running_site

from .test_target import command, publish


class _Serialised:
    """WSGI middleware: one request at a time through moto, shared with the site's in-process dispatch lock."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with local_aws_module._dispatch_lock:
            return list(self.app(environ, start_response))


class SerialisedMotoServer(ThreadedMotoServer):
    def _server_entry(self) -> None:
        from werkzeug.serving import make_server

        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        app = _Serialised(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[LocalSite, Path]]:
    state = tmp_path / "state"
    with running_site(state) as site:
        server = SerialisedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        publish(state, f"http://{host}:{port}", site_url=site.url, table_name=site.table_name)
        try:
            yield site, state
        finally:
            server.stop()


def number(page: str, element_id: str) -> int:
    found = re.search(rf'id="{element_id}">([0-9,]+)<', page)
    assert found, f"no #{element_id} on the page"
    return int(found.group(1).replace(",", ""))


def counts_page(site: LocalSite, tag: str) -> tuple[int, int]:
    reply = request(f"{site.url}counts/{tag}")
    assert reply.status == 200
    return number(reply.body, "tag-visits"), number(reply.body, "site-total")


def test_set_import_export_delete_reconcile_on_the_running_site(local: tuple[LocalSite, Path], tmp_path: Path) -> None:
    site, state = local
    admin = ("--local", "--state-dir", str(state))
    # GIVEN visitors counted on the site
    for _ in range(3):
        assert request(f"{site.url}tags/hello").status == 200
    assert site.drain()
    assert counts_page(site, "hello") == (3, 3)

    # WHEN the owner sets hello's old count, THEN the page and the total show it once the stream drains
    done = command("set", "hello", "1000", *admin)
    assert done.returncode == cli.OK, done.stderr
    assert site.drain()
    assert counts_page(site, "hello") == (1000, 1000)

    # an import of 200 tags
    source = tmp_path / "old-service.csv"
    source.write_text("tag,visits\n" + "".join(f"page-{i},{i}\n" for i in range(200)), encoding="utf-8")
    done = command("import", str(source), *admin)
    assert done.returncode == cli.OK, done.stderr
    assert "200 tags changed" in done.stdout
    assert site.drain()
    expected_total = 1000 + sum(range(200))
    assert counts_page(site, "page-150") == (150, expected_total)

    # a backup, a delete (asked for with --yes), and the pages agree
    backup = tmp_path / "backup.json"
    done = command("export", "--output", str(backup), *admin)
    assert done.returncode == cli.OK and "exported 201 tags" in done.stderr
    rows = {row["tag"]: row["visits"] for row in map(json.loads, backup.read_text(encoding="utf-8").splitlines())}
    assert rows["hello"] == 1000 and len(rows) == 201
    assert command("delete", "hello", *admin).returncode == cli.NOT_CONFIRMED  # no terminal, no --yes
    done = command("delete", "hello", "--yes", *admin)
    assert done.returncode == cli.OK, done.stderr
    assert site.drain()
    assert counts_page(site, "hello") == (0, expected_total - 1000)

    # a total broken behind the site's back is repaired by reconcile, and the home page shows it
    site.dynamodb.put_item(TableName=site.table_name, Item={"pk": {"S": "site#total"}, "visits": {"N": "5"}})
    done = command("reconcile", "--settle", "1", *admin)
    assert done.returncode == cli.OK, done.stderr
    assert "total updated" in done.stdout
    home = request(site.url)
    assert number(home.body, "site-total") == expected_total - 1000

    # the backup restores what was deleted
    done = command("import", str(backup), *admin)
    assert done.returncode == cli.OK and "1 tags changed, 200 already as the file says" in done.stdout
    assert site.drain()
    assert counts_page(site, "hello") == (1000, expected_total)
