"""Turn the measurements into a terminal table (each figure beside its goal) and ``BENCHMARKS.md``."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import definition
from bench import cost, prices
from bench.coldstart import (
    BASELINE_SOURCE,
    BYTECODE_MODES,
    COLD_GOAL,
    FIRST_GOAL,
    INIT_GOAL,
    MODEL_MEMORIES,
    BOTOCORE_GOAL,
    ColdStart,
)
from bench.cost import CostInputs, CostModel, LineItem, MemoryOption
from bench.roundtrips import BUDGET, RoundTrips
from bench.section import FAILS, MET, NO_GOAL, NOT_MEASURED, NOT_MET, SUMMARY_WIDTH, Row, Section, status
from bench.siteload import NEW_TAG_GOAL_PER_SECOND, NEW_TAG_PAGE, NEW_TAG_RATIO_GOAL, POLL_SECONDS, SiteLoad
from bench.warm import ABSOLUTE_GOAL_MS, WarmResult

__all__ = ["FAILS", "MET", "NOT_MET", "NO_GOAL", "NOT_MEASURED", "Report", "Row", "legend", "render_markdown",
           "render_table", "summary_rows"]

_status = status


@dataclass
class Report:
    """Everything one benchmark run measured, and what it skipped and why."""

    settings: definition.Settings
    stack: str
    command: str
    started: str
    seconds: float = 0.0
    quick: bool = False
    cold: list[ColdStart] | None = None
    cold_bytecode: list[ColdStart] | None = None
    """The second cold-start pass, with ``cold_variant_mode``'s bytecode."""
    cold_mode: str = "none"
    """The bytecode of the ``cold`` pass (a ``bench.coldstart.BYTECODE_MODES`` key): what the packaging ships."""
    cold_mode_reason: str = ""
    """Why the packaging ships that from this machine (``components.packaging.find_target_python``)."""
    cold_variant_mode: str = "layer"
    cold_archive: str = ""
    cold_runs: int = 0
    warm: list[WarmResult] | None = None
    warm_iterations: int = 0
    round_trips: list[RoundTrips] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)
    """Round-trip regressions and the sections' failures: each fails the run."""
    sections: list[tuple[Section, Any]] = field(default_factory=list)
    """The pluggable sections (``bench.sections``) that ran, with their results."""
    site: SiteLoad | None = None
    cost_inputs: CostInputs | None = None
    cost: CostModel | None = None
    memory: list[MemoryOption] | None = None
    """Latency and cost of the route functions at each modelled memory size."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Section -> why it was not measured."""
    load_average: tuple[float, float] | None = None
    """The machine's 1-minute load average at the start and the end of the run (other work skews timings)."""

    @property
    def recommended_memory_mb(self) -> int | None:
        """The route memory this run recommends (``bench.cost.recommend_memory``), if it measured enough."""
        return cost.recommend_memory(self.memory) if self.memory else None


def _ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.0f} ms" if value >= 100 else f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def _dollars(value: float) -> str:
    return f"${value:.4f}" if value < 0.01 else f"${value:.3f}" if value < 1 else f"${value:.2f}"


def _price(dollars: float) -> str:
    if 0 < dollars < 0.001:
        return f"${dollars * 1e6:.4g} per million" if dollars >= 1e-6 else f"${dollars:.10f}".rstrip("0")
    return f"${dollars:g}"


def _ratio(value: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}x"


def _memory(report: Report, result: ColdStart) -> int:
    return report.settings.route_memory_mb if result.route else report.settings.processor_memory_mb


def _cold_rows(report: Report) -> list[Row]:
    if report.cold is None:
        return [Row("cold start", report.skipped.get("cold", NOT_MEASURED)[:38], NO_GOAL, NOT_MEASURED)]
    rows = []
    for r in report.cold:
        memory = _memory(report, r)
        rows.append(Row(f"cold {r.function}: init",
                        f"{_ms(r.init_cpu_ms)} CPU = {_ratio(r.init_ratio)} floor ({_ms(r.floor_init_cpu_ms)})",
                        f"<= {INIT_GOAL:g}x floor", _status(r.init_met)))
        rows.append(Row(f"cold {r.function}: first request",
                        f"{_ms(r.first_cpu_ms)} CPU = {_ratio(r.first_ratio)} warm ({_ms(r.warm_cpu_ms)})",
                        f"<= {FIRST_GOAL:g}x warm", _status(r.first_met)))
        modelled, before = r.modelled_ms(memory), r.baseline_ms.get(memory)
        value = _ms(modelled) + (f" = {_ratio(modelled / before)} before ({_ms(before)})" if before else "")
        goal = f"<= {COLD_GOAL:g}x before" if r.cold_goal_ms(memory) is not None else NO_GOAL
        rows.append(Row(f"cold {r.function}: at {memory} MB", value, goal, _status(r.cold_met(memory))))
    return rows + _client_rows(report)


