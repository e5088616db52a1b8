"""The site's REST API: one OpenAPI document holding every route and gateway response, and a throttled stage.

Everything here is derived from ``definition.ROUTES``: a new route is a new line there, never a copy here.
The API is imported from the document in one step ("overwrite"), and a Deployment, a snapshot of the API, is
replaced whenever the document's hash changes; so a removed or changed route can never linger in a deployment
that still points at an old integration or a permission already deleted.
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

OPENAPI_VERSION = "3.0.1"
"""API Gateway imports OpenAPI 3.0 and Swagger 2.0 alike; 3.0 is also what moto imports, so the tests can check the
document is one API Gateway builds the right API from."""

GATEWAY_VARIABLES = ("$context.stage",)
"""The ``$`` variables a gateway response page may hold (``definition.GATEWAY_HOME_HREF``): API Gateway
substitutes them when it answers."""


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

    Gateway response templates are not Velocity templates, but API Gateway still substitutes ``$context``
    variables in them: a page may hold the ones of ``GATEWAY_VARIABLES`` (its home link,
    ``definition.GATEWAY_HOME_HREF``), and any other ``$`` is refused rather than deployed garbled.
    """
    pages = {"404": not_found_page, "5xx": server_error_page, "429": throttled_page}
    for label, page in pages.items():
        if page is None:
            continue
        rest = page
        for variable in GATEWAY_VARIABLES:
            rest = rest.replace(variable, "")
        if "$" in rest:
            raise ValueError(
                f"the {label} gateway response page contains a '$' API Gateway would substitute; only "
                f"{', '.join(GATEWAY_VARIABLES)} may appear"
            )
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
        for method in route.methods:
            if (method, path) in seen:
                raise ValueError(f"route {method} {path} is declared twice")
            seen.add((method, path))


def path_segments(path: str) -> list[str]:
    """``/tags/{tag}`` -> ``["tags", "{tag}"]``; the root has none."""
    return [segment for segment in path.split("/") if segment]


def path_slug(path: str) -> str:
    """A name fragment for a path: ``/`` -> ``root``, ``/tags/{tag}`` -> ``tags-by-tag``."""
    segments = path_segments(path)
    if not segments:
        return "root"
    return "-".join(f"by-{s[1:-1]}" if s.startswith("{") and s.endswith("}") else s for s in segments)


def permission_path(path: str) -> str:
    """A route's path as a permission's source ARN names it: each ``{param}`` a ``*``, as AWS's own tools write it
    (``/tags/{tag}/badge.svg`` -> ``/tags/*/badge.svg``)."""
    return "/" + "/".join("*" if s.startswith("{") and s.endswith("}") else s for s in path_segments(path))


def path_parameters(path: str) -> list[str]:
    """The ``{param}`` names of a path, in order."""
    return [s[1:-1] for s in path_segments(path) if s.startswith("{") and s.endswith("}")]


def openapi_document(
    routes: Sequence[definition.Route],
    invoke_arns: Mapping[str, str],
    responses: Sequence[GatewayResponseSpec],
    description: str = "",
    title: str = definition.PROJECT,
) -> dict[str, Any]:
    """The whole REST API as one OpenAPI 3.0 document, with API Gateway's extensions.

    Every method of every route (``Route.methods``: GET and HEAD) is a Lambda proxy integration of the route's
    function (``invoke_arns`` by ``FunctionSpec.name``); API Gateway always invokes Lambda with POST. The gateway
    responses are part of the document because the import overwrites the whole API: a response left out would be
    reset to AWS's JSON. Path parameters reach the functions as the proxy integration delivers them, still
    percent-encoded (``functions.tags`` decodes them once).
    """
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(routes, key=lambda r: r.path):
        operations = paths.setdefault(route.path, {})
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in path_parameters(route.path)
        ]
        for method in route.methods:
            operation: dict[str, Any] = {
                "operationId": f"{method.lower()}-{path_slug(route.path)}",
                "responses": {"200": {"description": f"the {route.function.name} page"}},
                "x-amazon-apigateway-integration": {
                    "type": "aws_proxy",
                    "httpMethod": "POST",
                    "uri": invoke_arns[route.function.name],
                    "passthroughBehavior": "when_no_match",
                },
            }
            if parameters:
                operation["parameters"] = parameters
            operations[method.lower()] = operation
    gateway = {}
    for spec in sorted(responses, key=lambda spec: spec.response_type):
        response: dict[str, Any] = {
            "responseParameters": dict(spec.parameters),
            "responseTemplates": dict(spec.templates),
        }
        if spec.status_code is not None:
            response["statusCode"] = spec.status_code
        gateway[spec.response_type] = response
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "description": description, "version": "1.0"},
        "paths": paths,
        "x-amazon-apigateway-gateway-responses": gateway,
    }


