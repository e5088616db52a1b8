"""Components on their own, under mocks: their outputs, and the mistakes they refuse to deploy."""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi
import pytest
from pulumi.runtime import settings as pulumi_settings

import definition
from components import packaging, policies
from components.rest_api import RestApi, RestApiArgs, path_slug, validate_routes
from components.site_function import SiteFunction, SiteFunctionArgs
from components.stream_processor import StreamProcessor, StreamProcessorArgs
from components.table import CounterTable, CounterTableArgs
from tests.stack.conftest import RecordingMocks


@pytest.fixture
def mocks() -> None:
    """Fresh mocks (and a fresh root stack) before any component is constructed."""
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(RecordingMocks(), project="tag-counter", stack="dev", preview=False)


@pytest.fixture(scope="module")
def code() -> packaging.BuiltArchive:
    """The real code archive, built once for this module."""
    return packaging.BuiltArchive.of(packaging.build_code_archive())


def table_check(expected_view_type: str, ran: list[bool]) -> Any:
    """A runtime test of CounterTable's outputs; appends to ``ran`` once its check has passed."""
    @pulumi.runtime.test
    def check() -> pulumi.Output[Any]:
        table = CounterTable("counter", CounterTableArgs())

        def verify(values: list[Any]) -> None:
            arn, stream_arn, view_type, ttl = values
            assert stream_arn.startswith(arn + "/stream/")
            assert view_type == expected_view_type
            assert ttl == {"attribute_name": "expires_at", "enabled": True}
            ran.append(True)

        return pulumi.Output.all(table.arn, table.stream_arn, table.table.stream_view_type, table.table.ttl).apply(
            verify
        )

    return check


def test_table_component_exposes_its_stream(mocks: None) -> None:
    ran: list[bool] = []
    table_check("NEW_AND_OLD_IMAGES", ran)()
    assert ran == [True]


def test_a_wrong_expectation_inside_apply_fails(mocks: None) -> None:
    """Test of the test: a failing check in an apply fails the test rather than vanishing."""
    ran: list[bool] = []
    with pytest.raises(AssertionError):
        table_check("KEYS_ONLY", ran)()
    assert ran == []


def test_site_function_outputs_and_layer(mocks: None, code: packaging.BuiltArchive) -> None:
    ran: list[bool] = []

    @pulumi.runtime.test
    def check() -> pulumi.Output[Any]:
        function = SiteFunction(
            "visit",
            SiteFunctionArgs(
                spec=definition.VISIT,
                table_name="counter",
                table_arn="arn:aws:dynamodb:us-east-1:123456789012:table/counter",
                code=code,
                template_layer_arn="arn:aws:lambda:us-east-1:123456789012:layer:jinja2:3",
            ),
        )

        def verify(values: list[Any]) -> None:
            layers, handler, log_group_name, configured_group = values
            assert layers == ["arn:aws:lambda:us-east-1:123456789012:layer:jinja2:3"]
            assert handler == definition.VISIT.handler
            assert configured_group == log_group_name
            ran.append(True)

        return pulumi.Output.all(
            function.function.layers,
            function.function.handler,
            function.log_group.name,
            function.function.logging_config.log_group,
        ).apply(verify)

    check()
    assert ran == [True]


def test_a_page_function_without_the_layer_is_refused(mocks: None, code: packaging.BuiltArchive) -> None:
    with pytest.raises(ValueError, match="needs the Jinja2 layer"):
        SiteFunction(
            "home",
            SiteFunctionArgs(spec=definition.HOME, table_name="t", table_arn="arn:aws:dynamodb:::table/t", code=code),
        )


def test_a_templated_stream_processor_is_refused(mocks: None, code: packaging.BuiltArchive) -> None:
    templated = dataclasses.replace(definition.STREAM_PROCESSOR, uses_templates=True)
    with pytest.raises(ValueError, match="without Jinja2"):
        StreamProcessor(
            "stream",
            StreamProcessorArgs(
                table_name="t",
                table_arn="arn:aws:dynamodb:::table/t",
                stream_arn="arn:aws:dynamodb:::table/t/stream/x",
                code=code,
                settings=definition.Settings(),
                spec=templated,
            ),
        )


def test_rest_api_refuses_a_route_without_a_function(mocks: None) -> None:
    with pytest.raises(ValueError, match="no deployed function for route function"):
        RestApi(
            "site",
            RestApiArgs(
                routes=definition.ROUTES,
                api_name="tag-counter-dev",
                functions={},
                not_found_page="<p>404</p>",
                server_error_page="<p>5xx</p>",
            ),
        )


@pytest.mark.parametrize(
    ("path", "method", "message"),
    [
        ("tags/{tag}", "GET", "must start with '/'"),
        ("/tags/", "GET", "no empty segment"),
        ("/tags//x", "GET", "no empty segment"),
        ("/tags", "get", "upper case"),
        ("/", "GET", "declared twice"),
        ("/", "HEAD", "HEAD / is declared twice"),
    ],
)
def test_invalid_routes_are_refused(path: str, method: str, message: str) -> None:
    routes = definition.ROUTES + (definition.Route(path, definition.HOME, method),)
    with pytest.raises(ValueError, match=message):
        validate_routes(routes)


def test_path_slugs_name_the_resources() -> None:
    assert [path_slug(p) for p in ("/", "/a/{x}/b", "/counts/{tag}/badge.json")] == [
        "root",
        "a-by-x-b",
        "counts-by-tag-badge.json",
    ]


@pytest.mark.parametrize(
    ("actions", "resources"),
    [(("dynamodb:*",), ["arn:aws:dynamodb:::table/t"]), (("s3:GetObject",), ["*"])],
)
def test_policy_statements_refuse_wildcards(actions: tuple[str, ...], resources: list[str]) -> None:
    with pytest.raises(ValueError, match="wildcard"):
        policies.statement("Bad", actions, resources)
