"""One CloudWatch dashboard per stack: what the site did and how the stream processor keeps up, on one page.

Every widget is built from the definition (one latency line per route's function) and names only metrics that exist:
AWS's own (API Gateway, Lambda, DynamoDB, SQS, with the dimensions they publish) and the stack's two counted from log
lines (``components.alarms``: counted visits, skipped records). API Gateway publishes per-route metrics only with
detailed metrics turned on, billed per metric; the latency per route is therefore its function's ``Duration``, beside
the stage's overall ``Latency``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

import definition
from components.alarms import COUNTED_VISITS_METRIC, MALFORMED_RECORDS_METRIC

WIDGET_WIDTH = 12
WIDGET_HEIGHT = 6
COLUMNS = 2
VISITS_PERIOD_SECONDS = 60
"""Visits are shown per minute."""
PERIOD_SECONDS = 300


def dashboard_name(stack: str) -> str:
    """The stack's dashboard name: letters, digits, ``-`` and ``_`` only (CloudWatch's rule)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{definition.PROJECT}-{stack}")[:255]


def route_labels(routes: Sequence[definition.Route]) -> dict[str, str]:
    """Function name -> the paths it serves, for the latency lines (``visit`` -> ``/tags/{tag}``)."""
    labels: dict[str, list[str]] = {}
    for route in routes:
        paths = labels.setdefault(route.function.name, [])
        if route.path not in paths:
            paths.append(route.path)
    return {name: " ".join(paths) for name, paths in labels.items()}


@dataclass(frozen=True)
class DashboardNames:
    """The deployed names the widgets' dimensions hold, once known."""

    region: str
    metric_namespace: str
    rest_api_name: str
    stage_name: str
    route_functions: Mapping[str, str]
    """Deployed name of each route's function, by ``FunctionSpec.name``."""
    processor_function_name: str
    table_name: str
    queue_name: str
    alarm_arns: Sequence[str] = field(default_factory=tuple)


