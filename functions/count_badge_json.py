"""``GET /counts/{tag}/badge.json``: a tag's count as shields.io endpoint JSON, without counting (one ``GetItem``).

For ``https://img.shields.io/endpoint?url=<this URL>``: shields.io then draws the badge, in any of its styles.
"""

from __future__ import annotations

from functions.badge import TEMPLATES, JSON, badge_handler, shown_badge

handler = badge_handler(JSON, counting=False)(shown_badge)
"""Lambda handler ``(event, context) -> response`` for a tag's endpoint JSON."""
