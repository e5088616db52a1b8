"""End to end: the command in its own process against a running local site, pages read over HTTP.

The site is a real ``LocalSite`` with a state folder: it serves its moto over HTTP and publishes where in
``<state dir>/endpoint.json`` (``localsite.endpoint``), and ``--local --state-dir`` finds it there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from admin import cli
from localsite import endpoint
from localsite.site import LocalSite
from tests.localsite.helpers import request, running_site

from .test_target import command


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[LocalSite, Path]]:
    """A started local site and its state folder, where it published its own endpoint."""
    state = tmp_path / "state"
    with running_site(state) as site:
        published = endpoint.read(state)
        assert (published.table_name, published.site_url) == (site.table_name, site.url)
        yield site, state


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
    assert "updated the total (5 -> " in done.stdout
    home = request(site.url)
    assert number(home.body, "site-total") == expected_total - 1000

    # the backup restores what was deleted
    done = command("import", str(backup), *admin)
    assert done.returncode == cli.OK and "1 tag changed, 200 already as asked" in done.stdout
    assert site.drain()
    assert counts_page(site, "hello") == (1000, expected_total)