def _client_rows(report: Report) -> list[Row]:
    """The functions' client against the botocore floor: the bar it was adopted on (``BOTOCORE_GOAL``)."""
    measured = list(report.cold or ())
    visit = next((r for r in measured if r.function == "visit"), None)
    routes = [r for r in measured if r.route]
    if visit is None or not routes:
        return []
    ratios = [r.floor_cold_ratio(_memory(report, r)) for r in routes]
    memory = report.settings.route_memory_mb
    return [
        Row("client: visit init", f"{_ratio(visit.init_ratio)} the botocore floor's", f"<= {BOTOCORE_GOAL:g}x floor",
            _status(visit.init_ratio <= BOTOCORE_GOAL)),
        Row(f"client: routes at {memory} MB", f"{_ratio(min(ratios))}-{_ratio(max(ratios))} the floor's",
            f"<= {BOTOCORE_GOAL:g}x each", _status(max(ratios) <= BOTOCORE_GOAL)),
    ]


def _warm_name(result: WarmResult) -> str:
    if result.records is None:
        return result.function
    return f"{result.function} ({result.records} record{'s' if result.records != 1 else ''})"


def _round_trips(result: RoundTrips) -> str:
    if not result.round_trips:
        return "no call"
    return ", ".join(f"{count} {operation}" for operation, count in sorted(result.round_trips.items()))


def _short_label(result: RoundTrips) -> str:
    # A page by its function's name (``GET /counts/{tag}/badge.json`` would not fit the table); the Markdown
    # section lists each with its full path.
    if result.label.startswith("GET "):
        # The HTML pages' names are one word; a badge's or a JSON's (``count-badge``, ``visit-json``) says what it is.
        return f"{result.subject} page" if "-" not in result.subject else result.subject
    return result.label.replace("stream batch of", "batch of").removesuffix(" records").removesuffix(" record")


def summary_rows(report: Report) -> list[Row]:
    """The summary: every figure with its goal and whether it is met (each row fits ``SUMMARY_WIDTH``)."""
    rows = _cold_rows(report)
    if report.warm is not None:
        for result in report.warm:
            rows.append(Row(
                f"warm {_warm_name(result)}",
                f"{_ms(result.handler_ms)} = {_ratio(result.ratio)} bare ({_ms(result.bare_ms)}) "
                f"+{result.overhead_ms:.2f}",
                f"+ < {ABSOLUTE_GOAL_MS:g} ms",
                _status(result.met),
            ))
    else:
        rows.append(Row("warm request", report.skipped.get("warm", NOT_MEASURED)[:38],
                        f"+ < {ABSOLUTE_GOAL_MS:g} ms", NOT_MEASURED))
    failing = {problem.split(":")[0] for problem in report.regressions}
    for result in report.round_trips:
        budget = ", ".join(f"{n} {op}" for op, n in BUDGET[result.subject].items())
        rows.append(Row(
            f"round trips: {_short_label(result)}",
            f"{_round_trips(result)}; {result.read_units:g} RRU, {result.write_units:g} WRU",
            budget,
            FAILS if result.label in failing else MET,
        ))
    for section, result in report.sections:
        rows += section.rows(result)
    if report.site is not None:
        for page in report.site.pages:
            new_tag = page.page == NEW_TAG_PAGE
            rows.append(Row(f"local site: {page.page.split(' (')[0]}",
                            f"{page.per_second:.0f} req/s, {page.clients} clients, {page.errors} errors",
                            f">= {NEW_TAG_GOAL_PER_SECOND} req/s" if new_tag else NO_GOAL,
                            _status(page.per_second >= NEW_TAG_GOAL_PER_SECOND) if new_tag else NO_GOAL))
        ratio = report.site.new_tag_ratio
        if ratio == ratio:  # both measured
            rows.append(Row("local site: new-tag/count", f"{ratio:.2f}x (one after the other)",
                            f">= {NEW_TAG_RATIO_GOAL:g}x", _status(ratio >= NEW_TAG_RATIO_GOAL)))
        unresolved = report.site.lag_unresolved
        rows.append(Row("local site: stream lag",
                        f"median {_ms(report.site.lag_median_ms)}, p99 {_ms(report.site.lag_p99_ms)}",
                        NO_GOAL, f"{unresolved} lost" if unresolved else NO_GOAL))
    elif "site" in report.skipped:
        rows.append(Row("local site", report.skipped["site"][:38], NO_GOAL, NOT_MEASURED))
    if report.cost is not None:
        for rate, items in report.cost.visits.items():
            rows.append(Row(f"cost of 1M visits at {rate:g}/s", _dollars(CostModel.total(items)),
                            NO_GOAL, NO_GOAL))
    if report.memory:
        chosen = report.recommended_memory_mb
        option = next(o for o in report.memory if o.memory_mb == chosen)
        rows.append(Row("route memory", f"{chosen} MB recommended (cold {_ms(option.cold_ms)})",
                        f"set: {report.settings.route_memory_mb} MB", NO_GOAL))
    return rows


