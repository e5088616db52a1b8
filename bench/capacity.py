"""DynamoDB capacity units from item sizes, by DynamoDB's published rules.

moto answers ``ReturnConsumedCapacity`` with fixed figures (a BatchGetItem is "one unit per key" whatever the
items weigh), so the benchmark computes units itself from the items a call touched, before and after it:

- item size: attribute names and values in UTF-8 bytes; a number takes 1 byte per two significant digits plus 1;
  binary its raw bytes; booleans and null 1; lists and maps 3 bytes plus 1 per element.
- reads: 1 unit per 4 KB of each item read (rounded up, at least 1, a missing item too), half that when
  eventually consistent; a projection does not reduce it.
- writes: 1 unit per 1 KB of the larger of the item before and after (rounded up, at least 1).
- transactions: twice the units of the same reads or writes (prepare and commit).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from typing import Any

Item = Mapping[str, Mapping[str, Any]]

READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024


def number_size(text: str) -> int:
    """Bytes DynamoDB counts for a number's value: 1 per two significant digits, plus 1."""
    mantissa = re.split("[eE]", text.strip())[0].lstrip("+-").replace(".", "")
    digits = mantissa.strip("0") or "0"  # leading and trailing zeros are not stored
    return math.ceil(len(digits) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes DynamoDB counts for one attribute value in wire form (``{"S": ...}``, ``{"N": ...}``, ...)."""
    (kind, data), = value.items()
    if kind == "S":
        return len(data.encode("utf-8"))
    if kind == "N":
        return number_size(data)
    if kind == "B":
        return len(data) if isinstance(data, (bytes, bytearray)) else len(base64.b64decode(data))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(member.encode("utf-8")) for member in data)
    if kind == "NS":
        return sum(number_size(member) for member in data)
    if kind == "BS":
        return sum(value_size({"B": member}) for member in data)
    if kind == "L":
        return 3 + sum(1 + value_size(member) for member in data)
    if kind == "M":
        return 3 + sum(1 + len(name.encode("utf-8")) + value_size(member) for name, member in data.items())
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def item_size(item: Item | None) -> int:
    """An item's size in bytes as DynamoDB counts it (0 for a missing item)."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def read_units(item: Item | None, *, consistent: bool) -> float:
    """Read request units to read one item (missing items cost the minimum too)."""
    units = max(1, math.ceil(item_size(item) / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def write_units(before: Item | None, after: Item | None) -> float:
    """Write request units for one write that turned ``before`` into ``after``."""
    return float(max(1, math.ceil(max(item_size(before), item_size(after)) / WRITE_UNIT_BYTES)))


def key_of(item_or_key: Item, key_names: tuple[str, ...]) -> str:
    """A stable text form of an item's key, to pair a call's items before and after it."""
    return "|".join(f"{name}={sorted(item_or_key[name].items())}" for name in key_names)


def call_units(operation: str, params: Mapping[str, Any], before: Mapping[str, Item | None],
               after: Mapping[str, Item | None], key_names: tuple[str, ...]) -> tuple[float, float]:
    """``(read units, write units)`` one call consumed, given the items it touched before and after it.

    ``before`` and ``after`` map ``key_of(key)`` to the item (or None when absent).
    """
    reads = writes = 0.0
    if operation == "GetItem":
        key = key_of(params["Key"], key_names)
        reads = read_units(after.get(key), consistent=bool(params.get("ConsistentRead")))
    elif operation == "BatchGetItem":
        for request in params["RequestItems"].values():
            for raw_key in request["Keys"]:
                key = key_of(raw_key, key_names)
                reads += read_units(after.get(key), consistent=bool(request.get("ConsistentRead")))
    elif operation in ("UpdateItem", "PutItem", "DeleteItem"):
        raw_key = params["Key"] if "Key" in params else params["Item"]
        key = key_of(raw_key, key_names)
        writes = write_units(before.get(key), after.get(key))
    elif operation == "TransactWriteItems":
        for entry in params["TransactItems"]:
            (kind, body), = entry.items()
            raw_key = body["Item"] if kind == "Put" else body["Key"]
            key = key_of(raw_key, key_names)
            if kind == "ConditionCheck":
                reads += 2 * read_units(before.get(key), consistent=True)
            else:
                writes += 2 * write_units(before.get(key), after.get(key))
    else:
        raise ValueError(f"no capacity rule for {operation}")
    return reads, writes


def touched_keys(operation: str, params: Mapping[str, Any], key_names: tuple[str, ...]) -> list[Item]:
    """The keys (as wire-form key maps) of every item a call reads or writes."""
    def key_only(item: Item) -> dict[str, Any]:
        return {name: dict(item[name]) for name in key_names}

    if operation in ("GetItem", "UpdateItem", "DeleteItem"):
        return [key_only(params["Key"])]
    if operation == "PutItem":
        return [key_only(params["Item"])]
    if operation == "BatchGetItem":
        return [key_only(raw) for request in params["RequestItems"].values() for raw in request["Keys"]]
    if operation == "TransactWriteItems":
        keys = []
        for entry in params["TransactItems"]:
            (kind, body), = entry.items()
            keys.append(key_only(body["Item"] if kind == "Put" else body["Key"]))
        return keys
    return []
