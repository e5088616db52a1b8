"""What a tag is: decoding, normalization and validation of the ``{tag}`` path parameter.

One visible tag, one count. A tag is normalized the way Unicode recommends for identifiers (NFKC with case
folding, UAX #31 / UAX #15): full-width ``ｔｏｔａｌ``, ``TOTAL`` and ``total`` are one tag, and so are a ligature
and its letters. What cannot be seen is refused rather than folded away: default-ignorable code points (zero-width
characters, the combining grapheme joiner U+034F, variation selectors, the Hangul fillers U+115F, U+1160, U+3164
and U+FFA0, which are letters by category but render blank), a space or control character at either end
(``%0Ahello``, ``%E3%80%80hello``: trimming them would count a tag the visitor cannot see as ``hello``; a space is
no letter, so the rule "letters, digits, - _ ." refuses it at an end as it does inside), and more than
``MAX_MARKS_PER_BASE`` combining marks on one character (``a`` followed by 63 accents). Marks are counted on the
normalized tag fully decomposed (NFD), so a precomposed letter counts its own accent: ``a`` with five acute accents
is refused like ``x`` with five, although NFC turns the first into ``á`` with four, and every spelling of one tag
gets the same answer. A tag that was already in normal form keeps its key, so existing counts stay where they are
(a tag normal under NFC but not NFKC, such as ``ｔｏｔａｌ``, now reaches ``total``); the keys these two refusals
close were reachable only through the bugs they fix (no key ever had a space at an end, the old rule trimmed it,
and no word needs five marks on one letter: a precomposed letter holds at most three, polytonic Greek's ``ᾇ``).

REST APIs hand handlers path parameters still percent-encoded (``caf%C3%A9``); the local site does the same.
A valid tag never contains ``%``, so decoding an already decoded valid tag changes nothing: both forms give
the same result. Decoding happens exactly once, so ``%2541`` stays ``%41`` and is rejected.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

MAX_LENGTH = 64
MAX_MARKS_PER_BASE = 4
"""Combining marks one character may carry, counted decomposed (NFD): enough for Vietnamese (two on ``ệ``), Thai,
Hebrew points, polytonic Greek (three on ``ᾇ``, the most any precomposed letter holds) or a Tibetan stack."""
PUNCTUATION = frozenset("-_.")

# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 15.1), which Python's unicodedata
# does not expose: characters that render as nothing. Ranges are inclusive.
DEFAULT_IGNORABLE: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark
    (0x115F, 0x1160),  # Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors, vowel separator
    (0x200B, 0x200F),  # zero width space, non-joiner, joiner, direction marks
    (0x202A, 0x202E),  # bidirectional embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, deprecated format characters
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # zero width no-break space (byte order mark)
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFF8),  # unassigned, reserved as ignorable
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format controls
    (0xE0000, 0xE0FFF),  # tags and variation selectors supplement
)

RULE = (
    "A tag is 1 to 64 characters long and may use letters and digits of any language, "
    "plus the hyphen (-), underscore (_) and full stop (.); a tag made only of full stops is not allowed, "
    "nor invisible characters. Upper and lower case, and full-width or other look-alike forms of a letter, "
    "are the same tag."
)


class InvalidTag(ValueError):
    """A tag that cannot be counted; ``reason`` says, for the visitor, what a valid tag is."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        """What is wrong with this tag (visitor-facing, never echoes the input)."""
        self.reason = RULE
        """What a valid tag is (visitor-facing)."""


def is_default_ignorable(char: str) -> bool:
    """Whether ``char`` is a Default_Ignorable_Code_Point: it renders as nothing."""
    point = ord(char)
    return any(first <= point <= last for first, last in DEFAULT_IGNORABLE)


def _allowed(char: str, first: bool) -> bool:
    if char in PUNCTUATION:
        return True
    category = unicodedata.category(char)
    if category.startswith("M"):
        # A combining mark modifies the character before it; on its own it renders as a stray accent.
        return not first
    return category.startswith("L") or category == "Nd"


def fold(text: str) -> str:
    """NFKC with case folding (NFKC, fold, NFKC again: folding can leave text that is not normalized).

    Nothing is trimmed: a space or control character at an end is refused by ``normalize_tag``, not dropped."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _blank(char: str) -> bool:
    """A space (any script's, ``str.isspace`` or category Z) or a control character (Cc): blank at a tag's end."""
    category = unicodedata.category(char)
    return char.isspace() or category == "Cc" or category.startswith("Z")


def most_marks(tag: str) -> int:
    """The most combining marks any one character of ``tag`` carries, once decomposed (NFD): ``á`` counts one."""
    most = run = 0
    for char in unicodedata.normalize("NFD", tag):
        run = run + 1 if unicodedata.category(char).startswith("M") else 0
        most = max(most, run)
    return most


def normalize_tag(raw: str | None) -> str:
    """The normalized tag for a raw path parameter, or ``InvalidTag`` saying why it cannot be one."""
    if raw is None:
        raise InvalidTag("No tag was given.")
    try:
        decoded = unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidTag("The tag is not valid UTF-8 text.") from None
    tag = fold(decoded)
    if not tag:
        raise InvalidTag("The tag is empty.")
    if _blank(tag[0]) or _blank(tag[-1]):
        raise InvalidTag("The tag starts or ends with a space or a control character.")
    if len(tag) > MAX_LENGTH:
        raise InvalidTag(f"The tag is {len(tag)} characters long.")
    if all(char == "." for char in tag):
        raise InvalidTag("A tag cannot be made only of full stops.")
    for index, char in enumerate(tag):
        # Before the category check: the Hangul fillers are letters by category, the joiners marks.
        if is_default_ignorable(char):
            raise InvalidTag("The tag contains an invisible character.")
        if not _allowed(char, first=index == 0):
            if unicodedata.category(char).startswith("M"):
                raise InvalidTag("A tag cannot start with a combining mark.")
            raise InvalidTag("The tag contains a character that is not allowed.")
    if most_marks(tag) > MAX_MARKS_PER_BASE:
        raise InvalidTag(f"A character of the tag carries more than {MAX_MARKS_PER_BASE} combining marks.")
    return tag
