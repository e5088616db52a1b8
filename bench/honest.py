"""Honest counts in figures: what the bot check costs a cold start and a request, and what the unique-visitor
window costs in DynamoDB round trips, capacity units and dollars per million visits.

- Bot check (``functions.bots``): the import of CrawlerDetect's list (``python -X importtime``) and the
  compilation of the check's patterns, both in Lambda's init phase (full CPU), measured in fresh interpreters; the
  same work if it were left to the first request (at the CPU share of the route's memory); one check, warm; the
  package's size in the layer. Beside it, CrawlerDetect's own matcher (one pattern of the whole list, which
  ``functions.bots`` answers exactly as), and the small pattern of generic words it was weighed against
  (``BASELINE_PATTERN``).
- Visits (``functions.counting``): the real visit handler against moto, every DynamoDB call recorded
  (``bench.calls``), in four cases: a person with the window off, a bot, and with a window the first visit and a
  repeat. Capacity follows DynamoDB's rules (``bench.capacity``: a failed conditional write is billed as a write).
  The design's round trips are in ``BUDGET``; a departure is a regression and fails the run.

``python -m bench.honest`` prints the figures; ``./dev bench`` adds them to BENCHMARKS.md.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

import definition
from bench.section import NO_GOAL, Row, Section
from bench import cost, prices
from bench.calls import functions_on_table, table_snapshot, watch_dynamodb
from localsite.aws import local_aws
from localsite.events import LambdaContext, rest_proxy_event

PERSON = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
WINDOW_MINUTES = 30

BASELINE_PATTERN = (
    r"bot|crawl|spider|slurp|scrap|archiv|index|fetch|preview|externalhit|embed|monitor|uptime|pingdom|check|scan|"
    r"headless|phantom|lighthouse|^curl/|^wget/|python|^java/|go-http-client|okhttp|axios|node-fetch|undici|libwww|"
    r"http[._-]?client|requests|whatsapp"
)
"""The small documented pattern CrawlerDetect was weighed against. On the 2,123 example User-Agents of the
crawler-user-agents project (1.67.0) it recognises 70 %, CrawlerDetect 0.4.2 86 % (measured once, by hand: that
list is not a dependency)."""

BUDGET: Mapping[str, Mapping[str, int]] = {
    "person, window off": {"UpdateItem": 1},
    "bot": {"GetItem": 1},
    "person, window on, first visit": {"PutItem": 1, "UpdateItem": 1},
    "person, window on, repeat": {"PutItem": 1, "GetItem": 1},
}
"""DynamoDB round trips by operation each case may make."""
COUNTED = {"person, window off": True, "bot": False, "person, window on, first visit": True,
           "person, window on, repeat": False}

_CHILD = r"""
import json, sys, time
import functools, re, typing  # loaded by boto3 and Jinja2 before the handler's own imports
clock = time.process_time  # CPU time: what Lambda's init would spend, whatever else this machine runs
started = clock()
import crawlerdetect.providers.crawlers, crawlerdetect.providers.exclusions
imported = clock()
import functions.bots  # compiles its patterns
compiled = clock()
from crawlerdetect.crawlerdetect import get_compiled_crawler_regex, get_compiled_exclusions_regex
get_compiled_crawler_regex(); get_compiled_exclusions_regex()
detector_compiled = clock()
baseline = re.compile(sys.argv[1], re.IGNORECASE)
baseline_done = clock()
print(json.dumps({"import_ms": 1000 * (imported - started), "compile_ms": 1000 * (compiled - imported),
                  "detector_compile_ms": 1000 * (detector_compiled - compiled),
                  "baseline_compile_ms": 1000 * (baseline_done - detector_compiled)}))
