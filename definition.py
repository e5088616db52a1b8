"""The one definition of tag-counter: its functions, routes, table, stream mapping and settings.

The Pulumi program (``components/``, ``__main__.py``), the local site (``localsite/``), the tests and the
benchmarks all read this module; none of them repeats what it says. ``functions/`` never imports it:
what runs in Lambda gets its settings from environment variables the program sets from here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from functions.history import DEFAULT_HISTORY_DAYS, HISTORY_DAYS_ENV, MAX_HISTORY_DAYS
from functions import links
# The log line of a counted visit (functions.counting): a metric filter turns it into the visits metric the dashboard
# shows and the stalled-processor alarm reads (components.alarms).
from functions.log import VISIT_COUNTED_MESSAGE  # noqa: F401 (part of the definition)
from functions.keys import MARKER_PREFIX, PARTITION_KEY, TAG_PREFIX, TOTAL_KEY, TTL_ATTRIBUTE, VISITOR_PREFIX
from functions.rules import COUNT_BOTS_ENV, MAX_WINDOW_MINUTES, VISITOR_KEY_ENV, WINDOW_MINUTES_ENV

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

# What the code archive holds: these folders, and only their .py, template and data files
# (``functions/badge_widths.json`` is the badges' text-width table).
CODE_DIRECTORIES = ("functions", "templates")
CODE_SUFFIXES = (".py", ".html", ".css", ".svg", ".json")


class Grant(NamedTuple):
    """One table permission: an IAM action on the items whose partition key matches a ``StringLike`` pattern."""

    action: str
    """``dynamodb:<Operation>``; inside ``TransactWriteItems``, each item needs the action of its kind (Put...)."""
    key_pattern: str
    """``dynamodb:LeadingKeys`` pattern (``StringLike``: ``*`` matches any run of characters)."""


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function: what it runs and exactly which DynamoDB calls its handler makes, on which keys."""

    name: str
    """Short name, used in resource names and log lines (``visit`` → ``tag-counter-visit``)."""
    handler: str
    """Dotted path to the handler, ``module.function``, relative to the code archive's root."""
    grants: tuple[Grant, ...]
    """Exactly the (action, key pattern) pairs its handler uses with every setting; the role allows these pairs
    (and ``window_grants`` when they apply) and no others."""
    uses_templates: bool
    """Whether it renders pages: only those get the Jinja2 layer."""
    window_grants: tuple[Grant, ...] = ()
    """The pairs it uses only when the stack has a unique-visitor window (``uniqueVisitorWindowMinutes`` above 0):
    granted then, and only then."""

    @property
    def all_grants(self) -> tuple[Grant, ...]:
        """Every pair it may use under some settings: ``grants`` and ``window_grants``."""
        return self.grants + self.window_grants

    def table_grants(self, settings: Settings) -> tuple[Grant, ...]:
        """The pairs its role allows on a stack with ``settings``."""
        return self.grants + (self.window_grants if settings.unique_visitor_window_minutes > 0 else ())

    @property
    def actions(self) -> tuple[str, ...]:
        """The distinct table actions of ``all_grants``, in order."""
        return grant_actions(self.all_grants)

    def pairs(self) -> frozenset[tuple[str, str]]:
        """Every (action, key pattern) pair it may use under some settings."""
        return frozenset(self.all_grants)

    @property
    def counts_visits(self) -> bool:
        """Whether it counts visits: it may write unique-visitor markers, so only such functions get the visitor key,
        and its log line for a counted visit feeds the visits metric (``components.alarms``)."""
        return VISITOR_GRANT in self.window_grants


def grant_actions(grants: Sequence[Grant]) -> tuple[str, ...]:
    """The distinct actions of ``grants``, in order."""
    return tuple(dict.fromkeys(grant.action for grant in grants))


def grant_key_patterns(grants: Sequence[Grant], action: str) -> tuple[str, ...]:
    """The key patterns ``action`` is granted on in ``grants``."""
    return tuple(dict.fromkeys(grant.key_pattern for grant in grants if grant.action == action))


HEAD_METHOD = "HEAD"


