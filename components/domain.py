"""The site on the owner's own domain: an API Gateway custom domain mapped to the stage, with its certificate.

A badge's URL is pasted once and read for years; the default ``execute-api`` address changes whenever the API is
replaced. With ``domainName`` the site also answers at ``https://<domain>/[<basePath>/]``, an address the owner keeps.
Either the owner brings an ACM certificate (``certificateArn``; DNS is then theirs: a CNAME to ``dns_target``), or the
program requests one for the domain in a Route 53 zone (``hostedZoneId``), validates it by DNS there, waits for ACM to
issue it, and points the domain at the API with an alias record.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

SECURITY_POLICY = "TLS_1_2"
"""The custom domain's TLS policy: TLS 1.2 and newer only."""
ENDPOINT_TYPE = "REGIONAL"
"""A Regional domain, like the API: its certificate must be in the stack's region."""
VALIDATION_RECORD_TTL = 300


@dataclass
class CustomDomainArgs:
    """The domain, where its certificate comes from, and the stage it serves."""

    domain_name: str
    """The site's host name (``counter.example.com``)."""
    rest_api_id: pulumi.Input[str]
    stage_name: pulumi.Input[str]
    """The stage the domain maps to."""
    certificate_arn: str = ""
    """An existing ACM certificate for the domain, in the stack's region; or else ``hosted_zone_id``."""
    hosted_zone_id: str = ""
    """The Route 53 zone holding the domain: the certificate is requested and validated there, the alias created."""
    base_path: str = ""
    """The path segment the stage is mapped under; empty: the domain's root."""


class CustomDomain(pulumi.ComponentResource):
    """A Regional API Gateway domain name (TLS 1.2) and its base path mapping; with a hosted zone also the
    certificate, its DNS validation and the domain's alias record."""

    certificate: aws.acm.Certificate | None
    validation_record: aws.route53.Record | None
    validation: aws.acm.CertificateValidation | None
    domain: aws.apigateway.DomainName
    mapping: aws.apigateway.BasePathMapping
    alias: aws.route53.Record | None
    dns_target: pulumi.Output[str]
    """The Regional host name the domain must point at (a CNAME, when its DNS is not in the given zone)."""

    def __init__(self, name: str, args: CustomDomainArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tag-counter:domain:CustomDomain", name, None, opts)
        if bool(args.certificate_arn) == bool(args.hosted_zone_id):
            raise ValueError("a custom domain needs exactly one of a certificate ARN and a hosted zone id")
        child = pulumi.ResourceOptions(parent=self)
        self.certificate = self.validation_record = self.validation = self.alias = None
        certificate_arn: pulumi.Input[str] = args.certificate_arn
        if args.hosted_zone_id:
            self.certificate = aws.acm.Certificate(
                f"{name}-certificate",
                domain_name=args.domain_name,
                validation_method="DNS",
                opts=child,
            )
            # One domain, no alternative names: exactly one validation record.
            option = self.certificate.domain_validation_options.apply(lambda options: options[0])
            self.validation_record = aws.route53.Record(
                f"{name}-certificate-validation-record",
                zone_id=args.hosted_zone_id,
                name=option.apply(lambda o: o.resource_record_name),
                type=option.apply(lambda o: o.resource_record_type),
                records=[option.apply(lambda o: o.resource_record_value)],
                ttl=VALIDATION_RECORD_TTL,
                # ACM asks for the same record for every certificate of this domain in the account: one left by an
                # earlier certificate is taken over, not a conflict.
                allow_overwrite=True,
                opts=child,
            )
            # Waits until ACM has issued the certificate: the domain name is created only with a valid one.
            self.validation = aws.acm.CertificateValidation(
                f"{name}-certificate-validation",
                certificate_arn=self.certificate.arn,
                validation_record_fqdns=[self.validation_record.fqdn],
                opts=child,
            )
            certificate_arn = self.validation.certificate_arn
        self.domain = aws.apigateway.DomainName(
            f"{name}-domain",
            domain_name=args.domain_name,
            regional_certificate_arn=certificate_arn,
            endpoint_configuration=aws.apigateway.DomainNameEndpointConfigurationArgs(types=ENDPOINT_TYPE),
            security_policy=SECURITY_POLICY,
            opts=child,
        )
        self.mapping = aws.apigateway.BasePathMapping(
            f"{name}-mapping",
            rest_api=args.rest_api_id,
            stage_name=args.stage_name,
            domain_name=self.domain.domain_name,
            # No base path maps the domain's root.
            base_path=args.base_path or None,
            opts=child,
        )
        self.dns_target = self.domain.regional_domain_name
        if args.hosted_zone_id:
            self.alias = aws.route53.Record(
                f"{name}-alias",
                zone_id=args.hosted_zone_id,
                name=args.domain_name,
                type="A",
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=self.domain.regional_domain_name,
                        zone_id=self.domain.regional_zone_id,
                        evaluate_target_health=False,
                    )
                ],
                opts=child,
            )
        self.register_outputs(
            {
                "domain_name": self.domain.domain_name,
                "dns_target": self.dns_target,
                "certificate_arn": certificate_arn,
            }
        )
