"""The running local site's DynamoDB, reached from another process through ``<state dir>/endpoint.json``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from definition import ROOT
from localsite import endpoint
from localsite.state import STATE_FILE
from tests.localsite.helpers import running_site, tag_counts, total, wait_until

# Another process, as the operator command is: 8 threads adding to one tag through the endpoint.
WRITER = """
import sys, threading, boto3
from localsite import endpoint
found = endpoint.read(sys.argv[1])
def add(times):
    client = boto3.client("dynamodb", endpoint_url=found.endpoint_url, region_name=found.region,
                          aws_access_key_id="local", aws_secret_access_key="local")
    for _ in range(times):
        client.update_item(TableName=found.table_name, Key={"pk": {"S": "tag#remote"}},
                           UpdateExpression="ADD visits :one", ExpressionAttributeValues={":one": {"N": "1"}})
threads = [threading.Thread(target=add, args=(25,)) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
"""


def saved_visits(state_dir: Path, pk: str) -> int | None:
    with sqlite3.connect(state_dir / STATE_FILE) as db:
        row = db.execute("SELECT item FROM items WHERE pk = ?", (pk,)).fetchone()
    return int(json.loads(row[0])["visits"]["N"]) if row else None


def test_writes_through_the_published_endpoint_are_atomic_counted_and_saved(state_dir: Path) -> None:
    with running_site(state_dir) as site:
        found = endpoint.read(state_dir)
        assert found.endpoint_url.startswith("http://127.0.0.1:") and found.table_name == site.table_name
        assert found.pid == os.getpid() and found.site_url == site.url and found.region == "us-east-1"
        # WHEN another process writes 200 visits from 8 threads through it
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        subprocess.run([sys.executable, "-c", WRITER, str(state_dir)], cwd=ROOT, env=env, check=True, timeout=120)
        # THEN none is lost, each was saved before its answer went back, and the stream processor counts them
        assert saved_visits(state_dir, "tag#remote") == 200
        assert tag_counts(site) == {"tag#remote": 200}
        wait_until(lambda: total(site) == 200, what="the stream processor to count the remote writes")
    # ... and a clean stop withdraws the endpoint
    with pytest.raises(endpoint.NoLocalSite, match="no local site is running"):
        endpoint.read(state_dir)


def test_a_stale_endpoint_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    stale = endpoint.Endpoint("http://127.0.0.1:9", "t", "us-east-1", 2**22 + 12345, "http://127.0.0.1:8000/dev/")
    endpoint.publish(tmp_path, stale)
    with pytest.raises(endpoint.NoLocalSite, match="no longer running"):
        endpoint.read(tmp_path)
    # a live process (this one) whose endpoint does not answer: a site that is stuck or another program's pid
    endpoint.publish(tmp_path, endpoint.Endpoint("http://127.0.0.1:9", "t", "us-east-1", os.getpid(), ""))
    with pytest.raises(endpoint.NoLocalSite, match="does not answer"):
        endpoint.read(tmp_path, timeout=0.5)
    (tmp_path / endpoint.ENDPOINT_FILE).write_text("{not json")
    with pytest.raises(endpoint.NoLocalSite, match="unreadable"):
        endpoint.read(tmp_path)
