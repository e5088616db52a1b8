"""The IAM actions each subcommand calls, so an operator can give the command a narrow role (docs/operating.md).

Every subcommand first checks the table (``admin.table``). Item actions on tag items can be limited with
``dynamodb:LeadingKeys`` = ``tag#*``, reconcile's on the total with ``site#total``; ``Scan`` reads the whole
table (it has no leading key) and the stream actions apply to the table's stream ARN.
"""

from __future__ import annotations

TABLE_CHECK = ("dynamodb:DescribeTable", "dynamodb:ListTagsOfResource")
STREAM_READ = ("dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords")

ACTIONS: dict[str, tuple[str, ...]] = {
    "set": (*TABLE_CHECK, "dynamodb:BatchGetItem", "dynamodb:UpdateItem"),
    "reset": (*TABLE_CHECK, "dynamodb:BatchGetItem", "dynamodb:UpdateItem"),
    "delete": (*TABLE_CHECK, "dynamodb:BatchGetItem", "dynamodb:DeleteItem"),
    "import": (*TABLE_CHECK, "dynamodb:BatchGetItem", "dynamodb:UpdateItem"),
    "export": (*TABLE_CHECK, "dynamodb:Scan"),
    "reconcile": (*TABLE_CHECK, "dynamodb:Scan", "dynamodb:GetItem", "dynamodb:UpdateItem", *STREAM_READ),
}
"""Subcommand -> the actions it calls (``--dry-run`` calls only the reads among them)."""
