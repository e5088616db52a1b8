"""What every page function shares: templates, headers, relative links and the error pages.

The Jinja2 environment is built once per container, at import, and each handler module loads the templates it
renders at import too (``load_templates``), in Lambda's init; Lambda unpacks the code archive with ``functions/``
and ``templates/`` side by side, so templates are found relative to this package.
``page_handler`` turns a small page function into a Lambda handler for API Gateway's REST proxy integration:
it answers ``HEAD`` like ``GET`` (API Gateway drops the body), other methods with 405, an invalid tag or option with 400,
DynamoDB throttling with 503 and ``Retry-After``, anything else with 500; the details of a failure go to the
log as structured JSON, never to the page. The badges (``functions.badge``) share the same ``serve``.
Links are built from the route table of ``functions.links``, never spelled here.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from functions import links
from functions.log import get_logger, log_event
from functions.store import freeze_container_objects, is_throttling
from functions.tags import RULE, InvalidTag, normalize_tag

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STYLESHEET = "site.css"
PAGE_TEMPLATES: tuple[str, ...] = ("base.html", "error.html")
"""What every page function renders besides its own page: the base its pages extend, and its error pages."""

EXAMPLE_TAGS: tuple[str, ...] = ("hello", "serverless", "café")
"""Tags the home page links to (normalized forms); the stack's example URLs use the same list."""

VISIT_CACHE_CONTROL = "no-store"
"""Every load of a visit page must reach the function and count."""
COUNT_CACHE_CONTROL = "public, max-age=5"
"""Counts change all the time; a few seconds of caching spares DynamoDB a reload storm and stays honest."""
ERROR_CACHE_CONTROL = "no-store"
RETRY_AFTER_SECONDS = 2
ROUTED_METHODS = ("GET", "HEAD")
"""What API Gateway routes to every function; a HEAD answers like a GET (the gateway drops the body) and never writes."""

