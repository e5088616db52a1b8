"""Bad input at volume: random paths and tags through the local site over HTTP (SPEC 3, 4, 9).

Every answer is a well-formed HTML page with a 2xx or 4xx status (the bare ``/`` redirects to the stage),
never a 5xx, a traceback or AWS's own words; only a valid tag's visit page writes, and it writes exactly one
visit to exactly the tag it shows. Everything else leaves the tag items as they were (a scan before and after).
"""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.keys import MARKER_PREFIX, TAG_PREFIX, TOTAL_KEY
from tests.reliability.helpers import all_items, drain, http_get, running_site, tag_counts, total

EXAMPLES = 200
STAGE = "dev"

VOID_ELEMENTS = frozenset({"meta", "link", "br", "hr", "img", "input", "wbr", "source", "area", "base", "col"})
LEAKS = ("Traceback", "botocore", "boto3", "tag-counter-local", "Exception", "Error:", "arn:aws", "moto", "__type")

# Tags meant to be awkward: internal-key look-alikes, encodings of separators, limits, malformed escapes.
AWKWARD = [
    "TOTAL", "site%23total", "batch%23x", "tag%23x", "%2E%2E", ".", "..", "%2F", "a%2Fb", "%00", "%25", "%2541",
    "%", "%G1", "%C3", "%FF%FE", "%CC%81", "x" * 64, "x" * 65, "%20", "+", "a+b", "%E2%80%8B", "%F0%9F%98%80",
    "caf%C3%A9", "CAFE%CC%81", "%3Cscript%3E", "%22%3E%3Cb%3E", "'", "%27", "&amp;", "%26", "~", "!", "*",
]
PRINTABLE_ASCII = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%")


class PageChecker(HTMLParser):
    """Checks a page is well formed: every element closed in order, one of each landmark, no script."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.seen: Counter[str] = Counter()
        self.problems: list[str] = []
        self.doctype = False
        self.ids: dict[str, str] = {}
        self._capture: str | None = None

    def handle_decl(self, decl: str) -> None:
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # A chart's bars carry SVG <title>s (their tooltips): only the document's own <title> is a landmark.
        self.seen["svg " + tag if "svg" in self.open else tag] += 1
        attributes = dict(attrs)
        if tag == "html" and attributes.get("lang") != "en":
            self.problems.append("html without lang")
        if "id" in attributes:
            self._capture = attributes["id"] or ""
            self.ids[self._capture] = ""
        if tag not in VOID_ELEMENTS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen[tag] += 1

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
            return
        self.open.pop()
        self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture is not None:
            self.ids[self._capture] += data


def check_page(status: int, headers: dict[str, str], body: str) -> PageChecker:
    """Assert an answer is a well-formed page of ours, and return what it holds."""
    assert headers.get("content-type") == "text/html; charset=utf-8", headers
    assert headers.get("x-content-type-options") == "nosniff"
    assert "default-src 'none'" in headers.get("content-security-policy", "")
    for leak in LEAKS:
        assert leak not in body, f"{leak!r} on a {status} page"
    checker = PageChecker()
    checker.feed(body)
    checker.close()
    assert checker.doctype, "no doctype"
    assert checker.problems == [] and checker.open == [], (checker.problems, checker.open)
    for landmark in ("html", "head", "title", "body", "main", "h1"):
        assert checker.seen[landmark] == 1, f"{checker.seen[landmark]} <{landmark}>"
    assert checker.seen["script"] == 0
    return checker


def segments() -> st.SearchStrategy[str]:
    """A path segment: an awkward tag, random Unicode text percent-encoded, raw bytes, or printable ASCII."""
    encoded_text = st.builds(
        lambda text, safe: quote(text, safe=safe),
        st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=70),
        st.sampled_from(["", "-_.~", "-_.~!$&'()*+,;=:@"]),
    )
    raw_bytes = st.binary(min_size=1, max_size=24).map(lambda data: "".join(f"%{byte:02X}" for byte in data))
    ascii_text = st.text(PRINTABLE_ASCII, min_size=1, max_size=20)
    return st.one_of(st.sampled_from(AWKWARD), encoded_text, raw_bytes, ascii_text)


@st.composite
def targets(draw: st.DrawFn) -> tuple[str, str]:
    """A method and a request target: mostly the routes with odd tags, sometimes odd paths and methods."""
    segment = draw(segments())
    shape = draw(
        st.sampled_from(
            [
                *["/{s}/tags/{t}", "/{s}/counts/{t}"] * 6, "/{s}/{t}", "/{t}",
                "/{s}/tags/{t}/{t}", "/{s}/tags/", "/{s}/tags", "/{s}//tags/{t}", "/{s}/TAGS/{t}",
                "/{s}/tags/{t}?{t}={t}", "/{s}/counts/{t}?x", "/{s}/", "/{s}", "/", "/prod/tags/{t}",
                "/{s}/tags/{t}/", "/{s}/../{s}/tags/{t}", "/{s}/tags/{t}%2F{t}",
            ]
        )
    )
    method = draw(st.sampled_from(["GET"] * 15 + ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]))
    return method, shape.format(s=STAGE, t=segment)


def test_random_paths_and_tags_get_well_formed_pages_and_bad_ones_write_nothing(state_dir: Path) -> None:
    tally: Counter[int] = Counter()
    counted = Counter[str]()
    with running_site(state_dir) as site:
        assert site.settings.stage_name == STAGE

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(st.lists(targets(), min_size=1, max_size=8))
        def run(requests: list[tuple[str, str]]) -> None:
            before = tag_counts(site)
            expected = Counter(before)
            for method, target in requests:
                reply = http_get(site.port, target, method=method)
                tally[reply.status] += 1
                assert reply.status < 500, (method, target, reply.status, reply.body[:300])
                if reply.status == 302:
                    assert target == "/" and reply.headers["location"] == f"/{STAGE}/"
                    continue
                assert 200 <= reply.status < 300 or 400 <= reply.status < 500, (target, reply.status)
                page = check_page(reply.status, reply.headers, reply.body)
                if reply.status == 200 and "visit-number" in page.ids:
                    # A visit page: it counted one visit for the tag it shows, and says which number it was.
                    assert method == "GET" and f"/{STAGE}/tags/" in target
                    shown = page.ids["tag"]
                    expected[shown] += 1
                    counted[shown] += 1
                    assert int(page.ids["visit-number"]) == expected[shown]
            # THEN the tag items changed by exactly the visits the pages confirmed, and by nothing else
            assert tag_counts(site) == dict(expected)
            keys = all_items(site)
            assert all(k.startswith((TAG_PREFIX, MARKER_PREFIX)) or k == TOTAL_KEY for k in keys), sorted(keys)

        run()
        drain(site)
        site_total = total(site)
        print(
            f"\n[fuzz] {sum(tally.values())} requests in {EXAMPLES} examples; statuses {dict(sorted(tally.items()))}; "
            f"visits counted {sum(counted.values())} over {len(counted)} tags; total {site_total}"
        )
        # Bad input was really exercised, and the stream kept up with what was counted
        assert tally[400] > 0 and tally[404] > 0 and tally[200] > 0
        assert site_total == sum(counted.values()) == sum(tag_counts(site).values())
