"""How the command writes counts of things and numbers, the same way in every message."""

from __future__ import annotations


def counted(number: int, singular: str, plural: str | None = None) -> str:
    """``1 tag``, ``2 tags``, ``0 tags`` (``plural`` for a word that does not take an s)."""
    return f"{number:,} {singular if number == 1 else plural or singular + 's'}"


def number(value: float) -> str:
    """A bound as the messages show it: whole numbers grouped as the pages show counts (``1,000,000,000,000,000``,
    never ``1e+15``), others as written (``0.5``)."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"
