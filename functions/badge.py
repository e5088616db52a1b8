"""Badges: a tag's count as an SVG image in the look of shields.io's badges, or as shields.io endpoint JSON.

What the three badge routes share: their query options (validated, never echoed), the count's wording, the
text widths and geometry of the badge, its headers (never cached when it counts; a few seconds with an
``ETag`` when it only shows), and errors that are badges too, so a README shows what went wrong.

Text is measured with the width table shields.io's badge-maker uses (Verdana, from anafanafo, kept in
``badge_widths.json``, loaded once per container): no third-party badge library is needed, and each text
also carries ``textLength``, so it fills exactly its box in whatever font the viewer has.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.store import get_store
from functions.tags import InvalidTag
from functions.web import (
    COUNT_CACHE_CONTROL,
    RETRY_AFTER_SECONDS,
    BadRequest,
    Request,
    entity_tag,
    etag_matches,
    format_count,
    load_templates,
    render,
    route_handler,
)

WIDTHS_FILE = Path(__file__).resolve().parent / "badge_widths.json"

SVG_CONTENT_TYPE = "image/svg+xml; charset=utf-8"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
SVG_CONTENT_SECURITY_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'"
"""An SVG opened on its own may load nothing and run nothing. No ``frame-ancestors``: pages embed badges
with ``<object>`` too, and an ``<img>`` is never subject to it anyway."""

NEVER_CACHED: Mapping[str, str] = {
    # GitHub's image proxy (camo) and browsers keep an image unless told all three ways.
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Expires": "Thu, 01 Jan 1970 00:00:00 GMT",
    "Pragma": "no-cache",
}
"""Headers of a counting badge (every load must reach the function and count) and of every error badge."""

STYLES = ("flat", "flat-square", "for-the-badge")
SHOWS = ("total", "today", "both")
NAMED_COLORS: Mapping[str, str] = {
    # shields.io's names and their colours.
    "brightgreen": "#4c1",
    "green": "#97ca00",
    "yellowgreen": "#a4a61d",
    "yellow": "#dfb317",
    "orange": "#fe7d37",
    "red": "#e05d44",
    "blue": "#007ec6",
    "grey": "#555",
    "gray": "#555",
    "lightgrey": "#9f9f9f",
    "lightgray": "#9f9f9f",
    "success": "#4c1",
    "important": "#fe7d37",
    "critical": "#e05d44",
    "informational": "#007ec6",
    "inactive": "#9f9f9f",
}
DEFAULT_LABEL = "visits"
DEFAULT_COLOR = "blue"
DEFAULT_STYLE = "flat"
DEFAULT_SHOW = "total"
LABEL_COLOR = "#555"
ERROR_COLOR = "red"
MAX_LABEL_LENGTH = 40
"""Characters: a label is a word or two; a longer one would make a badge no README wants."""
OPTIONS = ("label", "color", "style", "show")
"""The query options a badge reads; any other query parameter (a cache buster, say) is ignored."""

COMPACT_STYLES = frozenset({"for-the-badge"})
"""Styles that show counts as ``1.2K``: big capitals leave no room for ``1,234,567``. The others show every digit."""

# Unicode categories a label may use: letters, marks, digits, punctuation, symbols and spaces (Zs). Never control
# or format characters, line separators, surrogates, private use or unassigned code points (XML cannot hold
# some of them; the others would only hide or reorder text).
_LABEL_CATEGORIES = frozenset({"L", "M", "N", "P", "S"})


class InvalidOption(BadRequest):
    """A badge option the route does not accept; the message says which values would be."""


@dataclass(frozen=True)
class Font:
    """Advance widths of one font, by ranges of code points (``badge_widths.json``)."""

    starts: tuple[int, ...]
    widths: tuple[float, ...]
    """Pixels; negative for characters the table does not know."""
    fallback: float
    """Width of a character the table does not know: the font's ``m``, as badge-maker guesses."""

    @classmethod
    def of(cls, table: Mapping[str, Any], scale: float = 1.0) -> Font:
        """A font from its table (gaps between range starts, widths in 1/100 px), its widths times ``scale``."""
        starts = tuple(itertools.accumulate(table["deltas"]))
        widths = tuple(w * scale / 100 if w >= 0 else -1.0 for w in table["centipixels"])
        return cls(starts, widths, widths[bisect.bisect_right(starts, ord("m")) - 1])

    def char_width(self, char: str) -> float:
        index = bisect.bisect_right(self.starts, ord(char)) - 1
        width = self.widths[index] if index >= 0 else -1.0
        return width if width >= 0 else self.fallback

    def width(self, text: str) -> float:
        """The width of ``text`` in pixels."""
        return sum(self.char_width(char) for char in text)


