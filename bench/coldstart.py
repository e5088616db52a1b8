"""Cold start of each function, as Lambda would show it, from fresh interpreters with DynamoDB answered by moto.

A run is a new ``python`` process that imports a handler (Lambda's init), serves its first request, then
``WARM_REQUESTS`` more (warm requests of the same container); each phase is timed in CPU time, which is what
Lambda's CPU share scales. Its floor is a new process that does only what a function on the AWS SDK must:
import boto3 (and Jinja2 for a page function), create a DynamoDB client, compile the same templates (the floor's
init), then make the same DynamoDB call (its requests). The functions' own client is on the standard library
(``functions.dynamodb``), so the floor is also the botocore figure it is compared with (``BOTOCORE_GOAL``).
Both reach the same moto table over HTTP on 127.0.0.1
(``bench.loopback``), so neither imports moto.

The model (``ColdStart.modelled_ms``): Lambda runs init at full speed whatever the memory, and a request at the
memory's CPU share (1,769 MB = one vCPU), so a cold start takes ``init + first request / share`` and a warm
request ``warm request / share``. Goals: the first request at most ``FIRST_GOAL`` x a warm one, init at most
``INIT_GOAL`` x the floor's, and (route functions) the modelled cold start at most ``COLD_GOAL`` x the figure
measured before init moved to module scope (``BASELINE_MODELLED_MS``).

The handler runs from the code archive as Lambda unpacks it, with the layer's packages (LAYER_PACKAGES) beside it as the layer
does. Lambda's ``/var/task`` and ``/opt`` are read-only, so a module without shipped bytecode is compiled at every
cold start; a pass says which bytecode it ships (``NO_BYTECODE``, ``LAYER_BYTECODE``, ``ALL_BYTECODE``), compiled
by this interpreter for itself, standing in for the ``.pyc`` files ``components.packaging`` compiles for Python 3.13.
``shipped_bytecode()`` is what the packaging ships from this machine. (The layer's MarkupSafe is built for arm64;
the local copy is this machine's build of the same pinned version.) Runs are interleaved, handler and floor side
by side (alternating which goes first); a ratio is that of the two medians printed beside it.
"""

from __future__ import annotations

import compileall
import copy
import importlib
import json
import math
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore import xform_name

import definition
from bench.calls import functions_on_table, watch_dynamodb
from bench.cost import ColdFigures
from bench.loopback import LoopbackDynamoDB
from bench.stats import median
from functions.keys import MARKER_PREFIX, PARTITION_KEY
from localsite.aws import DUMMY_ENVIRONMENT, local_aws
from bench.honest import PERSON
from localsite.events import LambdaContext, rest_proxy_event, stream_event

CHILD_SOURCE = (Path(__file__).parent / "coldchild.py").read_text(encoding="utf-8")
FIRST_GOAL = 2.0
"""The first request after init: at most this many times a warm request's CPU time, every function."""
INIT_GOAL = 1.1
"""Init: at most this many times the floor's init CPU time (nothing wasted beyond the unavoidable)."""
COLD_GOAL = 0.5
"""Route functions: the modelled cold start at most this fraction of ``BASELINE_MODELLED_MS``."""
BOTOCORE_GOAL = 0.5
"""The functions' client is on the standard library (``functions.dynamodb``) because it brings every route
function's modelled cold start at its memory, and the visit function's init, to at most this fraction of the
botocore floor's in the same run (the rule it was adopted on: BENCHMARKS.md, Cold start)."""
MODEL_MEMORIES = (128, 256, 512, 1024)
"""Memory sizes (MB) the cold start is modelled at."""
WARM_REQUESTS = 5
"""Requests after the first in each run; their median CPU time is the run's warm request."""
LAYER_PACKAGES = ("jinja2", "markupsafe", "crawlerdetect")
EXAMPLE_TAG = "cold-start"
STREAM_BATCH_RECORDS = 10
"""Records in each cold stream batch: a cold start mostly meets a short backlog."""

