"""The bot check answers as CrawlerDetect does, for every User-Agent: its smaller compiled pattern changes no answer."""

from __future__ import annotations

import pytest
from crawlerdetect import CrawlerDetect
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.honest import BOT, PERSON
from functions import bots

from .test_honest_counts import USER_AGENTS

DETECTOR = CrawlerDetect()
# Characters re.IGNORECASE folds onto ASCII letters in ways ``str.lower()`` alone does not (or does differently).
FOLDED = {"i": ("\u0130", "\u0131", "I"), "s": ("\u017f", "S"), "k": ("\u212a", "K")}


def crawlerdetect_says(user_agent: str) -> bool:
    return DETECTOR.is_crawler(user_agent)


def listed(user_agent: str) -> bool:
    bots._listed.cache_clear()
    return bots._listed(user_agent.strip()) if user_agent.strip() else False


def _variants(word: str) -> list[str]:
    out = [word, word.upper(), f"Mozilla/5.0 (compatible; {word.title()}/1.0)"]
    for letter, others in FOLDED.items():
        out += [word.replace(letter, other) for other in others if letter in word]
    return out


def test_the_corpus_gets_crawlerdetects_answers() -> None:
    corpus = [agent for _, agent, _ in USER_AGENTS if agent and agent.strip()] + [PERSON, BOT]
    assert [listed(agent) for agent in corpus] == [crawlerdetect_says(agent) for agent in corpus]


def test_every_pattern_of_the_list_and_its_case_and_folding_variants_get_crawlerdetects_answers() -> None:
    agents = [variant for word in bots.CRAWLER_PATTERNS for variant in _variants(word)]
    agents += [variant for word in bots.EXCLUSION_PATTERNS for variant in _variants(word)]
    differ = [agent for agent in agents if listed(agent) != crawlerdetect_says(agent)]
    assert differ == []
    assert len(agents) > 5000


def test_only_the_patterns_with_regular_expression_syntax_are_compiled() -> None:
    assert len(bots.WORDS) > 1000  # most of the list: found as substrings, no compiling
    compiled = bots.PATTERN.pattern.split("|")
    assert len(compiled) < len(bots.CRAWLER_PATTERNS) - len(bots.WORDS) + 50  # alternations inside patterns
    assert all(word == word.lower() and word.isascii() for word in bots.WORDS)


fragments = st.sampled_from([*bots.CRAWLER_PATTERNS[:: 7], *bots.WORDS[:: 5], *bots.EXCLUSION_PATTERNS, "Mozilla/5.0 ",
                             "(compatible; ", "Chrome/131.0.0.0 Safari/537.36", "; +http://", " ", "/"])
letters = st.text(st.sampled_from("abikmnostBIKS0123456789 ./;()-_\u0130\u0131\u017f\u212a\u00e9\u4e2d"), max_size=12)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.one_of(fragments, letters), min_size=1, max_size=6).map("".join))
def test_any_user_agent_gets_crawlerdetects_answer(user_agent: str) -> None:
    if not user_agent.strip():
        return
    assert listed(user_agent) == crawlerdetect_says(user_agent)


@pytest.mark.parametrize(("user_agent", "expected"), [(PERSON, False), (BOT, True), ("github-camo (1234)", False),
                                                      ("", False), (None, False), ("  ", False)])
def test_is_bot_keeps_its_exceptions(user_agent: str | None, expected: bool) -> None:
    assert bots.is_bot(user_agent) is expected
