"""One Lambda function of the site: its role, its exact policy, its log group, the function itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

import definition
from components import policies
from components.packaging import BuiltArchive


@dataclass
class SiteFunctionArgs:
    """What one function needs: its definition, the table it uses, its code and its sizing."""

    spec: definition.FunctionSpec
    """The function as ``definition.py`` declares it (handler, table actions, key patterns, templates)."""
    table_name: pulumi.Input[str]
    """Passed to the handler as ``TABLE_NAME``."""
    table_arn: pulumi.Input[str]
    """The only table the role may touch."""
    code: BuiltArchive
    """The deterministic code archive (``functions/`` and ``templates/``)."""
    memory_mb: int = 256
    timeout_seconds: int = 5
    log_retention_days: int = 14
    """How long CloudWatch keeps this function's logs."""
    template_layer_arn: pulumi.Input[str] | None = None
    """The Jinja2 layer; attached only when ``spec.uses_templates`` (and then required)."""
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Further environment variables (``definition.function_environment``): the settings the code reads."""
    grants: Sequence[definition.Grant] | None = None
    """The table pairs its role allows (``spec.table_grants(settings)``); ``None``: ``spec.grants``."""


class SiteFunction(pulumi.ComponentResource):
    """A least-privilege Lambda function whose log group exists, with retention, before the function does."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy
    log_group: aws.cloudwatch.LogGroup
    function: aws.lambda_.Function

    def __init__(self, name: str, args: SiteFunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tag-counter:site_function:SiteFunction", name, None, opts)
        spec = args.spec
        if spec.uses_templates and args.template_layer_arn is None:
            raise ValueError(f"function {spec.name} renders templates and needs the Jinja2 layer")
        child = pulumi.ResourceOptions(parent=self)

        # Created by the program, not by Lambda on first write, so it has a retention and
        # `pulumi destroy` removes it; logging_config below points the function at it.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=policies.assume_role_policy("lambda.amazonaws.com"),
            description=f"{definition.PROJECT} {spec.name} function",
            opts=child,
        )
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=policies.policy_document(
                *policies.table_statements(spec.grants if args.grants is None else args.grants, args.table_arn),
                policies.log_statement(self.log_group.arn),
            ),
            opts=child,
        )
        layers = [args.template_layer_arn] if spec.uses_templates and args.template_layer_arn is not None else []
        self.function = aws.lambda_.Function(
            f"{name}-function",
            role=self.role.arn,
            runtime=definition.RUNTIME,
            architectures=[definition.ARCHITECTURE],
            handler=spec.handler,
            code=args.code.file_archive(),
            source_code_hash=args.code.sha256_base64,
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            layers=layers,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={**args.environment, definition.TABLE_NAME_ENV: args.table_name},
            ),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON",
                log_group=self.log_group.name,
            ),
            description=f"{definition.PROJECT}: {spec.name} ({spec.handler})",
            # The policy first: a function invoked before its permissions exist fails its first requests.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group, self.policy]),
        )
        self.register_outputs(
            {
                "function_name": self.function.name,
                "function_arn": self.function.arn,
                "role_arn": self.role.arn,
                "log_group_name": self.log_group.name,
            }
        )
