"""The functions' DynamoDB client (``functions.dynamodb``, on the standard library): botocore's signatures,
AWS's test vectors, moto's server and moto in-process (the local site's transport), and botocore's
standard-mode retries, errors and CRC32 check against a scripted HTTP server."""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import definition
from functions import dynamodb
from functions.dynamodb import ChecksumError, Client, ClientError, ConnectionError
from functions.keys import PARTITION_KEY, marker_key, tag_key
from functions.store import Store

ENV = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token",
       "AWS_REGION": "eu-west-3"}


# --- Signatures -------------------------------------------------------------------------------------------

tags = st.text(max_size=40)
numbers = st.integers(min_value=0, max_value=10**12).map(lambda n: {"N": str(n)})


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """One call of each operation the functions make, with any tag (unicode included)."""
    table = draw(st.from_regex(r"[A-Za-z0-9_.-]{3,40}", fullmatch=True))
    key = {PARTITION_KEY: {"S": "tag#" + draw(tags)}}
    operation = draw(st.sampled_from(["GetItem", "PutItem", "UpdateItem", "BatchGetItem", "TransactWriteItems"]))
    if operation == "GetItem":
        return operation, {"TableName": table, "Key": key, "ConsistentRead": draw(st.booleans())}
    if operation == "PutItem":
        return operation, {"TableName": table, "Item": {**key, "expires": draw(numbers)},
                           "ConditionExpression": "attribute_not_exists(#pk) OR #expires <= :now",
                           "ExpressionAttributeNames": {"#pk": PARTITION_KEY, "#expires": "expires"},
                           "ExpressionAttributeValues": {":now": draw(numbers)}}
    if operation == "UpdateItem":
        return operation, {"TableName": table, "Key": key, "UpdateExpression": "ADD #visits :one",
                           "ExpressionAttributeNames": {"#visits": "visits"},
                           "ExpressionAttributeValues": {":one": draw(numbers)},
                           "ReturnValues": "UPDATED_NEW", "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    if operation == "BatchGetItem":
        keys = [{PARTITION_KEY: {"S": "tag#" + t}} for t in draw(st.lists(tags, min_size=1, max_size=3))]
        return operation, {"RequestItems": {table: {"Keys": keys, "ConsistentRead": True}}}
    return operation, {"TransactItems": [
        {"Update": {"TableName": table, "Key": key, "UpdateExpression": "ADD #visits :d",
                    "ExpressionAttributeNames": {"#visits": "visits"}, "ExpressionAttributeValues": {":d": draw(numbers)}}},
        {"Put": {"TableName": table, "Item": {PARTITION_KEY: {"S": "marker#" + draw(tags)}},
                 "ConditionExpression": "attribute_not_exists(#pk)", "ExpressionAttributeNames": {"#pk": PARTITION_KEY}}},
    ]}


@st.composite
def environments(draw: st.DrawFn) -> dict[str, str]:
    """Lambda-like environments: any keys and region, with or without a session token and an endpoint."""
    secret_chars = st.characters(min_codepoint=33, max_codepoint=126)
    env = {
        "AWS_ACCESS_KEY_ID": draw(st.from_regex(r"(AKIA|ASIA)[A-Z0-9]{16}", fullmatch=True)),
        "AWS_SECRET_ACCESS_KEY": draw(st.text(secret_chars, min_size=1, max_size=40)),
        "AWS_REGION": draw(st.sampled_from(["us-east-1", "eu-west-3", "ap-southeast-2"])
                           | st.from_regex(r"[a-z]{2}-[a-z]{4,9}-[1-9]", fullmatch=True)),
    }
    if draw(st.booleans()):
        env["AWS_SESSION_TOKEN"] = draw(st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                                                max_size=400))
    endpoint = draw(st.none() | st.builds(
        "{}://{}{}{}".format,
        st.sampled_from(["http", "https"]),
        st.sampled_from(["127.0.0.1", "localhost", "dynamodb.local"]),
        st.sampled_from(["", ":80", ":443", ":8000", ":4566"]),
        st.sampled_from(["", "/", "/dynamodb"]),
    ))
    if endpoint:
        env[draw(st.sampled_from(["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"]))] = endpoint
    return env


