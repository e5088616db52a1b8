"""Which table the operator command may act on: only one tag-counter created, recognised positively.

A table is tag-counter's when all of these hold:
- its key schema is the program's (one string partition key ``pk``) and it has a ``NEW_AND_OLD_IMAGES`` stream;
- it carries the resource tag ``definition.TABLE_TAG``, which the program (``components/table.py``) and the
  local site (``definition.create_table``) put on every table they create.
The schema alone is no proof: many applications key a table on ``pk`` and enable a stream. Nor is the content:
the key namespaces grow (a feature may add its own items), and an empty table says nothing. The tag is the
program's own statement. A table deployed before the tag existed gets it at its stack's next ``pulumi up``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

import definition


class UnrecognisedTable(Exception):
    """The table is not one tag-counter created; nothing was read or written beyond its description."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CounterTable:
    """A recognised tag-counter table."""

    name: str
    arn: str
    stream_arn: str


def check_table(client: Any, table_name: str) -> CounterTable:
    """The table, if it is tag-counter's; ``UnrecognisedTable`` saying why not otherwise (nothing written)."""
    try:
        table = client.describe_table(TableName=table_name)["Table"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise UnrecognisedTable(f"table {table_name!r} was not found") from None
        raise
    key = definition.HASH_KEY
    schema = [(item["AttributeName"], item["KeyType"]) for item in table.get("KeySchema", [])]
    if schema != [(key, "HASH")]:
        raise UnrecognisedTable(f"table {table_name!r} has key schema {schema}, expected only {key!r} HASH")
    types = {item["AttributeName"]: item["AttributeType"] for item in table.get("AttributeDefinitions", [])}
    if types.get(key) != "S":
        raise UnrecognisedTable(f"table {table_name!r}: key {key!r} is not a string attribute")
    stream = table.get("StreamSpecification") or {}
    view = definition.STREAM_VIEW_TYPE
    if not stream.get("StreamEnabled") or stream.get("StreamViewType") != view or not table.get("LatestStreamArn"):
        raise UnrecognisedTable(f"table {table_name!r} has no {view} stream")
    tags: dict[str, str] = {}
    request: dict[str, Any] = {"ResourceArn": table["TableArn"]}
    while True:
        page = client.list_tags_of_resource(**request)
        tags.update({tag["Key"]: tag["Value"] for tag in page.get("Tags", [])})
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    tag_key, tag_value = definition.TABLE_TAG
    if tags.get(tag_key) != tag_value:
        raise UnrecognisedTable(
            f"table {table_name!r} has tag-counter's key schema and stream but not its tag "
            f"{tag_key}={tag_value}, so it belongs to another application "
            "(a tag-counter stack deployed before that tag existed gets it at its next `pulumi up`)"
        )
    return CounterTable(table_name, table["TableArn"], table["LatestStreamArn"])