ERROR_PAGES: Mapping[int, tuple[str, str]] = {
    400: ("This is not a valid tag", RULE),
    # No route's path here: gateway responses are rendered by the program, which knows no stage or depth.
    404: ("Page not found", "There is no page at this address. The home page says where each tag's pages are."),
    405: ("Method not allowed", "These pages can only be read (GET or HEAD)."),
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


STYLESHEET_TEXT: str = (TEMPLATES_DIR / STYLESHEET).read_text(encoding="utf-8")
"""The inline stylesheet, read once at import (Lambda's init)."""


def _style_hash(css: str) -> str:
    digest = hashlib.sha256(css.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# Hashed once at load: the only style the pages may apply is exactly the inline stylesheet they carry.
CONTENT_SECURITY_POLICY: str = "; ".join(
    (
        "default-src 'none'",
        f"style-src {_style_hash(STYLESHEET_TEXT)}",
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


def gateway_headers(cache_control: str) -> dict[str, str]:
    """The headers of the gateway's own pages (404, 429, 5xx; the stack's gateway responses and the local site's).

    The HTML pages' headers, plus CORS for any origin: a page's script calling the JSON routes then sees a throttled
    or failed request as its status (429 with ``Retry-After``, 5xx) instead of an opaque network error. The pages are
    public and carry no credentials, so nothing is exposed that a plain fetch would not show.
    """
    return {
        **security_headers(cache_control),
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "Retry-After",
    }


def format_count(count: int, compact: bool = False) -> str:
    """A count for people: ``1,234,567``, or with ``compact`` ``1.2M`` (never more than the count: truncated).

    The one rule for every number a page or a badge shows: the templates' ``count`` filter is this function.
    """
    if not compact or count < 1000:
        return f"{count:,}"
    for unit, size in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if count >= size:
            tenths = count * 10 // size
            if tenths < 100:
                whole, tenth = divmod(tenths, 10)
                return f"{whole}.{tenth}{unit}" if tenth else f"{whole}{unit}"
            return f"{count // size}{unit}"
    return str(count)  # unreachable: count >= 1000 always finds a unit


def build_environment() -> Environment:
    """Build the container's Jinja2 environment (autoescaping on, no template loaded yet); ``environment`` returns
    it. Called once at import; handlers then load their templates with ``load_templates`` (a rebuild drops them)."""
    global _environment
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # a loaded template is never checked against its file again
    )
    # Markup: the stylesheet is our own file; its text must reach the page byte for byte to match the hash.
    env.globals["stylesheet"] = Markup(STYLESHEET_TEXT)
    env.globals["total_catch_up"] = total_catch_up
    env.filters["count"] = format_count
    _environment = env
    return env


def environment() -> Environment:
    """The container's Jinja2 environment (built at import by ``build_environment``)."""
    return _environment


def load_templates(names: Iterable[str]) -> None:
    """Load and compile ``names`` now, into the environment's cache: a handler module calls it at import with
    every template it renders (its page, ``base.html``, ``error.html``...), so that the work runs in Lambda's
    init at full CPU and no request compiles a template."""
    for name in names:
        _environment.get_template(name)
    freeze_container_objects()  # the end of a page function's init: see the function


STREAM_BATCHING_WINDOW_ENV = "STREAM_BATCHING_WINDOW_SECONDS"
"""Set by the program (``definition.function_environment``): the stream mapping's batching window."""


def total_catch_up() -> str:
    """How soon the site-wide total includes a visit: the mapping's batching window, plus a poll and a batch."""
    try:
        window = int(os.environ.get(STREAM_BATCHING_WINDOW_ENV, "1"))
    except ValueError:
        window = 1
    return "within a second or so" if window <= 0 else f"within about {window + 1} seconds"


_environment: Environment = build_environment()


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


def _root_and_page_directory(event: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The site root's path segments and those of the requested page's directory.

    Works from ``requestContext.path`` (the path the browser asked for, stage or custom domain base path
    included) and the route's ``resource``: the last ``len(resource segments)`` segments are the route, the
    rest is the root.
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
    return root, page_directory


def site_prefix(event: Mapping[str, Any]) -> str:
    """The relative path from the requested page to the site root ("", "../", or "dev/" at a bare stage root)."""
    root, page_directory = _root_and_page_directory(event)
    if len(page_directory) >= len(root):
        return "../" * (len(page_directory) - len(root))
    # The page sits above the root's directory (``/dev`` without its slash): walk down into the root.
    return "".join(segment + "/" for segment in root[len(page_directory):])


# A Host header is a DNS name or an address, with an optional port: anything else is not used in a URL.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")


@dataclass
class Request:
    """One API Gateway request as a page function sees it."""

    event: Mapping[str, Any]
    context: Any
    prefix: str = field(init=False)

    def __post_init__(self) -> None:
        self.prefix = site_prefix(self.event)

    @property
    def method(self) -> str:
        """The HTTP method (``GET``, ``HEAD``, ...)."""
        return str(self.event.get("httpMethod") or "")

    def header(self, name: str) -> str | None:
        """A request header's value, whatever the case of its name (the last one when sent twice)."""
        wanted = name.lower()
        found = None
        for key, value in (self.event.get("headers") or {}).items():
            if str(key).lower() == wanted:
                found = value
        return None if found is None else str(found)

    def query(self) -> dict[str, list[str]]:
        """The query string's parameters, each with every value it was given.

        REST proxy events carry ``multiValueQueryStringParameters`` (every value) and
        ``queryStringParameters`` (the last value of each); the first is used when present.
        """
        multi = self.event.get("multiValueQueryStringParameters") or {}
        if multi:
            return {str(name): [str(value) for value in values or []] for name, values in multi.items()}
        single = self.event.get("queryStringParameters") or {}
        return {str(name): [str(value)] for name, value in single.items()}

    def tag(self) -> str:
        """The normalized ``{tag}`` path parameter; ``InvalidTag`` when missing or invalid."""
        parameters = self.event.get("pathParameters") or {}
        return normalize_tag(parameters.get("tag"))

    def link(self, route: str, **parameters: str) -> str:
        """A relative link to the route named ``route`` (``functions.links``), its parameters percent-encoded."""
        return (self.prefix + links.route_path(route, **parameters).lstrip("/")) or "./"

    def site_url(self) -> str:
        """The site root's absolute URL, as the visitor reached it: stage or custom domain and base path.

        The host is the request's ``Host`` (API Gateway's own domain or the custom domain; the local site's
        address with its port), else ``requestContext.domainName``; the scheme is ``X-Forwarded-Proto``,
        which API Gateway always sets (https). A stack with a custom domain says its URL there
        (``links.SITE_URL_ENV``), and that is used instead: snippets pasted from any address point at the domain.
        """
        configured = os.environ.get(links.SITE_URL_ENV)
        if configured:
            return configured
        context = self.event.get("requestContext") or {}
        host = self.header("Host") or ""
        if not _HOST.match(host):
            host = str(context.get("domainName") or "")
            if not _HOST.match(host):
                host = "localhost"
        scheme = (self.header("X-Forwarded-Proto") or "https").split(",")[0].strip().lower()
        if scheme not in ("http", "https"):
            scheme = "https"
        root, _ = _root_and_page_directory(self.event)
        return f"{scheme}://{host}/" + "".join(quote(unquote(segment), safe="") + "/" for segment in root)

    def absolute_link(self, route: str, **parameters: str) -> str:
        """The absolute URL of the route named ``route``, on the site as the visitor reached it."""
        return self.site_url() + links.route_path(route, **parameters).lstrip("/")


@dataclass
class Page:
    """What a page function returns: a template and its values; ``page_handler`` renders it."""

    template: str
    values: dict[str, Any]
    images: tuple[str, ...] = ()
    """Absolute URLs of the images the page shows: its policy allows exactly these (``page_policy``)."""


def page_policy(images: Iterable[str]) -> str:
    """The pages' policy, with ``img-src`` allowing exactly ``images`` (none: the default, nothing loads).

    An address the policy cannot hold as one source (a space, ``;`` or ``,`` from an odd ``Host`` header) is left
    out: the image is then refused, the policy stays whole.
    """
    allowed = [url for url in images if url and not re.search(r"[\s;,']", url)]
    return f"{CONTENT_SECURITY_POLICY}; img-src {' '.join(allowed)}" if allowed else CONTENT_SECURITY_POLICY


def html_response(
    status: int, body: str, cache_control: str, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A response API Gateway's proxy integration accepts as is (int status, str body, str headers)."""
    all_headers = security_headers(cache_control)
    all_headers.update({str(name): str(value) for name, value in (headers or {}).items()})
    return {"statusCode": int(status), "headers": all_headers, "body": str(body), "isBase64Encoded": False}


def entity_tag(body: str) -> str:
    """A strong ``ETag`` for a body: equal bodies, equal tags (the read-only badges and JSON)."""
    return '"' + hashlib.sha256(body.encode("utf-8")).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison, as RFC 9110 asks for it)."""
    if not if_none_match:
        return False
    candidates = [candidate.strip() for candidate in if_none_match.split(",")]
    return any(candidate == "*" or candidate.removeprefix("W/") == etag for candidate in candidates)


ErrorResponder = Callable[[int, Request, BaseException | None, Mapping[str, str] | None], dict[str, Any]]
"""Makes a route's error response: ``(status, request, error or None, extra headers) -> response``."""


class BadRequest(ValueError):
    """A request the route cannot answer as asked (an invalid option): a 400 that says what is wrong."""

    def __init__(self, problem: str, short: str = "invalid option") -> None:
        super().__init__(problem)
        self.problem = problem
        """What is wrong and what would be valid (visitor-facing, never echoes the input)."""
        self.short = short
        """A few words for where space is short (a badge's message)."""


def _error_response(
    status: int, request: Request, error: BaseException | None = None, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    problem = getattr(error, "problem", None)
    try:
        body = render_error_page(status, home_href=request.link(links.HOME), problem=problem)
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


def serve(
    request: Request, respond: Callable[[Request], dict[str, Any]], error_response: ErrorResponder
) -> dict[str, Any]:
    """Answer ``request`` with ``respond``, or with ``error_response`` for every failure the site names.

    405 for a method the gateway does not route, 400 for an invalid tag or option, 503 with ``Retry-After``
    when DynamoDB throttles, 500 for anything else; the details go to the log, never to the visitor.
    """
    event, context = request.event, request.context
    if request.method not in ROUTED_METHODS:
        # Only GET and HEAD are routed; anything else must not write, and says what would work.
        return error_response(405, request, None, {"Allow": ", ".join(ROUTED_METHODS)})
    try:
        return respond(request)
    except (InvalidTag, BadRequest) as error:
        log_event(
            _logger,
            logging.INFO,
            "invalid tag" if isinstance(error, InvalidTag) else "invalid option",
            problem=error.problem,
            raw_tag=str((event.get("pathParameters") or {}).get("tag"))[:200],
            **_request_fields(event, context),
        )
        return error_response(400, request, error, None)
    except Exception as error:  # noqa: BLE001 - every failure becomes a page (or badge), never a 502
        fields = {**_request_fields(event, context), **_error_fields(error)}
        if is_throttling(error):
            log_event(_logger, logging.WARNING, "dynamodb throttled the request", **fields)
            return error_response(503, request, error, {"Retry-After": str(RETRY_AFTER_SECONDS)})
        log_event(_logger, logging.ERROR, "request failed", exc_info=True, **fields)
        return error_response(500, request, error, None)


def route_handler(
    respond: Callable[[Request], dict[str, Any]],
    error_response: ErrorResponder,
    fallback: Callable[[], dict[str, Any]],
) -> Callable[[dict, Any], dict]:
    """A Lambda handler for API Gateway's proxy integration that answers through ``serve``.

    ``fallback`` answers when even that fails (an event of an unexpected shape): never a 502. A ``HEAD``
    gets what a ``GET`` would, status, headers and body: API Gateway sends a HEAD's answer without its body,
    with the body's ``Content-Length``, as HTTP asks (a function that emptied the body would make it 0).
    """

    def handler(event: dict, context: Any) -> dict:
        event = event or {}
        try:
            response = serve(Request(event, context), respond, error_response)
        except Exception:  # noqa: BLE001 - last resort: never a 502
            log_event(_logger, logging.ERROR, "request failed before it could be answered", exc_info=True)
            response = fallback()
        return response

    return handler


def page_handler(cache_control: str) -> Callable[[Callable[[Request], Page]], Callable[[dict, Any], dict]]:
    """Make a Lambda handler of a page function (``Request -> Page``) with the site's error handling."""

    def decorate(page: Callable[[Request], Page]) -> Callable[[dict, Any], dict]:
        def respond(request: Request) -> dict[str, Any]:
            result = page(request)
            values = {"home_href": request.link(links.HOME), **result.values}
            policy = {"Content-Security-Policy": page_policy(result.images)} if result.images else None
            return html_response(200, render(result.template, **values), cache_control, policy)

        handler = route_handler(
            respond, _error_response, lambda: html_response(500, _FALLBACK_PAGE, ERROR_CACHE_CONTROL)
        )
        return functools.wraps(page)(handler)

    return decorate