def document_text(document: Mapping[str, Any]) -> str:
    """The document as the API's ``body``: canonical JSON, so equal documents are equal text."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def document_hash(body: str) -> str:
    """SHA-256 of the body: the Deployment's trigger, changing exactly when what a deployment snapshots changes."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass
class RestApiArgs:
    """The routes to serve, the functions serving them, and the stage's settings."""

    routes: Sequence[definition.Route]
    """Usually ``definition.ROUTES``."""
    api_name: str
    """The API's name, and its document's ``info.title``: one string, so an import never renames the API (and the
    ``ApiName`` dimension of its metrics never changes)."""
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
    disable_execute_api_endpoint: bool = False
    """Refuse requests at the default ``execute-api`` address (only with a custom domain mapped to the stage)."""


class RestApi(pulumi.ComponentResource):
    """An API Gateway REST API (v1) defined by one document: Lambda proxy routes, HTML gateway responses, and a
    throttled stage that serves a deployment of exactly that document."""

    api: aws.apigateway.RestApi
    deployment: aws.apigateway.Deployment
    stage: aws.apigateway.Stage
    body: pulumi.Output[str]
    """The OpenAPI document the API is imported from (``openapi_document``)."""
    definition_hash: pulumi.Output[str]
    """SHA-256 of ``body``: the Deployment is replaced whenever it changes."""
    url: pulumi.Output[str]
    """The stage's invoke URL with a trailing slash: the site's home page."""

    def __init__(self, name: str, args: RestApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tag-counter:rest_api:RestApi", name, None, opts)
        validate_routes(args.routes)
        missing = sorted({r.function.name for r in args.routes} - set(args.functions))
        if missing:
            raise ValueError(f"no deployed function for route function(s) {', '.join(missing)}")
        child = pulumi.ResourceOptions(parent=self)
        response_specs = gateway_responses(
            args.not_found_page,
            args.server_error_page,
            args.response_headers,
            args.throttled_page,
            args.retry_after_seconds,
        )
        description = f"{definition.PROJECT}: server-rendered visit counter"
        used = sorted({route.function.name for route in args.routes})
        # Only a document is computed inside the apply; every resource is declared out here.
        self.body = pulumi.Output.all(**{n: args.functions[n].invoke_arn for n in used}).apply(
            lambda arns: document_text(
                openapi_document(args.routes, arns, response_specs, description, title=args.api_name)
            )
        )
        self.definition_hash = self.body.apply(document_hash)

        self.api = aws.apigateway.RestApi(
            f"{name}-api",
            # Without a name the import applies info.title and the provider patches its own name back right after:
            # the name (a metric dimension) would change for a moment on every document change.
            name=args.api_name,
            description=description,
            disable_execute_api_endpoint=args.disable_execute_api_endpoint,
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            body=self.body,
            # The document is the whole API: a route or gateway response it no longer holds is removed, not kept
            # beside the new ones as "merge" would. The root resource stays (an API always has it); its methods
            # are the document's "/" path.
            put_rest_api_mode="overwrite",
            opts=child,
        )

        # One permission per route and method, scoped to that method and path (any stage: the console's test
        # invocations use their own).
        self.permissions: dict[tuple[str, str], aws.lambda_.Permission] = {}
        for route in args.routes:
            function = args.functions[route.function.name]
            for method in route.methods:
                self.permissions[(method, route.path)] = aws.lambda_.Permission(
                    f"{name}-{method.lower()}-{path_slug(route.path)}-permission",
                    action="lambda:InvokeFunction",
                    function=function.name,
                    principal="apigateway.amazonaws.com",
                    source_arn=pulumi.Output.concat(
                        self.api.execution_arn, "/*/", method, permission_path(route.path)
                    ),
                    opts=child,
                )

        self.deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=self.api.id,
            description=self.definition_hash.apply(lambda digest: f"API document {digest[:12]}"),
            # A deployment is a snapshot of the API taken when it is created; the API itself is updated from the
            # document first (the Deployment depends on it), so a new snapshot holds exactly the new document.
            # Pulumi creates the replacement before deleting the old one: the stage always has a live deployment.
            # Turning the default endpoint off or on takes effect only in a new deployment (AWS docs).
            triggers={
                "document": self.definition_hash,
                "executeApiEndpoint": "disabled" if args.disable_execute_api_endpoint else "enabled",
            },
            opts=pulumi.ResourceOptions(parent=self, replace_on_changes=["triggers"], delete_before_replace=False),
        )
        self.stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=self.api.id,
            deployment=self.deployment.id,
            stage_name=args.stage_name,
            # Visitors reach the functions only once every function may be invoked.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.permissions.values())),
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
            {
                "url": self.url,
                "rest_api_id": self.api.id,
                "rest_api_name": self.api.name,
                "stage_name": self.stage.stage_name,
                "definition_hash": self.definition_hash,
            }
        )