def botocore_authorization(client: Client, operation: str, body: bytes, moment: datetime) -> AWSRequest:
    """The request botocore's SigV4Auth signs, with the headers the client sends besides its own signing."""
    request = AWSRequest(method="POST", url=client.url, data=body, headers={
        "Content-Type": dynamodb.CONTENT_TYPE, "X-Amz-Target": dynamodb.TARGET_PREFIX + operation,
        "User-Agent": dynamodb.USER_AGENT,
    })
    credentials = Credentials(client.access_key, client.secret_key, client.session_token)
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):
        SigV4Auth(credentials, "dynamodb", client.region).add_auth(request)
    return request


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), environments(),
       st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2099, 12, 31)))
def test_the_signature_is_botocores_for_the_same_request_and_time(
    request: tuple[str, dict[str, Any]], env: dict[str, str], moment: datetime
) -> None:
    operation, params = request
    client = Client(env)
    body = json.dumps(params, separators=(",", ":")).encode("utf-8")
    moment = moment.replace(microsecond=0)
    headers = client.signed_headers(operation, body, moment.strftime("%Y%m%dT%H%M%SZ"))
    signed = botocore_authorization(client, operation, body, moment)
    assert headers["authorization"] == signed.headers["Authorization"]
    assert headers["x-amz-date"] == signed.headers["X-Amz-Date"]
    assert headers.get("x-amz-security-token") == signed.headers.get("X-Amz-Security-Token")


