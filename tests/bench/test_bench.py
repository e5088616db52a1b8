"""Smoke test of the benchmark: every measuring function runs at tiny sizes and produces its figures, and the
round-trip guard fails on real regressions (an extra write, a retry, a batch written twice).

No figure is compared with a time: speed goals live in the benchmark's output, never in a test.
"""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest

import definition
from bench import capacity, cost, history, packages, siteimport, sitesoak, sweep
from bench.__main__ import cost_inputs, guard
from bench import coldstart
from bench.coldstart import extra_imports, measure_cold_starts, parse_importtime
from bench.packages import measure_packages
from bench.report import NOT_MEASURED, Report, legend, render_markdown, render_table, summary_rows
from bench.roundtrips import BUDGET, measure_round_trips, regressions
from bench.siteload import COUNT_PAGE, NEW_TAG_PAGE, SiteLoad, Throughput, measure_site
from bench.warm import measure_warm
from functions.keys import TOTAL_KEY

SETTINGS = definition.Settings(stream_batch_size=5)
BATCH_SIZES = (1, 5)


@pytest.fixture(scope="module")
def round_trips() -> tuple[list[Any], dict[str, Any]]:
    """One round-trip run with the real handlers against moto, shared by the tests below."""
    return measure_round_trips(SETTINGS, batch_sizes=BATCH_SIZES)


def _real(name: str) -> Any:
    spec = next(spec for spec in definition.FUNCTIONS if spec.name == name)
    module_name, function_name = spec.handler.rsplit(".", 1)
    return getattr(__import__(module_name, fromlist=[function_name]), function_name)


def test_round_trips_match_the_design_and_capacity_follows_item_sizes(round_trips):
    results, captured = round_trips
    by_label = {result.label: result for result in results}
    # GIVEN the real handlers against moto, WHEN each page and two batch sizes are measured
    assert set(by_label) == {"GET /", "GET /tags/{tag}", "GET /counts/{tag}", "GET /tags/{tag}/badge.svg",
                             "GET /counts/{tag}/badge.svg", "GET /counts/{tag}/badge.json",
                             "GET /tags/{tag}/count.json", "GET /counts/{tag}/count.json",
                             "stream batch of 1 record", "stream batch of 5 records"}
    # THEN every count is the design's and nothing is flagged
    assert regressions(results) == []
    for result in results:
        assert result.round_trips == BUDGET[result.subject], result.label
    # and capacity is what DynamoDB's rules give for these small items
    assert (by_label["GET /tags/{tag}"].read_units, by_label["GET /tags/{tag}"].write_units) == (0.0, 1.0)
    assert by_label["GET /counts/{tag}"].read_units == 2.0  # two items, strongly consistent
    assert by_label["GET /"].read_units == 0.5  # one item, eventually consistent
    assert by_label["stream batch of 5 records"].write_units == 4.0  # a two-item transaction
    assert all(result.answer == "HTTP 200" for result in results if result.subject != "stream")
    assert all(result.body_bytes > 0 for result in results if result.subject != "stream")
    # and the warm benchmark gets each function's real call and real batches
    assert {name for name in captured["calls"]} == {spec.name for spec in definition.FUNCTIONS}
    assert captured["calls"]["visit"][0] == "UpdateItem"
    assert sorted(captured["stream_events"]) == [1, 5]
    assert len(captured["stream_events"][5]["Records"]) == 5


def test_guard_fails_on_a_page_that_writes_twice(capsys):
    visit = _real("visit")

    def writes_twice(event: dict, context: Any) -> dict:
        visit(event, context)
        return visit(event, context)

    results, _ = measure_round_trips(SETTINGS, batch_sizes=(1,), handlers={"visit": writes_twice})
    problems = regressions(results)
    assert problems == ["GET /tags/{tag}: made 2 UpdateItem, the design allows 1 UpdateItem"]
    assert guard(problems) == 1
    assert "ROUND-TRIP REGRESSION" in capsys.readouterr().err