def _load_fonts() -> dict[str, Font]:
    data = json.loads(WIDTHS_FILE.read_text(encoding="utf-8"))
    return {
        "verdana-11": Font.of(data["verdana-11"]),
        # Verdana's widths are proportional to its size (anafanafo's 10 px and 11 px tables agree to 0.2 %).
        "verdana-10": Font.of(data["verdana-11"], 10 / 11),
        "verdana-10-bold": Font.of(data["verdana-10-bold"]),
    }


# Read once per container, in Lambda's init phase (about 1 ms), like the template below (compiled: ~30 ms).
FONTS: Mapping[str, Font] = _load_fonts()
BADGE_TEMPLATE = "badge.svg"
TEMPLATES = (BADGE_TEMPLATE,)
"""Every template a badge function renders (its errors are badges too), compiled at import."""
load_templates(TEMPLATES)


def preferred_width(text: str, font: Font) -> int:
    """badge-maker's text width: rounded, then made odd (it centres on whole pixels)."""
    width = int(font.width(text) + 0.5)
    return width if width % 2 else width + 1


def hex_color(color: str) -> str:
    """``#rgb``/``#rrggbb`` for a validated colour (a shields.io name or hex digits, with or without ``#``)."""
    return NAMED_COLORS.get(color) or "#" + color.lstrip("#")


def _brightness(color: str) -> float:
    digits = hex_color(color).lstrip("#")
    if len(digits) == 3:
        digits = "".join(char * 2 for char in digits)
    red, green, blue = (int(digits[index : index + 2], 16) for index in (0, 2, 4))
    return (red * 299 + green * 587 + blue * 114) / 255_000


def text_colors(background: str) -> tuple[str, str]:
    """Text and shadow colours readable on ``background`` (badge-maker's rule: dark text on light colours)."""
    return ("#fff", "#010101") if _brightness(background) <= 0.69 else ("#333", "#ccc")


@dataclass(frozen=True)
class BadgeOptions:
    """What the query asks of a badge, validated."""

    label: str = DEFAULT_LABEL
    color: str = DEFAULT_COLOR
    """A shields.io colour name, or hex digits (3 or 6, lower case, no ``#``)."""
    style: str = DEFAULT_STYLE
    show: str = DEFAULT_SHOW

    @classmethod
    def of(cls, request: Request) -> BadgeOptions:
        """The options of a request's query string; ``InvalidOption`` saying what is wrong and what is valid."""
        query = request.query()
        values: dict[str, str] = {}
        for name in OPTIONS:
            given = query.get(name)
            if not given:
                continue
            if len(given) > 1:
                raise InvalidOption(f"Give the {name} option once (it was given {len(given)} times).", f"{name} twice")
            values[name] = given[0]
        return cls(
            label=_label(values.get("label", DEFAULT_LABEL)),
            color=_color(values.get("color", DEFAULT_COLOR)),
            style=_choice("style", values.get("style", DEFAULT_STYLE), STYLES),
            show=_choice("show", values.get("show", DEFAULT_SHOW), SHOWS),
        )

    @classmethod
    def or_defaults(cls, request: Request) -> BadgeOptions:
        """The request's options if they are valid, else the defaults (for an error badge)."""
        try:
            return cls.of(request)
        except InvalidOption:
            return cls()


def _label(value: str) -> str:
    if len(value) > MAX_LABEL_LENGTH:
        raise InvalidOption(f"The label may be at most {MAX_LABEL_LENGTH} characters long.", "invalid label")
    if "\ufffd" in value:
        raise InvalidOption("The label is not valid UTF-8 text.", "invalid label")
    for char in value:
        category = unicodedata.category(char)
        if category != "Zs" and category[0] not in _LABEL_CATEGORIES:
            raise InvalidOption(
                "The label may hold letters, digits, punctuation, symbols and spaces, "
                "but no control or invisible characters.",
                "invalid label",
            )
    return value


