"""Turn the measurements into a terminal table (each figure beside its goal) and ``BENCHMARKS.md``."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field

import definition
from bench import cost, history, prices
from bench.coldstart import BYTECODE_MODES, ColdStart
from bench.cost import CostInputs, CostModel, LineItem
from bench.honest import HonestCounts
from bench.honest import render_markdown as honest_section
from bench.honest import summary_pairs as honest_summary
from bench.packages import PackageSize
from bench.roundtrips import BUDGET, RoundTrips
from bench.siteload import POLL_SECONDS, SiteLoad
from bench.warm import ABSOLUTE_GOAL_MS, RATIO_GOAL, WarmResult

MET = "met"
NOT_MET = "NOT MET"
NO_GOAL = "-"
NOT_MEASURED = "not measured"


@dataclass
class Row:
    """One figure of the summary."""

    figure: str
    value: str
    goal: str
    status: str


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
    history: list[history.HistoryFigure] = field(default_factory=list)
    """A visit's item size and write units after days of daily visits (``bench.history``)."""
    packages: list[PackageSize] | None = None
    site: SiteLoad | None = None
    cost_inputs: CostInputs | None = None
    cost: CostModel | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    """Section -> why it was not measured."""
    load_average: tuple[float, float] | None = None
    """The machine's 1-minute load average at the start and the end of the run (other work skews timings)."""
    honest: HonestCounts | None = None
    """The bot check's cost and the visit's calls with and without the unique-visitor window."""


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else (f"{value:.0f} ms" if value >= 100 else f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms")


def _kb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1024:.1f} KB"


def _dollars(value: float) -> str:
    return f"${value:.4f}" if value < 0.01 else f"${value:.3f}" if value < 1 else f"${value:.2f}"


def _price(dollars: float) -> str:
    if 0 < dollars < 0.001:
        return f"${dollars * 1e6:.4g} per million" if dollars >= 1e-6 else f"${dollars:.10f}".rstrip("0")
    return f"${dollars:g}"


def _status(met: bool | None) -> str:
    return NO_GOAL if met is None else MET if met else NOT_MET


def summary_rows(report: Report) -> list[Row]:
    """The summary: every figure with its goal and whether it is met."""
    rows: list[Row] = []
    if report.cold is not None:
        for result in report.cold:
            rows.append(Row(
                f"cold start: {result.function}",
                f"{result.ratio:.2f}x floor ({_ms(result.median_of('handler_runs', 'total_ms'))} vs "
                f"{_ms(result.median_of('floor_runs', 'total_ms'))}; CPU {result.cpu_ratio:.2f}x)",
                f"<= {result.goal:.2f}x floor",
                _status(result.met),
            ))
    else:
        rows.append(Row("cold start", report.skipped.get("cold", NOT_MEASURED), "<= 1.15x (routes), 1.05x (stream)",
                        NOT_MEASURED))
    if report.warm is not None:
        for result in report.warm:
            name = _warm_name(result)
            rows.append(Row(
                f"warm request: {name}",
                f"{_ms(result.handler_ms)} = {result.ratio:.2f}x bare call ({_ms(result.bare_ms)}), "
                f"overhead {_ms(result.overhead_ms)}",
                f"<= {RATIO_GOAL}x, overhead < {ABSOLUTE_GOAL_MS:g} ms",
                _status(result.met),
            ))
    else:
        rows.append(Row("warm request", report.skipped.get("warm", NOT_MEASURED),
                        f"<= {RATIO_GOAL}x, overhead < {ABSOLUTE_GOAL_MS:g} ms", NOT_MEASURED))
    failing = {problem.split(":")[0] for problem in report.regressions}
    for result in report.round_trips:
        budget = ", ".join(f"{n} {op}" for op, n in BUDGET[result.subject].items())
        rows.append(Row(
            f"round trips: {result.label}",
            f"{_round_trips(result)}; {result.read_units:g} RRU, {result.write_units:g} WRU",
            budget + (" per batch" if result.subject == "stream" else ""),
            NOT_MET if result.label in failing else MET,
        ))
    rows += [Row(figure, value, goal, MET if met else NOT_MET)
             for figure, value, goal, met in history.summary_rows(report.history)]
    for package in report.packages or []:
        goal = f"< {package.goal_bytes // 1024} KB" if package.goal_bytes else NO_GOAL
        if package.zipped_bytes is None:
            rows.append(Row(f"size: {package.name}", package.problem or NOT_MEASURED, goal, NOT_MEASURED))
        else:
            rows.append(Row(f"size: {package.name}",
                            f"{_kb(package.zipped_bytes)} ({_kb(package.unpacked_bytes)} unpacked)",
                            goal, _status(package.met)))
    if report.site is not None:
        for page in report.site.pages:
            rows.append(Row(f"local site: {page.page}",
                            f"{page.per_second:.0f} req/s, {page.clients} clients, {page.errors} errors",
                            NO_GOAL, NO_GOAL))
        rows.append(Row("local site: stream lag (visit -> total)",
                        f"median {_ms(report.site.lag_median_ms)}, p99 {_ms(report.site.lag_p99_ms)}",
                        NO_GOAL, NO_GOAL if not report.site.lag_unresolved else f"{report.site.lag_unresolved} unresolved"))
    elif "site" in report.skipped:
        rows.append(Row("local site", report.skipped["site"], NO_GOAL, NOT_MEASURED))
    if report.cost is not None:
        for rate, items in report.cost.visits.items():
            rows.append(Row(f"cost per million visits at {rate:g}/s", _dollars(CostModel.total(items)),
                            NO_GOAL, NO_GOAL))
    if report.honest is not None:
        rows += [Row(figure, value, NO_GOAL, NO_GOAL) for figure, value in honest_summary(report.honest)]
    return rows


