"""Functions that break API Gateway's proxy contract, to show the local site answers 502 as the gateway does.

Not stand-ins for the product's handlers (those never answer like this): each is one way a deployed
function can fail that API Gateway turns into a 502.
"""

from __future__ import annotations

from typing import Any


def raises(event: dict, context: Any) -> dict:
    """A function error (an unhandled exception)."""
    raise RuntimeError("the function crashed")


def string_status(event: dict, context: Any) -> dict:
    """statusCode must be an integer."""
    return {"statusCode": "200", "body": "ok"}


def bytes_body(event: dict, context: Any) -> dict:
    """body must be a string."""
    return {"statusCode": 200, "body": b"ok"}


def number_header(event: dict, context: Any) -> dict:
    """Header values must be strings."""
    return {"statusCode": 200, "headers": {"Retry-After": 2}, "body": "ok"}


def not_a_dict(event: dict, context: Any) -> list:
    """The response must be an object."""
    return ["ok"]
