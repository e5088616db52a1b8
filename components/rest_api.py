"""The site's REST API: one resource per path, GET methods proxied to the route functions, a throttled stage.

Everything here is derived from ``definition.ROUTES``: a new route is a new line there, never a copy here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

import definition

HTML_CONTENT_TYPE = "text/html; charset=utf-8"
# API Gateway picks a gateway response template by the request's Accept header and falls back to
# application/json; the same HTML under both keys serves browsers and everything else alike.
TEMPLATE_CONTENT_TYPES = ("text/html", "application/json")
# Unknown paths (and unknown methods on known paths) come back as MISSING_AUTHENTICATION_TOKEN, a 403.
NOT_FOUND_RESPONSE_TYPES = ("MISSING_AUTHENTICATION_TOKEN", "RESOURCE_NOT_FOUND")
SERVER_ERROR_RESPONSE_TYPE = "DEFAULT_5XX"
# The stage's throttling answers 429 before any function runs; without this it would be a JSON message.
THROTTLED_RESPONSE_TYPE = "THROTTLED"


@dataclass(frozen=True)
class GatewayResponseSpec:
    """One API Gateway gateway response, as plain data (hashed into the deployment trigger)."""

    response_type: str
    status_code: str | None
    """``None`` keeps API Gateway's own status (502, 503, 504 stay distinguishable)."""
    templates: dict[str, str]
    parameters: dict[str, str]


def gateway_responses(
    not_found_page: str,
    server_error_page: str,
    headers: Mapping[str, str],
    throttled_page: str | None = None,
    retry_after_seconds: int = 2,
) -> list[GatewayResponseSpec]:
    """HTML gateway responses: a 404 page for unknown paths, an error page for every 5xx and, when given, a 429
    page (with ``Retry-After``) for requests the stage's throttling turns away.

    Gateway response templates are not Velocity templates, but API Gateway still substitutes ``$`` variables
    in them, so a page holding ``$`` is refused rather than deployed garbled.
    """
    pages = {"404": not_found_page, "5xx": server_error_page, "429": throttled_page}
    for label, page in pages.items():
        if page is not None and "$" in page:
            raise ValueError(f"the {label} gateway response page contains '$', which API Gateway would substitute")
    all_headers = {"Content-Type": HTML_CONTENT_TYPE, **headers}
    # Static header values are written in single quotes; anything else would be read as a mapping expression.
    parameters = {f"gatewayresponse.header.{name}": f"'{value}'" for name, value in sorted(all_headers.items())}

    def templates(page: str) -> dict[str, str]:
        return {content_type: page for content_type in TEMPLATE_CONTENT_TYPES}

    responses = [
        GatewayResponseSpec(response_type, "404", templates(not_found_page), parameters)
        for response_type in NOT_FOUND_RESPONSE_TYPES
    ]
    responses.append(GatewayResponseSpec(SERVER_ERROR_RESPONSE_TYPE, None, templates(server_error_page), parameters))
    if throttled_page is not None:
        retry = {**parameters, "gatewayresponse.header.Retry-After": f"'{retry_after_seconds}'"}
        responses.append(GatewayResponseSpec(THROTTLED_RESPONSE_TYPE, "429", templates(throttled_page), retry))
    return responses


def validate_routes(routes: Sequence[definition.Route]) -> None:
    """Refuse paths API Gateway would reject or that would collide, before anything is created."""
    seen: set[tuple[str, str]] = set()
    for route in routes:
        path = route.path
        if not path.startswith("/") or (path != "/" and (path.endswith("/") or "//" in path)):
            raise ValueError(f"route path {path!r} must start with '/' and have no empty segment")
        if route.method != route.method.upper():
            raise ValueError(f"route {path!r}: method {route.method!r} must be upper case")
        if (route.method, path) in seen:
            raise ValueError(f"route {route.method} {path} is declared twice")
        seen.add((route.method, path))


