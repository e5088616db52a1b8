"""The stack settings: parsed from config strings, defaults for every key, and a clear error for values AWS
(or the product itself) would reject, before anything is deployed."""

from __future__ import annotations

import dataclasses

import pytest

import definition
from definition import Settings
from functions.stream_processor import SAFETY_MARGIN_MS


def settings_from(values: dict[str, str]) -> Settings:
    return Settings.from_config(values.get)


def test_every_key_has_a_default_and_the_dev_file_parses() -> None:
    assert settings_from({}) == Settings()
    dev = definition.stack_settings("dev")
    assert dev.stage_name == "dev" and dev.log_retention_days == 7
    assert not dev.deletion_protection and not dev.point_in_time_recovery


def test_config_keys_are_camel_case_and_typed() -> None:
    parsed = settings_from(
        {"streamBatchSize": "25", "throttleRateLimit": "12.5", "deletionProtection": "true", "stageName": "prod"}
    )
    assert (parsed.stream_batch_size, parsed.throttle_rate_limit) == (25, 12.5)
    assert parsed.deletion_protection is True and parsed.stage_name == "prod"
    assert {Settings.config_key(f.name) for f in dataclasses.fields(Settings)} >= {
        "streamBatchingWindowSeconds",
        "processorTimeoutSeconds",
    }


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("streamBatchSize", "ten", "streamBatchSize must be a int"),
        ("deletionProtection", "yes", "deletionProtection must be a bool"),
        ("streamBatchSize", "0", "streamBatchSize must be between"),
        ("streamStartingPosition", "AT_TIMESTAMP", "TRIM_HORIZON or LATEST"),
        ("streamBatchingWindowSeconds", "301", "streamBatchingWindowSeconds"),
        ("streamMaxRetries", "-2", "streamMaxRetries"),
        ("streamMaxRecordAgeSeconds", "30", "streamMaxRecordAgeSeconds"),
        ("stageName", "dev/1", "stageName"),
        ("routeMemoryMb", "64", "routeMemoryMb"),
        ("processorMemoryMb", "20000", "processorMemoryMb"),
        ("routeTimeoutSeconds", "30", "29 s"),
        ("processorTimeoutSeconds", "5", "less than 5 s left"),
        ("logRetentionDays", "0", "logRetentionDays"),
        ("throttleRateLimit", "0", "throttleRateLimit"),
        ("iteratorAgeAlarmMs", "0", "iteratorAgeAlarmMs"),
        ("iteratorAgeAlarmMs", "86400000", "below 86400000"),
        ("stageName", "s" * 129, "at most 128"),
    ],
)
def test_a_value_aws_would_reject_is_named(key: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings_from({key: value})


@pytest.mark.parametrize("days", ["0", "2", "10", "366", "3652", "4000"])
def test_a_retention_cloudwatch_does_not_offer_is_refused_naming_the_key_and_the_list(days: str) -> None:
    with pytest.raises(ValueError) as refused:
        settings_from({"logRetentionDays": days})
    message = str(refused.value)
    assert message.startswith("logRetentionDays must be one of CloudWatch Logs' retention periods")
    listed = "1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"
    assert listed in message
    assert message.endswith(f"got {days}")


@pytest.mark.parametrize("days", definition.LOG_RETENTION_DAYS)
def test_every_retention_cloudwatch_offers_is_accepted(days: int) -> None:
    assert settings_from({"logRetentionDays": str(days)}).log_retention_days == days


def test_the_processor_timeout_floor_leaves_room_for_the_write_margin() -> None:
    # The processor refuses to start a write with less than SAFETY_MARGIN_MS left; the smallest timeout the
    # settings accept must leave a batch time to be read before that margin is reached.
    assert definition.MIN_PROCESSOR_TIMEOUT_SECONDS * 1000 >= 2 * SAFETY_MARGIN_MS
    assert Settings().processor_timeout_seconds >= definition.MIN_PROCESSOR_TIMEOUT_SECONDS
