"""``GET /tags/{tag}/count.json``: counts one visit, like the visit page, and answers its count as JSON.

``{"tag", "visits", "today", "counted"}``, with ``"reason"`` when not counted (``functions.counting``: a ``HEAD``,
a bot, a repeat visitor). Never cached, so every load of the page whose script fetches it counts.
"""

from __future__ import annotations

from typing import Any

from functions.counting import count_visit
from functions.json_counter import TEMPLATES, counting_answer, json_handler
from functions.web import Request, load_templates

load_templates(TEMPLATES)  # none: this ends the function's init (functions.store.freeze_container_objects)


@json_handler(counting=True)
def handler(request: Request) -> dict[str, Any]:
    """Lambda handler ``(event, context) -> response`` for a tag's counting JSON."""
    tag = request.tag()  # validated before anything is written
    return counting_answer(count_visit(request, tag))
