"""Run the Pulumi program under Pulumi's mocks and record the whole resource graph.

No Pulumi CLI, no AWS: ``RecordingMocks`` plays the provider (it echoes inputs and adds the outputs AWS
would compute, such as ARNs), and ``RecordingMonitor`` keeps every registration the program makes, with
its parent, its dependencies and its resource options. Mocks are installed before ``__main__.py`` runs.

The Jinja2 layer is the one thing not built for real here: ``build_layer`` would call pip against PyPI.
``fake_build_layer`` zips the Jinja2, MarkupSafe and crawlerdetect this virtualenv has installed instead (right
packages, wrong platform); the real, networked build has its own test in ``test_packaging.py``. The code archive is
the real one, its bytecode compiled by the pinned compiler (cached under ``build/code-cache/`` after the first run).
"""

from __future__ import annotations

import hashlib
import json
import logging
import runpy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import crawlerdetect
import jinja2
import markupsafe
import pulumi
import pytest
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

import definition
from components import packaging

ACCOUNT = "123456789012"
REGION = "us-east-1"
PROJECT = "tag-counter"
MOCK_VISITOR_KEY = "mock-visitor-key-0123456789abcdef0123456789abcdef"
"""What the mocked ``pulumi_random.RandomPassword`` returns: tests look for it where it must never be."""


def physical_name(logical: str, inputs: dict[str, Any], salt: str = "") -> str:
    """What Pulumi's auto-naming would produce: the logical name plus a suffix (deterministic here; ``salt``
    stands for the new random suffix of a replaced resource)."""
    return inputs.get("name") or f"{logical}-{hashlib.sha1((logical + salt).encode()).hexdigest()[:7]}"