def render_table(rows: Sequence[Row]) -> str:
    """The summary as an aligned plain-text table."""
    header = Row("figure", "value", "goal", "status")
    all_rows = [header, *rows]
    widths = [max(len(getattr(row, name)) for row in all_rows) for name in ("figure", "value", "goal")]
    lines = []
    for index, row in enumerate(all_rows):
        line = f"{row.figure:<{widths[0]}}  {row.value:<{widths[1]}}  {row.goal:<{widths[2]}}  {row.status}"
        lines.append(line.rstrip())
        if index == 0:
            lines.append("-" * min(SUMMARY_WIDTH, sum(widths) + 6 + max(len(r.status) for r in all_rows)))
    return "\n".join(lines)


def legend(report: Report) -> list[str]:
    """What the summary's words mean, and which problems fail the run (printed under the table and in the
    report)."""
    return [
        "floor: a fresh interpreter doing only what a function on the AWS SDK must: import boto3 (and Jinja2",
        "  for a page), create a DynamoDB client, compile the same templates (its init), make the same call.",
        "cold ...: CPU time in fresh interpreters; 'at N MB' models Lambda: init at full speed + first",
        f"  request / (N / {cost.LAMBDA_FULL_VCPU_MB} MB); 'before': that figure before init moved to module scope.",
        "warm ...: median time of a warm request; 'bare': the same DynamoDB call made directly, answered",
        "  the same way; '+': the handler's own work on top of it (its overhead).",
        "client: the functions' DynamoDB client is on the standard library (functions.dynamodb), not",
        "  botocore: their init and cold start against the botocore floor's (BENCHMARKS.md, Cold start).",
        "RRU / WRU: DynamoDB read / write request units, what on-demand capacity is billed in.",
        f"{FAILS}: a design budget is broken (a page or batch calls DynamoDB more than allowed): the run",
        f"  exits 1. {NOT_MET}: a speed or size goal is missed: reported only, it depends on the machine.",
    ]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (``|`` in cells escaped)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def bar_chart(values: Sequence[tuple[str, float]], width: int = 40, unit: str = "") -> str:
    """A horizontal text bar chart (for a code block)."""
    if not values:
        return ""
    largest = max(value for _, value in values) or 1.0
    label_width = max(len(label) for label, _ in values)
    lines = []
    for label, value in values:
        bar = "█" * max(1 if value > 0 else 0, round(value / largest * width))
        lines.append(f"{label:<{label_width}}  {bar} {_dollars(value) if unit == '$' else f'{value:g}{unit}'}")
    return "\n".join(lines)


def _group(items: Sequence[LineItem]) -> list[tuple[str, float]]:
    groups: dict[str, float] = {}
    for item in items:
        if item.name.startswith("Lambda"):
            key = "Lambda (requests + duration)"
        elif item.name.startswith("DynamoDB"):
            key = "DynamoDB (page + stream writes)"
        else:
            key = item.name.split(":")[0]
            key = "CloudWatch Logs" if key.startswith("CloudWatch") else key
        groups[key] = groups.get(key, 0.0) + item.dollars
    return sorted(groups.items(), key=lambda pair: -pair[1])


