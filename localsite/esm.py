"""The DynamoDB event source mapping, played locally: what Lambda does between the stream and the processor.

A background thread reads the table's stream from moto at the starting position (in this process,
``localsite.aws.StreamReader``: the records ``GetRecords`` would return, without serialising each to JSON and
back), drops the records the filter criteria do not match (their position still
counts as processed, as Lambda's does), gathers batches of up to the batch size or until the batching window
has passed, and invokes the processor with Lambda's event. Then, as Lambda with these settings:

- success: the batch is checkpointed;
- ``batchItemFailures``: checkpoint before the lowest failed sequence number and retry from there; an empty,
  missing or unknown ``itemIdentifier`` fails the whole batch;
- an error (the processor raised, timed out or answered nonsense): retry; with bisect on, split the batch in
  two and retry each half in order (a split does not use up a retry, as with Lambda);
- after the maximum number of retries, or once records are older than the maximum record age, a message in
  Lambda's on-failure format (enough to find the records again) goes to the on-failure destination, and the
  mapping moves on: records after a poison record are still processed.

All settings come from :class:`definition.Settings`, the filter from ``definition.STREAM_FILTER_PATTERNS``,
so the mapping the stack deploys and this one cannot drift apart. moto gives a table one shard, so one
thread per mapping is the whole story here (DynamoDB would have several shards, one batch in flight each).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from definition import PROJECT, STREAM_FILTER_PATTERNS, STREAM_PROCESSOR, Settings
from localsite.aws import StreamReader
from localsite.events import ACCOUNT_ID, LambdaContext, stream_event, stream_record
from localsite.faults import Faults

log = logging.getLogger("localsite.stream")

Record = dict[str, Any]
"""A stream record as boto3's ``GetRecords`` returns it."""
Processor = Callable[[dict[str, Any], Any], Any]


# -- filter criteria -----------------------------------------------------------------------------------------


def check_filter_pattern(pattern: Any, where: str = "pattern") -> None:
    """Raise ``ValueError`` if ``pattern`` uses a rule this mapping does not implement.

    Implemented: nested keys, lists of exact values (strings, numbers, booleans, null) and ``prefix`` rules.
    """
    if not isinstance(pattern, Mapping) or not pattern:
        raise ValueError(f"{where}: a filter pattern is a non-empty object")
    for key, value in pattern.items():
        if isinstance(value, Mapping):
            check_filter_pattern(value, f"{where}.{key}")
        elif isinstance(value, list) and value:
            for rule in value:
                if isinstance(rule, Mapping):
                    if set(rule) != {"prefix"} or not isinstance(rule["prefix"], str):
                        raise ValueError(f"{where}.{key}: unsupported filter rule {rule!r}")
                elif not (rule is None or isinstance(rule, (str, int, float, bool))):
                    raise ValueError(f"{where}.{key}: unsupported filter value {rule!r}")
        else:
            raise ValueError(f"{where}.{key}: expected an object or a non-empty list of rules")


def _value_matches(rules: list[Any], value: Any) -> bool:
    for rule in rules:
        if isinstance(rule, Mapping):
            if isinstance(value, str) and value.startswith(rule["prefix"]):
                return True
        elif rule is None:
            if value is None:
                return True
        elif isinstance(rule, bool) or isinstance(value, bool):
            if rule is value:
                return True
        elif isinstance(rule, (int, float)) and isinstance(value, (int, float)):
            if rule == value:
                return True
        elif rule == value:
            return True
    return False


def matches_pattern(pattern: Mapping[str, Any], event_record: Mapping[str, Any]) -> bool:
    """Whether one record, in Lambda's event form, matches one filter pattern."""
    for key, expected in pattern.items():
        if key not in event_record:
            return False
        actual = event_record[key]
        if isinstance(expected, Mapping):
            if not isinstance(actual, Mapping) or not matches_pattern(expected, actual):
                return False
        elif not _value_matches(expected, actual):
            return False
    return True


def matches_filters(patterns: Sequence[Mapping[str, Any]], event_record: Mapping[str, Any]) -> bool:
    """Lambda's rule: a record goes to the function if it matches any pattern (all records if none)."""
    return not patterns or any(matches_pattern(pattern, event_record) for pattern in patterns)


# -- reading the stream --------------------------------------------------------------------------------------