@dataclass(frozen=True)
class Route:
    """One page of the site: a path of the REST API served by one function."""

    path: str
    """REST API path, with ``{param}`` placeholders, as API Gateway declares it."""
    function: FunctionSpec
    method: str = "GET"

    @property
    def name(self) -> str:
        """The route's name, the pages' handle for linking to it: its function's name."""
        return self.function.name

    @property
    def methods(self) -> tuple[str, ...]:
        """The HTTP methods routed to the function: ``method``, and ``HEAD`` beside ``GET`` (answered like GET
        without a body, never writing)."""
        return (self.method, HEAD_METHOD) if self.method == "GET" else (self.method,)


TAG_KEYS = TAG_PREFIX + "*"
MARKER_KEYS = MARKER_PREFIX + "*"
VISITOR_KEYS = VISITOR_PREFIX + "*"

VISITOR_GRANT = Grant("dynamodb:PutItem", VISITOR_KEYS)
"""What a counting function needs for the unique-visitor window: a conditional PutItem of its markers, no more."""
COUNTING_GRANTS = (
    # One UpdateItem adds the visit and its day; the rare rewrite after a long silence is an UpdateItem too,
    # from the old item the failed condition returns (ReturnValuesOnConditionCheckFailure needs no read).
    Grant("dynamodb:UpdateItem", TAG_KEYS),
    # A HEAD, a bot or a repeat visitor reads the tag instead (functions.counting).
    Grant("dynamodb:GetItem", TAG_KEYS),
)
"""What every counting route's function uses: the rules of ``functions.counting``; with a unique-visitor window,
``VISITOR_GRANT`` too (its ``window_grants``)."""

HOME = FunctionSpec(
    name=links.HOME,
    handler="functions.home.handler",
    grants=(Grant("dynamodb:GetItem", TOTAL_KEY),),
    uses_templates=True,
)
VISIT = FunctionSpec(
    name=links.VISIT,
    handler="functions.visit.handler",
    grants=COUNTING_GRANTS,
    uses_templates=True,
    window_grants=(VISITOR_GRANT,),
)
COUNT = FunctionSpec(
    name=links.COUNT,
    handler="functions.count.handler",
    # One BatchGetItem reads the tag and the total together, projecting pk, visits and the window's days.
    grants=(Grant("dynamodb:BatchGetItem", TAG_KEYS), Grant("dynamodb:BatchGetItem", TOTAL_KEY)),
    uses_templates=True,
)
VISIT_BADGE = FunctionSpec(
    name=links.VISIT_BADGE,
    handler="functions.visit_badge.handler",
    grants=COUNTING_GRANTS,
    uses_templates=True,
    window_grants=(VISITOR_GRANT,),
)
COUNT_BADGE = FunctionSpec(
    name=links.COUNT_BADGE,
    handler="functions.count_badge.handler",
    grants=(Grant("dynamodb:GetItem", TAG_KEYS),),
    uses_templates=True,
)
COUNT_BADGE_JSON = FunctionSpec(
    name=links.COUNT_BADGE_JSON,
    handler="functions.count_badge_json.handler",
    grants=(Grant("dynamodb:GetItem", TAG_KEYS),),
    # It renders no template, but shares the badges' module (functions.badge), which imports Jinja2.
    uses_templates=True,
)
VISIT_JSON = FunctionSpec(
    name=links.VISIT_JSON,
    handler="functions.visit_json.handler",
    grants=COUNTING_GRANTS,
    # It renders no template, but its error handling and the counting rule live in functions.web, which imports
    # Jinja2.
    uses_templates=True,
    window_grants=(VISITOR_GRANT,),
)
COUNT_JSON = FunctionSpec(
    name=links.COUNT_JSON,
    handler="functions.count_json.handler",
    grants=(Grant("dynamodb:GetItem", TAG_KEYS),),
    uses_templates=True,  # as VISIT_JSON
)
STREAM_PROCESSOR = FunctionSpec(
    name="stream",
    handler="functions.stream_processor.handler",
    grants=(
        # One TransactWriteItems per batch: Update of the total, conditional Put of the batch's marker.
        Grant("dynamodb:UpdateItem", TOTAL_KEY),
        Grant("dynamodb:PutItem", MARKER_KEYS),
        # Reads a marker back when the transaction is cancelled because it already exists.
        Grant("dynamodb:GetItem", MARKER_KEYS),
    ),
    uses_templates=False,
)

