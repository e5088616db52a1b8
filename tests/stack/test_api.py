"""The REST API under mocks: one OpenAPI document from ``definition.ROUTES``, its Deployment trigger, the
permissions, and the gateway responses with their link home. The document is also validated against the OpenAPI
3.0 schema and imported into moto's API Gateway, as ``pulumi up`` imports it into AWS's.

Each check counts what it inspected and asserts the count, so a check that silently matched nothing fails.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest
from moto import mock_aws
from openapi_spec_validator import validate

import definition
from components.rest_api import gateway_responses
from functions import web
from localsite.aws import DUMMY_ENVIRONMENT
from tests.stack.conftest import FUNCTION, STAGE, ProgramRun, function_for, run_program, stack_config_strings

REST_API = "aws:apigateway/restApi:RestApi"
PERMISSION = "aws:lambda/permission:Permission"
DEPLOYMENT = "aws:apigateway/deployment:Deployment"
# What the document replaced: none of these may be declared beside it.
PIECEMEAL = (
    "aws:apigateway/resource:Resource",
    "aws:apigateway/method:Method",
    "aws:apigateway/integration:Integration",
    "aws:apigateway/response:Response",
)
NEW_ROUTES = (
    definition.Route("/tags/{tag}/extra.svg", definition.VISIT),
    definition.Route("/counts/{tag}/extra.svg", definition.COUNT),
    definition.Route("/counts/{tag}/extra.json", definition.COUNT),
)
"""Routes the definition does not have, as a change to it would add them."""


def document(program: ProgramRun) -> dict[str, Any]:
    """The OpenAPI document the REST API is imported from."""
    return json.loads(program.one(REST_API)["body"])



def trigger(program: ProgramRun) -> str:
    """The Deployment's redeployment trigger."""
    return program.one(DEPLOYMENT)["triggers"]["document"]


def assert_serves(program: ProgramRun, routes: tuple[definition.Route, ...]) -> None:
    """Every route's GET and HEAD, and nothing else, is a Lambda proxy integration of the route's function."""
    paths = document(program)["paths"]
    assert sorted(paths) == sorted({route.path for route in routes})
    checked = 0
    for route in routes:
        operations = paths[route.path]
        assert set(operations) == {"get", "head"}
        invoke_arn = function_for(program, route.function)["invokeArn"]
        for method in ("get", "head"):
            integration = operations[method]["x-amazon-apigateway-integration"]
            # The path parameters reach the function as the proxy integration delivers them: nothing maps them.
            assert integration == {
                "type": "aws_proxy",
                "httpMethod": "POST",
                "uri": invoke_arn,
                "passthroughBehavior": "when_no_match",
            }
            names = re.findall(r"\{(\w+)\}", route.path)
            assert [p["name"] for p in operations[method].get("parameters", [])] == names
            checked += 1
    assert checked == 2 * len(routes)


def test_every_route_get_and_head_reaches_its_function(program: ProgramRun) -> None:
    assert_serves(program, definition.ROUTES)
    assert document(program)["openapi"] == "3.0.1"


def test_the_document_is_the_whole_api(program: ProgramRun) -> None:
    api = program.one(REST_API)
    # Overwrite: a route or gateway response the document no longer holds is removed, not merged.
    assert api["putRestApiMode"] == "overwrite"
    assert api["endpointConfiguration"] == {"types": "REGIONAL"}
    assert [r.name for typ in PIECEMEAL for r in program.of_type(typ)] == []


def test_new_routes_are_served_and_permitted_with_no_other_change() -> None:
    routes = definition.ROUTES + NEW_ROUTES
    added = run_program(routes=routes)
    assert_serves(added, routes)
    assert len(added.of_type(PERMISSION)) == 2 * len(routes)


def test_each_permission_is_scoped_to_its_method_and_path(program: ProgramRun) -> None:
    api = program.one(REST_API)
    permissions = program.of_type(PERMISSION)
    assert len(permissions) == 2 * len(definition.ROUTES)
    checked = 0
    for route in definition.ROUTES:
        function = function_for(program, route.function)
        for method in ("GET", "HEAD"):
            # Path parameters as AWS's own tools write them: a `*`, never the literal `{tag}`.
            source_arn = f"{api['executionArn']}/*/{method}{route.path.replace('{tag}', '*')}"
            permission = program.one(PERMISSION, lambda p: p["sourceArn"] == source_arn)
            assert permission["function"] == function["name"]
            assert permission["principal"] == "apigateway.amazonaws.com"
            assert permission["action"] == "lambda:InvokeFunction"
            assert permission.name.startswith(f"site-{method.lower()}-")
            checked += 1
    assert checked == len(permissions)
    assert not [p["sourceArn"] for p in permissions if "{" in p["sourceArn"] or "}" in p["sourceArn"]]
    root = program.one(PERMISSION, lambda p: p["sourceArn"].endswith("/*/GET/"))
    assert root["function"] == function_for(program, definition.HOME)["name"]