def failed_batch_records(client: Any, batch_info: Mapping[str, Any]) -> list[Record]:
    """The records an on-failure message's ``DDBStreamBatchInfo`` points at, read back from the stream.

    This is how an operator replays a batch the mapping gave up on, once its cause is fixed: the records are
    still in the stream for its 24-hour retention, and the processor's batch marker makes a repeated replay
    count once.
    """
    iterator = client.get_shard_iterator(
        StreamArn=batch_info["streamArn"],
        ShardId=batch_info["shardId"],
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=batch_info["startSequenceNumber"],
    )["ShardIterator"]
    end = int(batch_info["endSequenceNumber"])
    records = client.get_records(ShardIterator=iterator, Limit=int(batch_info["batchSize"]))["Records"]
    return [record for record in records if sequence_number(record) <= end]


def sequence_number(record: Mapping[str, Any]) -> int:
    """A record's sequence number as an integer (they compare as numbers, not strings)."""
    return int(record["dynamodb"]["SequenceNumber"])


def _created_at(record: Mapping[str, Any]) -> float | None:
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        return created.timestamp()
    if isinstance(created, (int, float)):
        return float(created)
    return None


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the mapping ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingOptions:
    """How the local mapping polls and backs off: local knobs, not settings of the deployed mapping."""

    poll_interval: float = 0.25
    """Seconds between polls while a batch is gathering (Lambda polls a shard about 4 times a second)."""
    idle_interval_max: float = 2.0
    """Idle polls slow down to this; every write made in this process (``localsite.hooks``) wakes the mapping."""
    retry_backoff: float = 0.5
    """Seconds before the first retry of a failed batch, doubling with each retry."""
    retry_backoff_max: float = 5.0
    read_limit: int = 1000
    """Records per ``GetRecords`` call (DynamoDB Streams' maximum)."""


@dataclass
class MappingStats:
    """What the mapping did, for logs and tests."""

    invocations: int = 0
    batches_succeeded: int = 0
    records_succeeded: int = 0
    records_filtered: int = 0
    partial_failures: int = 0
    function_errors: int = 0
    retries: int = 0
    bisections: int = 0
    redeliveries: int = 0
    records_discarded: int = 0
    """Records handed to the on-failure destination instead of the processor."""
    on_failure_messages: int = 0


@dataclass(frozen=True)
class Invocation:
    """One invocation of the processor: which records, and how it ended."""

    first: str
    last: str
    size: int
    outcome: str
    """``ok``, ``partial``, ``failed`` (complete failure reported by the response) or ``error``."""
    detail: str = ""
    redelivery: bool = False


@dataclass
class _Work:
    records: list[Record]
    attempts: int = 0
    first_read_at: float = 0.0
    invocations: int = field(default=0)


class MappingError(RuntimeError):
    """The mapping's thread stopped on an error of its own (not the processor's)."""


