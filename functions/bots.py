"""Whether a request's User-Agent says it is a bot: crawlers, spiders, link previews, monitors, HTTP libraries.

The list is CrawlerDetect's (``crawlerdetect``, a Python port of JayBizzle/Crawler-Detect, about 1,460 patterns,
kept in step with upstream), chosen over a small pattern of our own: on the 2,123 example User-Agents of the
crawler-user-agents project it recognises 86 % against 70 % for a dozen generic words (``bot``, ``crawl``,
``spider``, ``preview``...), and nobody here has to keep a list.

The matching is CrawlerDetect's rule (drop the exclusions, then any pattern found is a bot), with a smaller
compiled pattern: of the list's patterns, the 1,150 or so that are plain words are looked for as substrings of the
lower-cased User-Agent, and only the rest (about 310, real regular expressions) are compiled. CrawlerDetect's one
pattern of all of them costs about 19 ms of CPU to compile at every cold start, and a check 175 us for a
browser's User-Agent, 75 us for Googlebot's; this costs about 8 ms, 95 us and 35 us (``bench/honest.py``), with
the same answer for every User-Agent (``tests/functions/test_bots.py`` checks it against CrawlerDetect itself,
Unicode case folding included). It is all done at import, in Lambda's init phase (full CPU), not in a request.

Two exceptions to the list, both people:
- GitHub's image proxy (``github-camo (<hash>)``) fetches a README's badge for each person who views it: counted;
- a request with no User-Agent at all is counted (privacy tools strip it; a bot that hides says nothing either way).
"""

from __future__ import annotations

import re
from functools import lru_cache

from crawlerdetect.providers.crawlers import data as CRAWLER_PATTERNS
from crawlerdetect.providers.exclusions import data as EXCLUSION_PATTERNS

CAMO_PREFIX = "github-camo"
"""GitHub's image proxy: fetches badges on behalf of the people reading a README."""

_REGEX_SYNTAX = frozenset(".^$*+?{}[]\\|()")


def _is_word(pattern: str) -> bool:
    """Whether a pattern matches only itself (case aside): no character of regular-expression syntax."""
    return not _REGEX_SYNTAX.intersection(pattern) and pattern.isascii()


WORDS = tuple(sorted({pattern.lower() for pattern in CRAWLER_PATTERNS if _is_word(pattern)}))
"""The list's plain words, lower-cased."""
PATTERN = re.compile("|".join(p for p in CRAWLER_PATTERNS if not _is_word(p)), re.IGNORECASE)
"""The list's other patterns, compiled as CrawlerDetect compiles them (case-insensitive)."""
EXCLUSIONS = re.compile("|".join(EXCLUSION_PATTERNS), re.IGNORECASE)
"""What CrawlerDetect removes from a User-Agent before it looks for a pattern (browser and OS names...)."""
# ``re.IGNORECASE`` matches an ASCII letter by each character's simple lower case, and also takes "ı" for "i" and
# "ſ" for "s": so does this, before looking for the words. ("İ" is the one character whose ``str.lower()``
# is two characters; its simple lower case is "i".)
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s"})


@lru_cache(maxsize=1024)  # as CrawlerDetect caches its answers: the same browsers come back all day
def _listed(user_agent: str) -> bool:
    agent = EXCLUSIONS.sub("", user_agent)
    if not agent:
        return False
    folded = agent.translate(_FOLD).lower()
    # The pattern first: it holds the generic rules ("...bot", "crawl"...) that most bots meet.
    return PATTERN.search(agent) is not None or any(word in folded for word in WORDS)


def is_bot(user_agent: str | None) -> bool:
    """Whether ``user_agent`` identifies itself as a bot (camo and a missing or blank User-Agent are people)."""
    if not user_agent or not user_agent.strip():
        return False
    if user_agent.lower().startswith(CAMO_PREFIX):
        return False
    return _listed(user_agent.strip())
