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
from typing import Any

import pytest

import definition
from localsite.aws import DUMMY_ENVIRONMENT

ROOT = definition.ROOT

# Runs in the fresh interpreter: counts the functions' clients made (functions.dynamodb.Client) and templates
# compiled (FileSystemLoader.get_source, called only for a template not yet in the cache).
SCRIPT = r"""
import importlib, json, os, sys

from localsite.aws import local_aws  # moto first: only clients made inside it are answered by it
import boto3
from jinja2 import loaders

import definition
from functions import dynamodb
from localsite.events import LambdaContext, rest_proxy_event, stream_event

clients, templates = [], []
client_init = dynamodb.Client.__init__
def counting_init(self, *args, **kwargs):
    clients.append("dynamodb")
    client_init(self, *args, **kwargs)
dynamodb.Client.__init__ = counting_init
get_source = loaders.FileSystemLoader.get_source
def counting_get_source(self, environment, template):
    templates.append(template)
    return get_source(self, environment, template)
loaders.FileSystemLoader.get_source = counting_get_source

def throttle(method, url, headers, body):
    answer = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"slow down"}'
    return 400, {"content-type": "application/x-amz-json-1.0"}, answer

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
        client = get_store().client
        client.transport, send = throttle, client.transport
        get()
        client.transport = send
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
    code = ("import json; from functions import dynamodb; made = []; init = dynamodb.Client.__init__\n"
            "dynamodb.Client.__init__ = lambda self, *a, **k: made.append('dynamodb') or init(self, *a, **k)\n"
            "import functions.visit\nfrom functions.store import build_store, get_store\n"
            "try:\n    get_store()\nexcept RuntimeError as error:\n    problem = str(error)\n"
            "print(json.dumps({'made': made, 'problem': problem}))")
    env = {"PATH": os.environ.get("PATH", ""), **DUMMY_ENVIRONMENT}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout) == {"made": [], "problem": "TABLE_NAME is not set"}


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
