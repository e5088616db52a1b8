"""Links between the site's routes, built from the route table the definition hands every function.

``definition.py`` names each route (the name of the function serving it) and ``definition.function_environment``
puts the whole table, name -> path template, in the ``ROUTE_PATHS`` environment variable as compact JSON.
The pages build every link from it (``web.Request.link``), so renaming a route's path in the definition moves
every link to it; ``functions/`` never imports ``definition`` and never spells a route's path.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from urllib.parse import quote

ROUTE_PATHS_ENV = "ROUTE_PATHS"
"""The environment variable holding ``{"<route name>": "<path template>", ...}``."""
SITE_URL_ENV = "SITE_URL"
"""The site's URL on its custom domain (``https://<domain>/[<base path>/]``), set only when the stack has one: the
absolute links a page offers for pasting (``web.Request.absolute_link``) then use it, from whichever address the page
was reached."""

# The route names: the names of the functions serving them (``definition.FunctionSpec.name``).
HOME = "home"
VISIT = "visit"
COUNT = "count"
VISIT_BADGE = "visit-badge"
COUNT_BADGE = "count-badge"
COUNT_BADGE_JSON = "count-badge-json"
VISIT_JSON = "visit-json"
COUNT_JSON = "count-json"

_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class UnknownRoute(LookupError):
    """A link to a route the table does not hold, or without one of its parameters: a deploy error."""


@functools.cache
def _parse(raw: str) -> Mapping[str, str]:
    table = json.loads(raw)
    if not isinstance(table, dict) or not all(isinstance(v, str) and v.startswith("/") for v in table.values()):
        raise UnknownRoute(f"{ROUTE_PATHS_ENV} must be a JSON object of route name -> path")
    return table


def route_paths() -> Mapping[str, str]:
    """The route table from ``ROUTE_PATHS`` (parsed once per distinct value, so a rebuilt environment is seen)."""
    raw = os.environ.get(ROUTE_PATHS_ENV)
    if not raw:
        raise UnknownRoute(f"{ROUTE_PATHS_ENV} is not set")
    return _parse(raw)


def route_path(name: str, **parameters: str) -> str:
    """The path of route ``name`` with its parameters filled in, each percent-encoded (``/`` included).

    ``route_path("count", tag="café")`` -> ``/counts/caf%C3%A9`` (for the table the definition ships).
    """
    try:
        template = route_paths()[name]
    except KeyError:
        raise UnknownRoute(f"no route named {name!r}") from None

    def fill(found: re.Match[str]) -> str:
        try:
            return quote(parameters[found.group(1)], safe="")
        except KeyError:
            raise UnknownRoute(f"route {name!r} needs its {found.group(1)!r} parameter") from None

    return _PARAMETER.sub(fill, template)


def shown_path(name: str, **placeholders: str) -> str:
    """Route ``name``'s path relative to the site root, for reading, with words in its parameters' places.

    ``shown_path("visit", tag="<your tag>")`` -> ``tags/<your tag>``: the page's text says where a tag's pages are
    as the definition says it (escape it like any text; it is not a link).
    """
    try:
        template = route_paths()[name]
    except KeyError:
        raise UnknownRoute(f"no route named {name!r}") from None
    return _PARAMETER.sub(lambda found: placeholders.get(found.group(1), found.group(0)), template).lstrip("/")
