"""Every per-container cost is paid at import (Lambda's init phase, at full CPU), and none in a request.

Each test runs a fresh interpreter, as Lambda starts one: with ``TABLE_NAME`` set, importing a handler must build
the DynamoDB client and compile exactly the templates that function renders; its requests afterwards (a page,
each error page it can answer) must build no client and compile no template. Speed itself is measured by the
benchmark (``bench/coldstart.py``), never here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import definition
from localsite.aws import DUMMY_ENVIRONMENT

ROOT = definition.ROOT

# Runs in the fresh interpreter: counts clients made (botocore's Session.create_client, which boto3 uses too)
# and templates compiled (FileSystemLoader.get_source, called only for a template not yet in the cache).
SCRIPT = r"""
import importlib, json, os, sys

from localsite.aws import local_aws  # moto first: only clients made after it are answered by it
import boto3
import botocore.session
from botocore.awsrequest import AWSResponse
from jinja2 import loaders

import definition
from localsite.events import LambdaContext, rest_proxy_event, stream_event

clients, templates = [], []
create_client = botocore.session.Session.create_client
def counting_create_client(self, service_name, *args, **kwargs):
    clients.append(service_name)
    return create_client(self, service_name, *args, **kwargs)
botocore.session.Session.create_client = counting_create_client
get_source = loaders.FileSystemLoader.get_source
def counting_get_source(self, environment, template):
    templates.append(template)
    return get_source(self, environment, template)
loaders.FileSystemLoader.get_source = counting_get_source

class Body:
    def __init__(self, data): self.data = data
    def stream(self, **_): yield self.data
    def read(self, *_): return self.data

def throttle(request, **_):
    body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"slow down"}'
    return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, Body(body))

spec = next(f for f in definition.FUNCTIONS if f.name == sys.argv[1])
with local_aws():
    table = os.environ["TABLE_NAME"]
    setup = boto3.client("dynamodb", region_name="us-east-1")
    stream_arn = definition.create_table(setup, table)
    del clients[:]
    module = importlib.import_module(spec.handler.rsplit(".", 1)[0])
    handler = getattr(module, spec.handler.rsplit(".", 1)[1])
    from functions.store import get_store
    at_init = {"clients": list(clients), "templates": sorted(templates)}
    del clients[:], templates[:]
    statuses = []
    if spec is definition.STREAM_PROCESSOR:
        setup.update_item(TableName=table, Key={"pk": {"S": "tag#init"}}, UpdateExpression="ADD visits :one",
                          ExpressionAttributeValues={":one": {"N": "1"}})
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator)["Records"]
        del clients[:]
        result = handler(stream_event(records, stream_arn), LambdaContext("stream", 30))
        statuses.append(len(result["batchItemFailures"]))
    else:
        route = next(r for r in definition.ROUTES if r.function is spec)
        def event(tag="hello", method="GET"):
            parameters = {"tag": tag} if "{tag}" in route.path else None
            return rest_proxy_event(route, route.path.replace("{tag}", tag), parameters, stage="dev", method=method)
        def get(**kwargs):
            statuses.append(handler(event(**kwargs), LambdaContext(spec.name, 5))["statusCode"])
        get()
        if "{tag}" in route.path:
            get(tag="no%20spaces")
        get(method="POST")
        events = get_store().client.meta.events
        events.register_first("before-send.dynamodb", throttle, unique_id="throttle")
        get()
        events.unregister("before-send.dynamodb", unique_id="throttle")
        setup.delete_table(TableName=table)
        get()
    print(json.dumps({"init": at_init, "statuses": statuses,
                      "requests": {"clients": clients, "templates": sorted(templates)}}))