def path_segments(path: str) -> list[str]:
    """``/tags/{tag}`` -> ``["tags", "{tag}"]``; the root has none."""
    return [segment for segment in path.split("/") if segment]


def resource_paths(routes: Sequence[definition.Route]) -> list[str]:
    """Every non-root path that needs an API Gateway resource, parents before children, each once."""
    paths: set[str] = set()
    for route in routes:
        segments = path_segments(route.path)
        for depth in range(1, len(segments) + 1):
            paths.add("/" + "/".join(segments[:depth]))
    return sorted(paths, key=lambda p: (p.count("/"), p))


def path_slug(path: str) -> str:
    """A name fragment for a path: ``/`` -> ``root``, ``/tags/{tag}`` -> ``tags-by-tag``."""
    segments = path_segments(path)
    if not segments:
        return "root"
    return "-".join(f"by-{s[1:-1]}" if s.startswith("{") and s.endswith("}") else s for s in segments)


def api_definition(routes: Sequence[definition.Route], responses: Sequence[GatewayResponseSpec]) -> dict[str, Any]:
    """Everything a deployment snapshots: routes, their methods and targets, and the gateway responses."""
    return {
        "routes": sorted(
            (
                {"method": r.method, "path": r.path, "function": r.function.name, "integration": "AWS_PROXY"}
                for r in routes
            ),
            key=lambda item: (item["path"], item["method"]),
        ),
        "gateway_responses": [
            {
                "type": spec.response_type,
                "status": spec.status_code,
                "templates": spec.templates,
                "parameters": spec.parameters,
            }
            for spec in sorted(responses, key=lambda spec: spec.response_type)
        ],
    }


