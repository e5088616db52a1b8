"""CloudWatch alarms: a function failing, the stream falling behind, records given up on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

import definition


@dataclass
class AlarmsArgs:
    """What to watch and how close."""

    function_names: Mapping[str, pulumi.Input[str]]
    """Deployed function name for each ``FunctionSpec.name``: one Errors alarm each."""
    processor_function_name: pulumi.Input[str]
    """The stream processor, whose IteratorAge says how far behind the stream it is."""
    on_failure_queue_name: pulumi.Input[str]
    """Any message there is a stream record that was never applied."""
    iterator_age_threshold_ms: int = 60_000
    period_seconds: int = 300
    alarm_actions: Sequence[pulumi.Input[str]] = field(default_factory=list)
    """Where to send alarms (e.g. an SNS topic ARN); none by default, the alarms still show in the console."""


class Alarms(pulumi.ComponentResource):
    """One alarm per function's errors, one on the processor's iterator age, one on the on-failure queue."""

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
        }
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
        self.iterator_age = aws.cloudwatch.MetricAlarm(
            f"{name}-stream-iterator-age",
            alarm_description=f"{definition.PROJECT}: the stream processor is falling behind the table's stream",
            namespace="AWS/Lambda",
            metric_name="IteratorAge",
            dimensions={"FunctionName": args.processor_function_name},
            statistic="Maximum",
            threshold=args.iterator_age_threshold_ms,
            opts=child,
            **common,
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
        self.register_outputs(
            {
                "function_error_alarms": {k: v.arn for k, v in self.function_errors.items()},
                "iterator_age_alarm": self.iterator_age.arn,
                "on_failure_alarm": self.on_failure_messages.arn,
            }
        )
