"""IAM documents as data: each statement names exact actions on exact resources, never ``*``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi

import definition

POLICY_VERSION = "2012-10-17"
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")


def assume_role_policy(service: str) -> str:
    """Trust policy letting one AWS service (``lambda.amazonaws.com``) assume the role."""
    return json.dumps(
        {
            "Version": POLICY_VERSION,
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]],
    condition: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``Allow`` statement; refuses a wildcard action or resource so no caller can widen access by mistake."""
    for action in actions:
        if "*" in action:
            raise ValueError(f"statement {sid}: wildcard action {action!r}")
    for resource in resources:
        if isinstance(resource, str) and resource.strip() in ("*", "arn:aws:*"):
            raise ValueError(f"statement {sid}: wildcard resource {resource!r}")
    body: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": list(resources)}
    if condition:
        body["Condition"] = condition
    return body


def table_statements(grants: Sequence[definition.Grant], table_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """Exactly the (action, key pattern) pairs of ``grants`` (``FunctionSpec.table_grants``): one statement per
    action, naming only the key patterns granted with that action.

    One statement per action rather than per pair: a request with several keys (``BatchGetItem`` of a tag and the
    total) is allowed only if one statement's patterns cover every key in it (``ForAllValues``).
    """
    statements = []
    for action in definition.grant_actions(grants):
        patterns = list(definition.grant_key_patterns(grants, action))
        statements.append(
            statement(
                "Table" + action.split(":", 1)[1],
                (action,),
                [table_arn],
                # ForAllValues: every partition key in the request must match one of the patterns.
                {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": patterns}},
            )
        )
    return statements


def log_statement(log_group_arn: pulumi.Input[str]) -> dict[str, Any]:
    """Writing to one log group: the group itself (CreateLogStream) and its streams (PutLogEvents).

    ``<group ARN>:*`` is the form AWS documents for Lambda's log permissions; it matches only that group's
    ``:log-stream:<name>`` ARNs. The bare ARN covers the group-level check of ``CreateLogStream``.
    """
    return statement("OwnLogGroup", LOG_ACTIONS, [log_group_arn, pulumi.Output.concat(log_group_arn, ":*")])


def policy_document(*statements: dict[str, Any]) -> pulumi.Output[str]:
    """Serialise statements (which may hold outputs such as ARNs) into one policy document."""
    return pulumi.Output.json_dumps({"Version": POLICY_VERSION, "Statement": list(statements)})