def _is_hex(text: str) -> bool:
    return len(text) in (3, 6) and all(char in "0123456789abcdef" for char in text)


def _color(value: str) -> str:
    color = value.strip().lower()
    if color in NAMED_COLORS:
        return color
    if _is_hex(color.removeprefix("#")):
        return color.removeprefix("#")
    raise InvalidOption(
        "The color must be one of " + ", ".join(sorted(NAMED_COLORS)) + ", or a hex colour such as 4c1 or 007ec6.",
        "invalid color",
    )


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value in allowed:
        return value
    raise InvalidOption(f"The {name} option must be {', '.join(allowed[:-1])} or {allowed[-1]}.", f"invalid {name}")


def count_message(options: BadgeOptions, visits: int, today: int) -> str:
    """The right-hand text: the total, today's visits, or both, as the options ask."""
    compact = options.style in COMPACT_STYLES
    total_text, today_text = format_count(visits, compact), format_count(today, compact) + " today"
    return {"total": total_text, "today": today_text, "both": f"{total_text} · {today_text}"}[options.show]


def _number(value: float) -> float | int:
    """A coordinate as the SVG writes it: ``355``, not ``355.0``."""
    rounded = round(value, 1)
    return int(rounded) if rounded == int(rounded) else rounded


@dataclass(frozen=True)
class _Text:
    content: str
    x: float
    length: float
    fill: str
    shadow: str
    bold: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", _number(self.x))
        object.__setattr__(self, "length", _number(self.length))


def render_svg(label: str, message: str, color: str, style: str, title: str) -> str:
    """The SVG of a badge (``templates/badge.svg``, autoescaped): ``label`` on grey, ``message`` on ``color``."""
    background = hex_color(color)
    label_fill, label_shadow = text_colors(LABEL_COLOR)
    message_fill, message_shadow = text_colors(background)
    if style == "for-the-badge":
        # badge-maker's "for the badge": capitals, 10 px Verdana (the message bold), 1.25 px letter spacing.
        label, message = label.upper(), message.upper()
        label_width = round(FONTS["verdana-10"].width(label) + 1.25 * len(label)) if label else 0
        message_width = round(FONTS["verdana-10-bold"].width(message) + 1.25 * len(message))
        left = label_width + 24 if label else 0
        right = message_width + 24
        texts = [_Text(message, 10 * (left + 12 + message_width / 2), 10 * message_width, message_fill, "", True)]
        if label:
            texts.insert(0, _Text(label, 10 * (12 + label_width / 2), 10 * label_width, label_fill, ""))
        values = {"height": 28, "font_size": 100, "y": 175, "shadow": False, "rounded": False}
    else:
        label_width = preferred_width(label, FONTS["verdana-11"]) if label else 0
        message_width = preferred_width(message, FONTS["verdana-11"])
        left = label_width + 10 if label else 0
        right = message_width + 10
        message_x = 10 * ((left - 1 if label else 0) + message_width / 2 + 5)
        texts = [_Text(message, message_x, 10 * message_width, message_fill, message_shadow)]
        if label:
            texts.insert(0, _Text(label, 10 * (1 + label_width / 2 + 5), 10 * label_width, label_fill, label_shadow))
        values = {"height": 20, "font_size": 110, "y": 140, "shadow": True, "rounded": style == "flat"}
    return render(
        BADGE_TEMPLATE,
        width=left + right,
        left_width=left,
        right_width=right,
        label_color=LABEL_COLOR,
        color=background,
        texts=texts,
        title=title,
        **values,
    )


def endpoint_json(label: str, message: str, color: str, style: str, is_error: bool = False) -> str:
    """shields.io's endpoint-badge JSON (``schemaVersion`` 1) for a label, message and colour."""
    body: dict[str, Any] = {"schemaVersion": 1, "label": label, "message": message, "color": color, "style": style}
    if is_error:
        body["isError"] = True
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Badge:
    """What a badge function returns: the options and the counts to show."""

    options: BadgeOptions
    visits: int
    today: int = 0