BASELINE_MODELLED_MS: Mapping[str, Mapping[int, float]] = {
    "home": {128: 864, 256: 495, 512: 311, 1024: 219},
    "visit": {128: 895, 256: 519, 512: 332, 1024: 238},
    "count": {128: 868, 256: 495, 512: 308, 1024: 214},
    "stream": {128: 802, 256: 458, 512: 286, 1024: 200},
}
"""The modelled cold start (ms) of each function per memory size before init moved to module scope: the
client built and the templates compiled in the first request. Measured by this benchmark on this machine."""
BASELINE_SOURCE = (
    "commit 34da711 (client and templates built in the first request), layer bytecode, 10 runs, "
    "AMD EPYC 2 cores, 2026-12-01"
)
"""Where ``BASELINE_MODELLED_MS`` comes from."""

NO_BYTECODE = "none"
LAYER_BYTECODE = "layer"
ALL_BYTECODE = "all"
BYTECODE_MODES = {
    NO_BYTECODE: "no bytecode: every cold start compiles the Jinja2 and function sources",
    LAYER_BYTECODE: "the layer's bytecode compiled ahead, the function sources compiled at each cold start",
    ALL_BYTECODE: "bytecode compiled ahead for the layer and the code archive",
}
"""Which modules of a cold-start pass come with bytecode, and what that means."""


def shipped_bytecode() -> tuple[str, str]:
    """The bytecode ``components.packaging`` ships (a ``BYTECODE_MODES`` key), and what compiles it."""
    try:
        packaging = importlib.import_module("components.packaging")
    except ImportError as error:
        return NO_BYTECODE, f"components.packaging is not available ({error})"
    # Every machine ships the same: bytecode for the layer and the code archive, from one pinned compiler.
    return ALL_BYTECODE, f"compiled by {packaging.COMPILER_DESCRIPTION}"


@dataclass
class ColdRun:
    """One fresh interpreter's figures, in milliseconds (``*_cpu_ms``: CPU time, the rest wall time)."""

    init_ms: float
    first_ms: float
    total_ms: float
    process_ms: float
    cpu_ms: float = 0.0
    """CPU time of init and first request: steadier than wall time on a busy machine."""
    init_cpu_ms: float = 0.0
    """CPU time from the first line to the handler imported (Lambda's init, interpreter start-up left out)."""
    first_cpu_ms: float = 0.0
    """CPU time of the first request."""
    warm_cpu_ms: float = math.nan
    """Median CPU time of the requests after the first, in the same process (warm requests)."""
    first_full_collections: int = 0
    """Full (oldest-generation) garbage collections the first request ran."""


