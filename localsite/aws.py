"""moto as the local AWS: DynamoDB, DynamoDB Streams and SQS, in this process, with no account.

What ``local_aws`` changes in moto, and why (each was seen driving moto 5.2 the way the local site does):

- **Atomic requests.** DynamoDB applies each request to an item atomically, so concurrent ``ADD`` updates
  never lose a count. moto's in-process backend takes no lock: two threads adding to one item can both read
  the old value and one update is lost (seen at 16 threads: 3193 of 3200). Every request, in-process or
  through :class:`LockedMotoServer`, runs under one lock.
- **Transactions that copy only what they touch.** moto backs up a whole table (``copy.deepcopy``) for each
  item of a ``TransactWriteItems``, to swap it back if the transaction is cancelled: the stream processor's
  one transaction per batch then costs time and memory in proportion to every tag there is (quadratic over a
  long run), and the swapped-in copy has a new stream shard that leaves every open stream reader behind.
  Here a transaction snapshots only the items it names and, if cancelled, puts those back and drops the
  stream records of its writes (a cancelled transaction writes no stream record in DynamoDB).
- **No instance registry.** moto's ``BaseModel`` keeps every object it ever made in
  ``<class>.instances_tracked`` (for its dashboard): every item copy, every stream record, forever.
- **Shard iterators that go away once used.** moto keeps every iterator it hands out, one per ``GetRecords``;
  here an iterator is good for one ``GetRecords``, as the local readers use them.
- **Stream retention and TTL**, which moto does not do: :func:`trim_stream` drops records past DynamoDB's
  24-hour retention (and, since a local site may run for days under load, records every local consumer has
  read beyond the newest few); :func:`expire_items` deletes items past their TTL, as DynamoDB's TTL process
  does, with the ``userIdentity`` DynamoDB puts on those deletions' stream records.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber
from moto.core.common_models import BaseModel
from moto.core.model_instances import reset_model_data
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import StreamShard, Table
from moto.dynamodbstreams.models import DynamoDBStreamsBackend

ACCOUNT_ID = "123456789012"
"""moto's default account: what any dummy credentials map to."""
REGION = "us-east-1"

DUMMY_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    # Recent botocore may address Streams through account endpoints moto does not recognise.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}

STREAM_RETENTION_SECONDS = 24 * 3600
"""DynamoDB Streams keeps a record for 24 hours."""
TTL_PRINCIPAL = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
"""The ``userIdentity`` of a stream record written by DynamoDB's TTL process (as the Streams API spells it)."""

_dispatch_lock = threading.RLock()
_original_call = BotocoreStubber.__call__
_original_transact = DynamoDBBackend.transact_write_items
_original_get_records = DynamoDBStreamsBackend.get_records
_original_new = BaseModel.__dict__["__new__"]
_ANSWERED = "_answered_before_moto"


@contextmanager
def serialised() -> Iterator[None]:
    """Hold the lock every moto request runs under (for code that reads or changes moto's state directly)."""
    with _dispatch_lock:
        yield


def mark_answered(request: object) -> None:
    """Tell moto that a ``before-send`` handler answered this request, so moto must not apply it too.

    botocore calls every ``before-send`` handler and uses the first response: without this mark, a request
    a fault hook answers with a throttling error would still be applied by moto behind the error.
    """
    setattr(request, _ANSWERED, True)


def _serialised_call(self, event_name, request, **kwargs):  # type: ignore[no-untyped-def]
    if getattr(request, _ANSWERED, False):
        return None
    with _dispatch_lock:
        return _original_call(self, event_name, request, **kwargs)


def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(cls)


def _same_table(self: Table, memo: dict[int, Any]) -> Table:
    return self


def _transact_touching_only_its_items(
    self: DynamoDBBackend, transact_items: list[dict[str, Any]], *args: Any, **kwargs: Any
) -> Any:
    snapshots: list[tuple[Table, Any, Any, Item | None]] = []
    stream_lengths: dict[str, tuple[StreamShard, int]] = {}
    for entry in transact_items:
        for operation in entry.values():
            table = self.tables.get(operation.get("TableName")) if isinstance(operation, dict) else None
            if table is None:
                continue  # moto reports it
            try:
                hash_value, range_value = self.get_keys_value(table, operation.get("Key") or operation.get("Item") or {})
            except Exception:  # noqa: BLE001 - a malformed key: moto rejects the transaction itself
                continue
            snapshots.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
            if table.stream_shard is not None:
                stream_lengths.setdefault(table.name, (table.stream_shard, len(table.stream_shard.items)))
    # moto's own backup of each table becomes the table itself: nothing to copy, nothing swapped.
    Table.__deepcopy__ = _same_table  # type: ignore[attr-defined]
    try:
        return _original_transact(self, transact_items, *args, **kwargs)
    except BaseException:
        for table, hash_value, range_value, item in reversed(snapshots):
            holder = table.items[hash_value] if range_value is not None else table.items
            key = range_value if range_value is not None else hash_value
            if item is None:
                holder.pop(key, None)
            else:
                holder[key] = item
        for shard, length in stream_lengths.values():
            del shard.items[length:]
        raise
    finally:
        del Table.__deepcopy__  # type: ignore[attr-defined]


def _get_records_forgetting_the_iterator(self: DynamoDBStreamsBackend, iterator_arn: str, limit: int) -> dict[str, Any]:
    iterator = self.shard_iterators.pop(iterator_arn)
    return iterator.get(limit)


def use_dummy_credentials() -> None:
    """Point boto3 at moto's fake account: no real credentials are read, none can leak."""
    os.environ.update(DUMMY_ENVIRONMENT)
    os.environ.pop("AWS_PROFILE", None)


