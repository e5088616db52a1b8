"""Concurrent visits to one tag never lose a count, and every visitor gets a distinct number (SPEC section 5)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .conftest import Site, parse_page

THREADS = 16
VISITS_PER_THREAD = 25


def test_many_threads_visiting_one_tag_lose_nothing(site: Site) -> None:
    def visit_many(_: int) -> list[int]:
        numbers = []
        for _ in range(VISITS_PER_THREAD):
            response = site.get("/tags/busy")
            assert response["statusCode"] == 200
            numbers.append(int(parse_page(response["body"]).texts["visit-number"]))
        return numbers

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        numbers = [n for batch in pool.map(visit_many, range(THREADS)) for n in batch]

    expected = THREADS * VISITS_PER_THREAD
    assert site.visits("tag#busy") == expected
    # One atomic UpdateItem per visit: each visitor saw a different number, none skipped.
    assert sorted(numbers) == list(range(1, expected + 1))
    # The stream processor turns all of it into the same total, in one write.
    assert site.process_stream() == {"batchItemFailures": []}
    assert site.visits("site#total") == expected