def _warm_name(result: WarmResult) -> str:
    if result.records is None:
        return result.function
    return f"{result.function} ({result.records} record{'s' if result.records != 1 else ''})"


def _round_trips(result: RoundTrips) -> str:
    if not result.round_trips:
        return "no call"
    return ", ".join(f"{count} {operation}" for operation, count in sorted(result.round_trips.items()))


def render_table(rows: Sequence[Row]) -> str:
    """The summary as an aligned plain-text table."""
    header = Row("figure", "value", "goal", "status")
    all_rows = [header, *rows]
    widths = [max(len(getattr(row, name)) for row in all_rows) for name in ("figure", "value", "goal")]
    lines = []
    for index, row in enumerate(all_rows):
        lines.append(f"{row.figure:<{widths[0]}}  {row.value:<{widths[1]}}  {row.goal:<{widths[2]}}  {row.status}")
        if index == 0:
            lines.append("-" * (sum(widths) + 6 + len("status")))
    return "\n".join(lines)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
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
        _markdown_table(["figure", "value", "goal", "status"],
                        [(r.figure, r.value, r.goal, r.status) for r in summary_rows(report)]),
        "",
    ]
    if report.regressions:
        out += ["**Round-trip regressions (the run failed):**", ""]
        out += [f"- {problem}" for problem in report.regressions]
        out.append("")
    out += _cold_section(report) + _warm_section(report) + _round_trip_section(report)
    out += history.markdown_section(report.history, report.settings)
    out += _package_section(report) + _site_section(report) + _cost_section(report)
    out += honest_section(report.honest) if report.honest is not None else []
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