def render_markdown(report: Report) -> str:
    """``BENCHMARKS.md``: the summary, then each measurement in detail, the cost model and its assumptions."""
    s = report.settings
    out: list[str] = [
        "# Benchmarks",
        "",
        f"Written by `{report.command}` on {report.started} in {report.seconds:.0f} s"
        + (" (quick run: fewer samples, figures noisier)" if report.quick else "") + ". "
        "Run `./dev bench --help` for the options. Speed figures are from this machine "
        f"({_machine()}{_load(report)}); ratios matter more than absolute numbers.",
        "",
        "## Summary",
        "",
        markdown_table(["figure", "value", "goal", "status"],
                       [(r.figure, r.value, r.goal, r.status) for r in summary_rows(report)]),
        "",
        *(f"- {line.strip()}" if not line.startswith("  ") else f"  {line.strip()}" for line in legend(report)),
        "",
    ]
    if report.regressions:
        out += ["**Regressions (the run failed):**", ""]
        out += [f"- {problem}" for problem in report.regressions]
        out.append("")
    out += _cold_section(report) + _memory_section(report) + _warm_section(report) + _round_trip_section(report)
    for section, result in report.sections:
        out += [*section.markdown(result)]
    out += _site_section(report) + _cost_section(report)
    if report.skipped:
        out += ["## Not measured in this run", ""]
        out += [f"- {section}: {why}" for section, why in report.skipped.items()]
        out.append("")
    out += [
        "## Settings used",
        "",
        f"Stack `{report.stack}` (`Pulumi.{report.stack}.yaml`): route functions {s.route_memory_mb} MB, stream processor "
        f"{s.processor_memory_mb} MB, batch size {s.stream_batch_size}, batching window "
        f"{s.stream_batching_window_seconds} s, runtime {definition.RUNTIME} on {definition.ARCHITECTURE}.",
        "",
    ]
    return "\n".join(out)


def _load(report: Report) -> str:
    if report.load_average is None:
        return ""
    start, end = report.load_average
    busy = " - busy: other work was running, timings are noisier" if max(start, end) > (os.cpu_count() or 1) else ""
    return f", load average {start:.1f} at the start and {end:.1f} at the end{busy}"


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


MODEL_SOURCES = (
    "- One vCPU at 1,769 MB, CPU in proportion to memory below it: AWS Lambda Developer Guide, \"Configure "
    "Lambda function memory\" (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).",
    "- The init phase runs unthrottled whatever the memory (two vCPUs even at 128 MB, measured): Luc van "
    "Donkersgoed, \"When is the Lambda Init Phase Free, and when is it Billed?\" "
    "(https://lucvandonkersgoed.com/2022/04/09/when-is-the-lambda-init-phase-free-and-when-is-it-billed/); "
    "hence AWS's advice to create SDK clients outside the handler "
    "(https://docs.aws.amazon.com/lambda/latest/dg/best-practices.html).",
    "- Since August 2025 the init phase of managed runtimes is billed like the invoke: \"AWS Lambda standardizes "
    "billing for INIT Phase\" (https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/).",
)


COLD_FINDINGS = (
    "- Garbage collection: `functions.store.freeze_container_objects` (`gc.freeze()` at the end of init, in "
    "Lambda only) is kept. Without it every first request ran a full collection over what init built: 22.9 ms "
    "of CPU against 4.2 ms with it (visit, 6 runs; 158 ms against 29 ms at 256 MB).",
    "- Templates: compiling a page function's three templates at import takes 3.8 ms of init; precompiled at "
    "packaging (`Environment.compile_templates` and a `ModuleLoader`) they would load in 0.35 ms. About 2% of "
    "init, at full speed: not worth a second loader and a packaging step, so they are compiled at import.",
    "- Neither boto3 nor botocore is imported: the functions' DynamoDB client is `functions.dynamodb`, on the "
    "standard library (below). Before it, with botocore's own client, boto3 was already left out (its resource "
    "layer: import and client 141-160 ms of CPU against 161-175 ms with boto3, 5 runs each), and so was awscrt, "
    "which botocore imports whenever it is installed (about 50 ms of CPU per cold start when present).",
    "- The first request costs about twice a warm one (a new connection, the first use of the code paths). "
    "With botocore, a call at init answered in-process measured 4.04 ms -> 3.11 ms for the first request "
    "(home, 5 runs), 3% of the cold start: not kept, as it would be one more code path per operation; the "
    "visit function has no action that does not write, and for on-demand functions the first request follows "
    "init at once.",
)
"""What was tried and measured on this machine (2026-12-01) while moving the work into init."""

