"""``python -m bench`` (``./dev bench``): measure tag-counter, print each figure beside its goal, write BENCHMARKS.md.

Sections, in order: DynamoDB round trips and capacity (always; the run fails if a count regresses), cold start,
warm request, package sizes, the local site under load, the cost model, and honest counts (the bot check's cost,
the unique-visitor window's calls; their round trips are guarded too). A full run takes a few minutes;
``--quick`` takes well under one, with fewer samples.

Exit status: 0 when every round-trip count matches the design, 1 when one regressed (a loud message says which),
2 on bad options. Speed goals that are not met are reported, not fatal: they depend on the machine.
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
from bench import cost, history
from bench.report import Report, render_markdown, render_table, summary_rows

SECTIONS = ("cold", "warm", "packages", "site")
DEFAULT_OUTPUT = definition.ROOT / "BENCHMARKS.md"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="./dev bench",
        description="Measure tag-counter (cold start, warm overhead, DynamoDB round trips and capacity, package "
        "sizes, local-site throughput and stream lag, cost per million visits), print every figure beside its "
        "goal and write BENCHMARKS.md. Exits 1 if a page or the stream processor makes more DynamoDB round "
        "trips than the design allows.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="fewer samples everywhere (under a minute; noisier figures)")
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
                        help="skip the second cold-start pass, with the other Jinja2 layer (with or without "
                             "bytecode) than the one shipped from this machine (default: full runs only)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="where to write the report (default: BENCHMARKS.md at the project root)")
    parser.add_argument("--no-write", action="store_true", help="print the figures, write no file")
    options = parser.parse_args(argv)
    quick = options.quick
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


def run(options: argparse.Namespace, argv: Sequence[str]) -> Report:
    """Measure every section the options ask for; a section that cannot run is recorded, not fatal."""
    from bench.coldstart import BYTECODE_MODES, LAYER_BYTECODE, NO_BYTECODE, measure_cold_starts, shipped_bytecode
    from bench.packages import measure_packages
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
    _say("daily history: a visit after 1, 30 and 365 days of daily visits (moto)")
    report.history = history.measure_history(settings)
    report.regressions += history.regressions(report.history)
    from bench import honest

    _say("honest counts: the bot check's cost, the visit's calls with and without the unique-visitor window")
    report.honest = honest.measure(settings, runs=3 if options.quick else 7, iterations=options.iterations)
    report.regressions += report.honest.regressions()
    if "cold" in options.skip:
        report.skipped["cold"] = "--skip cold"
    else:
        # First as the packaging ships from this machine, then (full runs) with the other layer.
        report.cold_mode, report.cold_mode_reason = shipped_bytecode()
        _say(f"cold start: {options.runs} interleaved runs per function and floor, "
             f"{BYTECODE_MODES[report.cold_mode]}")
        report.cold, report.cold_archive = measure_cold_starts(
            settings, runs=options.runs, bytecode=report.cold_mode, progress=_say
        )
        report.cold_runs = options.runs
        if not options.quick and not options.no_bytecode_variant:
            runs = max(3, options.runs // 2)
            report.cold_variant_mode = LAYER_BYTECODE if report.cold_mode == NO_BYTECODE else NO_BYTECODE
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
    if "packages" in options.skip:
        report.skipped["packages"] = "--skip packages"
    else:
        _say("package sizes")
        report.packages = measure_packages(layer=not options.skip_layer)
    if "site" in options.skip:
        report.skipped["site"] = "--skip site"
    else:
        _say(f"local site: {options.requests} requests per page from {options.clients} clients")
        report.site = measure_site(settings, clients=options.clients, requests=options.requests)
    if report.warm is not None:
        report.cost_inputs = cost_inputs(settings, report)
        report.cost = cost.cost_model(report.cost_inputs)
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
    """Exit status for the round-trip check: 1, with a message nobody can miss, if anything regressed."""
    if not problems:
        return 0
    banner = "!" * 78
    lines = [banner, "ROUND-TRIP REGRESSION: DynamoDB is called more (or differently) than the design allows:"]
    lines += [f"  - {problem}" for problem in problems]
    lines += ["Every extra round trip adds latency and cost to every request. Fix it before merging.", banner]
    print("\n".join(lines), file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the summary; write the report; return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(arguments)
    report = run(options, arguments)
    print(render_table(summary_rows(report)))
    if not options.no_write:
        options.output.write_text(render_markdown(report), encoding="utf-8")
        print(f"\nwrote {options.output} ({report.seconds:.0f} s)")
    return guard(report.regressions)


if __name__ == "__main__":
    sys.exit(main())
