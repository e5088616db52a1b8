"""moto as the local AWS: DynamoDB, DynamoDB Streams and SQS, in this process, with no account.

DynamoDB applies each request to an item atomically, so concurrent ``ADD`` updates never lose a count.
moto's in-process backend takes no lock: two threads adding to one item can both read the old value and
one update is lost (seen at 16 threads: 3193 of 3200). ``local_aws`` serialises moto's request dispatch so
the local site and the tests see DynamoDB's atomicity, not a race of the emulator.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

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


def _serialised_call(self, event_name, request, **kwargs):  # type: ignore[no-untyped-def]
    with _dispatch_lock:
        return _original_call(self, event_name, request, **kwargs)


def use_dummy_credentials() -> None:
    """Point boto3 at moto's fake account: no real credentials are read, none can leak."""
    os.environ.update(DUMMY_ENVIRONMENT)
    os.environ.pop("AWS_PROFILE", None)


@contextmanager
def local_aws() -> Iterator[None]:
    """Run the body against moto, each AWS request applied atomically (see the module docstring)."""
    use_dummy_credentials()
    BotocoreStubber.__call__ = _serialised_call  # type: ignore[method-assign]
    try:
        with mock_aws():
            yield
    finally:
        BotocoreStubber.__call__ = _original_call  # type: ignore[method-assign]