def dashboard_body(names: DashboardNames, routes: Sequence[definition.Route]) -> dict[str, Any]:
    """The dashboard's body (``PutDashboard``'s ``DashboardBody``) as data."""
    api = ["ApiName", names.rest_api_name, "Stage", names.stage_name]
    labels = route_labels(routes)
    widgets: list[tuple[str, dict[str, Any]]] = [
        (
            "Visits counted per minute",
            {
                "metrics": [[names.metric_namespace, COUNTED_VISITS_METRIC, {"label": "counted visits"}]],
                "stat": "Sum",
                "period": VISITS_PERIOD_SECONDS,
            },
        ),
        (
            "Answers by status class",
            {
                "metrics": [
                    ["AWS/ApiGateway", "Count", *api, {"id": "answers", "visible": False}],
                    ["AWS/ApiGateway", "4XXError", *api, {"id": "client", "label": "4xx (429: throttled)"}],
                    ["AWS/ApiGateway", "5XXError", *api, {"id": "server", "label": "5xx"}],
                    [{"expression": "answers - client - server", "id": "success", "label": "2xx and 3xx"}],
                ],
                "stat": "Sum",
                "period": PERIOD_SECONDS,
            },
        ),
        (
            "p99 latency per route (ms)",
            {
                "metrics": [
                    ["AWS/ApiGateway", "Latency", *api, {"label": "whole stage, at the gateway"}],
                    *(
                        ["AWS/Lambda", "Duration", "FunctionName", names.route_functions[function], {"label": label}]
                        for function, label in labels.items()
                    ),
                ],
                "stat": "p99",
                "period": PERIOD_SECONDS,
            },
        ),
        (
            "Throttles",
            {
                "metrics": [
                    *(
                        ["AWS/Lambda", "Throttles", "FunctionName", deployed, {"label": f"{function} function"}]
                        for function, deployed in sorted(
                            {
                                **names.route_functions,
                                definition.STREAM_PROCESSOR.name: names.processor_function_name,
                            }.items()
                        )
                    ),
                    ["AWS/DynamoDB", "ReadThrottleEvents", "TableName", names.table_name, {"label": "table reads"}],
                    ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", names.table_name, {"label": "table writes"}],
                ],
                "stat": "Sum",
                "period": PERIOD_SECONDS,
            },
        ),
        (
            "Stream processor iterator age (ms)",
            {
                "metrics": [
                    ["AWS/Lambda", "IteratorAge", "FunctionName", names.processor_function_name, {"label": "age"}]
                ],
                "stat": "Maximum",
                "period": PERIOD_SECONDS,
            },
        ),
        (
            "On-failure queue depth (records given up on)",
            {
                "metrics": [
                    [
                        "AWS/SQS",
                        "ApproximateNumberOfMessagesVisible",
                        "QueueName",
                        names.queue_name,
                        {"label": "messages"},
                    ]
                ],
                "stat": "Maximum",
                "period": PERIOD_SECONDS,
            },
        ),
        (
            "Skipped malformed stream records",
            {
                "metrics": [[names.metric_namespace, MALFORMED_RECORDS_METRIC, {"label": "skipped"}]],
                "stat": "Sum",
                "period": PERIOD_SECONDS,
            },
        ),
    ]
    body: list[dict[str, Any]] = []
    for index, (title, properties) in enumerate(widgets):
        body.append(
            {
                "type": "metric",
                "x": (index % COLUMNS) * WIDGET_WIDTH,
                "y": (index // COLUMNS) * WIDGET_HEIGHT,
                "width": WIDGET_WIDTH,
                "height": WIDGET_HEIGHT,
                "properties": {"title": title, "region": names.region, "view": "timeSeries", **properties},
            }
        )
    if names.alarm_arns:
        index = len(widgets)
        body.append(
            {
                "type": "alarm",
                "x": (index % COLUMNS) * WIDGET_WIDTH,
                "y": (index // COLUMNS) * WIDGET_HEIGHT,
                "width": WIDGET_WIDTH,
                "height": WIDGET_HEIGHT,
                "properties": {"title": "Alarms", "alarms": list(names.alarm_arns)},
            }
        )
    return {"widgets": body}


@dataclass
class SiteDashboardArgs:
    """The stack's resources the widgets show."""

    dashboard_name: str
    region: str
    """The stack's region: every metric widget names it."""
    metric_namespace: str
    """The namespace of the stack's own metrics (``components.alarms``)."""
    routes: Sequence[definition.Route]
    """Usually ``definition.ROUTES``: one latency line per function serving them."""
    route_functions: Mapping[str, pulumi.Input[str]]
    """Deployed name of each route's function, by ``FunctionSpec.name``."""
    processor_function_name: pulumi.Input[str]
    rest_api_name: pulumi.Input[str]
    stage_name: pulumi.Input[str]
    table_name: pulumi.Input[str]
    on_failure_queue_name: pulumi.Input[str]
    alarm_arns: Sequence[pulumi.Input[str]] = field(default_factory=list)
    """Shown in an alarm status widget."""


class SiteDashboard(pulumi.ComponentResource):
    """The stack's CloudWatch dashboard."""

    dashboard: aws.cloudwatch.Dashboard
    name: pulumi.Output[str]

    def __init__(self, name: str, args: SiteDashboardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tag-counter:dashboard:SiteDashboard", name, None, opts)
        missing = sorted({route.function.name for route in args.routes} - set(args.route_functions))
        if missing:
            raise ValueError(f"no deployed function for route function(s) {', '.join(missing)}")
        functions = {function: args.route_functions[function] for function in route_labels(args.routes)}
        body = pulumi.Output.all(
            functions=functions,
            processor=args.processor_function_name,
            api=args.rest_api_name,
            stage=args.stage_name,
            table=args.table_name,
            queue=args.on_failure_queue_name,
            alarms=list(args.alarm_arns),
        ).apply(
            lambda known: json.dumps(
                dashboard_body(
                    DashboardNames(
                        region=args.region,
                        metric_namespace=args.metric_namespace,
                        rest_api_name=known["api"],
                        stage_name=known["stage"],
                        route_functions=known["functions"],
                        processor_function_name=known["processor"],
                        table_name=known["table"],
                        queue_name=known["queue"],
                        alarm_arns=known["alarms"],
                    ),
                    args.routes,
                ),
                sort_keys=True,
                separators=(",", ":"),
            )
        )
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.dashboard_name,
            dashboard_body=body,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name = self.dashboard.dashboard_name
        self.register_outputs({"dashboard_name": self.name})