@dataclass
class ColdStart:
    """Cold starts of one function and of its floor, and the latency Lambda would show at each memory size."""

    function: str
    operation: str
    route: bool = True
    """A route function (behind API Gateway), as opposed to the stream processor."""
    templates: tuple[str, ...] = ()
    """The templates its module loads at init; the floor compiles the same ones."""
    handler_runs: list[ColdRun] = field(default_factory=list)
    floor_runs: list[ColdRun] = field(default_factory=list)
    extra_imports: list[tuple[str, float]] | None = None
    """Packages the handler imports and the floor does not, with their own import ms (one run; None: not measured,
    as in a quick run). The function's own modules include the work they do at import (the client, the templates)."""
    avoided_imports: list[tuple[str, float]] | None = None
    """Packages the floor imports and the handler does not (boto3 and botocore: the functions' client is
    ``functions.dynamodb``)."""
    baseline_ms: Mapping[int, float] = field(default_factory=dict)
    """Modelled cold start per memory size before init moved to module scope (``BASELINE_MODELLED_MS``)."""

    def median_of(self, runs: str, figure: str) -> float:
        """The median of one figure (``total_ms``...) over ``handler_runs`` or ``floor_runs``."""
        return median([getattr(run, figure) for run in getattr(self, runs)])

    @property
    def init_cpu_ms(self) -> float:
        """Median init CPU time of the handler."""
        return self.median_of("handler_runs", "init_cpu_ms")

    @property
    def first_cpu_ms(self) -> float:
        """Median first-request CPU time of the handler."""
        return self.median_of("handler_runs", "first_cpu_ms")

    @property
    def warm_cpu_ms(self) -> float:
        """Median warm-request CPU time of the handler (each run's median, then the median over runs)."""
        return self.median_of("handler_runs", "warm_cpu_ms")

    @property
    def floor_init_cpu_ms(self) -> float:
        """Median init CPU time of the floor: boto3 (and Jinja2) imported, the client made, templates compiled."""
        return self.median_of("floor_runs", "init_cpu_ms")

    @property
    def init_ratio(self) -> float:
        """Handler init over the floor's init: the ratio of the two medians (CPU time)."""
        return self.init_cpu_ms / self.floor_init_cpu_ms if self.floor_init_cpu_ms > 0 else math.nan

    @property
    def first_ratio(self) -> float:
        """First request over a warm request: the ratio of the two medians (CPU time)."""
        return self.first_cpu_ms / self.warm_cpu_ms if self.warm_cpu_ms > 0 else math.nan

    @property
    def figures(self) -> ColdFigures:
        """The medians the latency and cost models use."""
        return ColdFigures(self.init_cpu_ms, self.first_cpu_ms, self.warm_cpu_ms)

    @property
    def floor_figures(self) -> ColdFigures:
        """The medians of the floor's runs: a bare botocore client making the same call."""
        return ColdFigures(*(self.median_of("floor_runs", figure)
                             for figure in ("init_cpu_ms", "first_cpu_ms", "warm_cpu_ms")))

    def floor_cold_ratio(self, memory_mb: int) -> float:
        """The handler's modelled cold start over the botocore floor's, at ``memory_mb``."""
        return self.modelled_ms(memory_mb) / self.floor_figures.cold_ms(memory_mb)

    def modelled_ms(self, memory_mb: int) -> float:
        """The cold start Lambda would show at ``memory_mb``: init at full speed, the first request at the
        memory's CPU share (``bench.cost.cpu_share``)."""
        return self.figures.cold_ms(memory_mb)

    def warm_modelled_ms(self, memory_mb: int) -> float:
        """A warm request's CPU time at the memory's CPU share."""
        return self.figures.warm_at(memory_mb)

    def cold_goal_ms(self, memory_mb: int) -> float | None:
        """The modelled cold-start goal at ``memory_mb`` (route functions only): ``COLD_GOAL`` x the baseline."""
        baseline = self.baseline_ms.get(memory_mb)
        return None if not self.route or baseline is None else COLD_GOAL * baseline

    @property
    def first_met(self) -> bool:
        """First request at most ``FIRST_GOAL`` x a warm request (CPU time)."""
        return bool(self.first_ratio <= FIRST_GOAL)

    @property
    def init_met(self) -> bool:
        """Init at most ``INIT_GOAL`` x the floor's init (CPU time)."""
        return bool(self.init_ratio <= INIT_GOAL)

    def cold_met(self, memory_mb: int) -> bool | None:
        """Whether the modelled cold start at ``memory_mb`` meets its goal (``None``: no goal)."""
        goal = self.cold_goal_ms(memory_mb)
        return None if goal is None else self.modelled_ms(memory_mb) <= goal


class StreamFeed:
    """Real stream batches: visits written to moto, read back from its stream, filtered as the mapping does."""

    def __init__(self, client: Any, table_name: str, stream_arn: str) -> None:
        self.client = client
        self.table_name = table_name
        self.stream_arn = stream_arn
        self.streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        shard = self.streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
        self._iterator = self.streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        self._pending: list[dict[str, Any]] = []
        self._visits = 0

    def prime(self, tags: int = 20) -> None:
        """Create the feed's tags and drop their records, so later batches hold only visits that count."""
        self.records(2 * tags, tags)
        self._read_stream()
        self._pending.clear()

    def records(self, count: int, tags: int = 20) -> list[dict[str, Any]]:
        """``count`` tag records, in stream order, from new visits spread over ``tags`` tags."""
        while len(self._pending) < count:
            for _ in range(count - len(self._pending)):
                self._visits += 1
                self.client.update_item(
                    TableName=self.table_name,
                    Key={PARTITION_KEY: {"S": f"tag#feed-{self._visits % tags}"}},
                    UpdateExpression="ADD visits :one",
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )
            self._read_stream()
        batch, self._pending = self._pending[:count], self._pending[count:]
        return batch

    def event(self, count: int) -> dict[str, Any]:
        """A stream event of ``count`` records, as the event source mapping delivers it."""
        return stream_event(self.records(count), self.stream_arn)

    def _read_stream(self) -> None:
        while True:
            answer = self.streams.get_records(ShardIterator=self._iterator, Limit=1000)
            self._iterator = answer["NextShardIterator"]
            self._pending.extend(r for r in answer["Records"] if matches_filter(r))
            if not answer["Records"]:
                return