def shown_badge(request: Request) -> Badge:
    """The badge of a request's tag without counting: one strongly consistent ``GetItem``, no write."""
    tag = request.tag()
    options = BadgeOptions.of(request)
    counts = get_store().read_tag(tag)
    return Badge(options, counts.visits, counts.today)


@dataclass(frozen=True)
class _Format:
    content_type: str
    headers: Mapping[str, str]
    body: Callable[[str, str, str, str, str, bool], str]
    """``(label, message, color, style, title, is_error) -> body``."""


SVG = _Format(
    SVG_CONTENT_TYPE,
    {"Content-Security-Policy": SVG_CONTENT_SECURITY_POLICY},
    lambda label, message, color, style, title, is_error: render_svg(label, message, color, style, title),
)
JSON = _Format(
    JSON_CONTENT_TYPE,
    # Public counts, no credentials: any page's script may read them.
    {"Content-Security-Policy": "default-src 'none'", "Access-Control-Allow-Origin": "*"},
    lambda label, message, color, style, title, is_error: endpoint_json(label, message, color, style, is_error),
)


def _response(status: int, body: str, kind: _Format, headers: Mapping[str, str]) -> dict[str, Any]:
    all_headers = {
        "Content-Type": kind.content_type,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        **kind.headers,
        **headers,
    }
    return {"statusCode": int(status), "headers": all_headers, "body": str(body), "isBase64Encoded": False}


ERROR_MESSAGES: Mapping[int, tuple[str, str]] = {
    405: ("method not allowed", "Badges can only be read (GET or HEAD)."),
    500: ("error", "The badge could not be made. Please try again in a moment."),
    503: ("busy, retry", "The counter is busy. Please try again in a few seconds."),
}

_FALLBACK_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="60" height="20" role="img" aria-label="error">'
    '<title>error</title><rect width="60" height="20" fill="#e05d44"/>'
    '<text x="30" y="14" fill="#fff" text-anchor="middle" font-family="Verdana,sans-serif" font-size="11">error'
    "</text></svg>"
)


def badge_handler(
    kind: _Format, *, counting: bool
) -> Callable[[Callable[[Request], Badge]], Callable[[dict, Any], dict]]:
    """Make a Lambda handler of a badge function (``Request -> Badge``) answering in ``kind`` (``SVG``, ``JSON``).

    A counting badge is never cached; a read-only one may be for a few seconds, with an ``ETag`` (a matching
    ``If-None-Match`` gets a 304 with no body). Every failure is a badge too, with the status of the page's.
    """

    def decorate(badge_function: Callable[[Request], Badge]) -> Callable[[dict, Any], dict]:
        def respond(request: Request) -> dict[str, Any]:
            badge = badge_function(request)
            options = badge.options
            message = count_message(options, badge.visits, badge.today)
            title = f"{options.label}: {message}" if options.label else message
            body = kind.body(options.label, message, options.color, options.style, title, False)
            if counting:
                return _response(200, body, kind, NEVER_CACHED)
            etag = entity_tag(body)
            headers = {"Cache-Control": COUNT_CACHE_CONTROL, "ETag": etag}
            if etag_matches(request.header("If-None-Match"), etag):
                return _response(304, "", kind, headers)
            return _response(200, body, kind, headers)

        def error_response(
            status: int, request: Request, error: BaseException | None, headers: Mapping[str, str] | None
        ) -> dict[str, Any]:
            options = BadgeOptions.or_defaults(request)
            if isinstance(error, InvalidTag):
                short, problem = "invalid tag", f"{error.problem} {error.reason}"
            elif isinstance(error, BadRequest):
                short, problem = error.short, error.problem
            else:
                short, problem = ERROR_MESSAGES.get(status, ERROR_MESSAGES[500])
            label = options.label or DEFAULT_LABEL
            body = kind.body(label, short, ERROR_COLOR, options.style, f"{label}: {short}. {problem}", True)
            return _response(status, body, kind, {**NEVER_CACHED, **(headers or {})})

        def fallback() -> dict[str, Any]:
            if kind is SVG:
                body = _FALLBACK_SVG
            else:
                body = endpoint_json(DEFAULT_LABEL, "error", ERROR_COLOR, DEFAULT_STYLE, is_error=True)
            return _response(500, body, kind, NEVER_CACHED)

        return functools.wraps(badge_function)(route_handler(respond, error_response, fallback))

    return decorate