CLIENT_FINDINGS = (
    "What the client is: `functions/dynamodb.py`, about 400 lines on `hmac`, `hashlib`, `http.client` and "
    "`json`: the JSON 1.0 protocol, SigV4 with the session token, credentials and region from Lambda's "
    "environment, `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL`, one kept-alive connection with 1 s timeouts, "
    "botocore's standard-mode retries (the same 3 attempts, backoff, retry quota and `x-amz-retry-after`), the "
    "`x-amz-crc32` check, and botocore's errors (`ClientError` with `Error.Code`, `Item`, "
    "`CancellationReasons`), for the operations the functions call. Its one seam is the transport that sends a "
    "signed request: the kept-alive connection in Lambda; in the local site, the tests and the benchmarks, "
    "moto in the same process (`localsite.transport`), where the fault hooks, the after-write listeners and "
    "the call recorders see every request. Checked without AWS (`tests/functions/test_dynamodb.py`): its "
    "`Authorization` equals botocore's `SigV4Auth` for the same request and time over 1,000 generated requests "
    "(every operation, unicode tags, any keys, region, session token and endpoint); it gives the signatures of "
    "AWS's Signature Version 4 test suite (10 cases, the session token's included); the store's calls, a "
    "failed condition's `Item` and a cancelled transaction's reasons against moto's `ThreadedMotoServer` and "
    "moto in-process; retries, errors, CRC32 and the kept connection against a scripted server; and no "
    "function imports botocore or boto3.",
    "",
    "Decision: adopted; botocore is off the functions' path. It was measured first as a second build of the "
    "archive (each botocore import and the client's construction replaced, nothing else), in the same rounds "
    "as the botocore build and the floor (12 runs, 2026-12-03): every route function's modelled cold start at "
    "256 MB came to 0.39x-0.41x the botocore build's (visit 261 -> 108 ms, home 272 -> 107 ms, count "
    "271 -> 108 ms; the stream processor 235 -> 69 ms), its init to 0.33x-0.36x the floor's, warm requests "
    "to about half, nothing worse: the rule (every route function at most 0.5x, nothing else worse) was met. "
    "With one client in the shipped code there is no botocore build left to run; the table above compares the "
    "shipped client with the floor, a bare boto3 client making the same call, whose init is a little more "
    "than the botocore build's was (the botocore build's init was 0.84x-0.93x the floor's in those runs: "
    "boto3's resource layer), so a ratio to the floor reads a little lower than one to the botocore build.",
    "",
    "Not in the model: TLS (the figures are over plain HTTP on 127.0.0.1), for the functions and the floor "
    "alike. What remains of a function's init is Jinja2 and its templates, the bot list (the visit "
    "functions) and the product's own modules.",
)
"""The DynamoDB client on the standard library: what it is, how it is checked, and why it was adopted."""


def _imports(imports: list[tuple[str, float]] | None, shown: Callable[[str, float], bool], empty: str) -> str:
    """One cell of import figures; a quick run does not measure them."""
    if imports is None:
        return "not measured (quick run)"
    return ", ".join(f"{name} {ms:.0f} ms" for name, ms in imports if shown(name, ms)) or empty


