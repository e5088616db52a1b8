"""What every page function shares: templates, headers, relative links and the error pages.

The Jinja2 environment is built once per container (``environment()`` is cached); Lambda unpacks the code
archive with ``functions/`` and ``templates/`` side by side, so templates are found relative to this package.
``page_handler`` turns a small page function into a Lambda handler for API Gateway's REST proxy integration:
it answers non-GET methods with 405, an invalid tag with 400, DynamoDB throttling with 503 and ``Retry-After``,
anything else with 500; the details of a failure go to the log as structured JSON, never to the page.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from functions.log import get_logger, log_event
from functions.store import is_throttling
from functions.tags import RULE, InvalidTag, normalize_tag

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STYLESHEET = "site.css"

EXAMPLE_TAGS: tuple[str, ...] = ("hello", "serverless", "café")
"""Tags the home page links to (normalized forms); the stack's example URLs use the same list."""

VISIT_CACHE_CONTROL = "no-store"
"""Every load of a visit page must reach the function and count."""
COUNT_CACHE_CONTROL = "public, max-age=5"
"""Counts change all the time; a few seconds of caching spares DynamoDB a reload storm and stays honest."""
ERROR_CACHE_CONTROL = "no-store"
RETRY_AFTER_SECONDS = 2

ERROR_PAGES: Mapping[int, tuple[str, str]] = {
    400: ("This is not a valid tag", RULE),
    404: ("Page not found", "There is no page at this address. Tag pages live at tags/<your tag>."),
    405: ("Method not allowed", "These pages can only be read (GET)."),
    429: ("Too many requests", "The site is taking a breather. Please try again in a few seconds."),
    500: ("Something went wrong", "The page could not be made. Please try again in a moment."),
    503: ("Too many visits right now", "The counter is busy. Please try again in a few seconds."),
}

_logger = get_logger(__name__)

# Served if even the error template fails: a response must never turn into an API Gateway 502.
_FALLBACK_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error</title></head>'
    "<body><h1>Something went wrong</h1><p>Please try again in a moment.</p></body></html>"
)


def _stylesheet_text() -> str:
    return (TEMPLATES_DIR / STYLESHEET).read_text(encoding="utf-8")