def _cold_section(report: Report) -> list[str]:
    if report.cold is None:
        return []
    rows = []
    for result in report.cold:
        rows.append((
            result.function, result.operation,
            _ms(result.median_of("handler_runs", "init_ms")), _ms(result.median_of("handler_runs", "first_ms")),
            _ms(result.median_of("handler_runs", "total_ms")), _ms(result.median_of("floor_runs", "total_ms")),
            f"{result.ratio:.2f}x", f"{result.goal:.2f}x", f"{result.cpu_ratio:.2f}x", f"{result.process_ratio:.2f}x",
            ", ".join(f"{name} {ms:.0f} ms" for name, ms in result.extra_imports if ms >= 0.5) or "-",
        ))
    out = [
        "## Cold start",
        "",
        f"Median of {report.cold_runs} interleaved runs per function. A run is a fresh interpreter that imports "
        "the handler from the unpacked code archive (built by "
        f"`{report.cold_archive}`) with Jinja2 beside it as the layer, and serves one request; the floor is a "
        "fresh interpreter that creates a boto3 DynamoDB client and makes the same call. Both call the same "
        "moto table over HTTP on 127.0.0.1. No bytecode is written, as in Lambda (read-only `/var/task` and "
        f"`/opt`). This pass: {BYTECODE_MODES.get(report.cold_mode, report.cold_mode)}, as "
        "`components.packaging` ships them from this machine"
        + (f" ({report.cold_mode_reason})" if report.cold_mode_reason else "")
        + ("" if report.cold_mode == "none" else "; the bytecode is compiled by this interpreter for itself, "
           "standing in for the `.pyc` files compiled for Python 3.13") + ". "
        "Times are medians; a ratio is the median of per-pair ratios (each handler run against the floor run "
        "beside it, so the machine's changing load cancels out). \"CPU-time ratio\" compares CPU time, "
        "\"process ratio\" whole processes, interpreter start-up included.",
        "",
        _markdown_table(["function", "call", "init", "first request", "total", "floor", "ratio", "goal",
                         "CPU-time ratio", "process ratio", "imports the floor does not make (own time)"], rows),
        "",
    ]
    if report.cold_bytecode:
        rows = [(r.function, _ms(r.median_of("handler_runs", "total_ms")), _ms(r.median_of("floor_runs", "total_ms")),
                 f"{r.ratio:.2f}x", f"{r.cpu_ratio:.2f}x", f"{r.goal:.2f}x", _status(r.met))
                for r in report.cold_bytecode]
        out += [
            f"The same with {BYTECODE_MODES.get(report.cold_variant_mode, report.cold_variant_mode)}"
            + ("" if report.cold_variant_mode == "none" else " (compiled by this interpreter for itself, standing in "
               "for the `.pyc` files `components.packaging` compiles for Python 3.13)") + ":",
            "",
            _markdown_table(["function", "total", "floor", "ratio", "CPU-time ratio", "goal", "status"], rows),
            "",
        ]
    return out


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
        "in-process by a botocore `before-send` handler with canned, well-formed responses, for the handler "
        "and for the bare call alike; logging is on, in Lambda's JSON shape. Goals: the handler at most "
        f"{RATIO_GOAL}x the bare call, and its overhead (handler minus bare call: this product's own work) "
        f"under {ABSOLUTE_GOAL_MS:g} ms. The bare call is botocore's work and moves with the machine's load.",
        "",
        _markdown_table(["function", "call", "handler", "bare call", "ratio", "overhead", "handler p99",
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
        "The real handlers against moto; every HTTP attempt to DynamoDB is counted by operation (a botocore "
        "`request-created` hook), so a retry counts too. Capacity follows DynamoDB's rules from the sizes of "
        "the items each call touched: reads 1 unit per 4 KB (half when eventually consistent), writes 1 per "
        "KB of the larger image, transactions twice. moto's own `ConsumedCapacity` (asked for with "
        "`ReturnConsumedCapacity=TOTAL`) is fixed per operation and shown only for comparison. "
        "The run fails if any count departs from the design.",
        "",
        _markdown_table(["page or batch", "round trips", "read units", "write units", "answer", "page bytes",
                         "moto's ConsumedCapacity"], rows),
        "",
    ]


def _capacity_units(consumed: object) -> str:
    entries = consumed if isinstance(consumed, list) else [consumed]
    units = [str(entry.get("CapacityUnits")) for entry in entries if isinstance(entry, dict)]
    return " + ".join(units) if units else "none reported"


def _package_section(report: Report) -> list[str]:
    if report.packages is None:
        return []
    rows = [(p.name, _kb(p.zipped_bytes), _kb(p.unpacked_bytes), str(p.files if p.files is not None else "-"),
             f"< {p.goal_bytes // 1024} KB" if p.goal_bytes else NO_GOAL,
             p.problem or _status(p.met)) for p in report.packages]
    return [
        "## Package sizes",
        "",
        "Built by `components.packaging`, as `pulumi up` builds them (the layer for python3.13 on arm64 "
        "with pip, from PyPI, cached under `build/layer/`).",
        "",
        _markdown_table(["package", "zipped", "unpacked", "files", "goal", "status"], rows),
        "",
    ]


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
        _markdown_table(["page", "clients", "requests", "errors", "req/s", "median latency", "p99 latency"], rows),
        "",
        f"Stream lag over {site.lag_samples} visits: median {_ms(site.lag_median_ms)}, p99 {_ms(site.lag_p99_ms)}"
        f"{f', {site.lag_unresolved} never reflected' if site.lag_unresolved else ''}. Total before "
        f"{site.total_before}, after {site.total_after}, visits answered {site.visits_answered} "
        f"({'no visit lost' if site.total_after - site.total_before == site.visits_answered else 'COUNTS DIFFER'}).",
        "",
    ]


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
        "Cold starts are not included.",
        "",
        _markdown_table(["line item", f"basis (at {rates[0]:g}/s)", *(f"at {r:g}/s" for r in rates)], rows),
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
        _markdown_table(["page", "line item", "basis", "dollars"], page_rows),
        "",
        "Prices:",
        "",
        _markdown_table(["unit", "price", "published at"], price_rows),
        "",
        "Assumptions (not measurable without AWS):",
        "",
        _markdown_table(["assumption", "value"], assumption_rows),
        "",
    ]