def _cold_section(report: Report) -> list[str]:
    if report.cold is None:
        return []
    rows = []
    for r in report.cold:
        rows.append((
            r.function, r.operation, ", ".join(r.templates) or "-",
            _ms(r.init_cpu_ms), _ms(r.floor_init_cpu_ms), _ratio(r.init_ratio), _status(r.init_met),
            _ms(r.first_cpu_ms), _ms(r.warm_cpu_ms), _ratio(r.first_ratio, 1), _status(r.first_met),
            _ms(r.median_of("floor_runs", "first_cpu_ms")), _ms(r.median_of("floor_runs", "warm_cpu_ms")),
            str(sum(run.first_full_collections for run in r.handler_runs)),
            _imports(r.extra_imports, lambda name, ms: name != "functions", "none"),
            _imports(r.avoided_imports, lambda name, ms: ms >= 0.5, "-"),
        ))
    model_rows = []
    for r in report.cold:
        cells = []
        for memory in MODEL_MEMORIES:
            before = r.baseline_ms.get(memory)
            cells.append(f"{_ms(r.modelled_ms(memory))} / {_ms(r.warm_modelled_ms(memory))}"
                         + (f" (before {_ms(before)}, {_ratio(r.modelled_ms(memory) / before)})" if before else ""))
        memory = _memory(report, r)
        model_rows.append((r.function, *cells, _status(r.cold_met(memory))))
    out = [
        "## Cold start",
        "",
        f"Median of {report.cold_runs} interleaved runs per function. A run is a fresh interpreter that imports "
        "the handler from the unpacked code archive (built by "
        f"`{report.cold_archive}`) with Jinja2 beside it as the layer (Lambda's init), serves a first request, "
        "then a few more (warm requests); the floor is a fresh interpreter doing only what a function on the AWS "
        "SDK must: import boto3 (and Jinja2 for a page function), create a DynamoDB client and compile the same "
        "templates "
        "(its init), then make the same DynamoDB call directly. Both call the same moto table over HTTP on "
        "127.0.0.1. Every figure is CPU time (what Lambda's CPU share scales; the wait for DynamoDB is not in "
        "it), from the process's first line, so the interpreter's own start-up is left out. No bytecode is "
        "written, as in Lambda (read-only `/var/task` and `/opt`). This pass: "
        f"{BYTECODE_MODES.get(report.cold_mode, report.cold_mode)}, as `components.packaging` ships them from "
        "this machine" + (f" ({report.cold_mode_reason})" if report.cold_mode_reason else "")
        + ("" if report.cold_mode == "none" else "; the bytecode is compiled by this interpreter for itself, "
           "standing in for the `.pyc` files compiled for Python 3.13") + ". "
        "A ratio is of the two medians beside it. Imports (one `-X importtime` run each, own time): what the "
        "function imports beyond the floor besides its own modules (a request needs all it imports), and what "
        "the floor imports that the function does not (boto3 and botocore: the client is `functions.dynamodb`).",
        "",
        markdown_table(["function", "call", "templates loaded at init", "init", "floor init", "init / floor",
                        f"<= {INIT_GOAL:g}x", "first request", "warm request", "first / warm", f"<= {FIRST_GOAL:g}x",
                        "floor first", "floor warm", "full GCs in first requests",
                        "imports beyond the floor's, besides functions/", "imports of the floor it avoids"],
                       rows),
        "",
        "### Modelled at each memory size",
        "",
        "Lambda runs the init phase at full speed whatever the memory, and a request at the memory's share of a "
        f"vCPU (one vCPU at {cost.LAMBDA_FULL_VCPU_MB} MB). So a cold start as a visitor waits for it is "
        f"modelled as `init + first request / (memory / {cost.LAMBDA_FULL_VCPU_MB} MB)`, and a warm request "
        f"as `warm request / (memory / {cost.LAMBDA_FULL_VCPU_MB} MB)`, from the CPU times above. Not in the "
        "model: the runtime's own start (the same for every function), TLS and the network wait for DynamoDB "
        "(the same cold or warm). Each cell: cold start / warm request; \"before\": the same model measured "
        f"before the client and the templates moved to module scope ({BASELINE_SOURCE}). Goal: a route "
        f"function's cold start at its configured memory at most {COLD_GOAL:g}x before.",
        "",
        markdown_table(["function", *(f"{m} MB" for m in MODEL_MEMORIES), "goal at the configured memory"],
                       model_rows),
        "",
        "Sources of the model:",
        "",
        *MODEL_SOURCES,
        "",
        "What was tried, measured and kept or left:",
        "",
        *COLD_FINDINGS,
        "",
    ]
    out += _client_section(report)
    if report.cold_bytecode:
        rows = [(r.function, _ms(r.init_cpu_ms), _ratio(r.init_ratio), _ms(r.first_cpu_ms), _ratio(r.first_ratio, 1),
                 _ms(r.modelled_ms(_memory(report, r))), _status(r.cold_met(_memory(report, r))))
                for r in report.cold_bytecode]
        out += [
            f"The same with {BYTECODE_MODES.get(report.cold_variant_mode, report.cold_variant_mode)}"
            + ("" if report.cold_variant_mode == "none" else " (compiled by this interpreter for itself, standing in "
               "for the `.pyc` files `components.packaging` compiles for Python 3.13)") + ":",
            "",
            markdown_table(["function", "init", "init / floor", "first request", "first / warm",
                            "cold start at the configured memory", "status"], rows),
            "",
        ]
    return out


def _client_section(report: Report) -> list[str]:
    measured = list(report.cold or ())
    if not measured:
        return []
    memory = report.settings.route_memory_mb
    rows = []
    for r in measured:
        floor = r.floor_figures
        rows.append((
            r.function, _ms(r.init_cpu_ms), _ms(floor.init_ms), _ratio(r.init_ratio),
            f"{_ms(r.first_cpu_ms)} / {_ms(floor.first_ms)}", f"{_ms(r.warm_cpu_ms)} / {_ms(floor.warm_ms)}",
            _ms(r.modelled_ms(memory)), _ms(floor.cold_ms(memory)), _ratio(r.floor_cold_ratio(memory)),
            _status(r.floor_cold_ratio(memory) <= BOTOCORE_GOAL and r.init_ratio <= BOTOCORE_GOAL)
            if r.route else NO_GOAL,
        ))
    return [
        "### The DynamoDB client on the standard library",
        "",
        "The functions' client is `functions.dynamodb`, not botocore. The same runs as above, side by side with "
        f"the floor (a bare boto3 client making the same call): median of {report.cold_runs} runs, CPU time; "
        f"first and warm requests: the function / the floor; the cold start modelled at {memory} MB as above. "
        f"Its bar: a route function's init and its modelled cold start at most {BOTOCORE_GOAL:g}x the floor's.",
        "",
        markdown_table(["function", "init", "floor init", "init / floor", "first request", "warm request",
                        f"cold at {memory} MB", f"floor cold at {memory} MB", "cold / floor",
                        f"<= {BOTOCORE_GOAL:g}x"], rows),
        "",
        *CLIENT_FINDINGS,
        "",
    ]


def _memory_section(report: Report) -> list[str]:
    if not report.memory:
        return []
    chosen = report.recommended_memory_mb
    rows = [(f"{o.memory_mb} MB", _ms(o.cold_ms), _ms(o.warm_ms), _dollars(o.dollars), _dollars(o.cold_dollars),
             ", ".join(note for note, on in (("recommended", o.memory_mb == chosen),
                                              ("configured", o.memory_mb == report.settings.route_memory_mb)) if on)
             or "-")
            for o in report.memory]
    return [
        "## Memory of the route functions",
        "",
        "Latency of the slowest route function (the model above) against dollars per million visits at 1 "
        "visit/s (the cost model below with the route functions at that memory), warm, and when every visit "
        "starts a container, as on a small site with a visit a minute or less (Lambda bills the init phase "
        "since August 2025; here its modelled CPU time, a lower bound). Doubling the memory doubles the price "
        "of each millisecond; the recommendation is the smallest size beyond which the next one up takes less "
        f"than {cost.MEMORY_GAIN:.0%} off the cold start. `definition.Settings.route_memory_mb` is the default "
        "(`tag-counter:routeMemoryMb` per stack).",
        "",
        markdown_table(["memory", "cold start", "warm request (CPU)", "$ per million visits, warm",
                        "$ per million visits, every one cold", ""], rows),
        "",
    ]


def _warm_section(report: Report) -> list[str]:
    if report.warm is None:
        return []
    rows = [(_warm_name(r), r.operation,
             _ms(r.handler_ms), _ms(r.bare_ms), f"{r.ratio:.2f}x", _ms(r.overhead_ms), _ms(r.handler_p99_ms),
             f"{r.log_bytes_per_request:.0f}", _status(r.met)) for r in report.warm]
    return [
        "## Warm request",
        "",
        f"Median of {report.warm_iterations} interleaved iterations after a warm-up. DynamoDB is answered "
        "in-process by a stub transport of the functions' client (`functions.dynamodb`) with canned, well-formed "
        "responses, for the handler and for the bare call (the same client) alike; logging is on, in Lambda's "
        "JSON shape. Goal: the overhead (handler minus bare call: this product's own work) under "
        f"{ABSOLUTE_GOAL_MS:g} ms. The ratio to the bare call is printed without a goal: it had one (1.5x) while "
        "the call was botocore's, about 0.3 ms; on the standard library the same call takes less than a tenth "
        "of that, so the ratio now measures the call's cheapness, not the handler's waste.",
        "",
        markdown_table(["function", "call", "handler", "bare call", "ratio", "overhead", "handler p99",
                         "log bytes/request", "status"], rows),
        "",
    ]


def _round_trip_section(report: Report) -> list[str]:
    rows = []
    for r in report.round_trips:
        moto = "; ".join(_capacity_units(c) for c in r.moto_consumed) or "-"
        rows.append((r.label, _round_trips(r), f"{r.read_units:g}", f"{r.write_units:g}", r.answer,
                     f"{r.body_bytes}" if r.subject != "stream" else "-", moto))
    return [
        "## DynamoDB round trips and capacity",
        "",
        "The real handlers against moto; every HTTP attempt to DynamoDB is counted by operation (`bench.calls` "
        "wraps the functions' client's attempts), so a retry counts too. Capacity follows DynamoDB's rules "
        "from the sizes of the items each call touched: reads 1 unit per 4 KB (half when eventually consistent), writes 1 per "
        "KB of the larger image, transactions twice. moto's own `ConsumedCapacity` (asked for with "
        "`ReturnConsumedCapacity=TOTAL`) is fixed per operation and shown only for comparison. "
        "The run fails if any count departs from the design.",
        "",
        markdown_table(["page or batch", "round trips", "read units", "write units", "answer", "page bytes",
                         "moto's ConsumedCapacity"], rows),
        "",
    ]


def _capacity_units(consumed: object) -> str:
    entries = consumed if isinstance(consumed, list) else [consumed]
    units = [str(entry.get("CapacityUnits")) for entry in entries if isinstance(entry, dict)]
    return " + ".join(units) if units else "none reported"


