"""The deployed graph, read from a mock run of ``__main__.py`` with the dev stack's config.

Each check counts what it inspected and asserts the count, so a check that silently matched nothing fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import definition
from components import packaging, policies
from components.rest_api import definition_hash, gateway_responses
from functions import web
from tests.stack.conftest import ProgramRun, Registration, run_program, stack_config_strings

TABLE = "aws:dynamodb/table:Table"
FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
REST_API = "aws:apigateway/restApi:RestApi"
API_RESOURCE = "aws:apigateway/resource:Resource"
METHOD = "aws:apigateway/method:Method"
INTEGRATION = "aws:apigateway/integration:Integration"
PERMISSION = "aws:lambda/permission:Permission"
DEPLOYMENT = "aws:apigateway/deployment:Deployment"
STAGE = "aws:apigateway/stage:Stage"
GATEWAY_RESPONSE = "aws:apigateway/response:Response"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
QUEUE = "aws:sqs/queue:Queue"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"

ROUTE_SPECS = list(dict.fromkeys(route.function for route in definition.ROUTES))


def function_for(program: ProgramRun, spec: definition.FunctionSpec) -> Registration:
    """The deployed function running ``spec``'s handler."""
    return program.one(FUNCTION, lambda r: r["handler"] == spec.handler)


def policies_of(program: ProgramRun, function: Registration) -> list[dict[str, Any]]:
    """Every inline policy document attached to the function's role."""
    role = program.one(ROLE, lambda r: r["arn"] == function["role"])
    documents = [json.loads(p["policy"]) for p in program.of_type(ROLE_POLICY) if p["role"] == role.id]
    return documents


