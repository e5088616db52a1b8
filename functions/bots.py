"""Whether a request's User-Agent says it is a bot: crawlers, spiders, link previews, monitors, HTTP libraries.

The list is CrawlerDetect's (``crawlerdetect``, a Python port of JayBizzle/Crawler-Detect, about 1,460 patterns,
kept in step with upstream), chosen over a small pattern of our own: on the 2,123 example User-Agents of the
crawler-user-agents project it recognises 86 % against 70 % for a dozen generic words (``bot``, ``crawl``,
``spider``, ``preview``...), and nobody here has to keep a list. Its cost is one large regular expression: compiled
here, at import, so the work lands in Lambda's init phase (full CPU; about 16 ms, see ``bench/honest.py``) and not in
the first request, which runs at the memory's CPU share. A check then takes about 0.1 ms.

Two exceptions to the list, both people:
- GitHub's image proxy (``github-camo (<hash>)``) fetches a README's badge for each person who views it: counted;
- a request with no User-Agent at all is counted (privacy tools strip it; a bot that hides says nothing either way).
"""

from __future__ import annotations

from crawlerdetect import CrawlerDetect

CAMO_PREFIX = "github-camo"
"""GitHub's image proxy: fetches badges on behalf of the people reading a README."""

_detector = CrawlerDetect()
# The patterns compile on first use: do it now, at import (Lambda's init phase), not in a request. It takes a
# browser's full User-Agent: a short one is settled by the exclusions before the big pattern is ever compiled
# (measured: "Mozilla/5.0" left 13 ms of compiling to the first request).
_detector.is_crawler("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")


def is_bot(user_agent: str | None) -> bool:
    """Whether ``user_agent`` identifies itself as a bot (camo and a missing or blank User-Agent are people)."""
    if not user_agent or not user_agent.strip():
        return False
    if user_agent.lower().startswith(CAMO_PREFIX):
        return False
    return _detector.is_crawler(user_agent)