# AWS's Signature Version 4 test suite (credentials AKIDEXAMPLE, us-east-1, service "service", 2015-08-30
# 12:36:00 UTC): each request's canonical headers and body, and the signature the suite gives.
SUITE_TOKEN = (
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwt"
    "hAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNV"
    "XAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
)
SUITE = [
    ("get-vanilla", "GET", "", {}, b"", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("get-vanilla-query-order-key-case", "GET", "Param1=value1&Param2=value2", {}, b"",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ("get-header-value-trim", "GET", "", {"my-header1": "value1", "my-header2": '"a b c"'}, b"",
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
    ("post-vanilla", "POST", "", {}, b"", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ("post-header-key-sort", "POST", "", {"my-header1": "value1"}, b"",
     "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"),
    ("post-header-value-case", "POST", "", {"my-header1": "VALUE1"}, b"",
     "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
    ("post-sts-header-before", "POST", "", {"x-amz-security-token": SUITE_TOKEN}, b"",
     "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
    ("post-vanilla-query", "POST", "Param1=value1", {}, b"",
     "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
    ("post-x-www-form-urlencoded", "POST", "", {"content-type": "application/x-www-form-urlencoded"},
     b"Param1=value1", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
    ("post-x-www-form-urlencoded-parameters", "POST", "",
     {"content-type": "application/x-www-form-urlencoded; charset=utf8"}, b"Param1=value1",
     "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"),
]


@pytest.mark.parametrize(("name", "method", "query", "extra", "body", "signature"), SUITE, ids=[c[0] for c in SUITE])
def test_the_signature_matches_awss_test_suite(
    name: str, method: str, query: str, extra: dict[str, str], body: bytes, signature: str
) -> None:
    headers = {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z", **extra}
    header = dynamodb.authorization(
        method=method, path="/", query=query, headers=headers, body=body, timestamp="20150830T123600Z",
        region="us-east-1", access_key="AKIDEXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        service="service",
    )
    assert header == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders={';'.join(sorted(headers))}, Signature={signature}"
    )


# --- Configuration from the environment ---------------------------------------------------------------------

def test_the_endpoint_and_region_come_from_the_environment_as_the_sdks_read_them() -> None:
    assert Client(ENV).url == "https://dynamodb.eu-west-3.amazonaws.com"
    assert Client({**ENV, "AWS_REGION": "", "AWS_DEFAULT_REGION": "sa-east-1"}).region == "sa-east-1"
    assert Client({**ENV, "AWS_ENDPOINT_URL": "http://a:1"}).url == "http://a:1"
    both = {**ENV, "AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_DYNAMODB": "http://b:2"}
    assert Client(both).url == "http://b:2"
    assert Client({**both, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}).url.startswith("https://dynamodb.")
    assert Client({**ENV, "AWS_ENDPOINT_URL": "https://h:443/"}).host == "h"
    assert Client({**ENV, "AWS_SESSION_TOKEN": ""}).session_token is None


@pytest.mark.parametrize("missing", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"])
def test_a_client_without_credentials_or_region_is_refused_clearly(missing: str) -> None:
    with pytest.raises(ValueError, match="credentials|region"):
        Client({name: value for name, value in ENV.items() if name != missing})


def test_an_endpoint_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="not an http"):
        Client({**ENV, "AWS_ENDPOINT_URL": "ftp://h"})


# --- Against moto's server -------------------------------------------------------------------------------------

TABLE = "tag-counter-stdlib"
IN_PROCESS_TABLE = "tag-counter-in-process"


@pytest.fixture
def moto_client() -> Iterator[Client]:
    """The client against ``ThreadedMotoServer`` (moto's in-process backends over HTTP), with a fresh table
    (per test: other tests of the same process reset moto's backends)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {**ENV, "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
        setup = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=env["AWS_ENDPOINT_URL"])
        if TABLE in setup.list_tables()["TableNames"]:
            setup.delete_table(TableName=TABLE)  # moto's backends outlive its server: left by another test
        definition.create_table(setup, TABLE)
        try:
            yield Client(env)
        finally:
            setup.delete_table(TableName=TABLE)  # moto's backends outlive its server
    finally:
        server.stop()


def test_the_store_counts_and_reads_through_it(moto_client: Client) -> None:
    store = Store(moto_client, TABLE)
    assert store.record_visit("ünïcode").visits == 1
    assert store.record_visit("ünïcode").visits == 2
    assert store.read_tag("ünïcode").visits == 2
    tag, total = store.read_counts("ünïcode")
    assert (tag.visits, tag.today, total.visits) == (2, 2, 0)
    assert store.read_total().visits == 0


def test_a_failed_condition_carries_the_old_item_as_botocore_does(moto_client: Client) -> None:
    with pytest.raises(ClientError) as failed:
        moto_client.put_item(TableName=TABLE, Item=tag_key("held"), ReturnValuesOnConditionCheckFailure="ALL_OLD",
                             ConditionExpression="attribute_exists(#pk)", ExpressionAttributeNames={"#pk": PARTITION_KEY})
    assert failed.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert "Item" not in failed.value.response  # no old item: DynamoDB sends none
    moto_client.put_item(TableName=TABLE, Item={**tag_key("held"), "visits": {"N": "7"}})
    with pytest.raises(ClientError) as failed:
        moto_client.put_item(TableName=TABLE, Item=tag_key("held"), ReturnValuesOnConditionCheckFailure="ALL_OLD",
                             ConditionExpression="attribute_not_exists(#pk)",
                             ExpressionAttributeNames={"#pk": PARTITION_KEY})
    assert failed.value.response["Item"] == {**tag_key("held"), "visits": {"N": "7"}}
    assert failed.value.operation_name == "PutItem"
    assert "ConditionalCheckFailedException" in str(failed.value)


def test_a_cancelled_transaction_carries_its_reasons(moto_client: Client) -> None:
    marker = {**marker_key("1"), "last": {"S": "1"}}
    moto_client.put_item(TableName=TABLE, Item=marker)
    with pytest.raises(ClientError) as failed:
        moto_client.transact_write_items(TransactItems=[
            {"Update": {"TableName": TABLE, "Key": tag_key("t"), "UpdateExpression": "ADD visits :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Put": {"TableName": TABLE, "Item": marker, "ConditionExpression": "attribute_not_exists(#pk)",
                     "ExpressionAttributeNames": {"#pk": PARTITION_KEY}}},
        ])
    assert failed.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in failed.value.response["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]


def test_in_process_moto_answers_the_same_through_the_local_transport() -> None:
    # GIVEN moto in this process (the tests' and the local site's): clients built inside get its transport
    from localsite.aws import local_aws
    from localsite.transport import moto_transport

    with local_aws():
        definition.create_table(boto3.client("dynamodb", region_name="us-east-1"), IN_PROCESS_TABLE)
        client = Client({**ENV, "AWS_REGION": "us-east-1"})
        assert client.transport is moto_transport
        store = Store(client, IN_PROCESS_TABLE)
        # THEN the store's calls, a failed condition's old item and a cancelled transaction's reasons work alike
        assert [store.record_visit("ünïcode").visits for _ in range(2)] == [1, 2]
        assert store.read_counts("ünïcode")[0].visits == 2
        client.put_item(TableName=IN_PROCESS_TABLE, Item={**tag_key("held"), "visits": {"N": "7"}})
        with pytest.raises(ClientError) as failed:
            client.put_item(TableName=IN_PROCESS_TABLE, Item=tag_key("held"),
                            ReturnValuesOnConditionCheckFailure="ALL_OLD",
                            ConditionExpression="attribute_not_exists(#pk)",
                            ExpressionAttributeNames={"#pk": PARTITION_KEY})
        assert failed.value.response["Item"] == {**tag_key("held"), "visits": {"N": "7"}}
        with pytest.raises(ClientError) as missing:
            client.get_item(TableName="no-such-table", Key=tag_key("t"))
        assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # AND a client built outside moto goes over HTTP again
    assert isinstance(Client(ENV).transport, dynamodb.HTTPTransport)


def test_a_transport_that_finds_no_moto_is_a_connection_error() -> None:
    from localsite.transport import moto_transport

    client = Client(ENV, transport=moto_transport)  # moto is not running: nothing answers
    with mock.patch("functions.dynamodb.retry_delay", return_value=0):
        with pytest.raises(ConnectionError, match="moto does not answer"):
            client.get_item(TableName="t", Key=tag_key("a"))


def test_an_error_answer_has_its_code(moto_client: Client) -> None:
    with pytest.raises(ClientError) as failed:
        moto_client.get_item(TableName="no-such-table", Key=tag_key("t"))
    assert failed.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


# --- Retries, errors and checksums, against a scripted server -------------------------------------------------

class Script:
    """Answers in order (status, body, extra headers, or "drop" to close without answering), and what came."""

    def __init__(self) -> None:
        self.answers: list[Any] = []
        self.seen: list[dict[str, Any]] = []
        self.release = threading.Event()


def _answer(status: int, body: dict[str, Any], crc: int | None = None, **headers: str) -> tuple:
    content = json.dumps(body).encode()
    return status, content, {"x-amz-crc32": str(zlib.crc32(content) if crc is None else crc), **headers}


def _error(status: int, code: str, **fields: Any) -> tuple:
    return _answer(status, {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": code, **fields})


@pytest.fixture
def scripted() -> Iterator[tuple[Script, Client]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            script.seen.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "peer": self.client_address})
            answer = script.answers.pop(0)
            if answer == "drop":
                self.close_connection = True
                return
            if answer == "hang":
                script.release.wait(30)
                return
            status, content, headers = answer
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = Client({**ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}"}, timeout=0.5)
    with mock.patch("functions.dynamodb.random.random", return_value=0.0):  # no backoff wait
        yield script, client
    script.release.set()
    client.close()
    server.shutdown()
    server.server_close()


def test_a_call_sends_the_json_protocol_signed_and_keeps_its_connection(scripted: tuple[Script, Client]) -> None:
    script, client = scripted
    script.answers += [_answer(200, {"Item": {"pk": {"S": "a"}}}), _answer(200, {})]
    assert client.get_item(TableName="t", Key=tag_key("é"))["Item"] == {"pk": {"S": "a"}}
    assert client.get_item(TableName="t", Key=tag_key("é"))["ResponseMetadata"]["RetryAttempts"] == 0
    first, second = script.seen
    assert first["headers"]["x-amz-target"] == "DynamoDB_20120810.GetItem"
    assert first["headers"]["content-type"] == "application/x-amz-json-1.0"
    assert first["headers"]["x-amz-security-token"] == "token"
    assert first["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert json.loads(first["body"]) == {"TableName": "t", "Key": tag_key("é")}
    assert first["headers"]["amz-sdk-request"] == "attempt=1; max=3"  # unsigned, as botocore sends it
    assert "amz-sdk-request" not in first["headers"]["authorization"]
    assert first["peer"] == second["peer"]  # one kept-alive connection


@pytest.mark.parametrize("failure", [
    _error(500, "InternalServerError"), _error(503, "ServiceUnavailable"),
    _error(400, "ProvisionedThroughputExceededException"), _error(400, "ThrottlingException"),
    _error(400, "RequestLimitExceeded"), _error(429, "SomethingNew"), _answer(200, {}, crc=1), "drop",
], ids=["500", "503", "throughput", "throttling", "request-limit", "429", "crc32", "dropped"])
def test_throttling_transient_errors_and_bad_checksums_are_retried(
    scripted: tuple[Script, Client], failure: Any
) -> None:
    script, client = scripted
    script.answers += [failure, _answer(200, {"Attributes": {"visits": {"N": "3"}}})]
    answer = client.update_item(TableName="t", Key=tag_key("a"), UpdateExpression="ADD visits :one")
    assert answer["Attributes"] == {"visits": {"N": "3"}}
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert [seen["headers"]["amz-sdk-request"] for seen in script.seen] == ["attempt=1; max=3", "attempt=2; max=3"]


def test_retries_stop_at_the_attempt_bound_with_the_last_error(scripted: tuple[Script, Client]) -> None:
    script, client = scripted
    script.answers += [_error(400, "ProvisionedThroughputExceededException")] * 4
    with pytest.raises(ClientError) as failed:
        client.get_item(TableName="t", Key=tag_key("a"))
    assert failed.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert failed.value.response["ResponseMetadata"]["RetryAttempts"] == dynamodb.MAX_ATTEMPTS - 1
    assert "reached max retries" in str(failed.value)
    assert len(script.seen) == dynamodb.MAX_ATTEMPTS == 3


@pytest.mark.parametrize("code", ["ConditionalCheckFailedException", "ValidationException",
                                  "TransactionCanceledException", "ResourceNotFoundException"])
def test_an_error_of_the_request_itself_is_not_retried(scripted: tuple[Script, Client], code: str) -> None:
    script, client = scripted
    script.answers += [_error(400, code, Item={"pk": {"S": "old"}})]
    with pytest.raises(ClientError) as failed:
        client.put_item(TableName="t", Item=tag_key("a"))
    assert failed.value.response["Error"] == {"Code": code, "Message": code}
    assert failed.value.response["Item"] == {"pk": {"S": "old"}}
    assert len(script.seen) == 1


def test_a_checksum_that_never_matches_is_an_error(scripted: tuple[Script, Client]) -> None:
    script, client = scripted
    script.answers += [_answer(200, {}, crc=1)] * 3
    with pytest.raises(ChecksumError):
        client.get_item(TableName="t", Key=tag_key("a"))
    assert len(script.seen) == 3


def test_no_answer_in_time_is_a_connection_error_after_the_attempts(scripted: tuple[Script, Client]) -> None:
    script, client = scripted
    script.answers += ["drop", "hang", "drop"]
    with pytest.raises(ConnectionError):
        client.get_item(TableName="t", Key=tag_key("a"))
    assert len(script.seen) == 3
    script.release.set()
    script.answers.append(_answer(200, {}))
    assert client.get_item(TableName="t", Key=tag_key("a"))["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_a_retry_after_header_lengthens_the_wait(scripted: tuple[Script, Client]) -> None:
    script, client = scripted
    script.answers += [_error(400, "ThrottlingException") + (), _answer(200, {})]
    status, content, headers = script.answers[0]
    script.answers[0] = (status, content, {**headers, "x-amz-retry-after": "40"})
    with mock.patch("functions.dynamodb.time.sleep") as slept:
        client.get_item(TableName="t", Key=tag_key("a"))
    slept.assert_called_once_with(0.04)


def test_the_time_signed_is_utc_now(scripted: tuple[Script, Client]) -> None:
    script, client = scripted
    script.answers.append(_answer(200, {}))
    before = datetime.now(timezone.utc).replace(microsecond=0)
    client.get_item(TableName="t", Key=tag_key("a"))
    signed = datetime.strptime(script.seen[0]["headers"]["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    assert before <= signed <= datetime.now(timezone.utc)


def test_no_function_imports_botocore_or_boto3() -> None:
    # GIVEN a fresh interpreter with TABLE_NAME set, WHEN each function's handler module is imported (each
    # builds its client), THEN neither botocore nor boto3 is imported: the archive does not need them
    import subprocess
    import sys

    from localsite.aws import DUMMY_ENVIRONMENT

    modules = [spec.handler.rsplit(".", 1)[0] for spec in definition.FUNCTIONS]
    code = "import sys\nsys.modules['botocore'] = sys.modules['boto3'] = None  # importing either fails\n" + (
        "\n".join(f"import {module}" for module in modules)) + (
        "\nimport json\nprint(json.dumps(sorted(m for m in sys.modules if sys.modules[m] is not None and "
        "m.split('.')[0] in ('botocore', 'boto3', 'awscrt', 's3transfer'))))")
    env = {"PATH": "/usr/bin:/bin", **DUMMY_ENVIRONMENT, "TABLE_NAME": "t"}
    done = subprocess.run([sys.executable, "-c", code], cwd=definition.ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == []
