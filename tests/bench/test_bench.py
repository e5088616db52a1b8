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
from botocore.awsrequest import AWSResponse

import definition
from bench import capacity, cost
from bench.__main__ import cost_inputs, guard
from bench.coldstart import extra_imports, measure_cold_starts, parse_importtime
from bench.packages import measure_packages
from bench.report import Report, render_markdown, render_table, summary_rows
from bench.roundtrips import BUDGET, measure_round_trips, regressions
from bench.siteload import measure_site
from bench.warm import _Body, measure_warm
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

        def throttle(request: Any, **_: Any) -> AWSResponse | None:
            if state["throttled"]:
                return None
            state["throttled"] = True
            body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"slow down"}'
            return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, _Body(body))

        events = get_store().client.meta.events
        events.register_first("before-send.dynamodb.BatchGetItem", throttle)
        try:
            return count(event, context)
        finally:
            events.unregister("before-send.dynamodb.BatchGetItem", throttle)

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
        ("count-badge-json", None), ("stream", 1), ("stream", 5)
    ]
    for result in results:
        assert result.handler_ms > 0 and result.bare_ms > 0 and math.isfinite(result.ratio)
        assert result.iterations == 20
    # The stream processor logs one JSON line per batch; a page that succeeds logs nothing.
    assert next(r for r in results if r.records == 5).log_bytes_per_request > 0
    assert next(r for r in results if r.function == "visit").log_bytes_per_request == 0


def test_cold_start_figures_and_import_breakdown():
    results, how = measure_cold_starts(
        SETTINGS, runs=1, functions=(definition.VISIT, definition.STREAM_PROCESSOR)
    )
    assert how == "components.packaging.build_code_archive"
    by_name = {result.function: result for result in results}
    assert set(by_name) == {"visit", "stream"}
    for result in results:
        assert len(result.handler_runs) == len(result.floor_runs) == 1
        run = result.handler_runs[0]
        assert 0 < run.init_ms < run.total_ms < run.process_ms
        assert math.isfinite(result.ratio) and result.ratio > 0
    assert by_name["visit"].operation == "UpdateItem"
    assert by_name["stream"].operation == "TransactWriteItems"
    # The route function pays for Jinja2 (the layer); the stream processor never imports it.
    assert "jinja2" in dict(by_name["visit"].extra_imports)
    assert "jinja2" not in dict(by_name["stream"].extra_imports)


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
    assert [page.requests for page in result.pages] == [12, 12]
    assert all(page.errors == 0 and page.per_second > 0 for page in result.pages)
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


def test_cost_model_and_report(round_trips):
    results, captured = round_trips
    warm = measure_warm(SETTINGS, captured["calls"], captured["stream_events"], iterations=10)
    report = Report(settings=SETTINGS, stack="dev", command="./dev bench --test", started="now",
                    round_trips=results, warm=warm, warm_iterations=10)
    report.cost_inputs = cost_inputs(SETTINGS, report)
    report.cost = cost.cost_model(report.cost_inputs, rates=(1.0, 10.0))
    low, high = (cost.CostModel.total(report.cost.visits[rate]) for rate in (1.0, 10.0))
    # A visit costs at least its API Gateway request; sharing stream batches makes busy traffic cheaper per visit.
    assert low > high > 3.50
    report.skipped["site"] = "not in this test"
    rows = summary_rows(report)
    assert any(row.figure == "cost per million visits at 1/s" for row in rows)
    assert any(row.status == "not measured" for row in rows)  # cold start was not run
    table = render_table(rows)
    assert "round trips: GET /tags/{tag}" in table and "<= 1.5x" in table
    markdown = render_markdown(report)
    for heading in ("## Summary", "## Warm request", "## DynamoDB round trips and capacity", "## Cost model"):
        assert heading in markdown


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
