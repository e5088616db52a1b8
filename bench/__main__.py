"""``python -m bench`` (``./dev bench``): measure tag-counter, print each figure beside its goal, write BENCHMARKS.md.

Sections, in order: DynamoDB round trips and capacity (always; the run fails if a count regresses), cold start,
warm request, the pluggable sections of ``bench.sections`` (package sizes...), the local site under load, the
cost model and the route functions' memory. A full run takes a few minutes and rewrites ``BENCHMARKS.md``;
``--quick`` takes about 90 seconds, with fewer samples and without the full run's variants, and writes the file only with ``--write``.

Exit status: 0 when every design budget holds, 1 when one is broken (a page or batch makes more DynamoDB round
trips than allowed, or a section reports a failure; a loud message says which), 2 on bad options. Speed and
size goals that are not met are reported, never fatal: they depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import definition
from bench import cost
from bench.report import Report, legend, render_markdown, render_table, summary_rows
from bench.section import BenchRun, Section
from bench.sections import SECTIONS as PLUGGABLE_SECTIONS

BUILT_IN_SECTIONS = ("cold", "warm", "site")
SECTIONS = BUILT_IN_SECTIONS + tuple(section.name for section in PLUGGABLE_SECTIONS)
DEFAULT_OUTPUT = definition.ROOT / "BENCHMARKS.md"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="./dev bench",
        description="Measure tag-counter (cold start, warm overhead, DynamoDB round trips and capacity, package "
        "sizes, local-site throughput and stream lag, cost per million visits, memory), print every figure "
        "beside its goal and write BENCHMARKS.md (a full run; --quick only with --write). Exits 1 only if a "
        "design budget is broken (a page or the stream processor makes more DynamoDB round trips than allowed); "
        "speed goals not met are reported, never fatal.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="fewer samples everywhere (about 80-90 s on 2 cores; noisier figures); writes no file unless "
                             "--write")
    parser.add_argument("--stack", default="dev", help="read settings from Pulumi.<stack>.yaml (default: dev)")
    parser.add_argument("--runs", type=int, help="cold-start runs per function and floor (default 12, quick 3)")
    parser.add_argument("--iterations", type=int, help="warm iterations per handler (default 2000, quick 300)")
    parser.add_argument("--requests", type=int, help="local-site requests per page (default 800, quick 150)")
    parser.add_argument("--clients", type=int, help="concurrent local-site clients (default 8, quick 4)")
    parser.add_argument("--skip", action="append", choices=SECTIONS, default=[],
                        help="leave a section out (repeatable); round trips always run")
    parser.add_argument("--skip-layer", action="store_true",
                        help="do not build the Jinja2 layer (it needs PyPI the first time)")
    parser.add_argument("--no-bytecode-variant", action="store_true",
                        help="skip the second cold-start pass, with bytecode for the code archive too (or, "
                             "when the packaging ships that, for the layer alone); default: full runs only")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="where to write the report (default: BENCHMARKS.md at the project root)")
    writing = parser.add_mutually_exclusive_group()
    writing.add_argument("--write", action="store_true", help="write the report even after a --quick run")
    writing.add_argument("--no-write", action="store_true", help="print the figures, write no file")
    options = parser.parse_args(argv)
    quick = options.quick
    options.write_report = options.write or not (quick or options.no_write)
    options.runs = options.runs or (3 if quick else 12)
    options.iterations = options.iterations or (300 if quick else 2000)
    options.requests = options.requests or (150 if quick else 800)
    options.clients = options.clients or (4 if quick else 8)
    for name in ("runs", "iterations", "requests", "clients"):
        if getattr(options, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return options


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run(options: argparse.Namespace, argv: Sequence[str],
        sections: Sequence[Section] = PLUGGABLE_SECTIONS) -> Report:
    """Measure every section the options ask for; a section that cannot run is recorded, not fatal."""
    from bench.coldstart import ALL_BYTECODE, BYTECODE_MODES, LAYER_BYTECODE, measure_cold_starts, shipped_bytecode
    from bench.roundtrips import measure_round_trips, regressions
    from bench.siteload import measure_site
    from bench.warm import measure_warm

    settings = definition.stack_settings(options.stack)
    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    report = Report(
        settings=settings,
        stack=options.stack,
        command="./dev bench" + "".join(f" {shlex.quote(arg)}" for arg in argv),
        started=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        quick=options.quick,
    )
    _say("DynamoDB round trips and capacity (moto)")
    report.round_trips, captured = measure_round_trips(settings)
    report.regressions = regressions(report.round_trips)
    if "cold" in options.skip:
        report.skipped["cold"] = "--skip cold"
    else:
        # First as the packaging ships from this machine, then (full runs) with the other bytecode.
        report.cold_mode, report.cold_mode_reason = shipped_bytecode()
        # A quick run leaves out the import-time runs (the full run's depth: BENCHMARKS.md keeps their figures).
        _say(f"cold start: {options.runs} interleaved runs per function and floor, "
             f"{BYTECODE_MODES[report.cold_mode]}")
        report.cold, report.cold_archive = measure_cold_starts(
            settings, runs=options.runs, bytecode=report.cold_mode, importtime=not options.quick, progress=_say
        )
        report.cold_runs = options.runs
        if not options.quick and not options.no_bytecode_variant:
            runs = max(3, options.runs // 2)
            # With the code archive's bytecode too, or, when the packaging already ships it, the layer's alone.
            report.cold_variant_mode = LAYER_BYTECODE if report.cold_mode == ALL_BYTECODE else ALL_BYTECODE
            _say(f"cold start, {BYTECODE_MODES[report.cold_variant_mode]}: {runs} runs")
            report.cold_bytecode, _ = measure_cold_starts(
                settings, runs=runs, importtime=False, bytecode=report.cold_variant_mode
            )
    if "warm" in options.skip:
        report.skipped["warm"] = "--skip warm"
    else:
        _say(f"warm requests: {options.iterations} iterations per handler")
        report.warm = measure_warm(settings, captured["calls"], captured["stream_events"],
                                   iterations=options.iterations)
        report.warm_iterations = options.iterations
    for section in sections:
        if section.name in options.skip:
            report.skipped[section.name] = f"--skip {section.name}"
            continue
        _say(section.name)
        try:
            result = section.measure(BenchRun(settings, options))
        except Exception as error:  # noqa: BLE001 - one section failing must not lose the others' figures
            report.skipped[section.name] = f"failed: {type(error).__name__}: {error}"
            continue
        report.sections.append((section, result))
        report.regressions += [f"{section.name}: {problem}" for problem in section.failures(result)]
    if "site" in options.skip:
        report.skipped["site"] = "--skip site"
    else:
        _say(f"local site: {options.requests} requests per page from {options.clients} clients")
        report.site = measure_site(settings, clients=options.clients, requests=options.requests)
    if report.warm is not None:
        report.cost_inputs = cost_inputs(settings, report)
        report.cost = cost.cost_model(report.cost_inputs)
        if report.cold is not None:
            from bench.coldstart import MODEL_MEMORIES

            routes = {r.function: r.figures for r in report.cold if r.route}
            report.memory = cost.memory_options(report.cost_inputs, routes, MODEL_MEMORIES) if routes else None
    else:
        report.skipped["cost"] = "needs the warm figures"
    report.seconds = time.monotonic() - started
    report.load_average = (load_at_start, os.getloadavg()[0])
    return report


def cost_inputs(settings: definition.Settings, report: Report) -> cost.CostInputs:
    """The cost model's inputs from this run's measurements and the stack's settings."""
    assert report.warm is not None
    warm = {(w.function, w.records): w for w in report.warm}
    pages = {r.subject: r for r in report.round_trips if r.subject != "stream"}
    batches = [r for r in report.round_trips if r.subject == "stream"]

    def figures(name: str) -> cost.FunctionFigures:
        return cost.FunctionFigures(
            cpu_ms=warm[(name, None)].handler_ms,
            round_trips=pages[name].total_round_trips,
            log_bytes=warm[(name, None)].log_bytes_per_request,
        )

    stream_runs = sorted((w for w in report.warm if w.function == definition.STREAM_PROCESSOR.name),
                         key=lambda w: w.records or 0)
    smallest, largest = stream_runs[0], stream_runs[-1]
    span = (largest.records or 1) - (smallest.records or 1)
    per_record = (largest.handler_ms - smallest.handler_ms) / span if span else 0.0
    return cost.CostInputs(
        route_memory_mb=settings.route_memory_mb,
        processor_memory_mb=settings.processor_memory_mb,
        batch_size=settings.stream_batch_size,
        batching_window_seconds=settings.stream_batching_window_seconds,
        visit=figures("visit"),
        count=figures("count"),
        home=figures("home"),
        processor_fixed_ms=max(0.0, smallest.handler_ms - per_record * (smallest.records or 1)),
        processor_per_record_ms=max(0.0, per_record),
        processor_log_bytes=largest.log_bytes_per_request,
        visit_write_units=pages["visit"].write_units,
        count_read_units=pages["count"].read_units,
        home_read_units=pages["home"].read_units,
        batch_write_units=max(r.write_units for r in batches) if batches else 0.0,
        page_bytes={name: result.body_bytes for name, result in pages.items()},
    )


