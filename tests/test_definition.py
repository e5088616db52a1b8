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
        ("countBots", "maybe", "countBots must be true or false"),
        ("uniqueVisitorWindowMinutes", "half an hour", "uniqueVisitorWindowMinutes must be a whole number"),
        ("uniqueVisitorWindowMinutes", "-1", "uniqueVisitorWindowMinutes must be between 0"),
        ("uniqueVisitorWindowMinutes", "10081", "10080"),
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


def test_honest_count_settings_default_off_and_reach_the_functions_as_environment() -> None:
    # Bots are not counted by default; every load counts (no window) by default.
    assert (Settings().count_bots, Settings().unique_visitor_window_minutes) == (False, 0)
    parsed = settings_from({"countBots": "true", "uniqueVisitorWindowMinutes": "30"})
    assert (parsed.count_bots, parsed.unique_visitor_window_minutes) == (True, 30)
    environment = definition.function_environment(parsed)
    assert environment["COUNT_BOTS"] == "true" and environment["UNIQUE_VISITOR_WINDOW_MINUTES"] == "30"
    assert "VISITOR_KEY" not in environment  # the secret is never a plain setting
    assert definition.function_environment(Settings())["COUNT_BOTS"] == "false"
    # The key goes only with a window, only where asked for (the counting functions).
    assert definition.visitor_key_environment(parsed, "k") == {"VISITOR_KEY": "k"}
    assert definition.visitor_key_environment(Settings(), "k") == {}


def test_only_counting_functions_may_write_visitor_markers() -> None:
    counting = {spec.name for spec in definition.FUNCTIONS if spec.counts_visits}
    assert "visit" in counting and not counting & {"home", "count", "stream"}
    for spec in definition.FUNCTIONS:
        writes_markers = any(key.startswith("visitor#") for _, key in spec.pairs())
        assert writes_markers is spec.counts_visits
    assert ("dynamodb:PutItem", "tag#*") not in definition.VISIT.pairs()
    assert ("dynamodb:PutItem", "visitor#*") in definition.VISIT.pairs()
    # Granted only when the stack has a window.
    for spec in definition.FUNCTIONS:
        assert definition.VISITOR_GRANT not in spec.table_grants(Settings())
        assert (definition.VISITOR_GRANT in spec.table_grants(Settings(unique_visitor_window_minutes=1))) is (
            spec.counts_visits
        )
def test_the_functions_get_the_route_table_for_their_links() -> None:
    import json

    from functions import links

    environment = definition.function_environment(definition.Settings())
    table = json.loads(environment[links.ROUTE_PATHS_ENV])
    assert table == {route.name: route.path for route in definition.ROUTES}
    # Every route name the functions link to is one the definition serves.
    names = {v for n, v in vars(links).items() if n.isupper() and n[0] != "_" and not n.endswith("_ENV")}
    assert names <= set(table)
    # Another route table (the local site's, a test's) reaches the functions the same way; HEAD routes are not links.
    other = definition.ROUTES + (
        definition.Route("/elsewhere/{tag}", definition.VISIT),
        definition.Route("/tags/{tag}", definition.VISIT, method="HEAD"),
    )
    assert json.loads(definition.function_environment(definition.Settings(), other)[links.ROUTE_PATHS_ENV]) == table


# --- the custom domain and the alarms' notifications ---------------------------------------------------------------

DOMAIN = "counter.example.com"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
ZONE = "Z0123456789ABCDEFGHIJ"
TOPIC = "arn:aws:sns:us-east-1:123456789012:owner-alerts"


def test_domain_settings_parse_and_give_the_site_url() -> None:
    assert Settings().site_url is None and definition.gateway_home_href(Settings()) == "/$context.stage/"
    parsed = settings_from({"domainName": DOMAIN, "certificateArn": CERTIFICATE})
    assert parsed.site_url == f"https://{DOMAIN}/" == definition.gateway_home_href(parsed)
    under = settings_from({"domainName": DOMAIN, "hostedZoneId": ZONE, "basePath": "counter"})
    assert under.site_url == f"https://{DOMAIN}/counter/"
    assert definition.function_environment(under)["SITE_URL"] == f"https://{DOMAIN}/counter/"
    assert "SITE_URL" not in definition.function_environment(Settings())
    off = settings_from({"domainName": DOMAIN, "certificateArn": CERTIFICATE, "disableExecuteApiEndpoint": "true"})
    assert off.disable_execute_api_endpoint is True