def test_the_stage_serves_the_deployment_once_every_permission_exists(program: ProgramRun) -> None:
    deployment = program.one(DEPLOYMENT)
    stage = program.one(STAGE)
    assert stage["deployment"] == deployment.id
    assert {p.urn for p in program.of_type(PERMISSION)} <= set(stage.dependencies)
    # The deployment is taken of the API after its document was imported.
    assert program.one(REST_API).urn in deployment.dependencies
    assert "triggers" in deployment.replace_on_changes
    assert not deployment.delete_before_replace


def test_the_deployment_trigger_is_the_hash_of_the_document(program: ProgramRun) -> None:
    body = program.one(REST_API)["body"]
    assert trigger(program) == hashlib.sha256(body.encode("utf-8")).hexdigest()


def test_the_trigger_stays_when_nothing_the_api_serves_changes(program: ProgramRun) -> None:
    assert trigger(run_program()) == trigger(program)
    unrelated = stack_config_strings("dev") | {
        "tag-counter:throttleRateLimit": "7",
        "tag-counter:routeMemoryMb": "512",
        "tag-counter:logRetentionDays": "30",
        "tag-counter:streamBatchSize": "10",
    }
    assert trigger(run_program(unrelated)) == trigger(program)


def test_the_trigger_changes_when_a_route_moves(program: ProgramRun) -> None:
    moved = tuple(
        definition.Route("/count/{tag}", route.function) if route.function is definition.COUNT else route
        for route in definition.ROUTES
    )
    changed = run_program(routes=moved)
    assert trigger(changed) != trigger(program)
    assert "/count/{tag}" in document(changed)["paths"]


def test_the_trigger_changes_when_a_route_is_added(program: ProgramRun) -> None:
    assert trigger(run_program(routes=definition.ROUTES + NEW_ROUTES[:1])) != trigger(program)


def test_the_trigger_changes_when_a_route_is_served_by_another_function(program: ProgramRun) -> None:
    swapped = tuple(
        definition.Route(route.path, definition.VISIT) if route.function is definition.COUNT else route
        for route in definition.ROUTES
    )
    assert trigger(run_program(routes=swapped)) != trigger(program)


def test_the_trigger_changes_when_an_integration_target_changes(program: ProgramRun) -> None:
    # A replaced function has a new name, so a new invoke ARN: the integrations must follow it.
    replaced = run_program(function_salt="replaced")
    assert function_for(replaced, definition.HOME)["invokeArn"] != function_for(program, definition.HOME)["invokeArn"]
    assert trigger(replaced) != trigger(program)