ROUTES: tuple[Route, ...] = (
    Route("/", HOME),
    Route("/tags/{tag}", VISIT),
    Route("/counts/{tag}", COUNT),
    # A path part may hold only [A-Za-z0-9._-] or be one whole {parameter} (API Gateway): hence
    # ``{tag}/badge.svg``, not ``{tag}.svg``.
    Route("/tags/{tag}/badge.svg", VISIT_BADGE),
    Route("/counts/{tag}/badge.svg", COUNT_BADGE),
    Route("/counts/{tag}/badge.json", COUNT_BADGE_JSON),
    # Plain JSON for a page's own script (CORS ``*``): one counts like the visit page, one only reads.
    Route("/tags/{tag}/count.json", VISIT_JSON),
    Route("/counts/{tag}/count.json", COUNT_JSON),
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
TABLE_TAG = ("tag-counter:table", "counts")
"""The resource tag (key, value) the program puts on its table: the operator command acts only on a table with it."""

STREAM_FILTER_PATTERNS: tuple[dict[str, Any], ...] = (
    # Only tag items reach the processor: not the total it writes, not its markers.
    # DynamoDB mappings filter on the ``dynamodb`` key only.
    {"dynamodb": {"Keys": {PARTITION_KEY: {"S": [{"prefix": TAG_PREFIX}]}}}},
)

LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
"""The only retention periods CloudWatch Logs accepts (``PutRetentionPolicy``), in days."""

STREAM_RETENTION_MS = 24 * 3600 * 1000
"""How long DynamoDB Streams keeps a record: no iterator age can be larger."""
MALFORMED_RECORD_MESSAGE = "malformed stream record skipped"
"""The log line of a stream record the processor could not read; a metric filter counts them (``components.alarms``),
and ``tests/stack`` checks that the processor logs exactly this."""

MAX_ROUTE_TIMEOUT_SECONDS = 29
"""API Gateway's REST integration timeout: a route function allowed longer would only be cut off."""
MIN_PROCESSOR_TIMEOUT_SECONDS = 10
"""Twice the stream processor's 5 s write safety margin (``functions.stream_processor.SAFETY_MARGIN_MS``)."""

GATEWAY_HOME_HREF = "/$context.stage/"
"""The home link of the pages API Gateway itself serves (404, its 5xx, throttling) on the default endpoint. They
cannot know the depth of the path they answer, so the link is absolute: the stage's root
(``https://<id>.execute-api.<region>.amazonaws.com/<stage>/``), API Gateway substituting ``$context.stage`` when it
answers. With a custom domain they link to the site's URL there instead (``gateway_home_href``)."""

EMAIL_PATTERN = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;.]+$")
DOMAIN_PATTERN = re.compile(
    r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$"
)
"""A lower-case DNS name of two labels or more, its last one (the top-level domain) starting with a letter."""
CERTIFICATE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:acm:([a-z0-9-]+):[0-9]{12}:certificate/[A-Za-z0-9-]+$")
HOSTED_ZONE_PATTERN = re.compile(r"^Z[A-Z0-9]{1,31}$")
BASE_PATH_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
TOPIC_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):[0-9]{12}:[A-Za-z0-9_-]{1,256}$")

EXAMPLE_TAGS = ("hello", "serverless", "café")


