"""Dollars per million visits, line by line, from measured figures and the prices in ``bench.prices``.

A visit is one ``GET /tags/{tag}``: one REST API request, one invocation of the visit function, one write
to DynamoDB, and its share of the stream processor's work (one invocation and one two-item transaction per
batch). How many visits share a batch depends on traffic: at ``r`` visits a second and a batching window
of ``w`` seconds a batch holds about ``r * w`` records (at least 1, at most the batch size), so the model is
shown at a few traffic rates. Count and home pages are priced per million views beside it.

Measured here: each handler's CPU time per request (``bench.warm``), capacity units (``bench.roundtrips``),
the page sizes and what the functions log. Assumed, and said so in the output: the figures in ``ASSUMPTIONS``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bench import prices

LAMBDA_FULL_VCPU_MB = 1769
"""Lambda gives a function CPU in proportion to memory: one full vCPU at 1,769 MB."""

ASSUMPTIONS: Mapping[str, float] = {
    "dynamodb_round_trip_ms": 5.0,
    "transaction_round_trip_ms": 10.0,
    "platform_log_bytes_per_invocation": 400.0,
    "api_gateway_response_overhead_bytes": 400.0,
}
"""Not measurable without AWS: in-region DynamoDB latency (billed Lambda time waits on it), the bytes of
Lambda's own JSON log records per invocation (``platform.start`` and ``platform.report``), and the response
headers API Gateway sends beside the page. This machine's core is taken as fast as one Lambda arm64 vCPU."""

TRAFFIC_RATES = (1.0, 10.0, 100.0)
"""Visits per second the model is shown at."""


@dataclass(frozen=True)
class FunctionFigures:
    """What one invocation of a function costs to run, as measured."""

    cpu_ms: float
    """Handler time per request with DynamoDB answered in-process (this machine)."""
    round_trips: int
    transaction: bool = False
    log_bytes: float = 0.0
    """Bytes the handler itself logs per request (Lambda's platform records come on top)."""


@dataclass(frozen=True)
class CostInputs:
    """Everything the model needs, measured or configured."""

    route_memory_mb: int
    processor_memory_mb: int
    batch_size: int
    batching_window_seconds: float
    visit: FunctionFigures
    count: FunctionFigures
    home: FunctionFigures
    processor_fixed_ms: float
    """The stream processor's time for a batch of one record."""
    processor_per_record_ms: float
    processor_log_bytes: float
    visit_write_units: float
    count_read_units: float
    home_read_units: float
    batch_write_units: float
    page_bytes: Mapping[str, int]
    """Response body bytes of each page (``visit``, ``count``, ``home``)."""


@dataclass
class LineItem:
    """One line of the bill: what, and dollars per million of the thing priced."""

    name: str
    dollars: float
    basis: str


@dataclass
class CostModel:
    """Line items per million visits at each traffic rate, and per million count and home views."""

    visits: dict[float, list[LineItem]] = field(default_factory=dict)
    count_page: list[LineItem] = field(default_factory=list)
    home_page: list[LineItem] = field(default_factory=list)

    @staticmethod
    def total(items: Sequence[LineItem]) -> float:
        """Sum of line items."""
        return sum(item.dollars for item in items)


def cpu_share(memory_mb: int) -> float:
    """The share of one vCPU a request gets at ``memory_mb`` (1 from 1,769 MB; above it more cores, which
    one single-threaded request cannot use)."""
    return min(1.0, memory_mb / LAMBDA_FULL_VCPU_MB)


def billed_ms(cpu_ms: float, memory_mb: int, round_trips: int, transaction: bool = False) -> int:
    """Lambda's billed duration: CPU time scaled to the memory's CPU share, plus DynamoDB waits, rounded up."""
    scale = 1 / cpu_share(memory_mb)
    wait = ASSUMPTIONS["transaction_round_trip_ms" if transaction else "dynamodb_round_trip_ms"] * round_trips
    return max(1, math.ceil(cpu_ms * scale + wait))


def _lambda_items(label: str, figures: FunctionFigures, memory_mb: int, per: float = 1.0) -> list[LineItem]:
    ms = billed_ms(figures.cpu_ms, memory_mb, figures.round_trips, figures.transaction)
    gb_seconds = memory_mb / 1024 * ms / 1000
    log_gb = (figures.log_bytes + ASSUMPTIONS["platform_log_bytes_per_invocation"]) / 1e9
    return [
        LineItem(f"Lambda {label}: requests", per * prices.LAMBDA_REQUEST.dollars * 1e6,
                 f"{per:g} invocation(s)"),
        LineItem(f"Lambda {label}: duration", per * gb_seconds * prices.LAMBDA_ARM64_GB_SECOND.dollars * 1e6,
                 f"{ms} ms billed at {memory_mb} MB arm64"),
        LineItem(f"CloudWatch Logs {label}", per * log_gb * prices.CLOUDWATCH_LOGS_INGESTED_GB.dollars * 1e6,
                 f"{figures.log_bytes + ASSUMPTIONS['platform_log_bytes_per_invocation']:.0f} bytes per invocation"),
    ]