def test_guard_counts_a_retry_as_a_round_trip():
    count = _real("count")
    from functions.store import get_store

    def throttled_once(event: dict, context: Any) -> dict:
        # DynamoDB throttles the first attempt; the client's retry succeeds, the page still renders.
        state = {"throttled": False}

        def throttle(method: str, url: str, headers: Any, body: bytes) -> tuple[int, dict, bytes] | None:
            if state["throttled"] or not headers["x-amz-target"].endswith(".BatchGetItem"):
                return None
            state["throttled"] = True
            answer = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"slow down"}'
            return 400, {"content-type": "application/x-amz-json-1.0"}, answer

        client = get_store().client
        send = client.transport
        client.transport = lambda *request: throttle(*request) or send(*request)
        try:
            return count(event, context)
        finally:
            client.transport = send

    results, _ = measure_round_trips(SETTINGS, batch_sizes=(1,), handlers={"count": throttled_once})
    answer = next(result for result in results if result.subject == "count")
    assert answer.answer == "HTTP 200"
    assert regressions(results) == ["GET /counts/{tag}: made 2 BatchGetItem, the design allows 1 BatchGetItem"]


def test_guard_fails_on_a_batch_written_in_two_parts():
    processor = _real("stream")

    def two_writes(event: dict, context: Any) -> dict:
        records = event["Records"]
        half = max(1, len(records) // 2)
        processor({"Records": records[:half]}, context)
        return processor({"Records": records[half:]}, context)

    results, _ = measure_round_trips(SETTINGS, batch_sizes=(5,), handlers={"stream": two_writes})
    assert regressions(results) == [
        "stream batch of 5 records: made 2 TransactWriteItems, the design allows 1 TransactWriteItems"
    ]


def test_warm_figures_for_every_function(round_trips):
    _, captured = round_trips
    results = measure_warm(SETTINGS, captured["calls"], captured["stream_events"], iterations=20)
    assert [(r.function, r.records) for r in results] == [
        ("home", None), ("visit", None), ("count", None), ("visit-badge", None), ("count-badge", None),
        ("count-badge-json", None), ("visit-json", None), ("count-json", None), ("stream", 1), ("stream", 5)
    ]
    for result in results:
        assert result.handler_ms > 0 and result.bare_ms > 0 and math.isfinite(result.ratio)
        assert result.iterations == 20
    # The stream processor logs one JSON line per batch; a counted visit logs its one "visit counted" line (the
    # dashboard's and the stalled alarm's visits), and a page that only reads logs nothing.
    by_function = {r.function: r for r in results if r.records is None}
    assert next(r for r in results if r.records == 5).log_bytes_per_request > 0
    assert 0 < by_function["visit"].log_bytes_per_request < 300
    assert by_function["count"].log_bytes_per_request == 0


def test_the_handler_runs_without_botocore_beside_the_botocore_floor():
    # GIVEN the visit function, WHEN measured (a run fails if the handler imported botocore)
    results, _ = measure_cold_starts(SETTINGS, runs=1, warm_requests=1, importtime=False,
                                     functions=(definition.VISIT,))
    # THEN it has its run beside the floor's, and its cold start compares with the floor's
    (visit,) = results
    assert len(visit.handler_runs) == len(visit.floor_runs) == 1
    assert visit.floor_figures.init_ms > 0 and visit.floor_figures.first_ms > 0
    assert math.isfinite(visit.floor_cold_ratio(256))


def test_a_handler_that_imports_botocore_fails_its_run():
    with pytest.raises(RuntimeError, match="the handler imported botocore"):
        coldstart._check_answer(definition.VISIT, "handler", {"botocore_imported": True, "outcomes": []})
    coldstart._check_answer(definition.VISIT, "floor", {"botocore_imported": True, "outcomes": []})  # the floor's


def test_cold_start_figures_and_import_breakdown():
    results, how = measure_cold_starts(
        SETTINGS, runs=1, warm_requests=2, functions=(definition.VISIT, definition.STREAM_PROCESSOR)
    )
    assert how == "components.packaging.build_code_archive"
    by_name = {result.function: result for result in results}
    assert set(by_name) == {"visit", "stream"}
    for result in results:
        assert len(result.handler_runs) == len(result.floor_runs) == 1
        run = result.handler_runs[0]
        assert 0 < run.init_ms < run.total_ms < run.process_ms
        assert 0 < run.init_cpu_ms and 0 < run.first_cpu_ms and 0 < run.warm_cpu_ms
        assert math.isfinite(result.init_ratio) and math.isfinite(result.first_ratio)
        # The model: init at full speed, the request at the memory's CPU share, so more memory is faster.
        modelled = [result.modelled_ms(memory) for memory in coldstart.MODEL_MEMORIES]
        assert modelled == sorted(modelled, reverse=True) and modelled[-1] > result.init_cpu_ms
        assert result.modelled_ms(1769) == pytest.approx(result.init_cpu_ms + result.first_cpu_ms)
    assert by_name["visit"].operation == "UpdateItem"
    assert by_name["stream"].operation == "TransactWriteItems"
    # The floor compiles what the function's module loads at init; the stream processor loads no template.
    assert by_name["visit"].templates == ("visit.html", "base.html", "error.html")
    assert by_name["stream"].templates == ()
    # Route functions are held to half their figure before module-scope init; the stream processor is not.
    assert by_name["visit"].cold_goal_ms(256) == coldstart.COLD_GOAL * coldstart.BASELINE_MODELLED_MS["visit"][256]
    assert by_name["stream"].cold_goal_ms(256) is None and by_name["stream"].cold_met(256) is None
    # Nothing is imported beyond the floor but the functions' own modules (whose import builds the client and
    # compiles the templates), and botocore, the floor's largest import (the functions' client is on the standard
    # library), is not imported at all. (The list is the floor's six slowest packages: boto3 may fall off it.)
    for result in results:
        # (the visit page also imports its bot list, crawlerdetect: its requests need it)
        assert set(dict(result.extra_imports)) <= {"functions", "crawlerdetect"}, result.extra_imports
        assert "botocore" in dict(result.avoided_imports)


def test_importtime_breakdown_keeps_only_what_the_floor_lacks():
    handler = parse_importtime(
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        100 |   boto3.compat\n"
        "import time:       300 |        400 | boto3\n"
        "import time:      2000 |       2000 |   jinja2.runtime\n"
        "import time:      1000 |       3000 | jinja2\n"
        "import time:       500 |       3500 | functions.web\n"
    )
    floor = parse_importtime("import time:       300 |        400 | boto3\nimport time:  1 | 1 |   boto3.compat\n")
    assert extra_imports(handler, floor) == [("jinja2", 3.0), ("functions", 0.5)]


def test_site_load_counts_every_visit_and_measures_the_lag():
    result = measure_site(SETTINGS, clients=2, requests=12, drain_timeout=30)
    assert [page.requests for page in result.pages] == [12, 12, 12]
    assert all(page.errors == 0 and page.per_second > 0 for page in result.pages)
    assert result.new_tag_ratio > 0 and result.page(NEW_TAG_PAGE) is result.pages[-1]
    assert result.total_after - result.total_before == result.visits_answered == 12
    assert result.lag_samples == 12 and result.lag_unresolved == 0
    assert result.lag_median_ms >= 0 and result.lag_p99_ms >= result.lag_median_ms


def test_packages_measure_the_code_archive():
    results = measure_packages(layer=False)
    archive, layer = results
    assert archive.name == "code archive" and archive.zipped_bytes and archive.files
    assert archive.unpacked_bytes >= archive.zipped_bytes
    assert layer.zipped_bytes is None and "skip-layer" in layer.problem


def test_capacity_rules():
    item = {"pk": {"S": "tag#abc"}, "visits": {"N": "1234"}}
    assert capacity.item_size(item) == len("pk") + len("tag#abc") + len("visits") + 3
    assert capacity.number_size("1000") == 2  # trailing zeros are not stored
    assert capacity.number_size("12345") == 4
    assert capacity.value_size({"S": "é"}) == 2  # UTF-8 bytes
    big = {"pk": {"S": "x" * 4100}}
    assert capacity.read_units(big, consistent=True) == 2.0
    assert capacity.read_units(None, consistent=False) == 0.5
    assert capacity.write_units(None, {"pk": {"S": "y" * 1030}}) == 2.0
    key = {"pk": {"S": TOTAL_KEY}}
    assert capacity.call_units(
        "TransactWriteItems",
        {"TransactItems": [{"Update": {"Key": key}}, {"Put": {"Item": {"pk": {"S": "batch#1"}}}}]},
        {}, {}, ("pk",),
    ) == (0.0, 4.0)


def _cold(name: str, init: float, floor: float, first: float, warm: float, route: bool = True) -> coldstart.ColdStart:
    """Cold-start figures as one run would give them (CPU ms)."""
    run = coldstart.ColdRun(init + 5, first + 1, init + first + 6, init + first + 40, init + first,
                            init_cpu_ms=init, first_cpu_ms=first, warm_cpu_ms=warm)
    floor_run = coldstart.ColdRun(floor + 5, 3.0, floor + 8, floor + 40, floor + 2.5,
                                  init_cpu_ms=floor, first_cpu_ms=2.5, warm_cpu_ms=1.2)
    return coldstart.ColdStart(name, "GetItem", route=route, templates=("x.html",), handler_runs=[run],
                               floor_runs=[floor_run], baseline_ms=coldstart.BASELINE_MODELLED_MS[name])


def _full_report(round_trips) -> Report:
    results, captured = round_trips
    warm = measure_warm(SETTINGS, captured["calls"], captured["stream_events"], iterations=10)
    report = Report(settings=SETTINGS, stack="dev", command="./dev bench --test", started="now",
                    round_trips=results, warm=warm, warm_iterations=10, cold_runs=1)
    report.cold = [_cold("home", 150, 125, 3.0, 1.5), _cold("visit", 70, 150, 2.0, 1.6),
                   _cold("count", 155, 150, 2.5, 1.2), _cold("stream", 130, 128, 3.0, 1.0, route=False)]
    report.cost_inputs = cost_inputs(SETTINGS, report)
    report.cost = cost.cost_model(report.cost_inputs, rates=(1.0, 10.0))
    report.memory = cost.memory_options(report.cost_inputs, {r.function: r.figures for r in report.cold if r.route})
    widest_history = [history.HistoryFigure(tag=label, days=365, item_bytes=1023, day_attributes=31, write_units=1.0,
                                            round_trips={"UpdateItem": 1}, total_bytes=1023)
                      for label in history.TAGS.values()]
    report.sections = [
        (packages.SECTION, measure_packages(layer=False)),
        (sitesoak.SECTION, _wide_soak()),
        (history.SECTION, (widest_history, SETTINGS)),
        (sweep.SECTION, sweep.Sweep(200_000, 50_000, 50_000, 99999.0, 9999.0, 9999.0, 9999)),
        (siteimport.SECTION, siteimport.Import(200_000, 9.0, 99.99, 99.99)),
    ]
    return report


def _wide_soak() -> sitesoak.SoakFigures:
    # The widest figures a soak prints (measured in tests/bench/test_sitesoak_bench.py): for the table's width.
    chunks = [sitesoak.Chunk(visits, 123, 1.0, 9999.0, 999.9, 9999.9, 9999.0) for visits in (1_000, 30_000)]
    soak = sitesoak.Soak(16, "written through", chunks, start_mb=999.0, median_ms=999.9, p99_ms=9999.9)
    return sitesoak.SoakFigures(soak, sitesoak.FULL, [sitesoak.Saving(label, 3, 9999.0, 9999.9)
                                                      for label, _, _ in sitesoak.SAVINGS])


def test_cost_model_and_report(round_trips):
    report = _full_report(round_trips)
    low, high = (cost.CostModel.total(report.cost.visits[rate]) for rate in (1.0, 10.0))
    # A visit costs at least its API Gateway request; sharing stream batches makes busy traffic cheaper per visit.
    assert low > high > 3.50
    report.skipped["site"] = "not in this test"
    rows = summary_rows(report)
    assert any(row.figure == "cost of 1M visits at 1/s" for row in rows)
    assert any(row.status == NOT_MEASURED for row in rows)  # the site was not run
    table = render_table(rows)
    assert "round trips: visit page" in table and "+ < 1 ms" in table and "size: code archive" in table
    markdown = render_markdown(report)
    for heading in ("## Summary", "## Cold start", "### Modelled at each memory size",
                    "### The DynamoDB client on the standard library", "## Memory of the route",
                    "## Warm request", "## DynamoDB round trips and capacity", "## Package sizes",
                    "## The local site left running", "## Cost model"):
        assert heading in markdown
    assert "https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html" in markdown


def test_the_summary_fits_100_columns_and_its_ratios_read_right_beside_their_times(round_trips):
    report = _full_report(round_trips)
    report.site = SiteLoad(pages=[Throughput(page, 16, 9999, 9999, 1.0, 9999.0, 9999.0)
                                  for page in ("visit (GET /tags/{tag})", COUNT_PAGE, NEW_TAG_PAGE)])
    rows = {row.figure: row for row in summary_rows(report)}
    # Each ratio is the ratio of the two times printed beside it.
    assert rows["cold home: init"].value == "150 ms CPU = 1.20x floor (125 ms)"
    assert rows["cold home: init"].status == "NOT MET"  # 1.20x > 1.1x
    assert rows["cold home: first request"].value == "3.00 ms CPU = 2.00x warm (1.50 ms)"
    assert rows["cold home: first request"].status == "met"
    # 150 + 3.0 / (256 / 1769) = 170.7 ms, against 495 ms before
    assert rows["cold home: at 256 MB"].value == "171 ms = 0.34x before (495 ms)"
    assert rows["cold stream: at 256 MB"].goal == "-"  # the goal is for route functions
    # The client against the botocore floor: visit's init, and the route functions' cold starts.
    assert rows["client: visit init"].value == "0.47x the botocore floor's"  # 70 / 150
    assert rows["client: visit init"].status == "met"
    # visit: (70 + 2.0 / (256 / 1769)) / (150 + 2.5 / (256 / 1769)) = 83.8 / 167.3; home 170.7 / 142.3
    assert rows["client: routes at 256 MB"].value == "0.50x-1.20x the floor's"
    assert rows["client: routes at 256 MB"].status == "NOT MET"
    # New-tag visits against count pages of the same run, and against their own rate goal
    assert rows["local site: new-tag/count"].value.startswith("1.00x") and rows["local site: new-tag/count"].goal \
        == ">= 0.7x" and rows["local site: new-tag/count"].status == "met"
    assert rows["local site: new-tag visit"].goal == ">= 150 req/s" and rows["local site: count"].goal == "-"
    lines = render_table(list(rows.values())).splitlines() + legend(report)
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    # The legend explains the words and says what fails the run.
    text = "\n".join(legend(report))
    for words in ("floor:", "RRU / WRU", "exits 1", "reported only"):
        assert words in text


def test_memory_is_recommended_where_doubling_stops_paying():
    inputs_figures = {"visit": cost.ColdFigures(init_ms=150, first_ms=3.0, warm_ms=1.5)}

    def option(memory: int) -> cost.MemoryOption:
        figures = inputs_figures["visit"]
        return cost.MemoryOption(memory, figures.cold_ms(memory), figures.warm_at(memory), 1.0, 1.0)

    options = [option(memory) for memory in coldstart.MODEL_MEMORIES]
    # 128 -> 256 MB takes 11% off (191 -> 171 ms); 256 -> 512 only 6%: 256 MB
    assert [round(o.cold_ms) for o in options] == [191, 171, 160, 155]
    assert cost.recommend_memory(options) == 256
    assert cost.recommend_memory(options, gain=0.05) == 512
    assert cost.cpu_share(1769) == 1.0 == cost.cpu_share(4000)


def test_command_line_help_lists_the_options():
    done = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=definition.ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0
    for option in ("--quick", "--skip", "--skip-layer", "--no-write", "--output", "--runs"):
        assert option in done.stdout


def test_honest_counts_figures_and_their_guard():
    from bench import honest

    # GIVEN the real visit handler against moto, WHEN the four kinds of visit are measured
    result = honest.measure(SETTINGS, runs=1, iterations=20)
    by_case = {visit.case: visit for visit in result.visits}
    assert set(by_case) == set(honest.BUDGET)
    # THEN each makes the design's calls, with DynamoDB's units, and nothing is flagged
    assert result.regressions() == []
    assert (by_case["person, window off"].read_units, by_case["person, window off"].write_units) == (0.0, 1.0)
    assert (by_case["bot"].read_units, by_case["bot"].write_units) == (1.0, 0.0)
    assert by_case["person, window on, first visit"].write_units == 2.0
    assert (by_case["person, window on, repeat"].read_units, by_case["person, window on, repeat"].write_units) == (
        1.0, 1.0)
    bots = result.bots
    assert bots is not None and bots.compile_ms > 0 and bots.importtime_ms > 0 and bots.check_person_us > 0
    assert 0 < bots.package_zipped_bytes < bots.package_bytes
    section = "\n".join(honest.render_markdown(result))
    assert "## Honest counts" in section and "window on, repeat" in section
    # A repeat that counted, or an extra call, is a regression the run fails on.
    by_case["person, window on, repeat"].counted = True
    by_case["bot"].round_trips["UpdateItem"] = 1
    assert len(result.regressions()) == 2
def test_a_quick_run_writes_the_report_only_when_asked(tmp_path, monkeypatch, capsys):
    import bench.__main__ as bench_main

    def fake_run(options, argv, sections=()):  # the measuring is tested above; this is about the file
        return Report(settings=SETTINGS, stack="dev", command="./dev bench", started="now", quick=options.quick)

    monkeypatch.setattr(bench_main, "run", fake_run)
    output = tmp_path / "BENCHMARKS.md"
    # GIVEN a tracked report, WHEN a quick run finishes, THEN the file is untouched and the output says why
    output.write_text("tracked figures\n", encoding="utf-8")
    assert bench_main.main(["--quick", "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == "tracked figures\n"
    printed = capsys.readouterr().out
    assert "not written" in printed and "--write" in printed and "reported only" in printed
    # WHEN asked with --write, or on a full run, THEN it is written
    assert bench_main.main(["--quick", "--write", "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8").startswith("# Benchmarks")
    output.write_text("tracked figures\n", encoding="utf-8")
    assert bench_main.main(["--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8").startswith("# Benchmarks")
    output.write_text("tracked figures\n", encoding="utf-8")
    assert bench_main.main(["--no-write", "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == "tracked figures\n"
    with pytest.raises(SystemExit) as refused:
        bench_main.parse_args(["--write", "--no-write"])
    assert refused.value.code == 2


def test_a_section_joins_the_run_with_one_registration(capsys):
    from bench.__main__ import parse_args, run
    from bench.section import Row, Section
    from bench.sections import SECTIONS

    seen = []
    fine = Section(
        name="example",
        measure=lambda bench_run: seen.append(bench_run.quick) or {"items": 3},
        rows=lambda result: [Row("example: items", str(result["items"]), "<= 2", "NOT MET")],
        markdown=lambda result: ["## Example", "", f"{result['items']} items.", ""],
        failures=lambda result: ["3 items, the budget is 2"],
    )
    broken = Section("broken", measure=lambda bench_run: 1 / 0, rows=lambda result: [], markdown=lambda result: [])
    options = parse_args(["--quick", "--skip", "cold", "--skip", "warm", "--skip", "site"])
    report = run(options, [], sections=[fine, broken])
    # The section measured, its row and its part of the report are there, and its failure fails the run
    assert seen == [True]
    assert any(row.figure == "example: items" for row in summary_rows(report))
    assert "## Example" in render_markdown(report)
    assert report.regressions == ["example: 3 items, the budget is 2"]
    assert guard(report.regressions) == 1
    # A section that cannot run is reported, and the others' figures are kept
    assert report.skipped["broken"].startswith("failed: ZeroDivisionError")
    assert report.round_trips
    # The registered sections can each be skipped by name
    assert "packages" in {section.name for section in SECTIONS}
    for section in SECTIONS:
        assert parse_args(["--skip", section.name]).skip == [section.name]
    capsys.readouterr()
