"""Tag decoding, normalization and validation (SPEC section 4)."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from definition import EXAMPLE_TAGS as DEFINITION_EXAMPLES
from functions.tags import DEFAULT_IGNORABLE, MAX_LENGTH, MAX_MARKS_PER_BASE, InvalidTag, fold, normalize_tag
from functions.web import EXAMPLE_TAGS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hello", "hello"),
        ("caf%C3%A9", "café"),  # percent-encoded, as REST APIs deliver it
        ("café", "café"),  # already decoded: same result
        ("cafe%CC%81", "café"),  # decomposed (NFD) input folds into the composed form
        ("cafe\u0301", "café"),
        ("HeLLo", "hello"),
        ("TOTAL", "total"),
        ("Straße", "strasse"),  # case folding, not just lower-casing
        ("नमस्ते", "नमस्ते"),  # Devanagari with combining marks
        ("ภาษาไทย", "ภาษาไทย"),  # Thai with combining marks
        ("日本語", "日本語"),
        ("٣٤٥", "٣٤٥"),  # Arabic-Indic digits (Nd)
        ("a-b_c.d", "a-b_c.d"),
        ("..a", "..a"),
        ("x" * MAX_LENGTH, "x" * MAX_LENGTH),
        ("%E2%84%AB", "å"),  # ANGSTROM SIGN: NFC maps it to å
    ],
)
def test_valid_tags_normalize(raw: str, expected: str) -> None:
    assert normalize_tag(raw) == expected
    assert unicodedata.is_normalized("NFKC", normalize_tag(raw))


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (None, "No tag"),
        ("", "empty"),
        ("%20%20", "starts or ends with a space"),
        ("   ", "starts or ends with a space"),
        ("x" * (MAX_LENGTH + 1), "65 characters"),
        ("a/b", "not allowed"),
        ("a%2Fb", "not allowed"),
        ("<script>alert(1)</script>", "not allowed"),
        ('"><img src=x>', "not allowed"),
        ("it's", "not allowed"),
        ("site#total", "not allowed"),
        ("batch#1", "not allowed"),
        ("a b", "not allowed"),
        ("%F0%9F%98%80", "not allowed"),  # emoji
        ("😀", "not allowed"),
        ("a\u200db", "invisible"),  # zero-width joiner: default-ignorable
        ("a%0Ab", "not allowed"),  # a control character inside
        (".", "full stops"),
        ("..", "full stops"),
        ("%2E%2E", "full stops"),
        ("%CC%81a", "combining mark"),
        ("%FF", "UTF-8"),
        ("%C3", "UTF-8"),
        ("100%", "not allowed"),
        ("%2541", "not allowed"),  # decoded once only: "%41" keeps its "%"
        ("%zz", "not allowed"),
    ],
)
def test_invalid_tags_say_why(raw: str | None, problem: str) -> None:
    with pytest.raises(InvalidTag) as caught:
        normalize_tag(raw)
    assert problem in caught.value.problem
    assert "1 to 64" in caught.value.reason and "letters and digits" in caught.value.reason


def test_length_counts_after_case_folding() -> None:
    # "ß" folds to "ss": 33 of them are 66 characters, too long, though the input had 33.
    with pytest.raises(InvalidTag):
        normalize_tag("ß" * 33)


def test_example_tags_are_normalized_and_match_the_definition() -> None:
    assert EXAMPLE_TAGS == DEFINITION_EXAMPLES
    for tag in EXAMPLE_TAGS:
        assert normalize_tag(tag) == tag


TAG_ALPHABET = st.characters(categories=("L", "M", "Nd"), include_characters="-_.")


@settings(max_examples=300, deadline=None)
@given(st.text(TAG_ALPHABET, min_size=1, max_size=80))
def test_encoded_and_decoded_forms_agree_and_normalizing_is_idempotent(text: str) -> None:
    try:
        tag = normalize_tag(text)
    except InvalidTag:
        with pytest.raises(InvalidTag):
            normalize_tag(quote(text, safe=""))
        return
    assert normalize_tag(quote(text, safe="")) == tag
    assert normalize_tag(tag) == tag
    assert normalize_tag(quote(tag, safe="")) == tag
    assert 1 <= len(tag) <= MAX_LENGTH and "%" not in tag and "/" not in tag


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_input_either_normalizes_or_raises_invalid_tag(text: str) -> None:
    try:
        tag = normalize_tag(text)
    except InvalidTag as error:
        assert error.reason
        return
    assert tag == tag.strip() and "%" not in tag and tag.replace(".", "")
    assert not unicodedata.category(tag[0]).startswith("M")


# --- one visible tag, one count (issue 12) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ｔｏｔａｌ", "total"),  # full-width: the tag "total", not a second one that looks the same
        ("%EF%BD%94%EF%BD%8F%EF%BD%94%EF%BD%81%EF%BD%8C", "total"),  # the same, percent-encoded
        ("ＴＯＴＡＬ", "total"),
        ("ﬁle", "file"),  # a ligature and its letters
        ("ℌello", "hello"),  # a mathematical letter
        ("ｶﾀｶﾅ", "カタカナ"),  # half-width katakana
        ("a" + "\u0301" * MAX_MARKS_PER_BASE, "á" + "\u0301" * (MAX_MARKS_PER_BASE - 1)),  # within the bound
        ("tiếng-việt", "tiếng-việt"),
        ("שָׁלוֹם", "שָׁלוֹם"),  # Hebrew with points (two marks on one letter)
        ("བསྒྲུབས", "བསྒྲུབས"),  # a Tibetan stack: three marks under one letter
    ],
)
def test_look_alike_forms_are_one_tag(raw: str, expected: str) -> None:
    assert normalize_tag(raw) == expected


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("\u3164", "invisible"),  # HANGUL FILLER: a letter by category, renders blank
        ("\u115f", "invisible"),  # HANGUL CHOSEONG FILLER
        ("\u1160", "invisible"),  # HANGUL JUNGSEONG FILLER
        ("\uffa0", "invisible"),  # HALFWIDTH HANGUL FILLER (NFKC maps it to U+1160)
        ("hello\u3164", "invisible"),
        ("%E3%85%A4", "invisible"),  # U+3164, percent-encoded
        ("hello\u034f", "invisible"),  # COMBINING GRAPHEME JOINER: shows as "hello"
        ("hello\ufe0f", "invisible"),  # VARIATION SELECTOR-16: shows as "hello"
        ("hello\ufe00", "invisible"),
        ("hello\U000e0100", "invisible"),  # VARIATION SELECTOR-17
        ("hel\u00adlo", "invisible"),  # soft hyphen
        ("hel\u200blo", "invisible"),  # zero width space
        ("\ufeffhello", "invisible"),  # byte order mark
        ("a\u180bb", "invisible"),  # Mongolian free variation selector
        ("a" + "\u0301" * 63, "combining marks"),  # one letter carrying 63 accents
        ("a" + "\u0300\u0301\u0302\u0303\u0304\u0306", "combining marks"),
        ("ab" + "\u0308" * (MAX_MARKS_PER_BASE + 2), "combining marks"),
    ],
)
def test_invisible_and_overloaded_tags_are_refused(raw: str, problem: str) -> None:
    with pytest.raises(InvalidTag) as caught:
        normalize_tag(raw)
    assert problem in caught.value.problem


def test_every_default_ignorable_code_point_is_refused() -> None:
    checked = 0
    for first, last in DEFAULT_IGNORABLE:
        for point in range(first, min(last, first + 40) + 1):
            with pytest.raises(InvalidTag):
                normalize_tag("a" + chr(point) + "b")
            checked += 1
    assert checked > 100


def _previous_normalization(raw: str) -> str:
    """The rule before look-alikes were folded: NFC, trimmed, case-folded, NFC again."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", raw).strip().casefold())


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40))
def test_a_key_that_was_already_normal_is_unchanged(text: str) -> None:
    # Every key the old rule produced that is also NFKC-normal folds to itself: its count stays reachable.
    # (Validation then adds only the refusals of invisible characters and overloaded marks; no old key had a
    # space or control at an end, the old rule trimmed them.)
    old = _previous_normalization(text)
    if unicodedata.is_normalized("NFKC", old):
        assert fold(old) == old


