"""Tag decoding, normalization and validation (SPEC section 4)."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from definition import EXAMPLE_TAGS as DEFINITION_EXAMPLES
from functions.tags import MAX_LENGTH, InvalidTag, normalize_tag
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
        ("%20padded%20", "padded"),
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
    assert unicodedata.is_normalized("NFC", normalize_tag(raw))


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (None, "No tag"),
        ("", "empty"),
        ("%20%20", "empty"),
        ("   ", "empty"),
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
        ("a\u200db", "not allowed"),  # zero-width joiner (Cf)
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