@dataclass(frozen=True)
class Settings:
    """Per-stack settings. Each field is the stack config key ``tag-counter:<camelCaseName>``."""

    stage_name: str = "dev"
    """API Gateway stage, and the first path segment of every URL."""
    log_retention_days: int = 14
    """Days CloudWatch keeps each function's logs: one of ``LOG_RETENTION_DAYS``."""
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
    count_bots: bool = False
    """Count self-identified bots too (``functions.bots``); off: they see the count without adding to it."""
    unique_visitor_window_minutes: int = 0
    """Within this many minutes one visitor counts once per tag (``functions.visitors``); 0: every load counts."""
    domain_name: str = ""
    """The site's own address (``counter.example.com``): an API Gateway custom domain (Regional, TLS 1.2) whose
    root, or ``basePath``, maps to the stage. Needs ``certificateArn`` or ``hostedZoneId``."""
    certificate_arn: str = ""
    """An ACM certificate for ``domainName`` the owner already has, in the stack's region (DNS is then the owner's)."""
    hosted_zone_id: str = ""
    """A Route 53 hosted zone holding ``domainName``: the program requests the certificate, validates it by DNS in
    this zone and creates the domain's alias record there."""
    base_path: str = ""
    """The path under ``domainName`` the site lives at (``counter`` -> ``https://<domain>/counter/``); empty: the
    domain's root."""
    disable_execute_api_endpoint: bool = False
    """Turn the default ``execute-api`` address off once every badge points at ``domainName``."""
    alarm_email: tuple[str, ...] = ()
    """Addresses the alarms notify (one, or several separated by commas): an SNS topic with one email subscription
    each, which each address must confirm."""
    alarm_topic_arn: str = ""
    """An existing SNS topic (in the stack's region) the alarms notify instead of ``alarmEmail``."""

    @property
    def site_url(self) -> str | None:
        """The site's URL on ``domainName`` (``https://<domain>/[<basePath>/]``), ``None`` without a domain."""
        if not self.domain_name:
            return None
        return f"https://{self.domain_name}/" + (f"{self.base_path}/" if self.base_path else "")

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
        if len(self.stage_name) > 128:
            raise ValueError("stageName must be at most 128 characters (API Gateway's limit)")
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
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"logRetentionDays must be one of CloudWatch Logs' retention periods "
                f"({', '.join(map(str, LOG_RETENTION_DAYS))}), got {self.log_retention_days}"
            )
        if self.throttle_rate_limit <= 0 or self.throttle_burst_limit < 1:
            raise ValueError("throttleRateLimit must be above 0 and throttleBurstLimit at least 1")
        if not 1 <= self.iterator_age_alarm_ms < STREAM_RETENTION_MS:
            raise ValueError(
                f"iteratorAgeAlarmMs must be at least 1 and below {STREAM_RETENTION_MS} (the stream's 24 h): a "
                "record is gone before its age reaches that, and a stalled processor reads as exactly that age"
            )
        if not 1 <= self.history_days <= MAX_HISTORY_DAYS:
            raise ValueError(f"historyDays must be between 1 and {MAX_HISTORY_DAYS}: each day is kept on every tag item")
        if not 0 <= self.unique_visitor_window_minutes <= MAX_WINDOW_MINUTES:
            raise ValueError(
                f"uniqueVisitorWindowMinutes must be between 0 (off) and {MAX_WINDOW_MINUTES} (a week)"
            )
        self._validate_domain()
        self._validate_notifications()

    def _validate_domain(self) -> None:
        if not self.domain_name:
            for key, value in (
                ("certificateArn", self.certificate_arn),
                ("hostedZoneId", self.hosted_zone_id),
                ("basePath", self.base_path),
                ("disableExecuteApiEndpoint", self.disable_execute_api_endpoint),
            ):
                if value:
                    raise ValueError(f"{key} is set but domainName is not: set domainName too, or unset {key}")
            return
        if not DOMAIN_PATTERN.match(self.domain_name):
            raise ValueError(
                f"domainName must be a DNS name in lower case, such as counter.example.com (no scheme, path or "
                f"wildcard), got {self.domain_name!r}"
            )
        if self.certificate_arn and self.hosted_zone_id:
            raise ValueError(
                "certificateArn and hostedZoneId exclude each other: certificateArn uses a certificate you have (you "
                "point DNS at the domain), hostedZoneId has the program request one and create the DNS records"
            )
        if not self.certificate_arn and not self.hosted_zone_id:
            raise ValueError(
                "domainName needs certificateArn (an ACM certificate for it in the stack's region) or hostedZoneId "
                "(the Route 53 zone holding it, where the program validates a new certificate)"
            )
        if self.certificate_arn and not CERTIFICATE_ARN_PATTERN.match(self.certificate_arn):
            raise ValueError(
                "certificateArn must be an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>), "
                f"got {self.certificate_arn!r}"
            )
        if self.hosted_zone_id and not HOSTED_ZONE_PATTERN.match(self.hosted_zone_id):
            raise ValueError(
                f"hostedZoneId must be a Route 53 zone id such as Z0123456789ABCDEFGHIJ, got {self.hosted_zone_id!r}"
            )
        if self.base_path and not BASE_PATH_PATTERN.match(self.base_path):
            raise ValueError(
                "basePath must be one path segment of letters, digits, '.', '_' and '-' (no '/'), or empty for the "
                f"domain's root, got {self.base_path!r}"
            )

    def _validate_notifications(self) -> None:
        if self.alarm_email and self.alarm_topic_arn:
            raise ValueError(
                "alarmEmail and alarmTopicArn exclude each other: alarmEmail creates a topic for those addresses, "
                "alarmTopicArn uses a topic you have (subscribe the addresses to it instead)"
            )
        for address in self.alarm_email:
            if not EMAIL_PATTERN.match(address):
                raise ValueError(f"alarmEmail must hold email addresses separated by commas, got {address!r}")
        if len(set(self.alarm_email)) != len(self.alarm_email):
            raise ValueError("alarmEmail lists an address twice")
        if self.alarm_topic_arn and not TOPIC_ARN_PATTERN.match(self.alarm_topic_arn):
            raise ValueError(
                "alarmTopicArn must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>), "
                f"got {self.alarm_topic_arn!r}"
            )

    def check_region(self, region: str) -> None:
        """Raise ``ValueError`` naming the key when a certificate or topic is in another region than the stack's:
        a Regional custom domain needs a certificate of its own region, and CloudWatch alarms notify only topics in
        theirs."""
        for key, value, pattern in (
            ("certificateArn", self.certificate_arn, CERTIFICATE_ARN_PATTERN),
            ("alarmTopicArn", self.alarm_topic_arn, TOPIC_ARN_PATTERN),
        ):
            found = pattern.match(value) if value else None
            if found and found.group(1) != region:
                raise ValueError(
                    f"{key} is in {found.group(1)}, but the stack deploys to {region}: use one in {region}"
                )