def _page_items(page: str, inputs: CostInputs, figures: FunctionFigures, read_units: float,
                write_units: float) -> list[LineItem]:
    items = [LineItem("API Gateway REST request", prices.API_GATEWAY_REST_REQUEST.dollars * 1e6, "1 request")]
    items += _lambda_items(page, figures, inputs.route_memory_mb)
    if write_units:
        items.append(LineItem("DynamoDB writes", write_units * prices.DYNAMODB_WRITE_REQUEST_UNIT.dollars * 1e6,
                              f"{write_units:g} write unit(s)"))
    if read_units:
        items.append(LineItem("DynamoDB reads", read_units * prices.DYNAMODB_READ_REQUEST_UNIT.dollars * 1e6,
                              f"{read_units:g} read unit(s)"))
    out_bytes = inputs.page_bytes.get(page, 0) + ASSUMPTIONS["api_gateway_response_overhead_bytes"]
    items.append(LineItem("data transfer out", out_bytes / 1e9 * prices.DATA_TRANSFER_OUT_GB.dollars * 1e6,
                          f"{out_bytes:.0f} bytes per response"))
    return items


def records_per_batch(rate: float, inputs: CostInputs) -> int:
    """How many visits share one stream batch at ``rate`` visits per second."""
    return int(min(inputs.batch_size, max(1.0, rate * inputs.batching_window_seconds)))


def cost_model(inputs: CostInputs, rates: Sequence[float] = TRAFFIC_RATES) -> CostModel:
    """The bill per million visits at each rate, and per million count and home page views."""
    model = CostModel()
    visit_items = _page_items("visit", inputs, inputs.visit, 0.0, inputs.visit_write_units)
    for rate in rates:
        per_batch = records_per_batch(rate, inputs)
        batches_per_visit = 1 / per_batch
        processor = FunctionFigures(
            cpu_ms=inputs.processor_fixed_ms + inputs.processor_per_record_ms * per_batch,
            round_trips=1,
            transaction=True,
            log_bytes=inputs.processor_log_bytes,
        )
        stream_items = _lambda_items("stream processor", processor, inputs.processor_memory_mb, batches_per_visit)
        stream_items.append(LineItem(
            "DynamoDB stream transaction",
            batches_per_visit * inputs.batch_write_units * prices.DYNAMODB_WRITE_REQUEST_UNIT.dollars * 1e6,
            f"{inputs.batch_write_units:g} write units per batch of {per_batch}",
        ))
        stream_items.append(LineItem("DynamoDB Streams reads", prices.DYNAMODB_STREAMS_READ_BY_LAMBDA.dollars,
                                     "read by a Lambda trigger: not charged"))
        model.visits[rate] = visit_items + stream_items
    model.count_page = _page_items("count", inputs, inputs.count, inputs.count_read_units, 0.0)
    model.home_page = _page_items("home", inputs, inputs.home, inputs.home_read_units, 0.0)
    return model


@dataclass(frozen=True)
class ColdFigures:
    """One route function's cold-start figures at full speed (CPU ms, from ``bench.coldstart``)."""

    init_ms: float
    first_ms: float
    warm_ms: float

    def cold_ms(self, memory_mb: int) -> float:
        """Modelled cold start: init at full speed, the first request at the memory's CPU share."""
        return self.init_ms + self.first_ms / cpu_share(memory_mb)

    def warm_at(self, memory_mb: int) -> float:
        """A warm request at the memory's CPU share."""
        return self.warm_ms / cpu_share(memory_mb)


@dataclass(frozen=True)
class MemoryOption:
    """What one memory size for the route functions means: latency (worst route function) and dollars."""

    memory_mb: int
    cold_ms: float
    """The slowest route function's modelled cold start."""
    warm_ms: float
    """The slowest route function's warm request (CPU at the memory's share; DynamoDB's wait not included)."""
    dollars: float
    """Per million visits at 1 visit/s, every request warm."""
    cold_dollars: float
    """Per million visits when every visit starts a container (a visit a minute or less): since August 2025
    Lambda bills the init phase of managed runtimes too."""


def memory_options(inputs: CostInputs, cold: Mapping[str, ColdFigures],
                   memories: Sequence[int] = (128, 256, 512, 1024)) -> list[MemoryOption]:
    """Latency and cost of the route functions at each of ``memories``."""
    options = []
    for memory in memories:
        at_memory = cost_model(dataclasses.replace(inputs, route_memory_mb=memory), rates=(1.0,))
        dollars = CostModel.total(at_memory.visits[1.0])
        visit = cold.get("visit")
        extra_ms = 0.0 if visit is None else visit.cold_ms(memory) - visit.warm_at(memory)
        gb_seconds = memory / 1024 * extra_ms / 1000
        options.append(MemoryOption(
            memory_mb=memory,
            cold_ms=max(figures.cold_ms(memory) for figures in cold.values()),
            warm_ms=max(figures.warm_at(memory) for figures in cold.values()),
            dollars=dollars,
            cold_dollars=dollars + gb_seconds * prices.LAMBDA_ARM64_GB_SECOND.dollars * 1e6,
        ))
    return options


MEMORY_GAIN = 0.10
"""Doubling the memory doubles the price of every millisecond; it is worth it while it still takes at least
this fraction off the slowest route function's modelled cold start."""


def recommend_memory(options: Sequence[MemoryOption], gain: float = MEMORY_GAIN) -> int:
    """The smallest memory beyond which the next size up takes less than ``gain`` off the cold start."""
    ordered = sorted(options, key=lambda option: option.memory_mb)
    for option, bigger in zip(ordered, ordered[1:]):
        if bigger.cold_ms > option.cold_ms * (1 - gain):
            return option.memory_mb
    return ordered[-1].memory_mb
