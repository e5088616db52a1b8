"""The route functions' layer: Jinja2, MarkupSafe and crawlerdetect (the bot list), shared by the page functions."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

import definition
from components.packaging import BuiltArchive


@dataclass
class TemplateLayerArgs:
    """The built layer zip and the name it is published under."""

    archive: BuiltArchive
    """The zip from ``packaging.build_layer`` (``python/jinja2``, ``python/markupsafe``)."""
    layer_name: str
    """Layer names are not auto-named by the provider: include the stack so stacks do not share versions."""


class TemplateLayer(pulumi.ComponentResource):
    """A Lambda layer version for python3.13 on arm64, replaced whenever the zip's bytes change."""

    layer: aws.lambda_.LayerVersion
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: TemplateLayerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tag-counter:layer:TemplateLayer", name, None, opts)
        self.layer = aws.lambda_.LayerVersion(
            f"{name}-layer",
            layer_name=args.layer_name,
            code=args.archive.file_archive(),
            source_code_hash=args.archive.sha256_base64,
            compatible_runtimes=[definition.RUNTIME],
            compatible_architectures=[definition.ARCHITECTURE],
            description="Jinja2, MarkupSafe and crawlerdetect, pinned in layer/requirements.txt",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.layer.arn
        self.register_outputs({"arn": self.arn})
