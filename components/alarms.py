"""CloudWatch alarms: a function failing, the site answering 5xx, the stream processor stalled or behind, records
given up on or skipped; and the stack's own metrics they read, counted from the functions' log lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

import definition

MALFORMED_RECORDS_METRIC = "MalformedStreamRecords"
"""The metric the processor's log group counts skipped malformed records under (namespace ``metric_namespace``)."""
COUNTED_VISITS_METRIC = "CountedVisits"
"""The metric the counting functions' log groups count counted visits under (namespace ``metric_namespace``): one
per visit the table holds, never a repeat visitor, a bot, a ``HEAD`` or an owner's command."""
STALLED_AGE_MS = definition.STREAM_RETENTION_MS
"""What the iterator-age alarm reads when the table was written but the processor never ran: the stream's whole
24-hour retention, above any threshold the settings accept."""


def malformed_record_pattern() -> str:
    """The metric filter pattern matching the processor's JSON log line for a skipped record."""
    return f'{{ $.message = "{definition.MALFORMED_RECORD_MESSAGE}" }}'


def counted_visit_pattern() -> str:
    """The metric filter pattern matching a counting function's JSON log line for a counted visit."""
    return f'{{ $.message = "{definition.VISIT_COUNTED_MESSAGE}" }}'


def stalled_expression(visits: str, age: str) -> str:
    """Metric math for the iterator-age alarm: the processor's IteratorAge, or ``STALLED_AGE_MS`` in a period in
    which visits were counted and the processor reported no age at all (its poller stopped, its mapping is gone
    or disabled). A quiet period, without visits and without invocations, reads 0: no visit is no failure.

    Counted visits, not the table's write units: every counted visit is a stream record the processor must read,
    while a repeat visitor's failed marker write or an owner's command consumes write units and may bring none."""
    return f"IF(FILL({age}, -1) < 0 AND FILL({visits}, 0) > 0, {STALLED_AGE_MS}, FILL({age}, 0))"


def metric_query(
    query_id: str, namespace: str, metric_name: str, dimensions: Mapping[str, pulumi.Input[str]], stat: str, period: int
) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    """One metric an alarm's expression reads (not itself the alarm's value)."""
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=query_id,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=namespace, metric_name=metric_name, dimensions=dict(dimensions) or None, stat=stat, period=period
        ),
        return_data=False,
    )


@dataclass
class AlarmsArgs:
    """What to watch and how close."""

    function_names: Mapping[str, pulumi.Input[str]]
    """Deployed function name for each ``FunctionSpec.name``: one Errors alarm each."""
    processor_function_name: pulumi.Input[str]
    """The stream processor, whose IteratorAge says how far behind the stream it is."""
    processor_log_group_name: pulumi.Input[str]
    """The processor's log group, where a skipped malformed record is logged."""
    counting_log_group_names: Mapping[str, pulumi.Input[str]]
    """The log group of each function that counts visits (``FunctionSpec.counts_visits``), by ``FunctionSpec.name``:
    their counted-visit lines are the visits metric, which the processor must follow (visits and no processor run
    is a stalled poller)."""
    on_failure_queue_name: pulumi.Input[str]
    """Any message there is a stream record that was never applied."""
    rest_api_name: pulumi.Input[str]
    stage_name: pulumi.Input[str]
    """The REST API and stage whose 5XX responses are counted (every failure page is a 5xx the functions return
    normally, so the functions' Errors metric never sees them)."""
    metric_namespace: str
    """Namespace of the stack's own metrics (the malformed records); one per stack, so stacks do not mix."""
    iterator_age_threshold_ms: int = 60_000
    period_seconds: int = 300
    alarm_actions: Sequence[pulumi.Input[str]] = field(default_factory=list)
    """Where every alarm notifies, when it goes into ALARM and when it is back to OK (an SNS topic ARN); none by
    default, the alarms then only show in the console."""


