"""The one definition of tag-counter: its functions, routes, table, stream mapping and settings.

The Pulumi program (``components/``, ``__main__.py``), the local site (``localsite/``), the tests and the
benchmarks all read this module; none of them repeats what it says. ``functions/`` never imports it:
what runs in Lambda gets its settings from environment variables the program sets from here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.history import DEFAULT_HISTORY_DAYS, HISTORY_DAYS_ENV, MAX_HISTORY_DAYS
from functions.keys import MARKER_PREFIX, PARTITION_KEY, TAG_PREFIX, TOTAL_KEY, TTL_ATTRIBUTE

PROJECT = "tag-counter"
ROOT = Path(__file__).resolve().parent
CONFIG_NAMESPACE = PROJECT

TABLE_NAME_ENV = "TABLE_NAME"
"""The environment variable that tells every function which table to use."""
STREAM_BATCHING_WINDOW_ENV = "STREAM_BATCHING_WINDOW_SECONDS"
"""The stream mapping's batching window, for the pages that say how soon the total catches up
(``functions.web.total_catch_up``)."""

# Lambda's runtime and architecture, for the functions and for the layer build.
RUNTIME = "python3.13"
ARCHITECTURE = "arm64"
LAYER_PYTHON_VERSION = "3.13"
LAYER_PLATFORM = "manylinux2014_aarch64"
LAYER_REQUIREMENTS = ROOT / "layer" / "requirements.txt"

# What the code archive holds: these folders, and only their .py and template files.
CODE_DIRECTORIES = ("functions", "templates")
CODE_SUFFIXES = (".py", ".html", ".css")


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function: what it runs and exactly which DynamoDB calls its handler makes."""

    name: str
    """Short name, used in resource names and log lines (``visit`` → ``tag-counter-visit``)."""
    handler: str
    """Dotted path to the handler, ``module.function``, relative to the code archive's root."""
    actions: tuple[str, ...]
    """The IAM actions its handler calls on the table; the role grants these and nothing else."""
    leading_keys: tuple[str, ...]
    """``dynamodb:LeadingKeys`` patterns (``StringLike``) the handler's item keys always match."""
    uses_templates: bool
    """Whether it renders pages: only those get the Jinja2 layer."""


@dataclass(frozen=True)
class Route:
    """One page of the site: a ``GET`` path of the REST API served by one function."""

    path: str
    """REST API path, with ``{param}`` placeholders, as API Gateway declares it."""
    function: FunctionSpec
    method: str = "GET"

    @property
    def name(self) -> str:
        return self.function.name


HOME = FunctionSpec(
    name="home",
    handler="functions.home.handler",
    actions=("dynamodb:GetItem",),
    leading_keys=(TOTAL_KEY,),
    uses_templates=True,
)
VISIT = FunctionSpec(
    name="visit",
    handler="functions.visit.handler",
    actions=("dynamodb:UpdateItem",),
    leading_keys=(TAG_PREFIX + "*",),
    uses_templates=True,
)
COUNT = FunctionSpec(
    name="count",
    handler="functions.count.handler",
    actions=("dynamodb:BatchGetItem",),
    leading_keys=(TAG_PREFIX + "*", TOTAL_KEY),
    uses_templates=True,
)
STREAM_PROCESSOR = FunctionSpec(
    name="stream",
    handler="functions.stream_processor.handler",
    # One TransactWriteItems (Update of the total, conditional Put of the marker) per batch;
    # GetItem reads a marker back when the transaction is cancelled because it already exists.
    actions=("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
    leading_keys=(TOTAL_KEY, MARKER_PREFIX + "*"),
    uses_templates=False,
)

ROUTES: tuple[Route, ...] = (
    Route("/", HOME),
    Route("/tags/{tag}", VISIT),
    Route("/counts/{tag}", COUNT),
)

FUNCTIONS: tuple[FunctionSpec, ...] = tuple(route.function for route in ROUTES) + (STREAM_PROCESSOR,)

STREAM_READ_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)

