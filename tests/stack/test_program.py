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
from tests.stack.conftest import (
    FUNCTION,
    STAGE,
    ProgramRun,
    Registration,
    function_for,
    run_program,
    stack_config_strings,
)

TABLE = "aws:dynamodb/table:Table"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
QUEUE = "aws:sqs/queue:Queue"

ROUTE_SPECS = list(dict.fromkeys(route.function for route in definition.ROUTES))



def policies_of(program: ProgramRun, function: Registration) -> list[dict[str, Any]]:
    """Every inline policy document attached to the function's role."""
    role = program.one(ROLE, lambda r: r["arn"] == function["role"])
    documents = [json.loads(p["policy"]) for p in program.of_type(ROLE_POLICY) if p["role"] == role.id]
    return documents


def statements_of(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All statements of several policy documents."""
    return [statement for document in documents for statement in document["Statement"]]


Grant = tuple[str, str, str | None]
"""(action, resource, key pattern): what one statement allows, the key pattern only on table statements."""


def grants(documents: list[dict[str, Any]]) -> set[Grant]:
    """Every (action, resource, key pattern) the documents allow; a table statement's keys are its LeadingKeys."""
    allowed: set[Grant] = set()
    for statement in statements_of(documents):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        condition = statement.get("Condition")
        if condition is None:
            patterns: list[str | None] = [None]
        else:
            # Only the form the program writes: every key of a request must match a pattern of the statement.
            assert list(condition) == ["ForAllValues:StringLike"], condition
            assert list(condition["ForAllValues:StringLike"]) == ["dynamodb:LeadingKeys"], condition
            patterns = list(condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
        allowed |= {(a, r, k) for a in actions for r in resources for k in patterns}
    return allowed


def expected_grants(program: ProgramRun, spec: definition.FunctionSpec, function: Registration) -> set[Grant]:
    """What the role must allow, from the definition: the (action, key pattern) pairs on the table, its own logs,
    and the stream and queue for the processor."""
    table = program.one(TABLE)
    log_group = program.one(LOG_GROUP, lambda r: r["name"] == function["loggingConfig"]["logGroup"])
    granted = spec.table_grants(program.settings)
    expected: set[Grant] = {(grant.action, table["arn"], grant.key_pattern) for grant in granted}
    log_resources = (log_group["arn"], log_group["arn"] + ":*")
    expected |= {(action, resource, None) for action in policies.LOG_ACTIONS for resource in log_resources}
    if spec is definition.STREAM_PROCESSOR:
        expected |= {(action, table["streamArn"], None) for action in definition.STREAM_READ_ACTIONS}
        expected.add(("sqs:SendMessage", program.one(QUEUE)["arn"], None))
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
    assert checked == len(definition.FUNCTIONS)


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


@pytest.mark.parametrize("spec", definition.FUNCTIONS, ids=lambda spec: spec.name)
def test_each_role_grants_exactly_what_its_handler_calls(program: ProgramRun, spec: definition.FunctionSpec) -> None:
    function = function_for(program, spec)
    documents = policies_of(program, function)
    assert len(documents) == (2 if spec is definition.STREAM_PROCESSOR else 1)
    assert grants(documents) == expected_grants(program, spec, function)
    # One table statement per action, so an action never reaches a key pattern granted only to another one.
    table_statements = [s for s in statements_of(documents) if s["Resource"] == [program.one(TABLE)["arn"]]]
    actions = definition.grant_actions(spec.table_grants(program.settings))
    assert sorted(s["Action"] for s in table_statements) == sorted([action] for action in actions)


def test_no_statement_uses_a_wildcard_resource_or_action(program: ProgramRun) -> None:
    statements = statements_of([json.loads(p["policy"]) for p in program.of_type(ROLE_POLICY)])
    table_statements = sum(
        len(definition.grant_actions(spec.table_grants(program.settings))) for spec in definition.FUNCTIONS
    )
    assert len(statements) == table_statements + len(definition.FUNCTIONS) + 2
    for statement in statements:
        for resource in statement["Resource"]:
            assert resource != "*" and not resource.startswith("arn:aws:*")
            # The only wildcard allowed is the log-stream suffix of the function's own log group.
            assert "*" not in resource or (resource.endswith(":*") and ":log-group:" in resource)
        for action in statement["Action"]:
            assert "*" not in action


def test_the_processor_may_not_put_the_total_nor_update_a_marker(program: ProgramRun) -> None:
    table = program.one(TABLE)
    allowed = grants(policies_of(program, function_for(program, definition.STREAM_PROCESSOR)))
    on_table = {(action, key) for action, resource, key in allowed if resource == table["arn"]}
    assert on_table == {
        ("dynamodb:UpdateItem", definition.TOTAL_KEY),
        ("dynamodb:PutItem", definition.MARKER_KEYS),
        ("dynamodb:GetItem", definition.MARKER_KEYS),
    }


def test_the_policy_check_fails_on_one_extra_grant(program: ProgramRun) -> None:
    """Test of the test: a policy with one more action than the handler calls is caught."""
    function = function_for(program, definition.VISIT)
    documents = policies_of(program, function)
    documents[0]["Statement"][0]["Action"].append("dynamodb:Scan")
    with pytest.raises(AssertionError):
        assert grants(documents) == expected_grants(program, definition.VISIT, function)


def test_the_policy_check_fails_on_the_right_actions_with_the_wrong_keys(program: ProgramRun) -> None:
    """Test of the test: one statement allowing every action on every key pattern grants pairs never used."""
    function = function_for(program, definition.STREAM_PROCESSOR)
    documents = policies_of(program, function)
    table_arn = program.one(TABLE)["arn"]
    spec = definition.STREAM_PROCESSOR
    merged = policies.statement(
        "TableItems",
        spec.actions,
        [table_arn],
        {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": sorted({g.key_pattern for g in spec.grants})}},
    )
    documents[0]["Statement"] = [s for s in documents[0]["Statement"] if s["Resource"] != [table_arn]] + [merged]
    with pytest.raises(AssertionError):
        assert grants(documents) == expected_grants(program, spec, function)


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


def test_a_replaced_mapping_is_deleted_before_its_replacement_is_created(program: ProgramRun) -> None:
    # Create-before-delete would leave two mappings feeding the total from one stream for a while.
    mapping = program.one(MAPPING)
    assert mapping.delete_before_replace
    assert [r.name for r in program.registrations if r.delete_before_replace] == [mapping.name]


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
    assert modules == {
        "table", "layer", "site_function", "stream_processor", "rest_api", "notifications", "alarms", "dashboard"
    }
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
    assert outputs["example_badge_url"] == outputs["url"] + "tags/" + definition.EXAMPLE_TAGS[0] + "/badge.svg"
    assert outputs["example_count_badge_url"] == outputs["url"] + "counts/" + definition.EXAMPLE_TAGS[0] + "/badge.svg"
    assert outputs["example_badge_json_url"] == outputs["url"] + "counts/" + definition.EXAMPLE_TAGS[0] + "/badge.json"
    assert outputs["table_name"] == program.one(TABLE)["name"]
    assert set(outputs["function_names"]) == {spec.name for spec in definition.FUNCTIONS}
