"""Where the alarms go: a topic of the stack's own with email subscriptions, or a topic the owner already has."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

import definition


@dataclass
class AlarmNotificationsArgs:
    """Email addresses to subscribe to a new topic, or an existing topic's ARN (not both)."""

    emails: Sequence[str] = field(default_factory=tuple)
    """Each gets an email subscription, pending until its owner follows the link in AWS's confirmation email."""
    topic_arn: str = ""
    """A topic the owner already has, in the stack's region: used as is, nothing created."""


class AlarmNotifications(pulumi.ComponentResource):
    """The SNS topic every alarm notifies, on ALARM and on OK; ``topic_arn`` is ``None`` when there is none."""

    topic: aws.sns.Topic | None
    subscriptions: list[aws.sns.TopicSubscription]
    topic_arn: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: AlarmNotificationsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tag-counter:notifications:AlarmNotifications", name, None, opts)
        if args.emails and args.topic_arn:
            raise ValueError("alarm notifications take email addresses or an existing topic, not both")
        child = pulumi.ResourceOptions(parent=self)
        self.topic = None
        self.subscriptions = []
        self.topic_arn = pulumi.Output.from_input(args.topic_arn) if args.topic_arn else None
        if args.emails:
            self.topic = aws.sns.Topic(
                f"{name}-topic",
                display_name=f"{definition.PROJECT} alarms",
                opts=child,
            )
            self.topic_arn = self.topic.arn
            self.subscriptions = [
                aws.sns.TopicSubscription(
                    # Named by the address, not its place in the list: reordering the list leaves every confirmed
                    # subscription alone.
                    f"{name}-email-{hashlib.sha256(address.encode()).hexdigest()[:10]}",
                    topic=self.topic.arn,
                    protocol="email",
                    endpoint=address,
                    opts=child,
                )
                for address in args.emails
            ]
        self.register_outputs({"topic_arn": self.topic_arn})
