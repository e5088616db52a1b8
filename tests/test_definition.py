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
        ("streamBatchSize", "ten", "streamBatchSize must be a whole number"),
        ("deletionProtection", "yes", "deletionProtection must be true or false"),
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
    ],
)
def test_a_value_aws_would_reject_is_named(key: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings_from({key: value})


def test_the_processor_timeout_floor_leaves_room_for_the_write_margin() -> None:
    # The processor refuses to start a write with less than SAFETY_MARGIN_MS left; the smallest timeout the
    # settings accept must leave a batch time to be read before that margin is reached.
    assert definition.MIN_PROCESSOR_TIMEOUT_SECONDS * 1000 >= 2 * SAFETY_MARGIN_MS
    assert Settings().processor_timeout_seconds >= definition.MIN_PROCESSOR_TIMEOUT_SECONDS