def guard(problems: Sequence[str]) -> int:
    """Exit status for the design budgets: 1, with a message nobody can miss, if any is broken."""
    if not problems:
        return 0
    banner = "!" * 78
    lines = [banner, "ROUND-TRIP REGRESSION: DynamoDB is called more (or differently) than the design allows:"]
    lines += [f"  - {problem}" for problem in problems]
    lines += ["Every extra round trip adds latency and cost to every request. Fix it before merging.", banner]
    print("\n".join(lines), file=sys.stderr)
    return 1


def outcome(problems: Sequence[str]) -> str:
    """The last line of a run: whether it fails, and why (or why not)."""
    if problems:
        return f"bench: FAILED (exit 1): {len(problems)} design budget(s) broken, listed above."
    return ("bench: passed (exit 0): every DynamoDB round-trip budget holds. Speed and size goals marked NOT MET "
            "are reported only.")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the summary; write the report; return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(arguments)
    report = run(options, arguments)
    print(render_table(summary_rows(report)))
    print("\n" + "\n".join(legend(report)))
    if options.write_report:
        options.output.write_text(render_markdown(report), encoding="utf-8")
        print(f"\nwrote {options.output} ({report.seconds:.0f} s)")
    else:
        why = "--no-write" if options.no_write else "a --quick run; add --write to write it"
        print(f"\n{options.output.name} not written ({why}); {report.seconds:.0f} s")
    status = guard(report.regressions)
    print(outcome(report.regressions))
    return status


if __name__ == "__main__":
    sys.exit(main())