def _site_section(report: Report) -> list[str]:
    site = report.site
    if site is None:
        return []
    rows = [(p.page, str(p.clients), str(p.requests), str(p.errors), f"{p.per_second:.0f}", _ms(p.median_ms),
             _ms(p.p99_ms)) for p in site.pages]
    return [
        "## Local site under load",
        "",
        "`LocalSite` as `./dev site` runs it (moto, the real handlers, the event source mapping, counts "
        "persisted), loaded over loopback by concurrent clients in another process, a fixed number of "
        "requests per page. The stream lag is from a visit's response until the site-wide total includes it "
        f"(total polled every {POLL_SECONDS * 1000:.0f} ms; an upper bound, see `bench/siteload.py`), with the mapping's "
        f"batch size {site.batch_size} and batching window {site.batch_window_seconds} s.",
        "",
        markdown_table(["page", "clients", "requests", "errors", "req/s", "median latency", "p99 latency"], rows),
        "",
        f"Stream lag over {site.lag_samples} visits: median {_ms(site.lag_median_ms)}, p99 {_ms(site.lag_p99_ms)}"
        f"{f', {site.lag_unresolved} never reflected' if site.lag_unresolved else ''}. Total before "
        f"{site.total_before}, after {site.total_after}, visits answered {site.visits_answered} "
        f"({'no visit lost' if site.total_after - site.total_before == site.visits_answered else 'COUNTS DIFFER'}).",
        "",
        *_new_tag_text(site),
    ]


def _new_tag_text(site: SiteLoad) -> list[str]:
    ratio = site.new_tag_ratio
    if ratio != ratio:
        return []
    return [f"Visits to tags never seen before (moto creates each item; the slowest visit there is), right after "
            f"the count pages: {ratio:.2f}x their rate (goal: at least {NEW_TAG_RATIO_GOAL:g}x, and "
            f"{NEW_TAG_GOAL_PER_SECOND} visits/s).", ""]


def _cost_section(report: Report) -> list[str]:
    model, inputs = report.cost, report.cost_inputs
    if model is None or inputs is None:
        return []
    rates = list(model.visits)
    names = [item.name for item in model.visits[rates[0]]]
    rows = []
    for index, name in enumerate(names):
        rows.append([name, model.visits[rates[0]][index].basis,
                     *(_dollars(model.visits[r][index].dollars) for r in rates)])
    rows.append(["**total**", "", *(f"**{_dollars(CostModel.total(model.visits[r]))}**" for r in rates)])
    page_rows = []
    for title, items in (("count page", model.count_page), ("home page", model.home_page)):
        for item in items:
            page_rows.append((title, item.name, item.basis, _dollars(item.dollars)))
        page_rows.append((title, "**total**", "", f"**{_dollars(CostModel.total(items))}**"))
    by_rate = [(f"{rate:g} visits/s ({cost.records_per_batch(rate, inputs)} per batch)",
                CostModel.total(model.visits[rate])) for rate in rates]
    price_rows = [(p.unit, _price(p.dollars), p.source) for p in prices.ALL_PRICES]
    assumption_rows = [(name, f"{value:g}") for name, value in cost.ASSUMPTIONS.items()]
    return [
        "## Cost model",
        "",
        f"Dollars per million visits (one `GET /tags/{{tag}}` and its share of the stream processing), "
        f"{prices.REGION} list prices taken on {prices.TAKEN_ON} (`bench/prices.py`), no free tier. Lambda "
        f"duration = the measured warm handler time scaled to the CPU share of the configured memory "
        f"({cost.LAMBDA_FULL_VCPU_MB} MB = one vCPU) plus the assumed DynamoDB latency, rounded up to 1 ms. "
        "Visits share a stream batch in proportion to traffic (batching window x rate, up to the batch size). "
        "Cold starts are not included here: the memory section above adds what they cost.",
        "",
        markdown_table(["line item", f"basis (at {rates[0]:g}/s)", *(f"at {r:g}/s" for r in rates)], rows),
        "",
        "Total per million visits by traffic:",
        "",
        "```",
        bar_chart(by_rate, unit="$"),
        "```",
        "",
        f"Where the money goes at {rates[0]:g} visit/s:",
        "",
        "```",
        bar_chart(_group(model.visits[rates[0]]), unit="$"),
        "```",
        "",
        "Per million count and home page views:",
        "",
        markdown_table(["page", "line item", "basis", "dollars"], page_rows),
        "",
        "Prices:",
        "",
        markdown_table(["unit", "price", "published at"], price_rows),
        "",
        "Assumptions (not measurable without AWS):",
        "",
        markdown_table(["assumption", "value"], assumption_rows),
        "",
    ]
