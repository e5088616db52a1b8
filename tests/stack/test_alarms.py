"""The alarms under mocks: errors, 5xx pages, a stream processor behind or stalled, records given up on or skipped."""

from __future__ import annotations

import json
import logging

import pytest

import definition
from components.alarms import (
    COUNTED_VISITS_METRIC,
    MALFORMED_RECORDS_METRIC,
    STALLED_AGE_MS,
    counted_visit_pattern,
    malformed_record_pattern,
)
from functions import stream_processor
from tests.stack.conftest import FUNCTION, ProgramRun, Registration, function_for

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"


def processor(program: ProgramRun) -> Registration:
    """The deployed stream processor."""
    return function_for(program, definition.STREAM_PROCESSOR)


def test_every_function_has_an_errors_alarm(program: ProgramRun) -> None:
    errors = [a for a in program.of_type(ALARM) if a.state.get("metricName") == "Errors"]
    names = sorted(f["name"] for f in program.of_type(FUNCTION))
    assert sorted(a["dimensions"]["FunctionName"] for a in errors) == names
    assert len(errors) == len(definition.FUNCTIONS)


def test_the_stage_5xx_responses_alarm(program: ProgramRun) -> None:
    alarm = program.one(ALARM, lambda a: a.state.get("metricName") == "5XXError")
    api = program.one("aws:apigateway/restApi:RestApi")
    assert alarm["namespace"] == "AWS/ApiGateway"
    assert alarm["dimensions"] == {"ApiName": api["name"], "Stage": program.settings.stage_name}
    assert (alarm["statistic"], alarm["threshold"], alarm["comparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")


def test_a_stalled_or_missing_processor_alarms(program: ProgramRun) -> None:
    alarm = program.one(ALARM, lambda a: a.name.endswith("-stream-iterator-age"))
    assert alarm["treatMissingData"] == "breaching"
    assert alarm["threshold"] == program.settings.iterator_age_alarm_ms
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    assert queries["age"]["metric"]["metricName"] == "IteratorAge"
    assert queries["age"]["metric"]["dimensions"] == {"FunctionName": processor(program)["name"]}
    # Fed by counted visits, each a stream record: never by the table's write units, which a repeat visitor's failed
    # marker write or an owner's command also consume without a record for the processor.
    assert "ConsumedWriteCapacityUnits" not in json.dumps(alarm.state)
    assert queries["visits"]["metric"]["metricName"] == COUNTED_VISITS_METRIC
    assert queries["visits"]["metric"]["namespace"] == "tag-counter/dev"
    assert not queries["visits"]["metric"].get("dimensions")
    visit_filters = [f for f in program.of_type(FILTER) if f["metricTransformation"]["name"] == COUNTED_VISITS_METRIC]
    assert visit_filters and {f.urn for f in visit_filters} <= set(alarm.dependencies)
    [returned] = [q for q in alarm["metricQueries"] if q.get("returnData")]
    assert returned["id"] == "behind"
    # Written but not read: the alarm reads the stream's whole retention, far above the threshold.
    assert f"{STALLED_AGE_MS}" in returned["expression"] and STALLED_AGE_MS > alarm["threshold"]
    assert returned["expression"] == "IF(FILL(age, -1) < 0 AND FILL(visits, 0) > 0, 86400000, FILL(age, 0))"


def test_the_on_failure_queue_alarm(program: ProgramRun) -> None:
    alarm = program.one(ALARM, lambda a: a.state.get("metricName") == "ApproximateNumberOfMessagesVisible")
    assert alarm["namespace"] == "AWS/SQS"
    assert alarm["dimensions"] == {"QueueName": program.one("aws:sqs/queue:Queue")["name"]}


def test_skipped_malformed_records_are_a_metric_with_an_alarm(program: ProgramRun) -> None:
    metric_filter = program.one(FILTER, lambda f: f["metricTransformation"]["name"] == MALFORMED_RECORDS_METRIC)
    assert metric_filter["logGroupName"] == processor(program)["loggingConfig"]["logGroup"]
    assert metric_filter["pattern"] == '{ $.message = "malformed stream record skipped" }'
    transformation = metric_filter["metricTransformation"]
    assert transformation["name"] == MALFORMED_RECORDS_METRIC
    assert transformation["namespace"] == "tag-counter/dev"
    assert transformation["value"] == "1"
    alarm = program.one(ALARM, lambda a: a.state.get("metricName") == MALFORMED_RECORDS_METRIC)
    assert alarm["namespace"] == transformation["namespace"]
    assert (alarm["statistic"], alarm["threshold"]) == ("Sum", 0)
    assert metric_filter.urn in alarm.dependencies


def test_the_processor_logs_a_malformed_record_with_the_message_the_filter_matches(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger=stream_processor.__name__):
        assert stream_processor.read_changes([{"eventName": "MODIFY", "dynamodb": "not a record"}]) == []
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == definition.MALFORMED_RECORD_MESSAGE
    assert definition.MALFORMED_RECORD_MESSAGE in malformed_record_pattern()


def test_there_are_exactly_these_alarms(program: ProgramRun) -> None:
    assert len(program.of_type(ALARM)) == len(definition.FUNCTIONS) + 4