class EventSourceMapping:
    """A DynamoDB stream → processor mapping with Lambda's semantics, run on a background thread."""

    def __init__(
        self,
        table_name: str,
        stream_arn: str,
        processor: Processor,
        settings: Settings,
        *,
        filter_patterns: Sequence[Mapping[str, Any]] = STREAM_FILTER_PATTERNS,
        on_failure: Callable[[dict[str, Any]], None] | None = None,
        faults: Faults | None = None,
        starting_position: str | None = None,
        function_name: str = f"{PROJECT}-{STREAM_PROCESSOR.name}",
        clock: Callable[[], float] = time.time,
        options: MappingOptions | None = None,
    ) -> None:
        for index, pattern in enumerate(filter_patterns):
            check_filter_pattern(pattern, f"filter pattern {index}")
        self.table_name = table_name
        self.stream_arn = stream_arn
        self._processor = processor
        self.settings = settings
        self._patterns = tuple(filter_patterns)
        self._on_failure = on_failure
        self.faults = faults
        self.starting_position = starting_position or settings.stream_starting_position
        self.function_name = function_name
        self._clock = clock
        self.options = options or MappingOptions()

        self.stats = MappingStats()
        self.history: deque[Invocation] = deque(maxlen=10_000)
        self.failure_messages: list[dict[str, Any]] = []
        self.last_batch: list[Record] | None = None

        self._reader: StreamReader | None = None
        self._buffer: deque[Record] = deque()
        self._buffer_since = 0.0
        self._work: deque[_Work] = deque()
        self._read_upto: int | None = None
        self._redeliver_requested = False

        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._reads_started = 0
        self._idle_read = -1
        self._error: BaseException | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the stream at the starting position now, then start polling."""
        self._reader = StreamReader(self.table_name, self.starting_position)
        self._thread = threading.Thread(target=self._run, name="stream-mapping", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling; a batch being processed finishes first."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self, *_: Any) -> None:
        """Poll now rather than at the next interval (new records are likely)."""
        self._wake.set()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every record written before this call has been processed, filtered or discarded.

        Returns ``False`` if that did not happen within ``timeout`` seconds (for instance while a batch is
        still gathering in its batching window, or being retried).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._reads_started
            self._wake.set()
            while self._idle_read <= target:
                if self._error is not None:
                    raise MappingError("the stream mapping stopped") from self._error
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping.is_set():
                    return False
                self._cond.wait(min(remaining, 0.05))
                self._wake.set()
        return True

    def redeliver_last(self) -> None:
        """Deliver the last successful batch again, as Lambda does when an invocation's response is lost."""
        self._redeliver_requested = True
        self._wake.set()

    @property
    def checkpoint(self) -> str | None:
        """The sequence number up to which every record is done (processed, filtered out or discarded)."""
        with self._cond:
            if self._work:
                return str(sequence_number(self._work[0].records[0]) - 1)
            if self._buffer:
                return str(sequence_number(self._buffer[0]) - 1)
            return None if self._read_upto is None else str(self._read_upto)

    @property
    def position(self) -> int | None:
        """The sequence number of the last stream record the mapping has read (processed or not)."""
        return self._reader.position if self._reader is not None else None

    @property
    def buffered(self) -> int:
        """Records read and matched, waiting to be batched (not counting a batch being processed)."""
        with self._cond:
            return len(self._buffer)

    @property
    def error(self) -> BaseException | None:
        """The error that stopped the mapping's thread, if any."""
        return self._error

    # -- the loop ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        idle_wait = self.options.poll_interval
        try:
            while not self._stopping.is_set():
                with self._cond:
                    self._reads_started += 1
                    read_number = self._reads_started
                got = self._read()
                worked = self._step()
                with self._cond:
                    idle = got == 0 and not worked and not self._work and not self._buffer
                    if idle:
                        self._idle_read = read_number
                        self._cond.notify_all()
                if got or worked:
                    idle_wait = self.options.poll_interval
                    continue
                wait = self.options.poll_interval if self._buffer else idle_wait
                if self._wake.wait(wait):
                    idle_wait = self.options.poll_interval
                else:
                    idle_wait = min(idle_wait * 2, self.options.idle_interval_max)
                self._wake.clear()
        except Exception as error:  # the mapping's own failure (moto, a bug): keep it for drain() to raise
            log.exception("stream mapping stopped")
            with self._cond:
                self._error = error
                self._cond.notify_all()

    def _read(self) -> int:
        assert self._reader is not None
        if len(self._buffer) >= max(self.settings.stream_batch_size * 10, self.options.read_limit):
            return 0  # enough gathered: read more once batches have gone out
        records = self._reader.read(self.options.read_limit)
        if not records:
            return 0
        now = self._clock()
        with self._cond:
            for record in records:
                if matches_filters(self._patterns, stream_record(record, self.stream_arn)):
                    if not self._buffer:
                        self._buffer_since = now
                    self._buffer.append(record)
                else:
                    self.stats.records_filtered += 1
            self._read_upto = sequence_number(records[-1])
        return len(records)

    def _next_work(self) -> _Work | None:
        with self._cond:
            if self._work:
                return self._work[0]
            if not self._buffer:
                return None
            window = self.settings.stream_batching_window_seconds
            full = len(self._buffer) >= self.settings.stream_batch_size
            if not full and self._clock() - self._buffer_since < window:
                return None
            size = min(len(self._buffer), self.settings.stream_batch_size)
            work = _Work([self._buffer.popleft() for _ in range(size)], first_read_at=self._buffer_since)
            self._buffer_since = self._clock()
            self._work.append(work)
            return work

    def _step(self) -> bool:
        """Make one invocation if one is due; return whether anything was done."""
        if self._redeliver_requested:
            self._redeliver_requested = False
            if self.last_batch:
                self._invoke(self.last_batch, redelivery=True)
                return True
        work = self._next_work()
        if work is None:
            return False
        if self._discard_expired(work):
            return True
        self._attempt(work)
        return True

    def _discard_expired(self, work: _Work) -> bool:
        max_age = self.settings.stream_max_record_age_seconds
        if max_age == -1:
            return False
        now = self._clock()
        expired = 0
        for record in work.records:
            created = _created_at(record)
            if created is None or now - created <= max_age:
                break
            expired += 1
        if not expired:
            return False
        self._discard(work.records[:expired], "RecordAgeExceeded", work.invocations)
        with self._cond:
            del work.records[:expired]
            if not work.records:
                self._work.popleft()
        return True

    def _attempt(self, work: _Work) -> None:
        records = list(work.records)
        work.invocations += 1
        outcome, detail, failed_at = self._invoke(records)
        if outcome == "ok":
            with self._cond:
                self._work.popleft()
            self.last_batch = records
            if self.faults is not None and self.faults.take_redelivery():
                self._invoke(records, redelivery=True)
            return
        if outcome == "error" and self.settings.stream_bisect_on_error and len(records) > 1:
            half = len(records) // 2
            with self._cond:
                self._work.popleft()
                self._work.appendleft(_Work(records[half:], work.attempts, work.first_read_at, work.invocations))
                self._work.appendleft(_Work(records[:half], work.attempts, work.first_read_at, work.invocations))
            self.stats.bisections += 1
            log.info("stream batch split in two: %d + %d records", half, len(records) - half)
            return
        if outcome == "partial":
            with self._cond:
                del work.records[:failed_at]
        work.attempts += 1
        max_retries = self.settings.stream_max_retries
        if max_retries != -1 and work.attempts > max_retries:
            self._discard(work.records, "RetryAttemptsExhausted", work.invocations)
            with self._cond:
                self._work.popleft()
            return
        self.stats.retries += 1
        backoff = min(self.options.retry_backoff * 2 ** (work.attempts - 1), self.options.retry_backoff_max)
        self._stopping.wait(backoff)

    def _invoke(self, records: list[Record], redelivery: bool = False) -> tuple[str, str, int]:
        """Invoke the processor once; return (outcome, detail, index of the first failed record)."""
        first, last = records[0]["dynamodb"]["SequenceNumber"], records[-1]["dynamodb"]["SequenceNumber"]
        self.stats.invocations += 1
        if redelivery:
            self.stats.redeliveries += 1
        timeout = self.settings.processor_timeout_seconds
        started = time.monotonic()
        try:
            if self.faults is not None:
                self.faults.before_invoke(records)
            context = LambdaContext(self.function_name, timeout, self.settings.processor_memory_mb)
            response = self._processor(stream_event(records, self.stream_arn), context)
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"Task timed out after {timeout} seconds")
            if self.faults is not None:
                self.faults.after_invoke(records)
        except Exception as error:  # any function error: Lambda retries (and may bisect)
            outcome, detail, failed_at = "error", f"{type(error).__name__}: {error}", 0
        else:
            outcome, detail, failed_at = _classify(response, records)
        if outcome == "ok":
            self.stats.batches_succeeded += 1
            self.stats.records_succeeded += len(records)
        elif outcome == "partial":
            self.stats.partial_failures += 1
        elif outcome == "error":
            self.stats.function_errors += 1
        self.history.append(Invocation(first, last, len(records), outcome, detail, redelivery))
        ms = (time.monotonic() - started) * 1000
        label = " (delivered again)" if redelivery else ""
        if outcome == "ok":
            log.info("stream batch: %d records%s -> ok (%.1f ms)", len(records), label, ms)
        else:
            log.info("stream batch: %d records%s -> %s: %s (%.1f ms)", len(records), label, outcome, detail, ms)
        return outcome, detail, failed_at

    def _discard(self, records: list[Record], condition: str, invocations: int) -> None:
        """Hand records to the on-failure destination (Lambda's message format) and move past them."""
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{self.function_name}",
                "condition": condition,
                "approximateInvokeCount": invocations,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "DDBStreamBatchInfo": {
                "shardId": self._reader.shard_id if self._reader else "",
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(_created_at(records[0])),
                "approximateArrivalOfLastRecord": _iso(_created_at(records[-1])),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        self.stats.records_discarded += len(records)
        self.stats.on_failure_messages += 1
        self.failure_messages.append(message)
        log.warning(
            "stream batch: %d records (%s..%s) sent to the on-failure destination: %s",
            len(records),
            message["DDBStreamBatchInfo"]["startSequenceNumber"],
            message["DDBStreamBatchInfo"]["endSequenceNumber"],
            condition,
        )
        if self._on_failure is not None:
            try:
                self._on_failure(message)
            except Exception:  # the records are still described in the log line above and in failure_messages
                log.exception("sending to the on-failure destination failed")


def _classify(response: Any, records: Sequence[Record]) -> tuple[str, str, int]:
    """Read a processor's answer the way Lambda does with ``ReportBatchItemFailures`` on."""
    if response is None:
        return "ok", "", 0
    if not isinstance(response, Mapping):
        return "failed", "response is not a JSON object", 0
    failures = response.get("batchItemFailures")
    if not failures:
        return "ok", "", 0
    if not isinstance(failures, list):
        return "failed", "batchItemFailures is not a list", 0
    positions = {record["dynamodb"]["SequenceNumber"]: index for index, record in enumerate(records)}
    failed: list[int] = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not identifier or identifier not in positions:
            return "failed", f"invalid itemIdentifier {identifier!r}: the whole batch failed", 0
        failed.append(positions[identifier])
    lowest = min(failed)
    return "partial", f"{len(failed)} failed, retrying from {records[lowest]['dynamodb']['SequenceNumber']}", lowest
