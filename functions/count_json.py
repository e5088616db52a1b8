"""``GET /counts/{tag}/count.json``: a tag's count as JSON, without counting. One ``GetItem``, never a write.

``{"tag", "visits", "today"}``, cached for a few seconds with an ``ETag``.
"""

from __future__ import annotations

from typing import Any

from functions.json_counter import TEMPLATES, json_handler
from functions.store import get_store
from functions.web import Request, load_templates

load_templates(TEMPLATES)  # none: this ends the function's init (functions.store.freeze_container_objects)


@json_handler(counting=False)
def handler(request: Request) -> dict[str, Any]:
    """Lambda handler ``(event, context) -> response`` for a tag's read-only JSON."""
    tag = request.tag()
    counts = get_store().read_tag(tag)
    return {"tag": tag, "visits": counts.visits, "today": counts.today}