"""


def run_fresh(function: str) -> dict[str, Any]:
    """Run ``SCRIPT`` for one function in a fresh interpreter with ``TABLE_NAME`` set."""
    environment = {
        "PATH": os.environ.get("PATH", ""), **DUMMY_ENVIRONMENT, "TABLE_NAME": "tag-counter-init",
        **definition.function_environment(definition.Settings()),
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    done = subprocess.run([sys.executable, "-c", SCRIPT, function], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


ROUTE_FUNCTIONS = [route.function for route in definition.ROUTES]


@pytest.mark.parametrize("spec", ROUTE_FUNCTIONS, ids=lambda spec: spec.name)
def test_a_page_function_builds_everything_at_import_and_nothing_in_a_request(spec: definition.FunctionSpec) -> None:
    module = __import__(spec.handler.rsplit(".", 1)[0], fromlist=["TEMPLATES"])
    # GIVEN a fresh interpreter with TABLE_NAME set, WHEN the handler module is imported
    figures = run_fresh(spec.name)
    # THEN it has made the DynamoDB client and compiled its templates: all it renders, and only those
    assert figures["init"]["clients"] == ["dynamodb"]
    assert figures["init"]["templates"] == sorted(module.TEMPLATES)
    # AND its requests, the page and every error page, made no client and compiled no template
    expected = [200, 400, 405, 503, 500] if "{tag}" in next(
        r.path for r in definition.ROUTES if r.function is spec) else [200, 405, 503, 500]
    assert figures["statuses"] == expected
    assert figures["requests"] == {"clients": [], "templates": []}


def test_the_stream_processor_builds_its_client_at_import_and_compiles_nothing() -> None:
    figures = run_fresh(definition.STREAM_PROCESSOR.name)
    assert figures["init"] == {"clients": ["dynamodb"], "templates": []}
    assert figures["statuses"] == [0]  # no failed record
    assert figures["requests"] == {"clients": [], "templates": []}


def test_without_table_name_importing_builds_no_client() -> None:
    # Tests and the local site import the handlers before moto is up; they build the store afterwards.
    code = ("import json, botocore.session; made = []; create = botocore.session.Session.create_client\n"
            "botocore.session.Session.create_client = lambda self, *a, **k: made.append(a[0]) or create(self, *a, **k)\n"
            "import functions.visit\nfrom functions.store import build_store, get_store\n"
            "try:\n    get_store()\nexcept RuntimeError as error:\n    problem = str(error)\n"
            "print(json.dumps({'made': made, 'problem': problem}))")
    env = {"PATH": os.environ.get("PATH", ""), **DUMMY_ENVIRONMENT}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout) == {"made": [], "problem": "TABLE_NAME is not set"}


def test_no_function_imports_boto3_or_awscrt_even_where_awscrt_is_installed(tmp_path: Path) -> None:
    # A stand-in awscrt on the path, as a runtime or a layer might carry the real one (about 50 ms per cold
    # start, measured): botocore imports it whenever it can; the functions keep it out.
    fake = tmp_path / "awscrt"
    fake.mkdir()
    (fake / "__init__.py").write_text("__version__ = '0.0.0'\n", encoding="utf-8")
    (fake / "auth.py").write_text("", encoding="utf-8")
    modules = [spec.handler.rsplit(".", 1)[0] for spec in definition.FUNCTIONS]
    env = {"PATH": os.environ.get("PATH", ""), **DUMMY_ENVIRONMENT, "TABLE_NAME": "t", "PYTHONPATH": str(tmp_path),
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}

    def loaded(code: str) -> dict[str, bool]:
        code += "\nimport json, sys\nprint(json.dumps({m: sys.modules.get(m) is not None for m in ('awscrt', 'boto3')}))"
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60, check=True)
        return json.loads(done.stdout)

    assert loaded("import botocore.compat")["awscrt"]  # botocore alone would import it
    # GIVEN awscrt importable, WHEN every function's module is imported (each builds its client)
    # THEN neither awscrt nor boto3 (its resource layer, which no request uses: botocore makes the client)
    assert loaded("\n".join(f"import {module}" for module in modules)) == {"awscrt": False, "boto3": False}


def test_the_bot_list_is_compiled_at_import_not_in_the_first_request() -> None:
    # GIVEN a fresh interpreter, WHEN the bot check is imported and checks a browser's User-Agent,
    # THEN nothing more is compiled: its patterns were compiled at import, and CrawlerDetect's own one (all of
    # the list in one pattern, about 19 ms) never is
    script = (
        "import re, functions.bots as b, json; from crawlerdetect import crawlerdetect as c; "
        "compiled = [isinstance(b.PATTERN, re.Pattern), isinstance(b.EXCLUSIONS, re.Pattern)]; "
        "b.is_bot('Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0'); "
        "print(json.dumps(compiled + [c.get_compiled_crawler_regex.cache_info().currsize, "
        "c.get_compiled_exclusions_regex.cache_info().currsize]))"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == [True, True, 0, 0]