def _style_hash(css: str) -> str:
    digest = hashlib.sha256(css.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# Hashed once at load: the only style the pages may apply is exactly the inline stylesheet they carry.
CONTENT_SECURITY_POLICY: str = "; ".join(
    (
        "default-src 'none'",
        f"style-src {_style_hash(_stylesheet_text())}",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)


def security_headers(cache_control: str) -> dict[str, str]:
    """The headers every HTML response carries (the stack's gateway responses and the local site reuse them)."""
    return {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": cache_control,
    }


@functools.cache
def environment() -> Environment:
    """The container's Jinja2 environment: autoescaping on, templates read once and cached."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    # Markup: the stylesheet is our own file; its text must reach the page byte for byte to match the hash.
    env.globals["stylesheet"] = Markup(_stylesheet_text())
    env.globals["total_catch_up"] = total_catch_up
    return env


STREAM_BATCHING_WINDOW_ENV = "STREAM_BATCHING_WINDOW_SECONDS"
"""Set by the program (``definition.function_environment``): the stream mapping's batching window."""


def total_catch_up() -> str:
    """How soon the site-wide total includes a visit: the mapping's batching window, plus a poll and a batch."""
    try:
        window = int(os.environ.get(STREAM_BATCHING_WINDOW_ENV, "1"))
    except ValueError:
        window = 1
    return "within a second or so" if window <= 0 else f"within about {window + 1} seconds"


def render(template: str, **context: Any) -> str:
    """Render one template of ``templates/``."""
    return environment().get_template(template).render(**context)


def render_error_page(status: int, *, home_href: str | None = None, problem: str | None = None) -> str:
    """The full HTML of the error page for ``status`` (400, 404, 405, 429, 500, 503).

    Without ``home_href`` (gateway responses, which cannot know the page's depth) the page has no home link.
    """
    title, explanation = ERROR_PAGES.get(status, ERROR_PAGES[500])
    return render(
        "error.html",
        status=status,
        title=title,
        explanation=explanation,
        problem=problem,
        home_href=home_href,
    )


def site_prefix(event: Mapping[str, Any]) -> str:
    """The relative path from the requested page to the site root ("", "../", or "dev/" at a bare stage root).

    Works from ``requestContext.path`` (the path the browser asked for, stage or base path included) and the
    route's ``resource``: the last ``len(resource segments)`` segments are the route, the rest is the root.
    """
    context = event.get("requestContext") or {}
    path = context.get("path") or event.get("path") or "/"
    resource = event.get("resource") or "/"
    depth = len([segment for segment in resource.split("/") if segment])
    parts = path.split("/")[1:]
    trailing_slash = path.endswith("/")
    if trailing_slash:
        parts = parts[:-1]
    root = parts[: max(0, len(parts) - depth)]
    page_directory = parts if trailing_slash else parts[:-1]
    if len(page_directory) >= len(root):
        return "../" * (len(page_directory) - len(root))
    # The page sits above the root's directory (``/dev`` without its slash): walk down into the root.
    return "".join(segment + "/" for segment in root[len(page_directory):])


@dataclass
class Request:
    """One API Gateway request as a page function sees it."""

    event: Mapping[str, Any]
    context: Any
    prefix: str = field(init=False)

    def __post_init__(self) -> None:
        self.prefix = site_prefix(self.event)

    def tag(self) -> str:
        """The normalized ``{tag}`` path parameter; ``InvalidTag`` when missing or invalid."""
        parameters = self.event.get("pathParameters") or {}
        return normalize_tag(parameters.get("tag"))

    def link(self, *segments: str) -> str:
        """A relative link to a page of this site; each segment percent-encoded (``/`` included)."""
        path = "/".join(quote(segment, safe="") for segment in segments)
        return (self.prefix + path) or "./"


@dataclass
class Page:
    """What a page function returns: a template and its values; ``page_handler`` renders it."""

    template: str
    values: dict[str, Any]


def html_response(
    status: int, body: str, cache_control: str, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A response API Gateway's proxy integration accepts as is (int status, str body, str headers)."""
    all_headers = security_headers(cache_control)
    all_headers.update({str(name): str(value) for name, value in (headers or {}).items()})
    return {"statusCode": int(status), "headers": all_headers, "body": str(body), "isBase64Encoded": False}


def _error_response(
    status: int, request: Request, problem: str | None = None, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    try:
        body = render_error_page(status, home_href=request.link(), problem=problem)
    except Exception:  # noqa: BLE001 - the error page itself failed: log it, still answer with HTML
        log_event(_logger, logging.ERROR, "error page failed to render", exc_info=True, status=status)
        body = _FALLBACK_PAGE
    return html_response(status, body, ERROR_CACHE_CONTROL, headers)


def _request_fields(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    request_context = event.get("requestContext") or {}
    return {
        "route": event.get("resource"),
        "http_method": event.get("httpMethod"),
        "api_request_id": request_context.get("requestId"),
        "function_request_id": getattr(context, "aws_request_id", None),
    }


def _error_fields(error: BaseException) -> dict[str, Any]:
    fields: dict[str, Any] = {"error_type": type(error).__name__, "error_message": str(error)}
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        fields["error_code"] = response.get("Error", {}).get("Code")
        fields["aws_request_id_of_call"] = response.get("ResponseMetadata", {}).get("RequestId")
    return fields


def _respond(page: Callable[[Request], Page], request: Request, cache_control: str) -> dict[str, Any]:
    event, context = request.event, request.context
    if event.get("httpMethod") != "GET":
        # Only GET is routed; anything else must not write, and says what would work.
        return _error_response(405, request, headers={"Allow": "GET"})
    try:
        result = page(request)
        values = {"home_href": request.link(), **result.values}
        return html_response(200, render(result.template, **values), cache_control)
    except InvalidTag as error:
        log_event(
            _logger,
            logging.INFO,
            "invalid tag",
            problem=error.problem,
            raw_tag=str((event.get("pathParameters") or {}).get("tag"))[:200],
            **_request_fields(event, context),
        )
        return _error_response(400, request, problem=error.problem)
    except Exception as error:  # noqa: BLE001 - every failure becomes an HTML page, never a 502
        fields = {**_request_fields(event, context), **_error_fields(error)}
        if is_throttling(error):
            log_event(_logger, logging.WARNING, "dynamodb throttled the request", **fields)
            return _error_response(503, request, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        log_event(_logger, logging.ERROR, "request failed", exc_info=True, **fields)
        return _error_response(500, request)


def page_handler(cache_control: str) -> Callable[[Callable[[Request], Page]], Callable[[dict, Any], dict]]:
    """Make a Lambda handler of a page function (``Request -> Page``) with the site's error handling."""

    def decorate(page: Callable[[Request], Page]) -> Callable[[dict, Any], dict]:
        @functools.wraps(page)
        def handler(event: dict, context: Any) -> dict:
            try:
                return _respond(page, Request(event or {}, context), cache_control)
            except Exception:  # noqa: BLE001 - last resort (e.g. an event of an unexpected shape): never a 502
                log_event(_logger, logging.ERROR, "request failed before it could be answered", exc_info=True)
                return html_response(500, _FALLBACK_PAGE, ERROR_CACHE_CONTROL)

        return handler

    return decorate