def computed_outputs(typ: str, name: str, inputs: dict[str, Any], salt: str = "") -> dict[str, Any]:
    """The outputs AWS computes for the resource types the program uses (wire names, camelCase)."""
    physical = physical_name(name, inputs, salt if typ == "aws:lambda/function:Function" else "")
    arn_prefix = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:"
    if typ == "aws:dynamodb/table:Table":
        arn = arn_prefix.format("dynamodb") + f"table/{physical}"
        return {"name": physical, "arn": arn, "streamArn": f"{arn}/stream/2024-01-01T00:00:00.000"}
    if typ == "aws:iam/role:Role":
        return {"name": physical, "arn": f"arn:aws:iam::{ACCOUNT}:role/{physical}"}
    if typ == "aws:iam/rolePolicy:RolePolicy":
        return {"name": physical}
    if typ == "aws:cloudwatch/logGroup:LogGroup":
        return {"name": physical, "arn": arn_prefix.format("logs") + f"log-group:{physical}"}
    if typ == "aws:lambda/function:Function":
        arn = arn_prefix.format("lambda") + f"function:{physical}"
        invoke = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{arn}/invocations"
        return {"name": physical, "arn": arn, "invokeArn": invoke}
    if typ == "aws:lambda/layerVersion:LayerVersion":
        return {"arn": arn_prefix.format("lambda") + f"layer:{inputs['layerName']}:1"}
    if typ == "aws:sqs/queue:Queue":
        return {
            "name": physical,
            "arn": arn_prefix.format("sqs") + physical,
            "url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical}",
        }
    if typ == "aws:apigateway/restApi:RestApi":
        return {
            "name": physical,
            "rootResourceId": f"{name}-root-id",
            "executionArn": arn_prefix.format("execute-api") + f"{name}-id",
        }
    if typ == "aws:apigateway/stage:Stage":
        return {"invokeUrl": f"https://{inputs['restApi']}.execute-api.{REGION}.amazonaws.com/{inputs['stageName']}"}
    if typ == "aws:lambda/eventSourceMapping:EventSourceMapping":
        return {"uuid": f"{name}-uuid"}
    if typ == "random:index/randomPassword:RandomPassword":
        # As the engine returns it: RandomPassword's result is a secret (additional_secret_outputs).
        return {"result": {rpc._special_sig_key: rpc._special_secret_sig, "value": MOCK_VISITOR_KEY}}
    if typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
        return {"name": physical, "arn": arn_prefix.format("cloudwatch") + f"alarm:{physical}"}
    if typ == "aws:cloudwatch/dashboard:Dashboard":
        return {"dashboardArn": f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{inputs['dashboardName']}"}
    if typ == "aws:sns/topic:Topic":
        return {"name": physical, "arn": arn_prefix.format("sns") + physical}
    if typ == "aws:sns/topicSubscription:TopicSubscription":
        return {"arn": f"{inputs.get('topic')}:{name}", "pendingConfirmation": True}
    if typ == "aws:acm/certificate:Certificate":
        return {
            "arn": arn_prefix.format("acm") + f"certificate/{name}-id",
            "domainValidationOptions": [
                {
                    "domainName": inputs["domainName"],
                    "resourceRecordName": f"_0123abcd.{inputs['domainName']}.",
                    "resourceRecordType": "CNAME",
                    "resourceRecordValue": "_4567efab.acm-validations.aws.",
                }
            ],
        }
    if typ == "aws:acm/certificateValidation:CertificateValidation":
        return {}
    if typ == "aws:route53/record:Record":
        record_name = inputs.get("name")  # unknown in a preview, for the certificate's validation record
        return {"fqdn": record_name.rstrip(".") if isinstance(record_name, str) else record_name}
    if typ == "aws:apigateway/domainName:DomainName":
        return {
            "arn": f"arn:aws:apigateway:{REGION}::/domainnames/{inputs['domainName']}",
            "regionalDomainName": f"d-0123456789.execute-api.{REGION}.amazonaws.com",
            "regionalZoneId": "Z1UJRXOUMOOFQ8",
        }
    return {}


class RecordingMocks(pulumi.runtime.Mocks):
    """A provider that accepts every resource, echoing its inputs plus the outputs AWS would add.

    In a preview, as with the real engine, what AWS computes (ARNs, names, URLs) is not known yet.
    """

    def __init__(self, preview: bool = False, function_salt: str = "") -> None:
        self.preview = preview
        self.function_salt = function_salt
        """Changes the functions' physical names (and so their invoke ARNs), as replacing them would."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if not args.custom:
            return "", {}
        computed = computed_outputs(args.typ, args.name, args.inputs, self.function_salt)
        if self.preview:
            computed = {key: rpc.UNKNOWN for key in computed if key not in args.inputs}
        return f"{args.name}-id", {**args.inputs, **computed}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getRegion:getRegion":
            return {"region": REGION, "name": REGION, "id": REGION, "endpoint": f"ec2.{REGION}.amazonaws.com"}, []
        raise AssertionError(f"the program made an unexpected provider call: {args.token}")


@dataclass
class Registration:
    """One resource the program registered, as the engine saw it."""

    urn: str
    id: str
    """The physical id the provider returned ("" for components)."""
    type: str
    name: str
    custom: bool
    parent: str
    dependencies: list[str]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    replace_on_changes: list[str]
    state: dict[str, Any]
    """Inputs plus computed outputs (wire names, camelCase)."""
    additional_secret_outputs: list[str] = field(default_factory=list)
    secret_inputs: list[str] = field(default_factory=list)
    """Top-level inputs that hold a secret somewhere (the engine encrypts them in the state)."""

    def __getitem__(self, key: str) -> Any:
        return self.state[key]


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock engine, keeping every registration request with its options."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):  # type: ignore[no-untyped-def] # noqa: N802 (gRPC method name)
        """Register as the mock engine does, then keep the request's options and the resulting state."""
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        self.registrations.append(
            Registration(
                urn=response.urn,
                id=response.id,
                type=request.type,
                name=request.name,
                custom=request.custom,
                parent=request.parent,
                dependencies=list(request.dependencies),
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                delete_before_replace=bool(request.deleteBeforeReplace),
                replace_on_changes=list(request.replaceOnChanges),
                state=dict(self.resources[response.urn].state) if response.urn in self.resources else {},
                additional_secret_outputs=list(request.additionalSecretOutputs),
                secret_inputs=_secret_inputs(request.object),
            )
        )
        return response


def reveal(value: Any) -> Any:
    """A state value with Pulumi's secret wrappers removed (the mock state keeps them as the wire carries them)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return reveal(value.get("value"))
        return {key: reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal(item) for item in value]
    return value


def _secret_inputs(inputs: Any) -> list[str]:
    """The names of the serialized inputs whose value carries Pulumi's secret signature anywhere inside."""
    from google.protobuf import json_format

    found = []
    for name, value in json_format.MessageToDict(inputs).items():
        if rpc._special_secret_sig in json.dumps(value):
            found.append(name)
    return found


@dataclass
class ProgramRun:
    """The graph and the stack outputs of one run of ``__main__.py``."""

    registrations: list[Registration]
    outputs: dict[str, Any]
    settings: definition.Settings
    checks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What the program told the engine at warning level (``pulumi.log.warn``: shown in the preview)."""

    def of_type(self, typ: str) -> list[Registration]:
        """Every resource of a Pulumi type token."""
        return [r for r in self.registrations if r.type == typ]

    def one(self, typ: str, predicate: Callable[[Registration], bool] = lambda r: True) -> Registration:
        """The single resource of ``typ`` matching ``predicate`` (fails on none or several)."""
        found = [r for r in self.of_type(typ) if predicate(r)]
        assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        """The resource registered under ``urn``."""
        return next(r for r in self.registrations if r.urn == urn)


FUNCTION = "aws:lambda/function:Function"
STAGE = "aws:apigateway/stage:Stage"


def function_for(program: ProgramRun, spec: definition.FunctionSpec) -> Registration:
    """The deployed function running ``spec``'s handler."""
    return program.one(FUNCTION, lambda r: r["handler"] == spec.handler)


def fake_build_layer(cache_dir: Path = packaging.BUILD_DIR / "layer-test") -> Path:
    """A layer zip from this virtualenv's layer packages, for mock runs only (see the module docstring)."""
    entries: list[tuple[str, Path]] = []
    for package in (jinja2, markupsafe, crawlerdetect):
        package_dir = Path(package.__file__).parent
        for path in package_dir.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                entries.append((f"python/{package_dir.name}/{path.relative_to(package_dir).as_posix()}", path))
    return packaging.write_deterministic_zip(entries, Path(cache_dir) / "jinja2-layer-local.zip")


def stack_config_strings(stack: str = "dev") -> dict[str, str]:
    """``Pulumi.<stack>.yaml``'s config as the engine hands it to a program: every value a string."""
    values = {}
    for key, value in definition.stack_config(stack).items():
        values[key] = json.dumps(value) if isinstance(value, bool) else str(value)
    return values


def run_program(
    config: dict[str, str] | None = None,
    stack: str = "dev",
    routes: tuple[definition.Route, ...] | None = None,
    preview: bool = False,
    function_salt: str = "",
    patch: Callable[[pytest.MonkeyPatch], None] | None = None,
) -> ProgramRun:
    """Run ``__main__.py`` once under fresh mocks and return everything it registered and exported.

    ``routes`` replaces ``definition.ROUTES``; ``function_salt`` gives the functions new physical names (a
    replacement); ``patch`` changes anything else for this run only.
    """
    config = stack_config_strings("dev") if config is None else config
    mocks = RecordingMocks(preview, function_salt)
    monitor = RecordingMonitor(mocks)
    # A fresh root stack per run, so one run's exports never leak into the next.
    pulumi_settings.ROOT.set(None)
    engine_log = _EngineLog()
    logger = logging.getLogger(f"{__name__}.engine")
    logger.propagate = False
    logger.handlers = [engine_log]
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor, logger=logger)
    pulumi.runtime.set_all_config(config)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(packaging, "build_layer", fake_build_layer)
        if routes is not None:
            monkeypatch.setattr(definition, "ROUTES", routes)
        if patch is not None:
            patch(monkeypatch)
        program_path = str(definition.ROOT / "__main__.py")
        _sync_await(run_pulumi_func(lambda: runpy.run_path(program_path, run_name="__pulumi__")))
        root = pulumi_settings.get_root_resource()
        assert root is not None
        outputs = {name: _sync_await(pulumi.Output.from_input(value).future()) for name, value in root.outputs.items()}
    settings = definition.Settings.from_config(lambda key: config.get(f"{definition.CONFIG_NAMESPACE}:{key}"))
    warnings = [record.getMessage() for record in engine_log.records if record.levelno == logging.WARNING]
    return ProgramRun(monitor.registrations, outputs, settings, warnings=warnings)


class _EngineLog(logging.Handler):
    """Keeps what the program logs to the (mock) engine."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def pytest_configure(config: pytest.Config) -> None:
    """Silence a deprecation pulumi_aws itself raises on import (nothing here uses MicrovmsImage)."""
    config.addinivalue_line(
        "filterwarnings", "ignore:aws.lambda/microvmsimage.MicrovmsImage has been deprecated:DeprecationWarning"
    )


@pytest.fixture(scope="session")
def program() -> Iterator[ProgramRun]:
    """The dev stack's program, run once for the whole session."""
    yield run_program()
