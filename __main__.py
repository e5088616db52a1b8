"""The tag-counter stack: reads the stack's config and composes the site from ``definition.py``.

``pulumi up`` builds the code archive and the Jinja2 layer under ``build/`` (both with Python 3.13 bytecode from
one pinned compiler, cached by content), then creates the table, one function per route, the stream processor,
the REST API (one document: every route and gateway response), its custom domain when the stack has one, alarms
(notifying an SNS topic when the stack names addresses or a topic) and a dashboard.
"""

from __future__ import annotations

from urllib.parse import quote

import pulumi
import pulumi_aws as aws
import pulumi_random

import definition
from components import packaging
from components.alarms import Alarms, AlarmsArgs
from components.dashboard import SiteDashboard, SiteDashboardArgs, dashboard_name
from components.domain import CustomDomain, CustomDomainArgs
from components.layer import TemplateLayer, TemplateLayerArgs
from components.notifications import AlarmNotifications, AlarmNotificationsArgs
from components.rest_api import RestApi, RestApiArgs
from components.site_function import SiteFunction, SiteFunctionArgs
from components.stream_processor import StreamProcessor, StreamProcessorArgs
from components.table import CounterTable, CounterTableArgs
from functions import links, web

settings = definition.Settings.from_config(pulumi.Config(definition.CONFIG_NAMESPACE).get)
stack = pulumi.get_stack()
region = aws.get_region().region
settings.check_region(region)
metric_namespace = f"{definition.PROJECT}/{stack}"

# Built before any resource is declared, never inside an apply: preview and update see the same archives.
code = packaging.BuiltArchive.of(packaging.build_code_archive())
layer_archive = packaging.BuiltArchive.of(packaging.build_layer())

table = CounterTable(
    "counter",
    CounterTableArgs(
        point_in_time_recovery=settings.point_in_time_recovery,
        deletion_protection=settings.deletion_protection,
    ),
)
template_layer = TemplateLayer(
    "templates",
    TemplateLayerArgs(archive=layer_archive, layer_name=f"{definition.PROJECT}-{stack}-jinja2"),
)

# The unique-visitor window's per-stack key: random, kept in the state as a secret (encrypted), never in plain
# config and never exported. It reaches only the counting functions, as an environment variable: read for free
# at start, where an SSM SecureString would add a client and a round trip to every cold start.
visitor_key = (
    pulumi_random.RandomPassword("visitor-key", length=48, special=False).result
    if settings.unique_visitor_window_minutes
    else None
)

route_specs = list(dict.fromkeys(route.function for route in definition.ROUTES))
route_functions = {
    spec.name: SiteFunction(
        spec.name,
        SiteFunctionArgs(
            spec=spec,
            table_name=table.name,
            table_arn=table.arn,
            code=code,
            memory_mb=settings.route_memory_mb,
            timeout_seconds=settings.route_timeout_seconds,
            log_retention_days=settings.log_retention_days,
            template_layer_arn=template_layer.arn,
            environment={
                **definition.function_environment(settings),
                **(definition.visitor_key_environment(settings, visitor_key) if spec.counts_visits else {}),
            },
            grants=spec.table_grants(settings),
        ),
    )
    for spec in route_specs
}

processor = StreamProcessor(
    "stream",
    StreamProcessorArgs(
        table_name=table.name,
        table_arn=table.arn,
        stream_arn=table.stream_arn,
        code=code,
        settings=settings,
        spec=definition.STREAM_PROCESSOR,
    ),
)

# Gateway pages cannot know the depth of the path they answer: their home link is absolute (the stage's root, or the
# site on its domain).
gateway_home = definition.gateway_home_href(settings)
site = RestApi(
    "site",
    RestApiArgs(
        routes=definition.ROUTES,
        # Also the document's title: stacks of one account have distinct API names.
        api_name=f"{definition.PROJECT}-{stack}",
        functions={name: function.function for name, function in route_functions.items()},
        not_found_page=web.render_error_page(404, home_href=gateway_home),
        server_error_page=web.render_error_page(500, home_href=gateway_home),
        throttled_page=web.render_error_page(429, home_href=gateway_home),
        retry_after_seconds=web.RETRY_AFTER_SECONDS,
        response_headers=web.gateway_headers("no-store"),
        stage_name=settings.stage_name,
        throttle_rate_limit=settings.throttle_rate_limit,
        throttle_burst_limit=settings.throttle_burst_limit,
        disable_execute_api_endpoint=settings.disable_execute_api_endpoint,
    ),
)

