"""The JSON counter: a tag's count as plain JSON that any page's own script may fetch, counting or only reading.

What the two JSON routes share (``functions.visit_json`` counts, ``functions.count_json`` only reads): the answer's
fields, JSON integers as they are (a script formats them), their headers, and errors that are JSON too, never an
HTML page. Any origin may read them (``Access-Control-Allow-Origin: *``): the counts are public, and nothing here
reads or sets a cookie or allows credentials. There is no JSONP: a ``callback`` parameter would turn the answer
into a script any page could run under this site's name; the query string is ignored, and the answer stays JSON
(``nosniff``: a browser refuses to run it as a script).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from functions.counting import Visit
from functions.tags import InvalidTag
from functions.web import (
    COUNT_CACHE_CONTROL,
    ERROR_CACHE_CONTROL,
    ROUTED_METHODS,
    VISIT_CACHE_CONTROL,
    BadRequest,
    Request,
    entity_tag,
    etag_matches,
    route_handler,
)

TEMPLATES: tuple[str, ...] = ()
"""The JSON functions render no template."""

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
HEADERS: Mapping[str, str] = {
    "Content-Type": JSON_CONTENT_TYPE,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Opened on its own, the answer loads and runs nothing, and no page may frame it.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    # Public counts, no credentials: any page's script may read them (a ``*`` never allows credentials).
    "Access-Control-Allow-Origin": "*",
    # Not a header a script may read unless it is named: a script told "busy" can then wait as long as asked.
    "Access-Control-Expose-Headers": "Retry-After",
}
"""Headers of every answer of the JSON routes, errors and 304s included."""

ERRORS: Mapping[int, tuple[str, str]] = {
    405: ("method not allowed", "This address can only be read (" + " or ".join(ROUTED_METHODS) + ")."),
    500: ("server error", "The count could not be read. Please try again in a moment."),
    503: ("busy", "The counter is busy. Please try again in a few seconds."),
}
"""``error`` and ``message`` of each error status but 400 (which says what is wrong with the request)."""


def json_text(value: Mapping[str, Any]) -> str:
    """Compact JSON, non-ASCII tags as they are (the body is UTF-8)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def counting_answer(visit: Visit) -> dict[str, Any]:
    """The counting route's answer: the tag, its counts after this request, and whether it counted (and if not,
    why: ``head``, ``bot`` or ``repeat``)."""
    answer: dict[str, Any] = {"tag": visit.tag, "visits": visit.visits, "today": visit.today, "counted": visit.counted}
    if not visit.counted:
        answer["reason"] = visit.reason
    return answer


def json_response(status: int, body: str, headers: Mapping[str, str]) -> dict[str, Any]:
    """A response API Gateway's proxy integration accepts as is (int status, str body, str headers)."""
    return {
        "statusCode": int(status),
        "headers": {**HEADERS, **{str(name): str(value) for name, value in headers.items()}},
        "body": str(body),
        "isBase64Encoded": False,
    }


def error_response(
    status: int, request: Request, error: BaseException | None, headers: Mapping[str, str] | None
) -> dict[str, Any]:
    """A JSON error: ``{"error": <a few words>, "message": <what to do>}``, never cached."""
    if isinstance(error, InvalidTag):
        short, message = "invalid tag", f"{error.problem} {error.reason}"
    elif isinstance(error, BadRequest):
        short, message = error.short, error.problem
    else:
        short, message = ERRORS.get(status, ERRORS[500])
    body = json_text({"error": short, "message": message})
    return json_response(status, body, {"Cache-Control": ERROR_CACHE_CONTROL, **(headers or {})})


def _fallback() -> dict[str, Any]:
    short, message = ERRORS[500]
    return json_response(500, json_text({"error": short, "message": message}), {"Cache-Control": ERROR_CACHE_CONTROL})


def json_handler(*, counting: bool) -> Callable[[Callable[[Request], Mapping[str, Any]]], Callable[[dict, Any], dict]]:
    """Make a Lambda handler of a JSON function (``Request -> answer``) with the site's error handling, in JSON.

    A counting answer is never cached (every load must reach the function); a read-only one may be for a few
    seconds, with an ``ETag`` (a matching ``If-None-Match`` gets a 304 with no body).
    """

    def decorate(answer: Callable[[Request], Mapping[str, Any]]) -> Callable[[dict, Any], dict]:
        def respond(request: Request) -> dict[str, Any]:
            body = json_text(answer(request))
            if counting:
                return json_response(200, body, {"Cache-Control": VISIT_CACHE_CONTROL})
            etag = entity_tag(body)
            headers = {"Cache-Control": COUNT_CACHE_CONTROL, "ETag": etag}
            if etag_matches(request.header("If-None-Match"), etag):
                return json_response(304, "", headers)
            return json_response(200, body, headers)

        return functools.wraps(answer)(route_handler(respond, error_response, _fallback))

    return decorate