@contextmanager
def local_aws() -> Iterator[None]:
    """Run the body against moto, with the changes of the module docstring."""
    use_dummy_credentials()
    BotocoreStubber.__call__ = _serialised_call  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = _transact_touching_only_its_items  # type: ignore[method-assign]
    DynamoDBStreamsBackend.get_records = _get_records_forgetting_the_iterator  # type: ignore[method-assign]
    BaseModel.__new__ = staticmethod(_untracked_new)  # type: ignore[assignment]
    reset_model_data()  # what earlier code (tests) left tracked
    try:
        with mock_aws():
            yield
    finally:
        BotocoreStubber.__call__ = _original_call  # type: ignore[method-assign]
        DynamoDBBackend.transact_write_items = _original_transact  # type: ignore[method-assign]
        DynamoDBStreamsBackend.get_records = _original_get_records  # type: ignore[method-assign]
        BaseModel.__new__ = _original_new  # type: ignore[assignment]


def _table(table_name: str) -> Table:
    return dynamodb_backends[ACCOUNT_ID][REGION].get_table(table_name)


def _epoch(moment: datetime) -> float:
    # moto stamps records with naive UTC datetimes.
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def stream_end(table_name: str) -> int:
    """The sequence number the table's next stream record will get."""
    with _dispatch_lock:
        shard = _table(table_name).stream_shard
        assert shard is not None, "the table has no stream"
        return shard.starting_sequence_number + len(shard.items)


def trim_stream(table_name: str, *, read_by: int | None, keep: int, now: float) -> int:
    """Drop stream records as DynamoDB's retention would, and those every local consumer has read.

    Records older than :data:`STREAM_RETENTION_SECONDS` go, read or not (as in DynamoDB). Of the records up
    to sequence number ``read_by`` (every consumer's position; ``None``: keep them), all but the newest
    ``keep`` go too, so a replay of a recent batch still finds its records. Returns how many were dropped.
    """
    with _dispatch_lock:
        shard = _table(table_name).stream_shard
        if shard is None:
            return 0
        records = shard.items
        drop = 0
        horizon = now - STREAM_RETENTION_SECONDS
        while drop < len(records) and _epoch(records[drop].record["dynamodb"]["ApproximateCreationDateTime"]) < horizon:
            drop += 1
        if read_by is not None:
            read = read_by - shard.starting_sequence_number + 1
            drop = max(drop, min(read, len(records)) - keep)
        if drop > 0:
            del records[:drop]
            shard.starting_sequence_number += drop
        return max(drop, 0)


def expire_items(table_name: str, now: float) -> list[dict[str, Any]]:
    """Delete the items whose TTL attribute is a time before ``now``, as DynamoDB's TTL process does.

    Each deletion writes a ``REMOVE`` stream record with the TTL process's ``userIdentity``. Only a table
    with TTL enabled is swept, by the attribute it names; a value that is not a number is left alone (as
    DynamoDB does). Returns the deleted items' keys, in DynamoDB JSON.
    """
    with _dispatch_lock:
        table = _table(table_name)
        if table.ttl.get("TimeToLiveStatus") != "ENABLED" or "AttributeName" not in table.ttl:
            return []
        attribute = table.ttl["AttributeName"]
        expired = [item for item in table.all_items() if _expired(item, attribute, now)]
        keys = []
        for item in expired:
            keys.append({name: value for name, value in item.to_json()["Attributes"].items()
                         if name in (table.hash_key_attr, table.range_key_attr)})
            table.delete_item(item.hash_key, item.range_key)
            if table.stream_shard is not None and table.stream_shard.items:
                table.stream_shard.items[-1].record["userIdentity"] = dict(TTL_PRINCIPAL)
        return keys


def _expired(item: Item, attribute: str, now: float) -> bool:
    value = item.attrs.get(attribute)
    if value is None or value.type != "N":
        return False
    try:
        return float(value.value) < now
    except (TypeError, ValueError):
        return False


# -- moto over HTTP, for the operator command in another process --------------------------------------------


class LockedMotoServer:
    """moto's HTTP server on a loopback port, serving this process's moto state to other processes.

    Each request runs under the same lock as the in-process dispatch (or concurrent writes could lose counts),
    and after a successful DynamoDB write ``after_write(operation)`` is called before the answer goes out, as
    in-process writes call the ``after-call`` listeners: the stream mapping wakes, the counts are saved.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 after_write: Callable[[str], None] | None = None) -> None:
        self.host = host
        self.port = port
        self._after_write = after_write
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> LockedMotoServer:
        """Bind and serve on a thread; ``port`` is the bound one afterwards."""
        import logging

        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is the site's, not moto's
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(self.host, self.port, self._serialised(app), threaded=True,
                                   request_handler=MotoRequestHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()
        return self

    def _serialised(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        after_write = self._after_write

        def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            from localsite.hooks import WRITE_OPERATIONS

            service, _, operation = str(environ.get("HTTP_X_AMZ_TARGET", "")).partition(".")
            answer: dict[str, Any] = {}

            def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
                answer.update(status=status, headers=headers)
                return lambda data: None

            with _dispatch_lock:
                chunks = app(environ, keep)
                try:
                    body = b"".join(chunks)
                finally:
                    close = getattr(chunks, "close", None)
                    if close is not None:
                        close()
            status = int(str(answer.get("status", "500")).split()[0])
            if after_write is not None and service.startswith("DynamoDB_") and operation in WRITE_OPERATIONS \
                    and status < 300:
                after_write(operation)
            start_response(answer["status"], answer["headers"])
            return [body]

        return serve

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Stop serving (requests being answered finish first)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