def gateway_home_href(settings: Settings) -> str:
    """The home link of the gateway's own pages: the site on its domain when it has one (the same link from either
    address), else the stage's root on the default endpoint (``GATEWAY_HOME_HREF``)."""
    return settings.site_url or GATEWAY_HOME_HREF


def route_paths(routes: Sequence[Route] | None = None) -> dict[str, str]:
    """Route name -> path template, for the pages' links (``functions.links``); ``ROUTES`` by default.

    A function serving several paths is linked to at the first.
    """
    table: dict[str, str] = {}
    for route in ROUTES if routes is None else routes:
        if route.method == "GET":
            table.setdefault(route.name, route.path)
    return table


def function_environment(settings: Settings, routes: Sequence[Route] | None = None) -> dict[str, str]:
    """The environment variables every function gets besides ``TABLE_NAME``: the settings its code reads,
    and the route table its links are built from (``routes``, ``ROUTES`` by default).

    The Pulumi program sets exactly these on each deployed function; the local site, the tests and the
    benchmarks set the same, so a function never sees a setting another way.
    """
    return {
        HISTORY_DAYS_ENV: str(settings.history_days),
        COUNT_BOTS_ENV: "true" if settings.count_bots else "false",
        WINDOW_MINUTES_ENV: str(settings.unique_visitor_window_minutes),
        links.ROUTE_PATHS_ENV: json.dumps(route_paths(routes), separators=(",", ":")),
        # The count page says how soon the site-wide total includes a visit: the mapping's window, and then some.
        STREAM_BATCHING_WINDOW_ENV: str(settings.stream_batching_window_seconds),
        # With a domain, the snippets a page offers point there even when it was reached at the execute-api address.
        **({links.SITE_URL_ENV: settings.site_url} if settings.site_url else {}),
    }


def visitor_key_environment(settings: Settings, visitor_key: Any) -> dict[str, Any]:
    """``VISITOR_KEY`` for a function that counts visits, when the stack has a unique-visitor window (else nothing).

    ``visitor_key`` is the per-stack secret: a Pulumi secret output in the program (never plain config, never a
    stack output), a random per-run value in the local site. Only functions with ``counts_visits`` get it.
    """
    if not settings.unique_visitor_window_minutes:
        return {}
    return {VISITOR_KEY_ENV: visitor_key}


def _parse(key: str, raw: Any, kind: type) -> Any:
    if kind is tuple:
        return _parse_list(raw)
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


def _parse_list(raw: Any) -> tuple[str, ...]:
    """A list setting: a YAML or JSON list (``pulumi config set --path 'key[0]'``), or text separated by commas."""
    if isinstance(raw, str) and raw.strip().startswith("["):
        try:
            raw = json.loads(raw)
        except ValueError:
            pass
    items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    return tuple(text for text in (str(item).strip() for item in items) if text)


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
        "Tags": [{"Key": TABLE_TAG[0], "Value": TABLE_TAG[1]}],
    }


def create_table(client: Any, table_name: str) -> str:
    """Create the table (with its TTL attribute) through a boto3 DynamoDB client; return its stream ARN."""
    description = client.create_table(**create_table_request(table_name))["TableDescription"]
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE_NAME},
    )
    return description["LatestStreamArn"]