def definition_hash(routes: Sequence[definition.Route], responses: Sequence[GatewayResponseSpec]) -> str:
    """SHA-256 of the API definition; it changes exactly when a redeployment is needed."""
    text = json.dumps(api_definition(routes, responses), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class RestApiArgs:
    """The routes to serve, the functions serving them, and the stage's settings."""

    routes: Sequence[definition.Route]
    """Usually ``definition.ROUTES``."""
    functions: Mapping[str, aws.lambda_.Function]
    """The deployed function for each ``FunctionSpec.name`` the routes use."""
    not_found_page: str
    """Full HTML of the 404 page served for unknown paths."""
    server_error_page: str
    """Full HTML of the page served when API Gateway itself fails (5xx)."""
    throttled_page: str | None = None
    """Full HTML of the 429 page the stage's throttling serves (with ``Retry-After``); ``None`` keeps AWS's JSON."""
    retry_after_seconds: int = 2
    """The 429 page's ``Retry-After``."""
    response_headers: Mapping[str, str] = field(default_factory=dict)
    """Headers on gateway responses (the functions' security headers)."""
    stage_name: str = "dev"
    throttle_rate_limit: float = 50.0
    """Steady requests per second across the stage."""
    throttle_burst_limit: int = 100


@dataclass
class _RouteResources:
    method: aws.apigateway.Method
    integration: aws.apigateway.Integration
    permission: aws.lambda_.Permission


class RestApi(pulumi.ComponentResource):
    """An API Gateway REST API (v1) with Lambda proxy routes, HTML gateway responses and a throttled stage."""

    api: aws.apigateway.RestApi
    deployment: aws.apigateway.Deployment
    stage: aws.apigateway.Stage
    url: pulumi.Output[str]
    """The stage's invoke URL with a trailing slash: the site's home page."""

    def __init__(self, name: str, args: RestApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tag-counter:rest_api:RestApi", name, None, opts)
        validate_routes(args.routes)
        missing = sorted({r.function.name for r in args.routes} - set(args.functions))
        if missing:
            raise ValueError(f"no deployed function for route function(s) {', '.join(missing)}")
        child = pulumi.ResourceOptions(parent=self)

        self.api = aws.apigateway.RestApi(
            f"{name}-api",
            description=f"{definition.PROJECT}: server-rendered visit counter",
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            opts=child,
        )

        resource_ids: dict[str, pulumi.Input[str]] = {"/": self.api.root_resource_id}
        self.resources: dict[str, aws.apigateway.Resource] = {}
        for path in resource_paths(args.routes):
            parent_path, _, part = path.rpartition("/")
            resource = aws.apigateway.Resource(
                f"{name}-{path_slug(path)}-resource",
                rest_api=self.api.id,
                parent_id=resource_ids[parent_path or "/"],
                path_part=part,
                opts=child,
            )
            self.resources[path] = resource
            resource_ids[path] = resource.id

        self.routes: dict[tuple[str, str], _RouteResources] = {}
        for route in args.routes:
            function = args.functions[route.function.name]
            prefix = f"{name}-{route.method.lower()}-{path_slug(route.path)}"
            method = aws.apigateway.Method(
                f"{prefix}-method",
                rest_api=self.api.id,
                resource_id=resource_ids[route.path],
                http_method=route.method,
                authorization="NONE",
                opts=child,
            )
            integration = aws.apigateway.Integration(
                f"{prefix}-integration",
                rest_api=self.api.id,
                resource_id=method.resource_id,
                http_method=method.http_method,
                type="AWS_PROXY",
                # Lambda is always invoked with POST, whatever the visitor's method.
                integration_http_method="POST",
                uri=function.invoke_arn,
                opts=child,
            )
            permission = aws.lambda_.Permission(
                f"{prefix}-permission",
                action="lambda:InvokeFunction",
                function=function.name,
                principal="apigateway.amazonaws.com",
                # Any stage (the console's test invocations use their own), this method and path only.
                source_arn=pulumi.Output.concat(self.api.execution_arn, "/*/", route.method, route.path),
                opts=child,
            )
            self.routes[(route.method, route.path)] = _RouteResources(method, integration, permission)

        response_specs = gateway_responses(
            args.not_found_page,
            args.server_error_page,
            args.response_headers,
            args.throttled_page,
            args.retry_after_seconds,
        )
        self.gateway_responses = [
            aws.apigateway.Response(
                f"{name}-{spec.response_type.lower().replace('_', '-')}-response",
                rest_api_id=self.api.id,
                response_type=spec.response_type,
                status_code=spec.status_code,
                response_templates=spec.templates,
                response_parameters=spec.parameters,
                opts=child,
            )
            for spec in response_specs
        ]

        self.definition_hash = definition_hash(args.routes, response_specs)
        route_parts = list(self.routes.values())
        self.deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=self.api.id,
            description=f"API definition {self.definition_hash[:12]}",
            # A deployment is a snapshot: a changed definition needs a new one. Pulumi creates the
            # replacement before deleting the old one, so the stage always points at a live deployment.
            triggers={"definition": self.definition_hash},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[part.method for part in route_parts]
                + [part.integration for part in route_parts]
                + list(self.gateway_responses),
                replace_on_changes=["triggers"],
                delete_before_replace=False,
            ),
        )
        self.stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=self.api.id,
            deployment=self.deployment.id,
            stage_name=args.stage_name,
            # Visitors reach the functions only once every function may be invoked.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[part.permission for part in route_parts]),
        )
        self.method_settings = aws.apigateway.MethodSettings(
            f"{name}-throttling",
            rest_api=self.api.id,
            stage_name=self.stage.stage_name,
            method_path="*/*",
            settings=aws.apigateway.MethodSettingsSettingsArgs(
                throttling_rate_limit=args.throttle_rate_limit,
                throttling_burst_limit=args.throttle_burst_limit,
            ),
            opts=child,
        )
        self.url = pulumi.Output.concat(self.stage.invoke_url, "/")
        self.register_outputs(
            {"url": self.url, "rest_api_id": self.api.id, "stage_name": self.stage.stage_name}
        )
