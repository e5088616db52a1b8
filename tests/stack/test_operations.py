"""Running it for years, under mocks: the site on the owner's domain (each way of setting it up), alarms that notify
someone on ALARM and on OK, one dashboard naming only metrics that exist, the API's name fixed to its document's
title, and marker writes granted only with a unique-visitor window. With moto: the domain and its base path mapping
built from the program's own inputs, and every route reachable under the mapping's path."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest
from moto import mock_aws

import definition
from components.alarms import COUNTED_VISITS_METRIC, MALFORMED_RECORDS_METRIC
from components.dashboard import dashboard_name
from components.rest_api import path_segments
from functions import links
from localsite.aws import DUMMY_ENVIRONMENT
from tests.stack.conftest import FUNCTION, STAGE, ProgramRun, function_for, reveal, run_program, stack_config_strings

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
REST_API = "aws:apigateway/restApi:RestApi"
DEPLOYMENT = "aws:apigateway/deployment:Deployment"
DOMAIN = "aws:apigateway/domainName:DomainName"
MAPPING = "aws:apigateway/basePathMapping:BasePathMapping"
CERTIFICATE = "aws:acm/certificate:Certificate"
VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
RECORD = "aws:route53/record:Record"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"

DOMAIN_NAME = "counter.example.com"
CERTIFICATE_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
ZONE_ID = "Z0123456789ABCDEFGHIJ"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:owner-alerts"
NO_ONE = "the alarms notify no one"


def with_config(**values: str) -> ProgramRun:
    """The dev stack with ``tag-counter:<key>`` values added."""
    return run_program({**stack_config_strings("dev"), **{f"tag-counter:{k}": v for k, v in values.items()}})


@pytest.fixture(scope="module")
def certificate_stack() -> ProgramRun:
    """The bar's stack: a domain with the owner's certificate, and an address for the alarms."""
    return with_config(domainName=DOMAIN_NAME, certificateArn=CERTIFICATE_ARN, alarmEmail="ops@example.com")


@pytest.fixture(scope="module")
def zone_stack() -> ProgramRun:
    """A domain in a Route 53 zone, under a base path, with the alarms sent to a topic the owner has."""
    return with_config(domainName=DOMAIN_NAME, hostedZoneId=ZONE_ID, basePath="counter", alarmTopicArn=TOPIC_ARN)


def gateway_links(program: ProgramRun) -> set[str]:
    responses = json.loads(program.one(REST_API)["body"])["x-amazon-apigateway-gateway-responses"]
    found: set[str] = set()
    for response in responses.values():
        for page in response["responseTemplates"].values():
            found |= set(re.findall(r'<a href="([^"]*)"', page))
    return found


# --- the custom domain ----------------------------------------------------------------------------------------------


def test_a_domain_with_the_owners_certificate(certificate_stack: ProgramRun) -> None:
    program = certificate_stack
    domain = program.one(DOMAIN)
    assert domain["domainName"] == DOMAIN_NAME
    assert domain["regionalCertificateArn"] == CERTIFICATE_ARN and "certificateArn" not in domain.state
    assert domain["endpointConfiguration"]["types"] == "REGIONAL"
    assert domain["securityPolicy"] == "TLS_1_2"
    mapping = program.one(MAPPING)
    assert mapping["domainName"] == DOMAIN_NAME and "basePath" not in mapping.state  # the domain's root
    assert mapping["restApi"] == program.one(REST_API).id
    assert mapping["stageName"] == program.one(STAGE)["stageName"] == "dev"
    # DNS is the owner's: no certificate requested, no record created; the output says where to point it.
    assert program.of_type(CERTIFICATE) == program.of_type(VALIDATION) == program.of_type(RECORD) == []
    assert program.outputs["domain_dns_target"] == domain["regionalDomainName"]


def test_with_a_domain_every_address_the_stack_gives_is_on_it(certificate_stack: ProgramRun) -> None:
    outputs = certificate_stack.outputs
    assert outputs["url"] == f"https://{DOMAIN_NAME}/"
    examples = [key for key in outputs if key.startswith("example_")]
    assert examples and all(outputs[key].startswith(f"https://{DOMAIN_NAME}/") for key in examples)
    assert outputs["example_badge_url"] == f"https://{DOMAIN_NAME}/tags/hello/badge.svg"
    # The old address still answers, so badges can be moved over first.
    assert outputs["execute_api_url"] == certificate_stack.one(STAGE)["invokeUrl"] + "/"
    # The gateway's own pages link home on the domain, from either address.
    assert gateway_links(certificate_stack) == {f"https://{DOMAIN_NAME}/"}
    # The count page's snippets: every function is told the site's URL there.
    for function in certificate_stack.of_type(FUNCTION):
        assert reveal(function["environment"])["variables"][links.SITE_URL_ENV] == f"https://{DOMAIN_NAME}/"


def test_a_domain_in_a_route53_zone_gets_a_validated_certificate_and_an_alias(zone_stack: ProgramRun) -> None:
    program = zone_stack
    certificate = program.one(CERTIFICATE)
    assert (certificate["domainName"], certificate["validationMethod"]) == (DOMAIN_NAME, "DNS")
    [option] = certificate["domainValidationOptions"]
    validation_record = program.one(RECORD, lambda r: r["type"] == "CNAME")
    assert validation_record["zoneId"] == ZONE_ID
    assert validation_record["name"] == option["resourceRecordName"]
    assert validation_record["records"] == [option["resourceRecordValue"]]
    assert validation_record["allowOverwrite"] is True
    validation = program.one(VALIDATION)
    assert validation["certificateArn"] == certificate["arn"]
    assert validation["validationRecordFqdns"] == [validation_record["fqdn"]]
    # The domain is created with the certificate only once ACM has validated it.
    domain = program.one(DOMAIN)
    assert domain["regionalCertificateArn"] == certificate["arn"]
    assert validation.urn in domain.dependencies
    alias = program.one(RECORD, lambda r: r["type"] == "A")
    assert (alias["zoneId"], alias["name"]) == (ZONE_ID, DOMAIN_NAME)
    assert alias["aliases"] == [
        {"name": domain["regionalDomainName"], "zoneId": domain["regionalZoneId"], "evaluateTargetHealth": False}
    ]


def test_a_base_path_puts_the_site_under_it(zone_stack: ProgramRun) -> None:
    assert zone_stack.one(MAPPING)["basePath"] == "counter"
    assert zone_stack.outputs["url"] == f"https://{DOMAIN_NAME}/counter/"
    assert zone_stack.outputs["example_count_url"] == f"https://{DOMAIN_NAME}/counter/counts/hello"
    assert gateway_links(zone_stack) == {f"https://{DOMAIN_NAME}/counter/"}


def test_the_execute_api_endpoint_can_be_turned_off(certificate_stack: ProgramRun) -> None:
    assert certificate_stack.one(REST_API)["disableExecuteApiEndpoint"] is False
    off = with_config(domainName=DOMAIN_NAME, certificateArn=CERTIFICATE_ARN, disableExecuteApiEndpoint="true")
    assert off.one(REST_API)["disableExecuteApiEndpoint"] is True
    assert "execute_api_url" not in off.outputs
    assert off.outputs["url"] == f"https://{DOMAIN_NAME}/"
    # It takes effect in a new deployment only.
    before, after = (p.one(DEPLOYMENT)["triggers"] for p in (certificate_stack, off))
    assert before["document"] == after["document"] and before != after


def test_a_preview_declares_the_same_domain_resources(zone_stack: ProgramRun) -> None:
    config = {
        **stack_config_strings("dev"),
        **{f"tag-counter:{k}": v for k, v in {"domainName": DOMAIN_NAME, "hostedZoneId": ZONE_ID}.items()},
        "tag-counter:basePath": "counter",
        "tag-counter:alarmTopicArn": TOPIC_ARN,
    }
    preview = run_program(config, preview=True)
    assert sorted((r.type, r.name) for r in preview.registrations) == sorted(
        (r.type, r.name) for r in zone_stack.registrations
    )
    assert preview.outputs["url"] == f"https://{DOMAIN_NAME}/counter/"  # known before anything exists


def test_without_a_domain_nothing_of_it_exists(program: ProgramRun) -> None:
    for typ in (DOMAIN, MAPPING, CERTIFICATE, VALIDATION, RECORD):
        assert program.of_type(typ) == []
    assert "domain_dns_target" not in program.outputs and "execute_api_url" not in program.outputs
    assert gateway_links(program) == {definition.GATEWAY_HOME_HREF}
    for function in program.of_type(FUNCTION):
        assert links.SITE_URL_ENV not in reveal(function["environment"])["variables"]


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"certificateArn": CERTIFICATE_ARN}, "certificateArn"),
        ({"domainName": DOMAIN_NAME}, "domainName"),
        ({"domainName": DOMAIN_NAME, "certificateArn": CERTIFICATE_ARN, "hostedZoneId": ZONE_ID}, "hostedZoneId"),
        ({"domainName": DOMAIN_NAME, "certificateArn": CERTIFICATE_ARN.replace("us-east-1", "eu-west-1")},
         "certificateArn is in eu-west-1"),
        ({"alarmTopicArn": TOPIC_ARN.replace("us-east-1", "eu-west-1")}, "alarmTopicArn is in eu-west-1"),
        ({"alarmTopicArn": TOPIC_ARN, "alarmEmail": "ops@example.com"}, "alarmTopicArn"),
    ],
)
def test_missing_or_contradictory_settings_stop_the_program_naming_the_key(values: dict[str, str], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        with_config(**values)


# --- alarms that notify ---------------------------------------------------------------------------------------------


def test_alarm_email_creates_a_topic_every_alarm_notifies(certificate_stack: ProgramRun) -> None:
    topic = certificate_stack.one(TOPIC)
    subscription = certificate_stack.one(SUBSCRIPTION)
    assert (subscription["topic"], subscription["protocol"], subscription["endpoint"]) == (
        topic["arn"], "email", "ops@example.com"
    )
    assert_every_alarm_notifies(certificate_stack, topic["arn"])
    assert certificate_stack.outputs["alarm_topic_arn"] == topic["arn"]
    assert NO_ONE not in " ".join(certificate_stack.warnings)


def test_several_addresses_each_get_a_subscription() -> None:
    program = with_config(alarmEmail="ops@example.com, owner@example.org")
    topic = program.one(TOPIC)
    subscriptions = program.of_type(SUBSCRIPTION)
    assert sorted(s["endpoint"] for s in subscriptions) == ["ops@example.com", "owner@example.org"]
    assert {s["topic"] for s in subscriptions} == {topic["arn"]}
    # Named by address: reordering the list changes no subscription (each one confirmed by its owner).
    reordered = with_config(alarmEmail="owner@example.org,ops@example.com")
    assert sorted(s.name for s in reordered.of_type(SUBSCRIPTION)) == sorted(s.name for s in subscriptions)


def test_alarm_topic_arn_is_used_as_is(zone_stack: ProgramRun) -> None:
    assert zone_stack.of_type(TOPIC) == zone_stack.of_type(SUBSCRIPTION) == []
    assert_every_alarm_notifies(zone_stack, TOPIC_ARN)
    assert NO_ONE not in " ".join(zone_stack.warnings)


def test_without_a_target_the_preview_warns_that_alarms_notify_no_one(program: ProgramRun) -> None:
    assert program.of_type(TOPIC) == []
    for alarm in program.of_type(ALARM):
        assert not alarm.state.get("alarmActions") and not alarm.state.get("okActions")
    [warning] = [w for w in program.warnings if NO_ONE in w]
    assert "tag-counter:alarmEmail" in warning and "tag-counter:alarmTopicArn" in warning


def assert_every_alarm_notifies(program: ProgramRun, topic_arn: str) -> None:
    alarms = program.of_type(ALARM)
    assert len(alarms) == len(definition.FUNCTIONS) + 4
    for alarm in alarms:
        assert alarm["alarmActions"] == [topic_arn], alarm.name
        assert alarm["okActions"] == [topic_arn], alarm.name


# --- the dashboard --------------------------------------------------------------------------------------------------

AWS_METRICS = {
    # namespace -> metric -> the dimension set it is published with (AWS's metric documentation for each service)
    "AWS/ApiGateway": {name: ("ApiName", "Stage") for name in ("Count", "4XXError", "5XXError", "Latency")},
    "AWS/Lambda": {name: ("FunctionName",) for name in ("Duration", "Throttles", "IteratorAge", "Errors")},
    "AWS/DynamoDB": {name: ("TableName",) for name in ("ReadThrottleEvents", "WriteThrottleEvents")},
    "AWS/SQS": {"ApproximateNumberOfMessagesVisible": ("QueueName",)},
}
"""The AWS metrics (and exactly the dimensions) a widget may name."""


def dashboard_metrics(program: ProgramRun) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of every metric line of the dashboard; expressions left out."""
    body = json.loads(program.one(DASHBOARD)["dashboardBody"])
    found = []
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        for line in widget["properties"]["metrics"]:
            parts = [part for part in line if not isinstance(part, dict)]
            if not parts:
                assert "expression" in line[0]
                continue
            namespace, metric, *pairs = parts
            found.append((namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return found


def test_the_dev_stack_has_one_dashboard_named_in_an_output(program: ProgramRun) -> None:
    dashboard = program.one(DASHBOARD)
    assert dashboard["dashboardName"] == program.outputs["dashboard_name"] == dashboard_name("dev") == "tag-counter-dev"
    body = json.loads(dashboard["dashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles == [
        "Visits counted per minute",
        "Answers by status class",
        "p99 latency per route (ms)",
        "Throttles",
        "Stream processor iterator age (ms)",
        "On-failure queue depth (records given up on)",
        "Skipped malformed stream records",
        "Alarms",
    ]
    for widget in body["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "us-east-1"
    [alarm_widget] = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(a["arn"] for a in program.of_type(ALARM))


def test_the_dashboard_names_only_metrics_that_exist(program: ProgramRun) -> None:
    names = {
        "ApiName": {program.one(REST_API)["name"]},
        "Stage": {program.settings.stage_name},
        "FunctionName": {f["name"] for f in program.of_type(FUNCTION)},
        "TableName": {program.one("aws:dynamodb/table:Table")["name"]},
        "QueueName": {program.one("aws:sqs/queue:Queue")["name"]},
    }
    # The stack's own metrics: exactly those its log metric filters publish, without dimensions.
    own = {(f["metricTransformation"]["namespace"], f["metricTransformation"]["name"]) for f in program.of_type(FILTER)}
    assert own == {("tag-counter/dev", COUNTED_VISITS_METRIC), ("tag-counter/dev", MALFORMED_RECORDS_METRIC)}
    metrics = dashboard_metrics(program)
    assert len(metrics) > 10
    for namespace, metric, dimensions in metrics:
        if namespace in AWS_METRICS:
            assert tuple(sorted(dimensions)) == tuple(sorted(AWS_METRICS[namespace][metric])), (namespace, metric)
            for key, value in dimensions.items():
                assert value in names[key], (metric, key, value)
        else:
            assert (namespace, metric) in own and dimensions == {}
    assert {(n, m) for n, m, _ in metrics} >= own


def test_the_dashboard_has_a_latency_line_for_every_routes_function() -> None:
    routes = definition.ROUTES + (definition.Route("/counts/{tag}/extra.json", definition.COUNT_BADGE_JSON),)
    program = run_program(routes=routes)
    body = json.loads(program.one(DASHBOARD)["dashboardBody"])
    [latency] = [w for w in body["widgets"] if w["properties"].get("title") == "p99 latency per route (ms)"]
    lines = {line[3]: line[4]["label"] for line in latency["properties"]["metrics"] if line[1] == "Duration"}
    expected = {function_for(program, route.function)["name"] for route in routes}
    assert set(lines) == expected
    badge_json = function_for(program, definition.COUNT_BADGE_JSON)["name"]
    assert lines[badge_json] == "/counts/{tag}/badge.json /counts/{tag}/extra.json"


def test_counted_visits_are_counted_from_every_counting_functions_log_group(program: ProgramRun) -> None:
    filters = [f for f in program.of_type(FILTER) if f["metricTransformation"]["name"] == COUNTED_VISITS_METRIC]
    counting = [spec for spec in definition.FUNCTIONS if spec.counts_visits]
    assert len(counting) >= 2
    assert sorted(f["logGroupName"] for f in filters) == sorted(
        function_for(program, spec)["loggingConfig"]["logGroup"] for spec in counting
    )
    for metric_filter in filters:
        assert metric_filter["pattern"] == '{ $.message = "visit counted" }'
        assert metric_filter["metricTransformation"]["value"] == "1"


# --- the audit's fixes ----------------------------------------------------------------------------------------------


def test_the_api_is_named_as_its_document_is_titled(program: ProgramRun) -> None:
    api = program.one(REST_API)
    assert api["name"] == json.loads(api["body"])["info"]["title"] == "tag-counter-dev"


def marker_grants(program: ProgramRun, spec: definition.FunctionSpec) -> list[Any]:
    """The statements of ``spec``'s role that allow PutItem on the table."""
    function = function_for(program, spec)
    role = program.one("aws:iam/role:Role", lambda r: r["arn"] == function["role"])
    statements = []
    for policy in program.of_type(ROLE_POLICY):
        if policy["role"] == role.id:
            statements += [s for s in json.loads(policy["policy"])["Statement"] if "dynamodb:PutItem" in s["Action"]]
    return statements


def test_the_counting_functions_may_write_markers_only_with_a_window(program: ProgramRun) -> None:
    window = with_config(uniqueVisitorWindowMinutes="30")
    counting = [spec for spec in definition.FUNCTIONS if spec.counts_visits]
    assert definition.VISIT in counting
    for spec in counting:
        assert marker_grants(program, spec) == [], spec.name
        [statement] = marker_grants(window, spec)
        assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["visitor#*"]}}
    visitor_writers = [s for s in definition.FUNCTIONS if "visitor#*" in json.dumps(marker_grants(window, s))]
    assert visitor_writers == counting


# --- with moto: the domain built from the program's inputs, the stage reachable under the mapping ------------------


@pytest.fixture
def apigateway(monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in DUMMY_ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.client("apigateway", region_name="us-east-1")


def deploy(client: Any, program: ProgramRun) -> str:
    """Create in moto what the graph declares: the API from its document, a deployment, the stage, the domain and
    its base path mapping (each with the program's inputs). Returns the API's id."""
    api = program.one(REST_API)
    api_id = client.create_rest_api(name=api["name"], endpointConfiguration={"types": ["REGIONAL"]})["id"]
    client.put_rest_api(restApiId=api_id, mode="overwrite", failOnWarnings=True, body=api["body"].encode())
    deployment = client.create_deployment(restApiId=api_id)["id"]
    stage = program.one(STAGE)["stageName"]
    client.create_stage(restApiId=api_id, stageName=stage, deploymentId=deployment)
    domain = program.one(DOMAIN)
    client.create_domain_name(
        domainName=domain["domainName"],
        regionalCertificateArn=domain["regionalCertificateArn"],
        endpointConfiguration={"types": [domain["endpointConfiguration"]["types"]]},
        securityPolicy=domain["securityPolicy"],
    )
    mapping = program.one(MAPPING)
    extra = {"basePath": mapping["basePath"]} if "basePath" in mapping.state else {}
    client.create_base_path_mapping(domainName=domain["domainName"], restApiId=api_id, stage=stage, **extra)
    return api_id


def resolve(client: Any, url: str) -> tuple[str, str, str]:
    """What API Gateway serves for a GET of ``url`` on a custom domain: (API id, stage, route path template), found
    through the domain's base path mappings, the stage and the API's resources as moto holds them."""
    parsed = urlparse(url)
    client.get_domain_name(domainName=parsed.hostname)
    segments = [s for s in parsed.path.split("/") if s]
    mappings = {m["basePath"]: m for m in client.get_base_path_mappings(domainName=parsed.hostname)["items"]}
    if segments and segments[0] in mappings:
        mapping, rest = mappings[segments[0]], segments[1:]
    else:
        mapping, rest = mappings["(none)"], segments
    api_id, stage = mapping["restApiId"], mapping["stage"]
    assert client.get_stage(restApiId=api_id, stageName=stage)["deploymentId"]
    for resource in client.get_resources(restApiId=api_id)["items"]:
        template = path_segments(resource["path"])
        if len(template) == len(rest) and all(t.startswith("{") or t == s for t, s in zip(template, rest, strict=True)):
            if "GET" in (resource.get("resourceMethods") or {}):
                return api_id, stage, resource["path"]
    raise LookupError(f"nothing serves {url}")


@pytest.mark.parametrize("base_path", ["", "counter"])
def test_moto_builds_the_domain_and_serves_the_stage_under_the_mapping(apigateway: Any, base_path: str) -> None:
    program = with_config(domainName=DOMAIN_NAME, certificateArn=CERTIFICATE_ARN, basePath=base_path)
    api_id = deploy(apigateway, program)
    domain = apigateway.get_domain_name(domainName=DOMAIN_NAME)
    assert domain["regionalCertificateArn"] == CERTIFICATE_ARN
    assert domain["endpointConfiguration"]["types"] == ["REGIONAL"] and domain["securityPolicy"] == "TLS_1_2"
    [mapping] = apigateway.get_base_path_mappings(domainName=DOMAIN_NAME)["items"]
    assert mapping == {"basePath": base_path or "(none)", "restApiId": api_id, "stage": "dev"}
    url = program.outputs["url"]
    assert url == f"https://{DOMAIN_NAME}/" + (f"{base_path}/" if base_path else "")
    checked = 0
    for route in definition.ROUTES:
        address = url + route.path.replace("{tag}", "hello").lstrip("/")
        assert resolve(apigateway, address) == (api_id, "dev", route.path)
        checked += 1
    assert checked == len(definition.ROUTES)
    with pytest.raises(LookupError):
        resolve(apigateway, url + "nowhere/at/all")