def test_the_trigger_changes_when_a_gateway_response_changes(program: ProgramRun) -> None:
    def reword_404(monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(web.ERROR_PAGES, 404, ("Nothing here", "Try the home page."))

    changed = run_program(patch=reword_404)
    assert "Nothing here" in document(changed)["x-amazon-apigateway-gateway-responses"]["RESOURCE_NOT_FOUND"][
        "responseTemplates"
    ]["text/html"]
    assert trigger(changed) != trigger(program)


def test_gateway_responses_serve_the_html_error_pages(program: ProgramRun) -> None:
    responses = document(program)["x-amazon-apigateway-gateway-responses"]
    assert set(responses) == {"MISSING_AUTHENTICATION_TOKEN", "RESOURCE_NOT_FOUND", "DEFAULT_5XX", "THROTTLED"}
    home = definition.GATEWAY_HOME_HREF
    pages = {status: web.render_error_page(status, home_href=home) for status in (404, 500, 429)}
    for response_type in ("MISSING_AUTHENTICATION_TOKEN", "RESOURCE_NOT_FOUND"):
        assert responses[response_type]["statusCode"] == "404"
        templates = responses[response_type]["responseTemplates"]
        assert templates == dict.fromkeys(("text/html", "application/json"), pages[404])
    # Keeps API Gateway's own status (502/503/504) and serves the error page.
    assert "statusCode" not in responses["DEFAULT_5XX"]
    assert responses["DEFAULT_5XX"]["responseTemplates"]["text/html"] == pages[500]
    throttled = responses["THROTTLED"]
    assert throttled["statusCode"] == "429"
    assert throttled["responseTemplates"]["text/html"] == pages[429]
    assert throttled["responseParameters"]["gatewayresponse.header.Retry-After"] == f"'{web.RETRY_AFTER_SECONDS}'"
    headers = web.gateway_headers("no-store")
    for response_type, response in responses.items():
        parameters = response["responseParameters"]
        assert parameters["gatewayresponse.header.Content-Type"] == "'text/html; charset=utf-8'"
        assert parameters["gatewayresponse.header.Content-Security-Policy"] == f"'{web.CONTENT_SECURITY_POLICY}'"
        # A page's script calling the JSON routes sees the gateway's own 429 and 5xx as their statuses.
        assert parameters["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"
        assert parameters["gatewayresponse.header.Access-Control-Expose-Headers"] == "'Retry-After'"
        assert "gatewayresponse.header.Access-Control-Allow-Credentials" not in parameters
        extra = {"Retry-After"} if response_type == "THROTTLED" else set()
        names = {key.removeprefix("gatewayresponse.header.") for key in parameters}
        assert names == set(headers) | {"Content-Type"} | extra


def test_the_404_page_links_home_on_the_default_endpoint(program: ProgramRun) -> None:
    page = document(program)["x-amazon-apigateway-gateway-responses"]["MISSING_AUTHENTICATION_TOKEN"][
        "responseTemplates"
    ]["text/html"]
    links = re.findall(r'<a href="([^"]*)"', page)
    assert links and set(links) == {"/$context.stage/"}  # the header's and the message's
    # What API Gateway serves once it substitutes the variable: the path of the stack's home page.
    served = page.replace("$context.stage", program.settings.stage_name)
    assert set(re.findall(r'<a href="([^"]*)"', served)) == {urlparse(program.outputs["url"]).path} == {"/dev/"}
    assert "$" not in served


def test_a_gateway_page_with_another_dollar_variable_is_refused() -> None:
    with pytest.raises(ValueError, match=r"only \$context\.stage may appear"):
        gateway_responses("<p>costs $context.path</p>", "<p>500</p>", {})
    with pytest.raises(ValueError, match="5xx"):
        gateway_responses("<p>404</p>", "<p>$5</p>", {})
    # The stage variable alone is what the pages' home link needs, and is accepted.
    [not_found, *_] = gateway_responses('<a href="/$context.stage/">home</a>', "<p>500</p>", {})
    assert not_found.templates["text/html"] == '<a href="/$context.stage/">home</a>'


@pytest.fixture
def apigateway(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 API Gateway client on moto, with dummy credentials."""
    for key, value in DUMMY_ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.client("apigateway", region_name="us-east-1")


def imported_api(client: Any, api_id: str, body: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Import ``body`` into the API as ``pulumi up`` does (overwrite, refusing warnings); return each
    (path, method)'s integration."""
    client.put_rest_api(restApiId=api_id, mode="overwrite", failOnWarnings=True, body=body.encode("utf-8"))
    integrations = {}
    for resource in client.get_resources(restApiId=api_id)["items"]:
        for method in resource.get("resourceMethods") or {}:
            integrations[(resource["path"], method)] = client.get_integration(
                restApiId=api_id, resourceId=resource["id"], httpMethod=method
            )
    return integrations


def test_the_document_is_valid_openapi_3(program: ProgramRun) -> None:
    validate(document(program))


def test_api_gateway_builds_every_route_get_and_head_from_the_document(program: ProgramRun, apigateway: Any) -> None:
    api_id = apigateway.create_rest_api(name="site")["id"]
    integrations = imported_api(apigateway, api_id, program.one(REST_API)["body"])
    expected = {(route.path, method) for route in definition.ROUTES for method in ("GET", "HEAD")}
    assert set(integrations) == expected
    for route in definition.ROUTES:
        for method in ("GET", "HEAD"):
            integration = integrations[(route.path, method)]
            # The extension spells it aws_proxy, as AWS's examples do; AWS reports it as AWS_PROXY, moto as written.
            assert integration["type"].upper() == "AWS_PROXY"
            assert integration["httpMethod"] == "POST"
            assert integration["uri"] == function_for(program, route.function)["invokeArn"]
    assert len(integrations) == 2 * len(definition.ROUTES)


def test_an_overwriting_import_removes_a_route_the_definition_dropped(program: ProgramRun, apigateway: Any) -> None:
    api_id = apigateway.create_rest_api(name="site")["id"]
    imported_api(apigateway, api_id, program.one(REST_API)["body"])
    without_counts = tuple(route for route in definition.ROUTES if not route.path.startswith("/counts/"))
    smaller = run_program(routes=without_counts)
    integrations = imported_api(apigateway, api_id, smaller.one(REST_API)["body"])
    assert {path for path, _ in integrations} == {route.path for route in without_counts}
    assert "/counts/{tag}" not in {r["path"] for r in apigateway.get_resources(restApiId=api_id)["items"]}


def test_the_checks_refuse_a_document_api_gateway_would_warn_about(program: ProgramRun, apigateway: Any) -> None:
    """Test of the test: a path parameter left undeclared is caught by the validation and by the import."""
    broken = document(program)
    for operation in broken["paths"]["/tags/{tag}"].values():
        del operation["parameters"]
    with pytest.raises(Exception, match="tag"):
        validate(broken)
    api_id = apigateway.create_rest_api(name="site")["id"]
    with pytest.raises(apigateway.exceptions.BadRequestException):
        imported_api(apigateway, api_id, json.dumps(broken))


def test_the_json_counter_routes_each_reach_their_own_function(program: ProgramRun) -> None:
    # GIVEN the deployed document, THEN both JSON paths are served, GET and HEAD, by their own functions
    paths = document(program)["paths"]
    for path, spec in (("/tags/{tag}/count.json", definition.VISIT_JSON),
                       ("/counts/{tag}/count.json", definition.COUNT_JSON)):
        assert set(paths[path]) == {"get", "head"}
        uris = {operation["x-amazon-apigateway-integration"]["uri"] for operation in paths[path].values()}
        assert uris == {function_for(program, spec)["invokeArn"]}
    assert function_for(program, definition.VISIT_JSON).urn != function_for(program, definition.COUNT_JSON).urn