def statements_of(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All statements of several policy documents."""
    return [statement for document in documents for statement in document["Statement"]]


def grants(documents: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Every (action, resource) pair the documents allow."""
    pairs = set()
    for statement in statements_of(documents):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        pairs |= {(action, resource) for action in actions for resource in resources}
    return pairs


def expected_grants(program: ProgramRun, spec: definition.FunctionSpec, function: Registration) -> set[tuple[str, str]]:
    """What the role must allow, from the definition: table actions, own logs, and stream/queue for the processor."""
    table = program.one(TABLE)
    log_group = program.one(LOG_GROUP, lambda r: r["name"] == function["loggingConfig"]["logGroup"])
    expected = {(action, table["arn"]) for action in spec.actions}
    log_resources = (log_group["arn"], log_group["arn"] + ":*")
    expected |= {(action, resource) for action in policies.LOG_ACTIONS for resource in log_resources}
    if spec is definition.STREAM_PROCESSOR:
        expected |= {(action, table["streamArn"]) for action in definition.STREAM_READ_ACTIONS}
        expected.add(("sqs:SendMessage", program.one(QUEUE)["arn"]))
    return expected


def test_table_has_the_stream_the_processor_needs(program: ProgramRun) -> None:
    table = program.one(TABLE)
    assert table["streamEnabled"] is True
    assert table["streamViewType"] == "NEW_AND_OLD_IMAGES"
    assert table["hashKey"] == "pk"
    assert table["attributes"] == [{"name": "pk", "type": "S"}]
    assert "rangeKey" not in table.state
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert table["ttl"] == {"attributeName": "expires_at", "enabled": True}
    assert table["tags"] == dict([definition.TABLE_TAG])  # how the operator command recognises it


def test_one_function_per_route_plus_the_processor(program: ProgramRun) -> None:
    functions = program.of_type(FUNCTION)
    assert len(functions) == len(ROUTE_SPECS) + 1 == len(definition.FUNCTIONS)
    assert sorted(f["handler"] for f in functions) == sorted(spec.handler for spec in definition.FUNCTIONS)
    table = program.one(TABLE)
    code_hash = packaging.BuiltArchive.of(packaging.build_code_archive()).sha256_base64
    layer = program.one("aws:lambda/layerVersion:LayerVersion")
    checked = 0
    for spec in definition.FUNCTIONS:
        function = function_for(program, spec)
        route_function = spec is not definition.STREAM_PROCESSOR
        assert function["runtime"] == "python3.13"
        assert function["architectures"] == ["arm64"]
        assert function["environment"] == {
            "variables": {**definition.function_environment(program.settings), "TABLE_NAME": table["name"]}
        }
        assert function["sourceCodeHash"] == code_hash
        assert function["loggingConfig"]["logFormat"] == "JSON"
        assert function["memorySize"] == (
            program.settings.route_memory_mb if route_function else program.settings.processor_memory_mb
        )
        assert function["timeout"] == (
            program.settings.route_timeout_seconds if route_function else program.settings.processor_timeout_seconds
        )
        # Only page renderers get Jinja2; the processor ships without it.
        assert function.state.get("layers", []) == ([layer["arn"]] if spec.uses_templates else [])
        checked += 1
    assert checked == 4


def test_functions_ship_the_built_code_archive(program: ProgramRun) -> None:
    built = packaging.build_code_archive().resolve()
    archives = {Path(f["code"].path).resolve() for f in program.of_type(FUNCTION)}
    assert archives == {built}
    layer = program.one("aws:lambda/layerVersion:LayerVersion")
    assert layer["compatibleRuntimes"] == ["python3.13"]
    assert layer["compatibleArchitectures"] == ["arm64"]
    assert layer["layerName"] == "tag-counter-dev-jinja2"


def test_preview_declares_the_same_resources(program: ProgramRun) -> None:
    """Nothing is created inside an apply: a preview, where outputs are unknown, declares the same graph."""
    preview = run_program(preview=True)
    assert preview.outputs["url"] is None  # the stage's URL is unknown until AWS creates it
    assert sorted((r.type, r.name) for r in preview.registrations) == sorted(
        (r.type, r.name) for r in program.registrations
    )


def api_path(program: ProgramRun, resource_id: str) -> str:
    """Walk a resource up to the API's root and return its full path."""
    api = program.one(REST_API)
    parts = []
    while resource_id != api["rootResourceId"]:
        resource = program.one(API_RESOURCE, lambda r: r.id == resource_id)
        parts.append(resource["pathPart"])
        resource_id = resource["parentId"]
    return "/" + "/".join(reversed(parts))


def test_every_route_reaches_its_function(program: ProgramRun) -> None:
    methods = program.of_type(METHOD)
    assert len(methods) == len(definition.ROUTES)
    reached = []
    for route in definition.ROUTES:
        [method] = [m for m in methods if api_path(program, m["resourceId"]) == route.path]
        assert method["httpMethod"] == "GET"
        assert method["authorization"] == "NONE"
        integration = program.one(
            INTEGRATION, lambda i: i["resourceId"] == method["resourceId"] and i["httpMethod"] == "GET"
        )
        assert integration["type"] == "AWS_PROXY"
        assert integration["integrationHttpMethod"] == "POST"
        function = program.one(FUNCTION, lambda f: f["invokeArn"] == integration["uri"])
        assert function["handler"] == route.function.handler
        reached.append(route.path)
    assert reached == [route.path for route in definition.ROUTES]


def test_shared_path_prefixes_are_one_resource_each(program: ProgramRun) -> None:
    paths = sorted(api_path(program, r.id) for r in program.of_type(API_RESOURCE))
    assert paths == ["/counts", "/counts/{tag}", "/tags", "/tags/{tag}"]


def test_each_permission_is_scoped_to_its_method_and_path(program: ProgramRun) -> None:
    api = program.one(REST_API)
    permissions = program.of_type(PERMISSION)
    assert len(permissions) == len(definition.ROUTES)
    for route in definition.ROUTES:
        function = function_for(program, route.function)
        expected_arn = f"{api['executionArn']}/*/GET{route.path}"
        permission = program.one(PERMISSION, lambda p: p["sourceArn"] == expected_arn)
        assert permission["function"] == function["name"]
        assert permission["principal"] == "apigateway.amazonaws.com"
        assert permission["action"] == "lambda:InvokeFunction"
    root_permission = program.one(PERMISSION, lambda p: p["sourceArn"].endswith("/*/GET/"))
    assert root_permission["function"] == function_for(program, definition.HOME)["name"]


@pytest.mark.parametrize("spec", definition.FUNCTIONS, ids=lambda spec: spec.name)
def test_each_role_grants_exactly_what_its_handler_calls(program: ProgramRun, spec: definition.FunctionSpec) -> None:
    function = function_for(program, spec)
    documents = policies_of(program, function)
    assert len(documents) == (2 if spec is definition.STREAM_PROCESSOR else 1)
    assert grants(documents) == expected_grants(program, spec, function)
    table_statements = [s for s in statements_of(documents) if s["Resource"] == [program.one(TABLE)["arn"]]]
    assert len(table_statements) == 1
    assert table_statements[0]["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(spec.leading_keys)}
    }


def test_no_statement_uses_a_wildcard_resource_or_action(program: ProgramRun) -> None:
    statements = statements_of([json.loads(p["policy"]) for p in program.of_type(ROLE_POLICY)])
    assert len(statements) == 2 * len(definition.FUNCTIONS) + 2
    for statement in statements:
        for resource in statement["Resource"]:
            assert resource != "*" and not resource.startswith("arn:aws:*")
            # The only wildcard allowed is the log-stream suffix of the function's own log group.
            assert "*" not in resource or (resource.endswith(":*") and ":log-group:" in resource)
        for action in statement["Action"]:
            assert "*" not in action


def test_the_policy_check_fails_on_one_extra_grant(program: ProgramRun) -> None:
    """Test of the test: a policy with one more action than the handler calls is caught."""
    function = function_for(program, definition.VISIT)
    documents = policies_of(program, function)
    documents[0]["Statement"][0]["Action"].append("dynamodb:Scan")
    with pytest.raises(AssertionError):
        assert grants(documents) == expected_grants(program, definition.VISIT, function)


def test_roles_trust_only_lambda(program: ProgramRun) -> None:
    roles = program.of_type(ROLE)
    assert len(roles) == len(definition.FUNCTIONS)
    for role in roles:
        assert json.loads(role["assumeRolePolicy"])["Statement"] == [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]


def test_every_function_depends_on_its_own_log_group_with_retention(program: ProgramRun) -> None:
    log_groups = program.of_type(LOG_GROUP)
    assert len(log_groups) == len(definition.FUNCTIONS)
    for function in program.of_type(FUNCTION):
        log_group = program.one(LOG_GROUP, lambda g: g["name"] == function["loggingConfig"]["logGroup"])
        assert log_group.urn in function.dependencies
        assert log_group.parent == function.parent
        assert log_group["retentionInDays"] == program.settings.log_retention_days == 7
        policy = program.one(ROLE_POLICY, lambda p: p.parent == function.parent)
        assert policy.urn in function.dependencies


def test_deployment_depends_on_methods_integrations_and_responses(program: ProgramRun) -> None:
    deployment = program.one(DEPLOYMENT)
    needed = program.of_type(METHOD) + program.of_type(INTEGRATION) + program.of_type(GATEWAY_RESPONSE)
    assert len(needed) == 2 * len(definition.ROUTES) + 4  # 404 twice, 5xx, 429
    assert {r.urn for r in needed} <= set(deployment.dependencies)
    assert "triggers" in deployment.replace_on_changes
    assert not deployment.delete_before_replace


def test_stage_is_separate_named_from_config_and_waits_for_permissions(program: ProgramRun) -> None:
    deployment = program.one(DEPLOYMENT)
    assert "stageName" not in deployment.state
    stage = program.one(STAGE)
    assert stage["stageName"] == "dev"
    assert stage["deployment"] == deployment.id
    assert {p.urn for p in program.of_type(PERMISSION)} <= set(stage.dependencies)
    throttling = program.one("aws:apigateway/methodSettings:MethodSettings")
    assert throttling["methodPath"] == "*/*"
    assert throttling["stageName"] == "dev"
    assert throttling["settings"]["throttlingRateLimit"] == 20
    assert throttling["settings"]["throttlingBurstLimit"] == 40


def current_trigger(program: ProgramRun) -> str:
    """The Deployment's redeployment trigger."""
    return program.one(DEPLOYMENT)["triggers"]["definition"]


def test_deployment_trigger_is_the_hash_of_the_api_definition(program: ProgramRun) -> None:
    responses = gateway_responses(
        web.render_error_page(404),
        web.render_error_page(500),
        web.security_headers("no-store"),
        web.render_error_page(429),
        web.RETRY_AFTER_SECONDS,
    )
    assert current_trigger(program) == definition_hash(definition.ROUTES, responses)


def test_deployment_trigger_is_stable_when_nothing_changes(program: ProgramRun) -> None:
    assert current_trigger(run_program()) == current_trigger(program)


def test_deployment_trigger_changes_when_a_route_changes(program: ProgramRun) -> None:
    moved = tuple(
        definition.Route("/count/{tag}", route.function) if route.function is definition.COUNT else route
        for route in definition.ROUTES
    )
    changed = run_program(routes=moved)
    assert current_trigger(changed) != current_trigger(program)
    # The graph really followed the changed definition.
    assert any(p["sourceArn"].endswith("/*/GET/count/{tag}") for p in changed.of_type(PERMISSION))


def test_deployment_trigger_changes_when_a_route_gains_a_function() -> None:
    responses = gateway_responses("<p>404</p>", "<p>500</p>", {})
    extra = definition.ROUTES + (definition.Route("/about", definition.HOME),)
    assert definition_hash(extra, responses) != definition_hash(definition.ROUTES, responses)
    other_page = gateway_responses("<p>not here</p>", "<p>500</p>", {})
    assert definition_hash(definition.ROUTES, other_page) != definition_hash(definition.ROUTES, responses)


def test_gateway_responses_serve_the_html_error_pages(program: ProgramRun) -> None:
    responses = {r["responseType"]: r for r in program.of_type(GATEWAY_RESPONSE)}
    assert set(responses) == {"MISSING_AUTHENTICATION_TOKEN", "RESOURCE_NOT_FOUND", "DEFAULT_5XX", "THROTTLED"}
    not_found = web.render_error_page(404)
    for response_type in ("MISSING_AUTHENTICATION_TOKEN", "RESOURCE_NOT_FOUND"):
        response = responses[response_type]
        assert response["statusCode"] == "404"
        assert response["responseTemplates"] == {"text/html": not_found, "application/json": not_found}
    server_error = responses["DEFAULT_5XX"]
    # Keeps API Gateway's own status (502/503/504) and serves the error page.
    assert "statusCode" not in server_error.state
    assert server_error["responseTemplates"]["text/html"] == web.render_error_page(500)
    # The stage's own throttling: a 429 page that says when to come back, not AWS's JSON message.
    throttled = responses["THROTTLED"]
    assert throttled["statusCode"] == "429"
    assert throttled["responseTemplates"]["text/html"] == web.render_error_page(429)
    assert "Too many requests" in web.render_error_page(429)
    assert throttled["responseParameters"]["gatewayresponse.header.Retry-After"] == f"'{web.RETRY_AFTER_SECONDS}'"
    headers = web.security_headers("no-store")
    for response_type, response in responses.items():
        parameters = response["responseParameters"]
        assert parameters["gatewayresponse.header.Content-Type"] == "'text/html; charset=utf-8'"
        assert parameters["gatewayresponse.header.Content-Security-Policy"] == f"'{web.CONTENT_SECURITY_POLICY}'"
        extra = {"Retry-After"} if response_type == "THROTTLED" else set()
        assert {key.removeprefix("gatewayresponse.header.") for key in parameters} == set(headers) | {"Content-Type"} | extra


def test_a_gateway_page_with_a_dollar_sign_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\$"):
        gateway_responses("<p>costs $context.x</p>", "<p>500</p>", {})
    with pytest.raises(ValueError, match="5xx"):
        gateway_responses("<p>404</p>", "<p>$5</p>", {})


def test_event_source_mapping_settings(program: ProgramRun) -> None:
    settings = program.settings
    mapping = program.one(MAPPING)
    table = program.one(TABLE)
    processor = function_for(program, definition.STREAM_PROCESSOR)
    assert mapping["eventSourceArn"] == table["streamArn"]
    assert mapping["functionName"] == processor["arn"]
    assert mapping["startingPosition"] == settings.stream_starting_position == "TRIM_HORIZON"
    assert mapping["batchSize"] == settings.stream_batch_size == 100
    assert mapping["maximumBatchingWindowInSeconds"] == settings.stream_batching_window_seconds == 1
    assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["bisectBatchOnFunctionError"] is settings.stream_bisect_on_error is True
    assert mapping["maximumRetryAttempts"] == settings.stream_max_retries
    assert mapping["maximumRecordAgeInSeconds"] == settings.stream_max_record_age_seconds
    assert mapping["destinationConfig"] == {"onFailure": {"destinationArn": program.one(QUEUE)["arn"]}}
    patterns = [json.loads(f["pattern"]) for f in mapping["filterCriteria"]["filters"]]
    assert patterns == list(definition.STREAM_FILTER_PATTERNS)
    # Lambda validates the role's stream and queue permissions when it creates the mapping.
    policies_urns = {p.urn for p in program.of_type(ROLE_POLICY) if p.parent in (mapping.parent, processor.parent)}
    assert len(policies_urns) == 2
    assert policies_urns <= set(mapping.dependencies)


def test_alarms_watch_errors_iterator_age_and_the_failure_queue(program: ProgramRun) -> None:
    alarms = program.of_type(ALARM)
    errors = [a for a in alarms if a["metricName"] == "Errors"]
    function_names = sorted(f["name"] for f in program.of_type(FUNCTION))
    assert sorted(a["dimensions"]["FunctionName"] for a in errors) == function_names
    iterator_age = program.one(ALARM, lambda a: a["metricName"] == "IteratorAge")
    assert iterator_age["dimensions"] == {"FunctionName": function_for(program, definition.STREAM_PROCESSOR)["name"]}
    assert iterator_age["threshold"] == program.settings.iterator_age_alarm_ms
    queue_alarm = program.one(ALARM, lambda a: a["metricName"] == "ApproximateNumberOfMessagesVisible")
    assert queue_alarm["namespace"] == "AWS/SQS"
    assert queue_alarm["dimensions"] == {"QueueName": program.one(QUEUE)["name"]}
    assert len(alarms) == len(definition.FUNCTIONS) + 2


def test_dev_stack_deletes_cleanly(program: ProgramRun) -> None:
    assert program.registrations
    assert [r.name for r in program.registrations if r.protect or r.retain_on_delete] == []
    table = program.one(TABLE)
    assert table["deletionProtectionEnabled"] is False
    assert table["pointInTimeRecovery"] == {"enabled": False}
    assert [g.name for g in program.of_type(LOG_GROUP) if g.state.get("skipDestroy")] == []


def test_prod_config_protects_the_table() -> None:
    config = stack_config_strings("dev") | {
        "tag-counter:deletionProtection": "true",
        "tag-counter:pointInTimeRecovery": "true",
        "tag-counter:stageName": "prod",
    }
    prod = run_program(config, stack="prod")
    table = prod.one(TABLE)
    assert table.protect is True
    assert table["deletionProtectionEnabled"] is True
    assert table["pointInTimeRecovery"] == {"enabled": True}
    assert prod.outputs["url"].endswith("/prod/")
    assert prod.one("aws:lambda/layerVersion:LayerVersion")["layerName"] == "tag-counter-prod-jinja2"
    assert [r.name for r in prod.registrations if r.protect] == [table.name]


def test_bad_config_stops_the_program_with_the_key_named() -> None:
    config = stack_config_strings("dev") | {"tag-counter:streamBatchSize": "lots"}
    with pytest.raises(ValueError, match="streamBatchSize"):
        run_program(config)


def test_components_are_typed_and_parent_every_resource(program: ProgramRun) -> None:
    components = [r for r in program.registrations if not r.custom]
    modules = {r.type.split(":")[1] for r in components}
    assert modules == {"table", "layer", "site_function", "stream_processor", "rest_api", "alarms"}
    for component in components:
        package, module, type_name = component.type.split(":")
        assert package == "tag-counter" and type_name[0].isupper()
    component_urns = {c.urn for c in components}
    for resource in program.registrations:
        if resource.custom:
            assert resource.parent in component_urns, resource.name
            assert resource.name.startswith(program.by_urn(resource.parent).name + "-"), resource.name


def test_stack_outputs(program: ProgramRun) -> None:
    outputs = program.outputs
    stage = program.one(STAGE)
    assert outputs["url"] == stage["invokeUrl"] + "/"
    assert outputs["url"].endswith("/dev/")
    assert outputs["example_tag_url"] == outputs["url"] + "tags/" + definition.EXAMPLE_TAGS[0]
    assert outputs["example_count_url"] == outputs["url"] + "counts/" + definition.EXAMPLE_TAGS[0]
    assert outputs["table_name"] == program.one(TABLE)["name"]
    assert set(outputs["function_names"]) == {spec.name for spec in definition.FUNCTIONS}