domain = (
    CustomDomain(
        "domain",
        CustomDomainArgs(
            domain_name=settings.domain_name,
            rest_api_id=site.api.id,
            stage_name=site.stage.stage_name,
            certificate_arn=settings.certificate_arn,
            hosted_zone_id=settings.hosted_zone_id,
            base_path=settings.base_path,
        ),
    )
    if settings.domain_name
    else None
)
# The address badges point at: the domain's when there is one, else the stage's own.
site_url: pulumi.Input[str] = settings.site_url or site.url

notifications = AlarmNotifications(
    "alarm-notifications",
    AlarmNotificationsArgs(emails=settings.alarm_email, topic_arn=settings.alarm_topic_arn),
)
if notifications.topic_arn is None:
    pulumi.log.warn(
        "the alarms notify no one: set tag-counter:alarmEmail (one or more addresses) or tag-counter:alarmTopicArn "
        "(an SNS topic of yours) to be told when one goes off"
    )

site_functions = {**route_functions, definition.STREAM_PROCESSOR.name: processor.site_function}
alarms = Alarms(
    "alarms",
    AlarmsArgs(
        function_names={name: f.function.name for name, f in site_functions.items()},
        processor_function_name=processor.function.name,
        processor_log_group_name=processor.site_function.log_group.name,
        counting_log_group_names={
            spec.name: route_functions[spec.name].log_group.name for spec in route_specs if spec.counts_visits
        },
        on_failure_queue_name=processor.queue.name,
        rest_api_name=site.api.name,
        stage_name=site.stage.stage_name,
        metric_namespace=metric_namespace,
        iterator_age_threshold_ms=settings.iterator_age_alarm_ms,
        alarm_actions=[notifications.topic_arn] if notifications.topic_arn is not None else [],
    ),
)

dashboard = SiteDashboard(
    "dashboard",
    SiteDashboardArgs(
        dashboard_name=dashboard_name(stack),
        region=region,
        metric_namespace=metric_namespace,
        routes=definition.ROUTES,
        route_functions={name: f.function.name for name, f in route_functions.items()},
        processor_function_name=processor.function.name,
        rest_api_name=site.api.name,
        stage_name=site.stage.stage_name,
        table_name=table.name,
        on_failure_queue_name=processor.queue.name,
        alarm_arns=[alarm.arn for alarm in alarms.all],
    ),
)

example_tag = quote(definition.EXAMPLE_TAGS[0], safe="")
route_paths = definition.route_paths()


def example_url(route: str) -> pulumi.Output[str]:
    """The URL of a route for the example tag, its path from the definition."""
    return pulumi.Output.concat(site_url, route_paths[route].replace("{tag}", example_tag).lstrip("/"))


pulumi.export("url", site_url)
if domain is not None:
    # Where to point the domain's DNS when it is not in a Route 53 zone the program manages (a CNAME).
    pulumi.export("domain_dns_target", domain.dns_target)
    if not settings.disable_execute_api_endpoint:
        # The old address, still answering until disableExecuteApiEndpoint: badges can be moved over first.
        pulumi.export("execute_api_url", site.url)
EXAMPLE_OUTPUTS = {
    "example_tag_url": links.VISIT,
    "example_count_url": links.COUNT,
    "example_badge_url": links.VISIT_BADGE,
    "example_count_badge_url": links.COUNT_BADGE,
    "example_badge_json_url": links.COUNT_BADGE_JSON,
}
for output, route_name in EXAMPLE_OUTPUTS.items():
    if route_name in route_paths:  # every route of the definition; a trimmed set of routes exports fewer
        pulumi.export(output, example_url(route_name))
pulumi.export("table_name", table.name)
pulumi.export("stage_name", settings.stage_name)
pulumi.export("function_names", {name: f.function.name for name, f in site_functions.items()})
pulumi.export("log_group_names", {name: f.log_group.name for name, f in site_functions.items()})
pulumi.export("on_failure_queue_url", processor.queue.url)
pulumi.export("dashboard_name", dashboard.name)
if notifications.topic_arn is not None:
    pulumi.export("alarm_topic_arn", notifications.topic_arn)