class Alarms(pulumi.ComponentResource):
    """One alarm per function's errors, one on the stage's 5XX responses, one on the processor's iterator age (a
    stalled processor included), one on the on-failure queue, one on skipped malformed records."""

    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tag-counter:alarms:Alarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        common = {
            "period": args.period_seconds,
            "evaluation_periods": 1,
            "comparison_operator": "GreaterThanThreshold",
            # No traffic is not a failure.
            "treat_missing_data": "notBreaching",
            "alarm_actions": list(args.alarm_actions),
            "ok_actions": list(args.alarm_actions),
        }
        # Each counted visit is one log line of the function that counted it; every counting function's lines add to
        # one metric.
        self.visit_filters: dict[str, aws.cloudwatch.LogMetricFilter] = {}
        for function, log_group_name in sorted(args.counting_log_group_names.items()):
            self.visit_filters[function] = aws.cloudwatch.LogMetricFilter(
                f"{name}-{function}-counted-visits-filter",
                log_group_name=log_group_name,
                pattern=counted_visit_pattern(),
                metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                    name=COUNTED_VISITS_METRIC,
                    namespace=args.metric_namespace,
                    value="1",
                    unit="Count",
                ),
                opts=child,
            )
        self.function_errors: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for function, function_name in sorted(args.function_names.items()):
            self.function_errors[function] = aws.cloudwatch.MetricAlarm(
                f"{name}-{function}-errors",
                alarm_description=f"{definition.PROJECT}: the {function} function raised errors",
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions={"FunctionName": function_name},
                statistic="Sum",
                threshold=0,
                opts=child,
                **common,
            )
        self.server_errors = aws.cloudwatch.MetricAlarm(
            f"{name}-site-5xx",
            alarm_description=f"{definition.PROJECT}: the site answered 5xx (failure pages, throttled DynamoDB, "
            "or API Gateway errors)",
            namespace="AWS/ApiGateway",
            metric_name="5XXError",
            dimensions={"ApiName": args.rest_api_name, "Stage": args.stage_name},
            statistic="Sum",
            threshold=0,
            opts=child,
            **common,
        )
        period = args.period_seconds
        self.iterator_age = aws.cloudwatch.MetricAlarm(
            f"{name}-stream-iterator-age",
            alarm_description=f"{definition.PROJECT}: the stream processor is falling behind the table's stream, "
            "or stopped reading it while visits are counted",
            metric_queries=[
                metric_query("age", "AWS/Lambda", "IteratorAge", {"FunctionName": args.processor_function_name},
                             "Maximum", period),
                metric_query("visits", args.metric_namespace, COUNTED_VISITS_METRIC, {}, "Sum", period),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="behind",
                    expression=stalled_expression("visits", "age"),
                    label="Stream processor iterator age (24 h when stalled)",
                    return_data=True,
                ),
            ],
            threshold=args.iterator_age_threshold_ms,
            comparison_operator="GreaterThanThreshold",
            # Two periods in a row: a visit at the very end of one period is read by the processor in the next.
            evaluation_periods=2,
            datapoints_to_alarm=2,
            # No data at all means the metrics themselves are gone: that is a failure too.
            treat_missing_data="breaching",
            alarm_actions=list(args.alarm_actions),
            ok_actions=list(args.alarm_actions),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.visit_filters.values())),
        )
        self.on_failure_messages = aws.cloudwatch.MetricAlarm(
            f"{name}-stream-on-failure-messages",
            alarm_description=f"{definition.PROJECT}: stream records were given up on (run the reconcile command)",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": args.on_failure_queue_name},
            statistic="Maximum",
            threshold=0,
            opts=child,
            **common,
        )
        # The processor logs and skips a record it cannot read; the total then drifts from the tags.
        self.malformed_filter = aws.cloudwatch.LogMetricFilter(
            f"{name}-stream-malformed-records-filter",
            log_group_name=args.processor_log_group_name,
            pattern=malformed_record_pattern(),
            metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                name=MALFORMED_RECORDS_METRIC,
                namespace=args.metric_namespace,
                value="1",
                unit="Count",
            ),
            opts=child,
        )
        self.malformed_records = aws.cloudwatch.MetricAlarm(
            f"{name}-stream-malformed-records",
            alarm_description=f"{definition.PROJECT}: the stream processor skipped malformed records "
            "(run the reconcile command)",
            namespace=args.metric_namespace,
            metric_name=MALFORMED_RECORDS_METRIC,
            statistic="Sum",
            threshold=0,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.malformed_filter]),
            **common,
        )
        self.all: list[aws.cloudwatch.MetricAlarm] = [
            *self.function_errors.values(),
            self.server_errors,
            self.iterator_age,
            self.on_failure_messages,
            self.malformed_records,
        ]
        """Every alarm of the stack."""
        self.register_outputs(
            {
                "function_error_alarms": {k: v.arn for k, v in self.function_errors.items()},
                "server_error_alarm": self.server_errors.arn,
                "iterator_age_alarm": self.iterator_age.arn,
                "on_failure_alarm": self.on_failure_messages.arn,
                "malformed_records_alarm": self.malformed_records.arn,
            }
        )