@pytest.mark.parametrize(
    "raw",
    [
        "ops@example.com, owner@example.org",
        '["ops@example.com", "owner@example.org"]',
        "ops@example.com,owner@example.org,",
    ],
)
def test_alarm_email_takes_one_or_more_addresses(raw: str) -> None:
    assert settings_from({"alarmEmail": raw}).alarm_email == ("ops@example.com", "owner@example.org")


def test_alarm_email_from_a_stack_file_list() -> None:
    assert Settings.from_config({"alarmEmail": ["ops@example.com"]}.get).alarm_email == ("ops@example.com",)
    assert settings_from({"alarmEmail": "ops@example.com"}).alarm_email == ("ops@example.com",)
    assert settings_from({"alarmTopicArn": TOPIC}).alarm_topic_arn == TOPIC


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"certificateArn": CERTIFICATE}, "certificateArn is set but domainName is not"),
        ({"hostedZoneId": ZONE}, "hostedZoneId is set but domainName is not"),
        ({"basePath": "counter"}, "basePath is set but domainName is not"),
        ({"disableExecuteApiEndpoint": "true"}, "disableExecuteApiEndpoint is set but domainName is not"),
        ({"domainName": DOMAIN}, "domainName needs certificateArn .* or hostedZoneId"),
        ({"domainName": DOMAIN, "certificateArn": CERTIFICATE, "hostedZoneId": ZONE},
         "certificateArn and hostedZoneId exclude each other"),
        ({"domainName": "https://counter.example.com", "hostedZoneId": ZONE}, "domainName must be a DNS name"),
        ({"domainName": "Counter.Example.com", "hostedZoneId": ZONE}, "domainName must be a DNS name in lower case"),
        ({"domainName": "*.example.com", "hostedZoneId": ZONE}, "domainName must be a DNS name"),
        ({"domainName": "localhost", "hostedZoneId": ZONE}, "domainName must be a DNS name"),
        ({"domainName": DOMAIN, "certificateArn": "arn:aws:iam::123456789012:server-certificate/x"},
         "certificateArn must be an ACM certificate ARN"),
        ({"domainName": DOMAIN, "hostedZoneId": "/hostedzone/Z0123"}, "hostedZoneId must be a Route 53 zone id"),
        ({"domainName": DOMAIN, "hostedZoneId": ZONE, "basePath": "/counter"}, "basePath must be one path segment"),
        ({"domainName": DOMAIN, "hostedZoneId": ZONE, "basePath": "a/b"}, "basePath must be one path segment"),
        ({"disableExecuteApiEndpoint": "soon"}, "disableExecuteApiEndpoint must be true or false"),
        ({"alarmEmail": "ops@example.com", "alarmTopicArn": TOPIC}, "alarmEmail and alarmTopicArn exclude each other"),
        ({"alarmEmail": "ops at example.com"}, "alarmEmail must hold email addresses"),
        ({"alarmEmail": "ops@example.com ops2@example.com"}, "alarmEmail must hold email addresses"),
        ({"alarmEmail": "ops@example.com,ops@example.com"}, "alarmEmail lists an address twice"),
        ({"alarmTopicArn": "owner-alerts"}, "alarmTopicArn must be an SNS topic ARN"),
    ],
)
def test_missing_or_contradictory_domain_and_alarm_settings_are_named(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings_from(values)


def test_a_certificate_or_topic_of_another_region_is_named() -> None:
    settings = settings_from({"domainName": DOMAIN, "certificateArn": CERTIFICATE})
    settings.check_region("us-east-1")
    with pytest.raises(ValueError, match="certificateArn is in us-east-1, but the stack deploys to eu-west-1"):
        settings.check_region("eu-west-1")
    with pytest.raises(ValueError, match="alarmTopicArn is in us-east-1, but the stack deploys to eu-west-1"):
        settings_from({"alarmTopicArn": TOPIC}).check_region("eu-west-1")
    Settings().check_region("eu-west-1")


def test_every_counting_function_counts_visits_for_the_window_the_dashboard_and_the_alarm() -> None:
    # A function that writes a visit (UpdateItem on tags) needs the window's marker grant and its log line's
    # metric filter; one added without them would count visits the dashboard and the stalled alarm never see.
    writes_tags = definition.Grant("dynamodb:UpdateItem", definition.TAG_KEYS)
    counting = {spec.name for spec in definition.FUNCTIONS if writes_tags in spec.grants}
    assert counting == {spec.name for spec in definition.FUNCTIONS if spec.counts_visits}
    assert {"visit", "visit-badge", "visit-json"} <= counting