@pytest.mark.parametrize("tag", ["hello", "serverless", "café", "total", "straße", "日本語", "नमस्ते", "a-b_c.d"])
def test_tags_counted_before_keep_their_key(tag: str) -> None:
    assert normalize_tag(_previous_normalization(tag)) == _previous_normalization(tag)


# --- one rule at the ends and for marks (issue 20) ------------------------------------------------------------

EDGE_BLANKS = [" ", "%20", "\n", "%0A", "\t", "%09", "\r", "%0D", "%00", "\x7f", "\x85", "%C2%85", "\xa0", "%C2%A0",
               "\u3000", "%E3%80%80", "\u2003", "\u2028", "\u2029", "\u1680", "\x1f"]


@pytest.mark.parametrize("blank", EDGE_BLANKS)
@pytest.mark.parametrize("shape", ["{}hello", "hello{}", "{}hello{}", "{}{}"])
def test_a_space_or_control_at_either_end_is_refused_not_trimmed(blank: str, shape: str) -> None:
    # Trimming would count "%0Ahello" for "hello": a tag the visitor cannot see. Space is no letter or digit.
    with pytest.raises(InvalidTag) as caught:
        normalize_tag(shape.format(blank, blank))
    assert caught.value.problem == "The tag starts or ends with a space or a control character."
    assert "hello" not in caught.value.problem  # never echoes the input