def matches_filter(record: Mapping[str, Any]) -> bool:
    """Whether a stream record passes ``definition.STREAM_FILTER_PATTERNS`` (the subset the product uses)."""
    return any(_match(pattern, record) for pattern in definition.STREAM_FILTER_PATTERNS)


def _match(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, Mapping) and all(k in value and _match(p, value[k]) for k, p in pattern.items())
    # A list of alternatives: exact values or {"prefix": ...}.
    for rule in pattern:
        if isinstance(rule, dict) and "prefix" in rule:
            if isinstance(value, str) and value.startswith(rule["prefix"]):
                return True
        elif rule == value:
            return True
    return False


def prepare_task_root(workdir: Path, *, bytecode: str = NO_BYTECODE) -> tuple[Path, Path, str]:
    """Unpack the code archive to ``workdir/task`` and the Jinja2 layer to ``workdir/layer/python``, with the
    bytecode ``bytecode`` (a ``BYTECODE_MODES`` key) says.

    Returns ``(task root, layer python dir, how the archive was made)``.
    """
    task = workdir / "task"
    layer = workdir / "layer" / "python"
    for directory in (task, layer):
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
    try:
        packaging = importlib.import_module("components.packaging")
        archive = packaging.build_code_archive(workdir / "archive")
        how = "components.packaging.build_code_archive"
    except ImportError:
        archive = _fallback_archive(workdir / "archive")
        how = "definition.CODE_DIRECTORIES (components.packaging not available)"
    with zipfile.ZipFile(archive) as unpacked:
        # Its Python 3.13 bytecode is of no use to this interpreter: each pass compiles its own stand-in below.
        unpacked.extractall(task, members=[n for n in unpacked.namelist() if not n.endswith(".pyc")])
    for package in LAYER_PACKAGES:
        source = Path(importlib.import_module(package).__file__).parent
        shutil.copytree(source, layer / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if bytecode not in BYTECODE_MODES:
        raise ValueError(f"bytecode must be one of {sorted(BYTECODE_MODES)}, not {bytecode!r}")
    compiled = {NO_BYTECODE: (), LAYER_BYTECODE: (layer,), ALL_BYTECODE: (task, layer)}[bytecode]
    for directory in compiled:  # as components.packaging compiles: hash-based, never checked against sources
        compileall.compile_dir(
            str(directory), quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
    return task, layer, how


def _fallback_archive(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "code.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for directory in definition.CODE_DIRECTORIES:
            for file in sorted((definition.ROOT / directory).rglob("*")):
                if file.suffix in definition.CODE_SUFFIXES and "__pycache__" not in file.parts:
                    archive.write(file, file.relative_to(definition.ROOT).as_posix())
    return path


def child_environment(endpoint: str, table_name: str, layer: Path) -> dict[str, str]:
    """The environment of a cold-start process: dummy credentials, the loopback endpoint, no config files."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        **DUMMY_ENVIRONMENT,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        **definition.function_environment(definition.Settings()),
        definition.TABLE_NAME_ENV: table_name,
        # Lambda sets it in every function's environment; the functions (and botocore) look at it.
        "AWS_LAMBDA_FUNCTION_NAME": "tag-counter-cold-start",
        "PYTHONPATH": str(layer),
        "PYTHONHASHSEED": "0",
        # Read-only disks, as in Lambda: bytecode shipped ahead is used, none is written by a run for the next.
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return env


def run_child(spec: dict[str, Any], spec_path: Path, cwd: Path, env: dict[str, str],
              importtime: bool = False) -> tuple[ColdRun, dict[str, Any], str]:
    """Run one fresh interpreter for ``spec``; returns its figures, its answer and its stderr."""
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", CHILD_SOURCE, str(spec_path)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    process_ms = (time.perf_counter() - started) * 1000
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH-RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"cold-start run of {spec.get('function')} ({spec['mode']}) failed with exit {done.returncode}:\n"
            f"{done.stderr.strip()[-3000:]}"
        )
    figures = json.loads(lines[-1].removeprefix("BENCH-RESULT "))
    run = ColdRun(
        figures["init_ms"], figures["first_ms"], figures["total_ms"], process_ms, figures["cpu_ms"],
        init_cpu_ms=figures["init_cpu_ms"], first_cpu_ms=figures["first_cpu_ms"],
        warm_cpu_ms=median(figures["warm_cpu_ms"]), first_full_collections=figures["first_full_collections"],
    )
    return run, figures, done.stderr


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s+)(\S+)")


def parse_importtime(stderr: str) -> list[tuple[str, float]]:
    """``-X importtime`` lines as ``(module, own import ms excluding its imports)``, in the order printed."""
    entries = []
    for line in stderr.splitlines():
        found = _IMPORT_LINE.match(line)
        if found:
            entries.append((found.group(4), int(found.group(1)) / 1000))
    return entries


def extra_imports(handler: list[tuple[str, float]], floor: list[tuple[str, float]],
                  top: int = 6) -> list[tuple[str, float]]:
    """Modules the handler imports and the floor does not, their own import time summed by top package."""
    floor_names = {name for name, _ in floor}
    totals: dict[str, float] = {}
    for name, own_ms in handler:
        if name not in floor_names:
            package = name.split(".")[0]
            totals[package] = totals.get(package, 0.0) + own_ms
    return sorted(totals.items(), key=lambda item: -item[1])[:top]


@dataclass
class _Subject:
    spec: definition.FunctionSpec
    event: Callable[[], dict[str, Any]]
    floor_params: Callable[[], dict[str, Any]]
    operation: str = ""
    templates: tuple[str, ...] = ()


def _fresh_markers(params: dict[str, Any]) -> dict[str, Any]:
    """The same transaction, with a marker key no earlier run used (its put is conditional on absence)."""
    fresh = copy.deepcopy(params)
    for entry in fresh.get("TransactItems", []):
        put = entry.get("Put")
        if put and put["Item"][PARTITION_KEY]["S"].startswith(MARKER_PREFIX):
            put["Item"][PARTITION_KEY]["S"] = f"{MARKER_PREFIX}floor-{uuid.uuid4().hex}"
    return fresh


def _capture(handler: Callable[..., Any], event: dict[str, Any], name: str, timeout: float) -> tuple[str, dict]:
    """Run a handler once in this process (under moto) and return its one DynamoDB call."""
    with watch_dynamodb() as log:
        handler(event, LambdaContext(name, timeout))
    if len(log.calls) != 1:
        ops = [call.operation for call in log.calls]
        raise RuntimeError(f"{name} made {len(ops)} DynamoDB calls on its first request ({ops}); expected 1")
    call = log.calls[0]
    return call.operation, call.params


def _load_handler(spec: definition.FunctionSpec) -> Callable[..., Any]:
    module_name, function_name = spec.handler.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), function_name)


def module_templates(spec: definition.FunctionSpec) -> tuple[str, ...]:
    """The templates a function's handler module loads at init (its module-level ``TEMPLATES``)."""
    module = importlib.import_module(spec.handler.rsplit(".", 1)[0])
    return tuple(getattr(module, "TEMPLATES", ()))


def measure_cold_starts(
    settings: definition.Settings,
    *,
    runs: int = 10,
    importtime: bool = True,
    bytecode: str = NO_BYTECODE,
    functions: tuple[definition.FunctionSpec, ...] = definition.FUNCTIONS,
    warm_requests: int = WARM_REQUESTS,
    progress: Callable[[str], None] = lambda message: None,
) -> tuple[list[ColdStart], str]:
    """Cold starts of ``functions`` and their floors, ``runs`` interleaved pairs each (after one warm-up pair).

    Returns the results and how the task root's code archive was made.
    """
    table_name = f"tag-counter-bench-cold-{uuid.uuid4().hex[:8]}"
    with local_aws(), tempfile.TemporaryDirectory(prefix="tag-counter-cold-") as scratch:
        workdir = Path(scratch)
        client = boto3.client("dynamodb", region_name="us-east-1")
        stream_arn = definition.create_table(client, table_name)
        with functions_on_table(table_name):
            feed = StreamFeed(client, table_name, stream_arn)
            feed.prime()
            subjects = _subjects(settings, functions, feed)
            task, layer, how = prepare_task_root(workdir, bytecode=bytecode)
            modes = ("handler", "floor")
            results = {
                s.spec.name: ColdStart(s.spec.name, s.operation, route=s.spec is not definition.STREAM_PROCESSOR,
                                       templates=s.templates, baseline_ms=BASELINE_MODELLED_MS.get(s.spec.name, {}))
                for s in subjects
            }
            with LoopbackDynamoDB() as endpoint:
                env = child_environment(endpoint.url, table_name, layer)
                env.update(definition.function_environment(settings))

                def one(subject: _Subject, mode: str, importtime_run: bool = False) -> tuple[ColdRun, str]:
                    spec_doc: dict[str, Any] = {"mode": mode, "function": subject.spec.name}
                    requests = 1 + warm_requests
                    if mode != "floor":
                        is_processor = subject.spec is definition.STREAM_PROCESSOR
                        timeout = settings.processor_timeout_seconds if is_processor else settings.route_timeout_seconds
                        memory = settings.processor_memory_mb if is_processor else settings.route_memory_mb
                        spec_doc.update(handler=subject.spec.handler, timeout_seconds=timeout, memory_mb=memory,
                                        events=[subject.event() for _ in range(requests)])
                    else:
                        spec_doc.update(method=xform_name(subject.operation), jinja=subject.spec.uses_templates,
                                        templates=list(subject.templates),
                                        params=[subject.floor_params() for _ in range(requests)])
                    run, figures, stderr = run_child(
                        spec_doc, workdir / f"spec-{subject.spec.name}-{mode}.json", task, env, importtime_run
                    )
                    _check_answer(subject.spec, mode, figures)
                    return run, stderr

                for subject in subjects:  # warm-up round: fills the OS file cache, result discarded
                    for mode in modes:
                        one(subject, mode)
                for index in range(runs):
                    progress(f"cold start: round {index + 1}/{runs}")
                    for subject in subjects:
                        shift = index % len(modes)  # each mode goes first, second... in turn
                        for mode in modes[shift:] + modes[:shift]:
                            run, _ = one(subject, mode)
                            target = results[subject.spec.name]
                            getattr(target, f"{mode}_runs").append(run)
                if importtime:
                    for subject in subjects:
                        _, handler_log = one(subject, "handler", importtime_run=True)
                        _, floor_log = one(subject, "floor", importtime_run=True)
                        handler_imports, floor_imports = parse_importtime(handler_log), parse_importtime(floor_log)
                        results[subject.spec.name].extra_imports = extra_imports(handler_imports, floor_imports)
                        results[subject.spec.name].avoided_imports = extra_imports(floor_imports, handler_imports)
    return list(results.values()), how


def _check_answer(spec: definition.FunctionSpec, mode: str, figures: Mapping[str, Any]) -> None:
    if mode == "handler" and figures.get("botocore_imported", True):
        raise RuntimeError(f"cold start of {spec.name}: the handler imported botocore")
    for outcome in figures["outcomes"]:
        if outcome.get("failures"):
            raise RuntimeError(f"cold start of {spec.name}: the processor reported {outcome['failures']} failed records")
        if "status" in outcome and outcome["status"] != 200:
            raise RuntimeError(f"cold start of {spec.name} ({mode}) answered HTTP {outcome['status']}, not 200")


def _subjects(settings: definition.Settings, functions: tuple[definition.FunctionSpec, ...],
              feed: StreamFeed) -> list[_Subject]:
    routes = {route.function.name: route for route in definition.ROUTES}
    subjects = []
    for spec in functions:
        handler = _load_handler(spec)
        templates = module_templates(spec)
        if spec is definition.STREAM_PROCESSOR:
            def make_event(feed: StreamFeed = feed) -> dict[str, Any]:
                return feed.event(STREAM_BATCH_RECORDS)

            operation, params = _capture(handler, make_event(), spec.name, settings.processor_timeout_seconds)
            subjects.append(_Subject(spec, make_event, lambda p=params: _fresh_markers(p), operation, templates))
        else:
            route = routes[spec.name]
            path = route.path.replace("{tag}", EXAMPLE_TAG)
            parameters = {"tag": EXAMPLE_TAG} if "{tag}" in route.path else None

            def make_event(route: definition.Route = route, path: str = path,
                           parameters: dict[str, str] | None = parameters) -> dict[str, Any]:
                # A browser's User-Agent, as people send: the visit's first request runs its bot check.
                return rest_proxy_event(route, path, parameters, stage=settings.stage_name,
                                        headers=[("User-Agent", PERSON)])

            operation, params = _capture(handler, make_event(), spec.name, settings.route_timeout_seconds)
            subjects.append(_Subject(spec, make_event, lambda p=params: p, operation, templates))
    return subjects
