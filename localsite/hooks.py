"""Listeners on every DynamoDB request made in the local site's process: the functions' and boto3's.

The functions' client (``functions.dynamodb``) sends through ``localsite.transport``, which calls
:func:`before_send` and :func:`notify_write` itself. For boto3 clients (the site's own, the operator command's
in-process ones) this module adds two dispatchers to botocore's built-in handlers, which every new session
(boto3's default one included) registers on the clients it creates:

- ``before-send.dynamodb``, registered first so it runs before moto's stubber: a listener may answer the
  request itself (the fault hooks answer with a throttling error, and moto never sees the request);
- ``after-call.dynamodb``: listeners hear of every successful write, in the thread that made it and before
  the SDK call returns (the saved state is written through, the stream mapping wakes up at once instead of
  waiting for its next poll).

The dispatchers are installed once per process and stay; listeners come and go with each local site.
Clients created before :func:`install` ran do not have them: the local site clears the handlers' cached
clients when it starts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore import handlers
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "ExecuteStatement",
     "BatchExecuteStatement", "ExecuteTransaction"}
)
"""DynamoDB operations that can change items, and so add records to the table's stream."""

BeforeSend = Callable[[str, dict[str, Any], AWSPreparedRequest], "AWSResponse | None"]
"""``listener(operation, params, request)``: return a response to answer the request, or ``None``."""
AfterWrite = Callable[[str], None]
"""``listener(operation)``: called after every successful write."""

_lock = threading.Lock()
_installed = False
_before_send: list[BeforeSend] = []
_after_write: list[AfterWrite] = []


def _operation(event_name: str) -> str:
    return event_name.rsplit(".", 1)[-1]


def _dispatch_before_send(request: AWSPreparedRequest, event_name: str = "", **_: Any) -> AWSResponse | None:
    return before_send(_operation(event_name), request)


def before_send(operation: str, request: AWSPreparedRequest) -> AWSResponse | None:
    """Ask the before-send listeners about one request of ``operation``: the first answer, or ``None``."""
    with _lock:
        listeners = list(_before_send)
    if not listeners:
        return None
    try:
        params = json.loads(request.body or b"{}")
    except ValueError:
        params = {}
    for listener in listeners:
        response = listener(operation, params, request)
        if response is not None:
            return response
    return None


def _dispatch_after_call(http_response: Any = None, event_name: str = "", **_: Any) -> None:
    operation = _operation(event_name)
    if operation not in WRITE_OPERATIONS or http_response is None or http_response.status_code >= 300:
        return
    notify_write(operation)


def notify_write(operation: str) -> None:
    """Tell the after-write listeners of a write (the functions' client, moto's HTTP server, TTL).

    Listeners run in the caller's thread, before the write's answer goes back: an exception of one (the
    counts could not be saved) reaches the caller, as an error of the request.
    """
    with _lock:
        listeners = list(_after_write)
    failure: BaseException | None = None
    for listener in listeners:
        try:
            listener(operation)
        except Exception as error:  # every listener hears of the write; the first failure is the caller's
            failure = failure or error
    if failure is not None:
        raise failure


def install() -> None:
    """Add the dispatchers to botocore's built-in handlers and to boto3's default session (once)."""
    global _installed
    with _lock:
        if _installed:
            return
        handlers.BUILTIN_HANDLERS.append(("before-send.dynamodb", _dispatch_before_send, handlers.REGISTER_FIRST))
        handlers.BUILTIN_HANDLERS.append(("after-call.dynamodb", _dispatch_after_call))
        if boto3.DEFAULT_SESSION is not None:
            # Sessions register built-in handlers when they are created: the default one may already exist.
            events = boto3.DEFAULT_SESSION._session.get_component("event_emitter")
            events.register_first("before-send.dynamodb", _dispatch_before_send)
            events.register("after-call.dynamodb", _dispatch_after_call)
        _installed = True


def add_before_send(listener: BeforeSend) -> None:
    """Let ``listener`` see (and perhaps answer) every DynamoDB request before moto does."""
    install()
    with _lock:
        _before_send.append(listener)


def add_after_write(listener: AfterWrite) -> None:
    """Call ``listener`` after every successful DynamoDB write."""
    install()
    with _lock:
        _after_write.append(listener)


def remove(listener: Callable[..., Any]) -> None:
    """Forget a listener added by either function above (no error if it is not there)."""
    with _lock:
        for registry in (_before_send, _after_write):
            while listener in registry:
                registry.remove(listener)