@pytest.mark.parametrize("blank", ["%20", "%0A", "%E3%80%80", "%00"])
def test_a_space_or_control_inside_is_refused_as_before(blank: str) -> None:
    with pytest.raises(InvalidTag) as caught:
        normalize_tag(f"hel{blank}lo")
    assert "not allowed" in caught.value.problem


@pytest.mark.parametrize("base", ["a", "x", "e", "o", "u", "\u00e1", "\u01d6", "\u1e69", "\u1ec7"])
def test_the_mark_limit_is_the_same_for_every_letter_and_spelling(base: str) -> None:
    # Counted on the tag decomposed: "a" + 5 acutes (NFC: "á" + 4) is refused like "x" + 5, and "á" typed
    # precomposed counts its own accent, so every spelling of one tag gets the same answer.
    own = len(unicodedata.normalize("NFD", base)) - 1
    within = base + "\u0301" * (MAX_MARKS_PER_BASE - own)
    over = within + "\u0301"
    assert normalize_tag(within) == fold(within)
    for spelling in (over, unicodedata.normalize("NFC", over), unicodedata.normalize("NFD", over)):
        for form in (spelling, quote(spelling, safe="")):
            with pytest.raises(InvalidTag) as caught:
                normalize_tag(form)
            assert f"more than {MAX_MARKS_PER_BASE} combining marks" in caught.value.problem


def test_the_issues_cases_are_refused_on_a_as_on_x() -> None:
    for base in ("a", "x"):
        with pytest.raises(InvalidTag, match="combining marks"):
            normalize_tag(base + "%CC%81" * 5)
        assert normalize_tag(base + "%CC%81" * 4)


@settings(max_examples=300, deadline=None)
@given(st.text(TAG_ALPHABET, min_size=1, max_size=20))
def test_every_spelling_of_a_tag_gets_the_same_answer(text: str) -> None:
    answers = set()
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        try:
            answers.add(normalize_tag(unicodedata.normalize(form, text)))
        except InvalidTag as error:
            answers.add(("refused", error.problem))
    assert len(answers) == 1, answers


@pytest.mark.parametrize(
    "word",
    ["tiếng-việt", "Nguyễn", "ἀρχῇ", "ᾇ", "שָׁלוֹם", "བསྒྲུབས", "नमस्ते", "ภาษาไทย", "한국어", "Ǖ", "crème-brûlée"],
)
def test_real_words_stay_valid_under_the_decomposed_count(word: str) -> None:
    assert normalize_tag(word) == fold(word)
