"""moto as the local AWS: DynamoDB, DynamoDB Streams and SQS, in this process, with no account.

DynamoDB applies each request to an item atomically, so concurrent ``ADD`` updates never lose a count.
moto's in-process backend takes no lock: two threads adding to one item can both read the old value and
one update is lost (seen at 16 threads: 3193 of 3200). ``local_aws`` serialises moto's request dispatch so
the local site and the tests see DynamoDB's atomicity, not a race of the emulator.

moto also undoes a cancelled ``TransactWriteItems`` by swapping in a deep copy of the table taken before it:
the copy has a new stream shard, so every stream reader already open is left on the old one and never sees
another record, and the old one keeps records of writes that never happened (a cancelled transaction writes
no stream record in DynamoDB). ``local_aws`` keeps one shard per table across the swap, without those records.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from typing import Any

from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import StreamShard

DUMMY_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Recent botocore may address Streams through account endpoints moto does not recognise.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}

_dispatch_lock = threading.RLock()
_original_call = BotocoreStubber.__call__
_ANSWERED = "_answered_before_moto"


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


_original_transact = DynamoDBBackend.transact_write_items


def _transact_keeping_streams(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
    before = {
        name: (table, table.stream_shard, len(table.stream_shard.items))
        for name, table in self.tables.items()
        if table.stream_shard is not None
    }
    try:
        return _original_transact(self, *args, **kwargs)
    finally:
        for name, (table, shard, length) in before.items():
            restored = self.tables.get(name)
            if restored is not None and restored is not table:
                # Rolled back: the same shard (readers hold it), without the cancelled writes' records.
                del shard.items[length:]
                shard.table = restored
                restored.stream_shard = shard


def _share_shard(self: StreamShard, memo: dict[int, Any]) -> StreamShard:
    # The rollback copy shares the shard instead of copying every record the stream ever had.
    return self


def use_dummy_credentials() -> None:
    """Point boto3 at moto's fake account: no real credentials are read, none can leak."""
    os.environ.update(DUMMY_ENVIRONMENT)
    os.environ.pop("AWS_PROFILE", None)


@contextmanager
def local_aws() -> Iterator[None]:
    """Run the body against moto, each AWS request applied atomically (see the module docstring)."""
    use_dummy_credentials()
    BotocoreStubber.__call__ = _serialised_call  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = _transact_keeping_streams  # type: ignore[method-assign]
    StreamShard.__deepcopy__ = _share_shard  # type: ignore[attr-defined]
    try:
        with mock_aws():
            yield
    finally:
        BotocoreStubber.__call__ = _original_call  # type: ignore[method-assign]
        DynamoDBBackend.transact_write_items = _original_transact  # type: ignore[method-assign]
        del StreamShard.__deepcopy__  # type: ignore[attr-defined]