STREAM_VIEW_TYPE = "NEW_AND_OLD_IMAGES"
HASH_KEY = PARTITION_KEY
TTL_ATTRIBUTE_NAME = TTL_ATTRIBUTE

STREAM_FILTER_PATTERNS: tuple[dict[str, Any], ...] = (
    # Only tag items reach the processor: not the total it writes, not its markers.
    # DynamoDB mappings filter on the ``dynamodb`` key only.
    {"dynamodb": {"Keys": {PARTITION_KEY: {"S": [{"prefix": TAG_PREFIX}]}}}},
)

MAX_ROUTE_TIMEOUT_SECONDS = 29
"""API Gateway's REST integration timeout: a route function allowed longer would only be cut off."""
MIN_PROCESSOR_TIMEOUT_SECONDS = 10
"""Twice the stream processor's 5 s write safety margin (``functions.stream_processor.SAFETY_MARGIN_MS``)."""

EXAMPLE_TAGS = ("hello", "serverless", "café")


@dataclass(frozen=True)
class Settings:
    """Per-stack settings. Each field is the stack config key ``tag-counter:<camelCaseName>``."""

    stage_name: str = "dev"
    """API Gateway stage, and the first path segment of every URL."""
    log_retention_days: int = 14
    route_memory_mb: int = 256
    route_timeout_seconds: int = 5
    processor_memory_mb: int = 256
    processor_timeout_seconds: int = 30
    throttle_rate_limit: float = 50.0
    """Steady requests per second the stage accepts."""
    throttle_burst_limit: int = 100
    stream_starting_position: str = "TRIM_HORIZON"
    stream_batch_size: int = 100
    stream_batching_window_seconds: int = 1
    stream_max_retries: int = 5
    stream_max_record_age_seconds: int = 3600
    stream_bisect_on_error: bool = True
    point_in_time_recovery: bool = False
    deletion_protection: bool = False
    """Protects the table, in DynamoDB and in Pulumi; ``prod`` turns it on, ``destroy`` then refuses."""
    iterator_age_alarm_ms: int = 60_000
    history_days: int = DEFAULT_HISTORY_DAYS
    """How many UTC days of visits each tag and the total keep (``functions.history``)."""

    @classmethod
    def config_key(cls, field_name: str) -> str:
        head, *rest = field_name.split("_")
        return head + "".join(part.capitalize() for part in rest)

    @classmethod
    def from_config(cls, get: Callable[[str], str | None]) -> Settings:
        """Build settings from a config getter (``pulumi.Config(...).get`` or a stack file's values).

        A value that does not parse as its field's type raises ``ValueError`` naming the key.
        """
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            key = cls.config_key(field.name)
            raw = get(key)
            if raw is None:
                continue
            values[field.name] = _parse(key, raw, type(field.default))
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise ``ValueError`` on a value AWS would reject, before anything is deployed."""
        if self.stream_starting_position not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError("streamStartingPosition must be TRIM_HORIZON or LATEST")
        if not 1 <= self.stream_batch_size <= 10_000:
            raise ValueError("streamBatchSize must be between 1 and 10000")
        if not 0 <= self.stream_batching_window_seconds <= 300:
            raise ValueError("streamBatchingWindowSeconds must be between 0 and 300")
        if not -1 <= self.stream_max_retries <= 10_000:
            raise ValueError("streamMaxRetries must be between -1 and 10000")
        if not (self.stream_max_record_age_seconds == -1 or 60 <= self.stream_max_record_age_seconds <= 604_800):
            raise ValueError("streamMaxRecordAgeSeconds must be -1 or between 60 and 604800")
        if not self.stage_name or not self.stage_name.replace("-", "").replace("_", "").isalnum():
            raise ValueError("stageName may hold only letters, digits, '-' and '_'")
        for key, memory in (("routeMemoryMb", self.route_memory_mb), ("processorMemoryMb", self.processor_memory_mb)):
            if not 128 <= memory <= 10_240:
                raise ValueError(f"{key} must be between 128 and 10240 (Lambda's limits)")
        if not 1 <= self.route_timeout_seconds <= MAX_ROUTE_TIMEOUT_SECONDS:
            raise ValueError(
                f"routeTimeoutSeconds must be between 1 and {MAX_ROUTE_TIMEOUT_SECONDS}: "
                "API Gateway gives up on a REST integration after 29 s"
            )
        if not MIN_PROCESSOR_TIMEOUT_SECONDS <= self.processor_timeout_seconds <= 900:
            raise ValueError(
                f"processorTimeoutSeconds must be between {MIN_PROCESSOR_TIMEOUT_SECONDS} and 900: the stream "
                "processor starts no write with less than 5 s left, so a shorter timeout would fail every batch"
            )
        if not 1 <= self.log_retention_days <= 3653:
            raise ValueError("logRetentionDays must be between 1 and 3653")
        if self.throttle_rate_limit <= 0 or self.throttle_burst_limit < 1:
            raise ValueError("throttleRateLimit must be above 0 and throttleBurstLimit at least 1")
        if self.iterator_age_alarm_ms < 1:
            raise ValueError("iteratorAgeAlarmMs must be at least 1")
        if not 1 <= self.history_days <= MAX_HISTORY_DAYS:
            raise ValueError(f"historyDays must be between 1 and {MAX_HISTORY_DAYS}: each day is kept on every tag item")


def function_environment(settings: Settings) -> dict[str, str]:
    """The environment variables every function gets besides ``TABLE_NAME``: the settings its code reads.

    The Pulumi program sets exactly these on each deployed function; the local site, the tests and the
    benchmarks set the same, so a function never sees a setting another way.
    """
    return {
        HISTORY_DAYS_ENV: str(settings.history_days),
        # The count page says how soon the site-wide total includes a visit: the mapping's window, and then some.
        STREAM_BATCHING_WINDOW_ENV: str(settings.stream_batching_window_seconds),
    }


def _parse(key: str, raw: Any, kind: type) -> Any:
    if isinstance(raw, kind) and not (kind is int and isinstance(raw, bool)):
        return raw
    text = str(raw).strip()
    try:
        if kind is bool:
            if text.lower() in ("true", "false"):
                return text.lower() == "true"
            raise ValueError(text)
        return kind(text)
    except ValueError:
        raise ValueError(f"config {CONFIG_NAMESPACE}:{key} must be {_KIND_NAMES.get(kind, kind.__name__)}, "
                         f"got {raw!r}") from None


_KIND_NAMES = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


def stack_config(stack: str = "dev", root: Path = ROOT) -> dict[str, Any]:
    """The values of ``Pulumi.<stack>.yaml``'s ``config`` block (namespaced keys as written)."""
    import yaml  # only the local site and the tests read stack files

    path = root / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return dict(data.get("config") or {})


def stack_settings(stack: str = "dev", root: Path = ROOT) -> Settings:
    """The settings a ``pulumi up`` of ``stack`` would use, read from its stack file."""
    config: Mapping[str, Any] = stack_config(stack, root)
    return Settings.from_config(lambda key: config.get(f"{CONFIG_NAMESPACE}:{key}"))


def create_table_request(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments for the table as the program declares it (for moto: local site, tests)."""
    return {
        "TableName": table_name,
        "AttributeDefinitions": [{"AttributeName": HASH_KEY, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": HASH_KEY, "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": STREAM_VIEW_TYPE},
    }


def create_table(client: Any, table_name: str) -> str:
    """Create the table (with its TTL attribute) through a boto3 DynamoDB client; return its stream ARN."""
    description = client.create_table(**create_table_request(table_name))["TableDescription"]
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE_NAME},
    )
    return description["LatestStreamArn"]