"""


@dataclass
class BotCheckCost:
    """What the bot check costs: at init, per request, in the layer."""

    runs: int
    import_ms: float
    """``import crawlerdetect`` (its modules' own CPU time), median of fresh interpreters."""
    importtime_ms: float
    """The same, as ``python -X importtime`` reports it (cumulative, microseconds to ms)."""
    compile_ms: float
    """Compiling the check's patterns (done at import by ``functions.bots``), CPU time."""
    check_person_us: float
    """One check of a browser's User-Agent not seen before (the slowest case: no pattern matches), warm."""
    check_bot_us: float
    detector_compile_ms: float
    """CrawlerDetect's own matcher: compiling its two patterns (the whole list in one), CPU time."""
    detector_person_us: float
    detector_bot_us: float
    baseline_compile_ms: float
    baseline_check_us: float
    package_bytes: int
    """Its files as the layer ships them, unpacked (sources)."""
    package_zipped_bytes: int
    memory_mb: int

    @property
    def init_ms(self) -> float:
        """Added to every cold start's init phase (full CPU)."""
        return self.import_ms + self.compile_ms

    @property
    def scale(self) -> float:
        """How much slower the same work runs in a request, at the memory's CPU share."""
        return max(1.0, cost.LAMBDA_FULL_VCPU_MB / self.memory_mb)


@dataclass
class VisitCase:
    """One kind of request to the visit page and what it cost in DynamoDB."""

    case: str
    round_trips: dict[str, int]
    read_units: float
    write_units: float
    counted: bool
    """Whether the page said the visit counted (it must match ``COUNTED``)."""

    @property
    def total_round_trips(self) -> int:
        return sum(self.round_trips.values())


@dataclass
class HonestCounts:
    """Everything this module measured."""

    bots: BotCheckCost | None
    visits: list[VisitCase] = field(default_factory=list)
    memory_mb: int = 256

    def regressions(self) -> list[str]:
        """Every case whose round trips or outcome depart from the design (empty: all good)."""
        problems = []
        for visit in self.visits:
            measured = {op: n for op, n in visit.round_trips.items() if n}
            if measured != dict(BUDGET[visit.case]):
                problems.append(f"visit ({visit.case}): made {measured}, the design allows {dict(BUDGET[visit.case])}")
            if visit.counted is not COUNTED[visit.case]:
                problems.append(f"visit ({visit.case}): counted={visit.counted}, expected {COUNTED[visit.case]}")
        return problems


# --- the bot check --------------------------------------------------------------------------------------------


def _importtime_ms(python: str) -> float:
    """``import crawlerdetect``'s cumulative time as ``-X importtime`` prints it (after what boto3 loads anyway)."""
    result = subprocess.run(
        [python, "-X", "importtime", "-c", "import functools, re, typing; import crawlerdetect.providers.crawlers"],
        capture_output=True, text=True, check=True,
    )
    for line in result.stderr.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if len(parts) == 3 and parts[2] == "crawlerdetect":
            return int(parts[1]) / 1000
    raise RuntimeError("python -X importtime printed no line for crawlerdetect")


def _check_us(check: Any, user_agent: str, iterations: int) -> float:
    # A suffix per iteration: every User-Agent is new, so CrawlerDetect's own cache never answers. CPU time of
    # this thread, so other work on the machine does not count.
    agents = [f"{user_agent} {index}" for index in range(iterations)]
    started = time.thread_time()
    for agent in agents:
        check(agent)
    return (time.thread_time() - started) / iterations * 1e6


def _package_size() -> tuple[int, int]:
    files = [f for f in importlib.metadata.files("crawlerdetect") or [] if str(f).startswith("crawlerdetect/")
             and str(f).endswith(".py")]
    buffer = io.BytesIO()
    unpacked = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in sorted(files, key=str):
            data = entry.locate().read_bytes()
            unpacked += len(data)
            archive.writestr(f"python/{entry}", data)
    return unpacked, len(buffer.getvalue())


def measure_bot_check(runs: int = 7, iterations: int = 2000, memory_mb: int = 256,
                      python: str = sys.executable) -> BotCheckCost:
    """The bot check's cost: ``runs`` fresh interpreters for init, ``iterations`` warm checks per case."""
    samples = []
    for _ in range(runs):
        result = subprocess.run([python, "-c", _CHILD, BASELINE_PATTERN], capture_output=True, text=True, check=True,
                                cwd=definition.ROOT)
        samples.append(json.loads(result.stdout))
    importtimes = [_importtime_ms(python) for _ in range(runs)]
    from crawlerdetect import CrawlerDetect

    from functions.bots import is_bot

    detector = CrawlerDetect()
    detector.is_crawler("warm-up")
    baseline = re.compile(BASELINE_PATTERN, re.IGNORECASE)
    unpacked, zipped = _package_size()
    return BotCheckCost(
        runs=runs,
        import_ms=statistics.median(s["import_ms"] for s in samples),
        importtime_ms=statistics.median(importtimes),
        compile_ms=statistics.median(s["compile_ms"] for s in samples),
        check_person_us=_check_us(is_bot, PERSON, iterations),
        check_bot_us=_check_us(is_bot, BOT, iterations),
        detector_compile_ms=statistics.median(s["detector_compile_ms"] for s in samples),
        detector_person_us=_check_us(detector.is_crawler, PERSON, iterations),
        detector_bot_us=_check_us(detector.is_crawler, BOT, iterations),
        baseline_compile_ms=statistics.median(s["baseline_compile_ms"] for s in samples),
        baseline_check_us=_check_us(baseline.search, PERSON, iterations),
        package_bytes=unpacked,
        package_zipped_bytes=zipped,
        memory_mb=memory_mb,
    )


# --- visits: round trips and capacity -------------------------------------------------------------------------


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def measure_visits(settings: definition.Settings) -> list[VisitCase]:
    """The four kinds of visit against moto, each call recorded with its capacity."""
    from functions.visit import handler

    route = next(r for r in definition.ROUTES if r.function is definition.VISIT)
    table_name = f"tag-counter-bench-honest-{uuid.uuid4().hex[:8]}"
    off = definition.Settings(unique_visitor_window_minutes=0)
    on = definition.Settings(unique_visitor_window_minutes=WINDOW_MINUTES)
    cases = [
        ("person, window off", off, PERSON, "bench-a"),
        ("bot", off, BOT, "bench-a"),
        ("person, window on, first visit", on, PERSON, "bench-b"),
        ("person, window on, repeat", on, PERSON, "bench-b"),
    ]
    results = []
    with local_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        definition.create_table(client, table_name)
        snapshot = table_snapshot(client, table_name)
        with functions_on_table(table_name):
            for case, case_settings, user_agent, tag in cases:
                environment = {
                    **definition.function_environment(case_settings),
                    **definition.visitor_key_environment(case_settings, "bench-visitor-key"),
                }
                event = rest_proxy_event(route, f"/tags/{tag}", {"tag": tag}, stage=settings.stage_name,
                                         headers=[("User-Agent", user_agent)], source_ip="198.51.100.20")
                context = LambdaContext("visit", settings.route_timeout_seconds, settings.route_memory_mb)
                with _environment(environment), watch_dynamodb(snapshot) as log:
                    response = handler(event, context)
                reads, writes = log.units()
                results.append(VisitCase(case, log.round_trips(), reads, writes,
                                         counted='id="visit-note"' not in str(response.get("body"))))
    return results


def measure(settings: definition.Settings, *, runs: int = 7, iterations: int = 2000,
            bot_check: bool = True) -> HonestCounts:
    """Everything: the bot check's cost (unless ``bot_check`` is false) and the four visit cases."""
    bots = measure_bot_check(runs, iterations, settings.route_memory_mb) if bot_check else None
    return HonestCounts(bots, measure_visits(settings), settings.route_memory_mb)


# --- dollars --------------------------------------------------------------------------------------------------


def dynamodb_dollars(visit: VisitCase) -> float:
    """DynamoDB's bill for one million such requests."""
    return 1e6 * (visit.read_units * prices.DYNAMODB_READ_REQUEST_UNIT.dollars
                  + visit.write_units * prices.DYNAMODB_WRITE_REQUEST_UNIT.dollars)


def waiting_dollars(visit: VisitCase, memory_mb: int) -> float:
    """The Lambda duration one million such requests spend waiting on DynamoDB (``bench.cost``'s latency)."""
    ms = cost.ASSUMPTIONS["dynamodb_round_trip_ms"] * visit.total_round_trips
    return 1e6 * memory_mb / 1024 * ms / 1000 * prices.LAMBDA_ARM64_GB_SECOND.dollars


def rows(result: HonestCounts) -> list[tuple[str, str, str, str, str, str]]:
    """Case, round trips, read units, write units, DynamoDB $ and waiting $ per million requests."""
    out = []
    for visit in result.visits:
        trips = ", ".join(f"{n} {op}" for op, n in sorted(visit.round_trips.items()) if n)
        out.append((visit.case, trips, f"{visit.read_units:g}", f"{visit.write_units:g}",
                    f"${dynamodb_dollars(visit):.3f}", f"${waiting_dollars(visit, result.memory_mb):.3f}"))
    return out


def window_extra_dollars(result: HonestCounts, repeat_share: float) -> float:
    """What the window adds per million loads (DynamoDB and waiting) when ``repeat_share`` of them are repeats."""
    by_case = {v.case: v for v in result.visits}
    base = by_case["person, window off"]
    first, repeat = by_case["person, window on, first visit"], by_case["person, window on, repeat"]

    def bill(visit: VisitCase) -> float:
        return dynamodb_dollars(visit) + waiting_dollars(visit, result.memory_mb)

    return (1 - repeat_share) * bill(first) + repeat_share * bill(repeat) - bill(base)


def summary_pairs(result: HonestCounts) -> list[tuple[str, str]]:
    """(figure, value) lines for the benchmark's summary."""
    pairs = []
    if result.bots is not None:
        b = result.bots
        pairs.append(("bot check: cold-start cost", f"{b.init_ms:.1f} ms at init ({b.import_ms:.1f} import + "
                      f"{b.compile_ms:.1f} compile); {b.check_person_us:.0f} us per check"))
    by_case = {v.case: v for v in result.visits}
    for case in ("person, window off", "person, window on, first visit"):
        if case in by_case:
            v = by_case[case]
            pairs.append((f"visit, {case.removeprefix('person, ')}",
                          f"{v.total_round_trips} round trips, {v.write_units:g} WRU, "
                          f"${dynamodb_dollars(v):.3f} DynamoDB per million"))
    return pairs


def render_markdown(result: HonestCounts) -> list[str]:
    """The section of BENCHMARKS.md."""
    out = ["## Honest counts", ""]
    if result.bots is not None:
        b = result.bots
        out += [
            f"The bot check (`functions/bots.py`, CrawlerDetect 0.4.2's list), median of {b.runs} fresh interpreters. "
            "Its patterns are compiled at import, in Lambda's init phase (full CPU); the first request runs at "
            f"{b.memory_mb} MB's CPU share ({b.scale:.1f}x slower), so the same work there would cost "
            f"{b.init_ms * b.scale:.0f} ms. It compiles only the list's real regular expressions and looks for its "
            "plain words as substrings, with CrawlerDetect's answer for every User-Agent "
            "(`tests/functions/test_bots.py`); CrawlerDetect's own matcher compiles the whole list as one pattern.",
            "",
            "| figure | `functions.bots` | CrawlerDetect's matcher | small pattern (`bench.honest.BASELINE_PATTERN`) |",
            "|---|---|---|---|",
            f"| import of the list (`python -X importtime`, cumulative) | {b.importtime_ms:.1f} ms | the same | - |",
            f"| import (CPU time in the interpreter) | {b.import_ms:.1f} ms | the same | - |",
            f"| compile the patterns (CPU time) | {b.compile_ms:.1f} ms | {b.detector_compile_ms:.1f} ms "
            f"| {b.baseline_compile_ms:.2f} ms |",
            f"| added to init | {b.init_ms:.1f} ms | {b.import_ms + b.detector_compile_ms:.1f} ms "
            f"| {b.baseline_compile_ms:.2f} ms |",
            f"| one check, a browser's User-Agent, warm (CPU) | {b.check_person_us:.0f} us | "
            f"{b.detector_person_us:.0f} us | {b.baseline_check_us:.1f} us |",
            f"| one check, Googlebot, warm | {b.check_bot_us:.0f} us | {b.detector_bot_us:.0f} us | - |",
            f"| one check at {b.memory_mb} MB's CPU share | {b.check_person_us * b.scale / 1000:.2f} ms | "
            f"{b.detector_person_us * b.scale / 1000:.2f} ms | - |",
            f"| in the layer (sources) | {b.package_bytes / 1024:.1f} KB, {b.package_zipped_bytes / 1024:.1f} KB "
            "zipped | the same | 0 |",
            "| example bot User-Agents recognised (crawler-user-agents 1.67.0, 2,123) | 86 % | 86 % | 70 % |",
            "",
        ]
    out += [
        f"The visit page's DynamoDB calls per request, window of {WINDOW_MINUTES} minutes where on (the real handler "
        "against moto; a failed conditional write is billed one write unit). Dollars per million requests: "
        f"DynamoDB on demand, and the Lambda time spent waiting on it ({cost.ASSUMPTIONS['dynamodb_round_trip_ms']:g}"
        f" ms a round trip, {result.memory_mb} MB arm64). Everything else a request costs (API Gateway, the "
        "invocation, logs, the stream) is the same in every case: the window's markers are filtered out before "
        "the stream processor and their TTL deletion is free.",
        "",
        "| case | round trips | read units | write units | DynamoDB per million | waiting per million |",
        "|---|---|---|---|---|---|",
    ]
    out += [f"| {' | '.join(row)} |" for row in rows(result)]
    if {v.case for v in result.visits} >= set(BUDGET):
        extras = ", ".join(f"${window_extra_dollars(result, share):.2f} with {share:.0%} repeats"
                           for share in (0.0, 0.5, 0.9))
        out += ["", f"The window adds per million page loads: {extras}."]
    out.append("")
    return out


SECTION = Section(
    name="honest",
    measure=lambda run: measure(run.settings, runs=3 if run.quick else 7, iterations=run.options.iterations),
    rows=lambda result: [Row(figure, value, NO_GOAL, NO_GOAL) for figure, value in summary_pairs(result)],
    markdown=render_markdown,
    failures=lambda result: result.regressions(),
)
"""The bot check's cold-start cost, and a visit's calls, units and dollars with and without the unique-visitor
window; a visit that makes other calls than the design's fails the run."""


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures (``--quick``: fewer samples)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in arguments
    result = measure(definition.stack_settings("dev"), runs=3 if quick else 7, iterations=300 if quick else 2000)
    print("\n".join(render_markdown(result)))
    problems = result.regressions()
    for problem in problems:
        print(f"REGRESSION: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
