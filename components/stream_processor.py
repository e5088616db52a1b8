"""The stream processor: a function fed by the table's stream, with bounded failures and an on-failure queue."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

import definition
from components import policies
from components.packaging import BuiltArchive
from components.site_function import SiteFunction, SiteFunctionArgs

ON_FAILURE_RETENTION_SECONDS = 14 * 24 * 3600  # SQS's maximum: time to look at a poison record


@dataclass
class StreamProcessorArgs:
    """The table and stream it reads, its code, and the event source mapping's settings."""

    table_name: pulumi.Input[str]
    table_arn: pulumi.Input[str]
    stream_arn: pulumi.Input[str]
    code: BuiltArchive
    settings: definition.Settings
    """Memory, timeout, log retention and every ``stream*`` setting come from here."""
    spec: definition.FunctionSpec = definition.STREAM_PROCESSOR
    """The function's definition; the processor never gets the Jinja2 layer."""


def filter_criteria() -> aws.lambda_.EventSourceMappingFilterCriteriaArgs:
    """The mapping's filters: one JSON pattern per ``definition.STREAM_FILTER_PATTERNS`` entry."""
    return aws.lambda_.EventSourceMappingFilterCriteriaArgs(
        filters=[
            aws.lambda_.EventSourceMappingFilterCriteriaFilterArgs(pattern=json.dumps(pattern, sort_keys=True))
            for pattern in definition.STREAM_FILTER_PATTERNS
        ]
    )


class StreamProcessor(pulumi.ComponentResource):
    """Keeps the site-wide total: the processor function, its stream and queue permissions, the mapping."""

    site_function: SiteFunction
    queue: aws.sqs.Queue
    stream_policy: aws.iam.RolePolicy
    mapping: aws.lambda_.EventSourceMapping

    def __init__(self, name: str, args: StreamProcessorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tag-counter:stream_processor:StreamProcessor", name, None, opts)
        if args.spec.uses_templates:
            raise ValueError("the stream processor must not render templates (it ships without Jinja2)")
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        self.site_function = SiteFunction(
            f"{name}-processor",
            SiteFunctionArgs(
                spec=args.spec,
                table_name=args.table_name,
                table_arn=args.table_arn,
                code=args.code,
                memory_mb=settings.processor_memory_mb,
                timeout_seconds=settings.processor_timeout_seconds,
                log_retention_days=settings.log_retention_days,
                environment=definition.function_environment(settings),
                grants=args.spec.table_grants(settings),
            ),
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-on-failure",
            message_retention_seconds=ON_FAILURE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        # Lambda's pollers read the stream and send failure records to the queue as the function's role.
        self.stream_policy = aws.iam.RolePolicy(
            f"{name}-stream-policy",
            role=self.site_function.role.id,
            policy=policies.policy_document(
                policies.statement("ReadTableStream", definition.STREAM_READ_ACTIONS, [args.stream_arn]),
                policies.statement("SendFailures", ("sqs:SendMessage",), [self.queue.arn]),
            ),
            opts=child,
        )
        self.mapping = aws.lambda_.EventSourceMapping(
            f"{name}-mapping",
            event_source_arn=args.stream_arn,
            function_name=self.site_function.function.arn,
            starting_position=settings.stream_starting_position,
            batch_size=settings.stream_batch_size,
            maximum_batching_window_in_seconds=settings.stream_batching_window_seconds,
            function_response_types=["ReportBatchItemFailures"],
            bisect_batch_on_function_error=settings.stream_bisect_on_error,
            maximum_retry_attempts=settings.stream_max_retries,
            maximum_record_age_in_seconds=settings.stream_max_record_age_seconds,
            destination_config=aws.lambda_.EventSourceMappingDestinationConfigArgs(
                on_failure=aws.lambda_.EventSourceMappingDestinationConfigOnFailureArgs(
                    destination_arn=self.queue.arn,
                ),
            ),
            filter_criteria=filter_criteria(),
            opts=pulumi.ResourceOptions(
                parent=self,
                # Lambda checks the role can read the stream and write the queue when the mapping is created.
                depends_on=[self.stream_policy, self.site_function.policy, self.site_function.function],
                # A changed starting position or stream replaces the mapping (a changed function alone updates it in
                # place). Created before the old one is deleted, two mappings would feed the total from one stream
                # for a while, counting visits twice; so the old one goes first. The new one starts from its
                # starting position: reconcile the total afterwards (docs/operating.md).
                delete_before_replace=True,
            ),
        )
        self.function = self.site_function.function
        self.register_outputs(
            {
                "function_name": self.function.name,
                "queue_url": self.queue.url,
                "queue_arn": self.queue.arn,
                "mapping_uuid": self.mapping.uuid,
            }
        )
