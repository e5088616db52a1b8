"""What a tag is: decoding, normalization and validation of the ``{tag}`` path parameter.

REST APIs hand handlers path parameters still percent-encoded (``caf%C3%A9``); the local site does the same.
A valid tag never contains ``%``, so decoding an already decoded valid tag changes nothing: both forms give
the same result. Decoding happens exactly once, so ``%2541`` stays ``%41`` and is rejected.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

MAX_LENGTH = 64
PUNCTUATION = frozenset("-_.")

RULE = (
    "A tag is 1 to 64 characters long and may use letters and digits of any language, "
    "plus the hyphen (-), underscore (_) and full stop (.); a tag made only of full stops is not allowed."
)


class InvalidTag(ValueError):
    """A tag that cannot be counted; ``reason`` says, for the visitor, what a valid tag is."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        """What is wrong with this tag (visitor-facing, never echoes the input)."""
        self.reason = RULE
        """What a valid tag is (visitor-facing)."""


def _allowed(char: str, first: bool) -> bool:
    if char in PUNCTUATION:
        return True
    category = unicodedata.category(char)
    if category.startswith("M"):
        # A combining mark modifies the character before it; on its own it renders as a stray accent.
        return not first
    return category.startswith("L") or category == "Nd"


def normalize_tag(raw: str | None) -> str:
    """The normalized tag for a raw path parameter, or ``InvalidTag`` saying why it cannot be one."""
    if raw is None:
        raise InvalidTag("No tag was given.")
    try:
        decoded = unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidTag("The tag is not valid UTF-8 text.") from None
    # NFC before case folding so composed and decomposed input fold alike; again after, as folding can decompose.
    tag = unicodedata.normalize("NFC", unicodedata.normalize("NFC", decoded).strip().casefold())
    if not tag:
        raise InvalidTag("The tag is empty.")
    if len(tag) > MAX_LENGTH:
        raise InvalidTag(f"The tag is {len(tag)} characters long.")
    if all(char == "." for char in tag):
        raise InvalidTag("A tag cannot be made only of full stops.")
    for index, char in enumerate(tag):
        if not _allowed(char, first=index == 0):
            if unicodedata.category(char).startswith("M"):
                raise InvalidTag("A tag cannot start with a combining mark.")
            raise InvalidTag("The tag contains a character that is not allowed.")
    return tag
