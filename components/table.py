"""The counter table: tags, the site-wide total and the stream processor's markers, with a stream."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

import definition


@dataclass
class CounterTableArgs:
    """How the stack wants its table kept."""

    point_in_time_recovery: bool = False
    """Continuous backups (costs money; ``prod`` turns it on)."""
    deletion_protection: bool = False
    """Refuse deletion, in DynamoDB and in Pulumi (``pulumi destroy`` then fails until it is turned off)."""


class CounterTable(pulumi.ComponentResource):
    """One on-demand DynamoDB table keyed by ``pk`` with a ``NEW_AND_OLD_IMAGES`` stream and TTL on markers."""

    table: aws.dynamodb.Table
    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    stream_arn: pulumi.Output[str]

    def __init__(self, name: str, args: CounterTableArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tag-counter:table:CounterTable", name, None, opts)
        self.table = aws.dynamodb.Table(
            f"{name}-table",
            attributes=[aws.dynamodb.TableAttributeArgs(name=definition.HASH_KEY, type="S")],
            hash_key=definition.HASH_KEY,
            billing_mode="PAY_PER_REQUEST",
            stream_enabled=True,
            stream_view_type=definition.STREAM_VIEW_TYPE,
            # Markers of applied stream batches carry an expiry; DynamoDB deletes them on its own.
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=definition.TTL_ATTRIBUTE_NAME, enabled=True),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=args.point_in_time_recovery),
            deletion_protection_enabled=args.deletion_protection,
            # How the operator command knows this table is tag-counter's (``admin.table``).
            tags=dict([definition.TABLE_TAG]),
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
        )
        self.name = self.table.name
        self.arn = self.table.arn
        self.stream_arn = self.table.stream_arn
        self.register_outputs({"name": self.name, "arn": self.arn, "stream_arn": self.stream_arn})
