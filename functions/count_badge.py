"""``GET /counts/{tag}/badge.svg``: a tag's count as a badge, without counting. One ``GetItem``, never a write."""

from __future__ import annotations

from functions.badge import TEMPLATES, SVG, badge_handler, shown_badge

handler = badge_handler(SVG, counting=False)(shown_badge)
"""Lambda handler ``(event, context) -> response`` for a tag's read-only badge."""
