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
- **Update expressions parsed and checked once.** moto parses an ``UpdateExpression`` twice per request
  (its request check and its backend) and, for an item it creates, validates it twice; three of its
  validators (one ``ADD``/``SET``/``REMOVE`` clause each, no overlapping paths, no key attribute) search the
  whole tree again at every node, quadratic in the expression's length: with the daily history's ``REMOVE``
  of thirty-odd days that was 80% of a new tag's visit. Here the parse is cached by the expression's text
  (moto never changes the parsed tree: its validator works on a deep copy), with the clause searches moto
  makes on it, and those three checks, which depend only on the expression, its attribute names and the
  table's keys, run once per combination that passed them (one that failed runs them again, and fails the
  same way). moto's tree walkers build their node-type table again at every node, and its validator copies
  the tree with ``copy.deepcopy``'s generic machinery; here each walker builds its table once, the copy is
  the tree's pickle, taken once per expression, loaded again (the same objects: 0.12 ms for a visit's
  expression, against 0.40 ms for a field-by-field copy), and a walker that looks at nothing but the nodes
  it processes skips a subtree holding none of their types (each node keeps the types below it). For an
  item it creates, moto validates on an empty item, then on the item just created from its key: that gives
  the same tree (moto refuses any path that starts with a key attribute, so every path resolves to nothing
  on both), and the first's is used. And what validation gives on an empty item depends only on the
  expression, its names and values and the table's keys and attribute types: the tree is kept, pickled,
  for each combination (a few per expression), and each new item gets its own copy (the executor may put
  a value of the tree into the item, which a later ``ADD`` changes in place). Each walker also keeps what
  ``issubclass`` answers for its node types across walks. A new tag's visit: 4.3 -> 2.6 ms of CPU in the site,
  side by side (an existing tag's 2.9 -> 2.8, a count page 1.9 either way);
  ``tests/localsite/test_moto_expressions.py`` shows moto's own answers, errors, items and stream records
  for the same requests.
- **Request dispatch without rework.** For every request moto lists a response class's methods
  (``inspect.getmembers``) and, served over HTTP, lists its own package folder on disk to find the backend for
  the host; here each is worked out once (an imported row: 2.5 -> 1.8 ms of the site's CPU).
- **One stream record for an update that creates its item.** moto's ``UpdateItem`` on an item that does not exist
  yet puts a key-only item first (an INSERT record with only the key), then applies the update (a second INSERT,
  the full image); DynamoDB writes one. Here the placeholder's record is not written: a new tag's visit is one
  record, as on AWS, and a batch can no longer split one visit in two.
- **The functions' client answered in-process.** moto intercepts boto3's clients, not the functions' own
  (``functions.dynamodb``, on the standard library): ``local_aws`` has the clients built inside it send through
  ``localsite.transport``, which hands each signed request to moto's dispatcher (no socket, no server).
- **Stream retention and TTL**, which moto does not do: :func:`trim_stream` drops records past DynamoDB's
  24-hour retention (and, since a local site may run for days under load, records every local consumer has
  read beyond the newest few); :func:`expire_items` deletes items past their TTL, as DynamoDB's TTL process
  does, with the ``userIdentity`` DynamoDB puts on those deletions' stream records.
"""

from __future__ import annotations

import copy
import functools
import gc
import json
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from moto import mock_aws
from moto.core import responses as moto_responses
from moto.core.botocore_stubber import BotocoreStubber
from moto.core.common_models import BaseModel
from moto.core.model_instances import reset_model_data
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import StreamShard, Table
from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.dynamodb.parsing.validators import (
    ActionCountValidator,
    OverlappingPathsValidator,
    UpdateExpressionValidator,
    UpdateHashRangeKeyValidator,
)
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
SWEEP_SLICE = 100
"""Expired items a TTL sweep deletes per hold of moto's lock (a few milliseconds)."""
SWEEP_PAUSE_SECONDS = 0.001
RELEASE_SLICE = 1000
"""Stream records trimmed are freed this many at a time (a millisecond or two each)."""
TTL_PRINCIPAL = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
"""The ``userIdentity`` of a stream record written by DynamoDB's TTL process (as the Streams API spells it)."""

_dispatch_lock = threading.RLock()
_stream_lock = threading.RLock()
"""Held to change a stream other than by appending (trimming it, undoing a cancelled transaction's records),
and to read it in-process: readers need not queue behind every moto request for ``_dispatch_lock``."""
_original_call = BotocoreStubber.__call__
_original_transact = DynamoDBBackend.transact_write_items
_original_update_item = DynamoDBBackend.update_item
_original_stream_add = StreamShard.add
_original_get_records = DynamoDBStreamsBackend.get_records
_original_new = BaseModel.__dict__["__new__"]
_original_parse = UpdateExpressionParser.__dict__["make"]
_original_validator_init = UpdateExpressionValidator.__init__
_original_validate = UpdateExpressionValidator.validate
_original_nodes_to_be_processed = DepthFirstTraverser.nodes_to_be_processed
_original_process = DepthFirstTraverser.process
_original_traverse = DepthFirstTraverser.traverse_node_recursively
_original_find_clauses = Node.find_clauses
_original_method_names = moto_responses.method_names_from_class
_ANSWERED = "_answered_before_moto"
PARSED_EXPRESSIONS_KEPT = 256
"""Distinct update expressions whose parse is kept (the site writes a few a day)."""
_STATIC_CHECKS = (ActionCountValidator, OverlappingPathsValidator, UpdateHashRangeKeyValidator)
"""moto's update-expression validators whose verdict depends only on the expression, names and table keys."""
_PASSED = "_static_checks_passed"
_PICKLED = "_pickled_once"
_TYPES = "_types_below"
_CLAUSES = "_clauses_found"
_ON_EMPTY = "_validated_on_an_empty_item"
EMPTY_ITEM_TREES_KEPT = 16
"""Per expression, validated trees kept for new items (one per day's values, for the site's visit)."""
_new_item = threading.local()
"""The tree moto's check before creating an item gave, for its check of the item it then creates."""
_TYPE_SETS: dict[frozenset[type], frozenset[type]] = {}
_KINDS: dict[tuple[type, ...], dict[type, tuple[bool, bool]]] = {}
_WANTED: dict[tuple[type, ...], dict[frozenset[type], bool]] = {}
"""Every distinct set of node types a subtree has held (a few dozen): one object each, pickled once per tree."""
_updating = threading.local()
"""``creating``: this thread is in ``UpdateItem``, whose placeholder item, if it puts one, gets no stream record."""


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


def _update_item_writing_one_record(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Item:
    _updating.creating = True
    try:
        return _original_update_item(self, *args, **kwargs)
    finally:
        _updating.creating = False


def _add_unless_placeholder(self: StreamShard, old: Item | None, new: Item | None) -> None:
    if old is None and getattr(_updating, "creating", False):
        _updating.creating = False  # moto's key-only placeholder, put before the update is applied
        return
    _original_stream_add(self, old, new)


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
    _stream_lock.acquire()  # its records may be taken back: no in-process reader may see them meanwhile
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
        _stream_lock.release()
        del Table.__deepcopy__  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=PARSED_EXPRESSIONS_KEPT)
def _parse_once(expression: str) -> Any:
    tree = _original_parse.__func__(UpdateExpressionParser, expression)
    _types_below(tree)
    setattr(tree, _PICKLED, pickle.dumps(tree, pickle.HIGHEST_PROTOCOL))  # taken before: copies do not carry it
    tree.__dict__[_CLAUSES] = {}
    return tree


def _cached_parse(cls: type, expression: str) -> Any:
    return _parse_once(expression)


class _CopiedByUnpickling:
    """Stands for a parsed tree where moto's validator deep-copies it: the copy is its pickle loaded again."""

    def __init__(self, pickled: bytes) -> None:
        self.pickled = pickled

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return pickle.loads(self.pickled)


def _validator_init(self: UpdateExpressionValidator, expression: Any, expression_attribute_names: Any,
                    expression_attribute_values: Any, item: Item, table: Table) -> None:
    self._parsed = expression  # type: ignore[attr-defined]
    self._reused = _validated_before_creating(  # type: ignore[attr-defined]
        expression, expression_attribute_names, expression_attribute_values, item, table)
    pickled = getattr(expression, _PICKLED, None)
    self._on_empty = None  # type: ignore[attr-defined]
    if self._reused is None and pickled is not None and not item.attrs:
        self._on_empty = _empty_item_key(expression_attribute_names, expression_attribute_values, table)
        kept = expression.__dict__.setdefault(_ON_EMPTY, {}).get(self._on_empty)
        self._reused = None if kept is None else pickle.loads(kept)
    copied = None if self._reused is not None else expression if pickled is None else _CopiedByUnpickling(pickled)
    _original_validator_init(self, copied, expression_attribute_names, expression_attribute_values, item, table)


def _empty_item_key(names: Any, values: Any, table: Table) -> Any:
    """What moto's validation of an expression on an empty item depends on, besides the expression."""
    try:
        return (json.dumps(names, sort_keys=True), json.dumps(values, sort_keys=True),
                tuple(table.table_key_attrs), tuple(table.attribute_keys), json.dumps(table.attr, sort_keys=True))
    except (TypeError, ValueError):
        return None


def _validated_before_creating(expression: Any, names: Any, values: Any, item: Item, table: Table) -> Any:
    """The tree of moto's check of a new item's expression before creating it, for its check of the item it
    created from the same request, holding its key alone: the same tree. moto refuses a path that starts
    with a key attribute (``UpdateHashRangeKeyValidator``), so every path resolves alike on both: to nothing."""
    before, _new_item.validated = getattr(_new_item, "validated", None), None
    if before is None or not all(mine is theirs for mine, theirs in zip(before, (expression, names, values, table))):
        return None
    return before[4] if set(item.attrs) <= set(table.table_key_attrs) else None


def _validate_checking_once(self: UpdateExpressionValidator) -> Any:
    parsed = getattr(self, "_parsed", None)
    node = getattr(self, "_reused", None)
    if node is None:
        node = _validate(self, parsed)
        on_empty = getattr(self, "_on_empty", None)
        if on_empty is not None:
            kept = parsed.__dict__.setdefault(_ON_EMPTY, {})
            if len(kept) >= EMPTY_ITEM_TREES_KEPT:
                kept.clear()
            kept[on_empty] = pickle.dumps(node, pickle.HIGHEST_PROTOCOL)
    if parsed is not None and not self.item.attrs:  # moto's check before it creates the item
        _new_item.validated = (parsed, self.expression_attribute_names, self.expression_attribute_values,
                               self.table, node)
    return node


def _validate(self: UpdateExpressionValidator, parsed: Any) -> Any:
    key = (tuple(sorted((self.expression_attribute_names or {}).items())), tuple(self.table.table_key_attrs))
    passed: set[Any] | None = getattr(parsed, _PASSED, None) if parsed is not None else None
    node = self.node_to_validate
    for processor in self.processors:
        if isinstance(processor, _STATIC_CHECKS):
            if passed is not None and key in passed:
                continue
        elif parsed is not None and (passed is None or key not in passed):
            # Every static check has passed for this expression (they come first in moto's list).
            passed = getattr(parsed, _PASSED, None) or set()
            passed.add(key)
            setattr(parsed, _PASSED, passed)
        node = processor.traverse(node)
    return node


def _find_clauses_once(self: Node, clause_types: list[type]) -> list[Any]:
    """moto's search of a tree for clauses, remembered on a shared parse (which nothing changes)."""
    found = self.__dict__.get(_CLAUSES)
    if found is None:
        return _original_find_clauses(self, clause_types)
    key = tuple(clause_types)
    if key not in found:
        found[key] = tuple(_original_find_clauses(self, clause_types))
    return list(found[key])


def _processing_map_once(self: DepthFirstTraverser) -> dict[type, Callable[[Any], Any]]:
    found = self.__dict__.get("_processing_map_once")
    if found is None:
        found = self.__dict__["_processing_map_once"] = self._processing_map()
    return found


def _nodes_to_be_processed_once(self: DepthFirstTraverser) -> tuple[type, ...]:
    found = self.__dict__.get("_node_types_once")
    if found is None:
        found = self.__dict__["_node_types_once"] = tuple(_processing_map_once(self))
    return found


def _process_with_map_once(self: DepthFirstTraverser, node: Any) -> Any:
    for node_type, processor in _processing_map_once(self).items():
        if isinstance(node, node_type):
            return processor(node)
    return None


def _types_below(node: Node) -> frozenset[type]:
    """The node types in a subtree, itself included (kept on each node; one set object per distinct set)."""
    found = node.__dict__.get(_TYPES)
    if found is None:
        kinds = {type(node)}
        for child in node.children or ():
            if isinstance(child, Node):
                kinds |= _types_below(child)
        found = node.__dict__[_TYPES] = _TYPE_SETS.setdefault(frozenset(kinds), frozenset(kinds))
    return found


def _traverse_with_map_once(self: DepthFirstTraverser, node: Any, child_id: int = -1) -> Any:
    """moto's depth-first walk (children first, each processed node put in its parent's place), in one frame.

    A walker with no ``pre_processing_of_child`` (its work depends on nothing but the nodes it processes)
    skips a subtree holding no node of a type it processes: it would leave it as it is. Each node keeps
    the types below it (:func:`_types_below`), set again on the way back up wherever a node was replaced.
    """
    node_types = _nodes_to_be_processed_once(self)
    pre = self.pre_processing_of_child
    if getattr(pre, "__func__", None) is DepthFirstTraverser.pre_processing_of_child:
        pre = None
    process = self.process
    # isinstance and issubclass are slow on moto's ABCs: what they answer is kept for each walker's node types
    kinds = _KINDS.setdefault(node_types, {})  # a type's (is a node, is processed)
    wanted = _WANTED.setdefault(node_types, {})  # a subtree's types: whether any is processed

    def walk(node: Any, child_id: int) -> tuple[Any, bool]:
        kind = type(node)
        known = kinds.get(kind)
        if known is None:
            known = kinds[kind] = (issubclass(kind, Node), issubclass(kind, node_types))
        if not known[0]:
            return node, False
        below = node.__dict__.get(_TYPES)
        if pre is None and below is not None:
            found = wanted.get(below)
            if found is None:
                found = wanted[below] = any(issubclass(each, node_types) for each in below)
            if not found:
                return node, False
        changed = below is None
        parent = node.parent
        if node.children is not None:
            for index, child in enumerate(node.children):
                if pre is not None:
                    pre(node, index)
                if walk(child, index)[1]:
                    changed = True
        if known[1]:
            processed = process(node)
            processed.parent = parent
            if parent:
                parent.children[child_id] = processed
            changed = changed or processed is not node
            node = processed
        if changed:
            node.__dict__.pop(_TYPES, None)
            _types_below(node)
        return node, changed

    return walk(node, child_id)[0]


@functools.lru_cache(maxsize=None)
def _method_names_once(cls: type) -> frozenset[str]:
    """moto's list of a response class's methods (``inspect.getmembers``, for every request), made once."""
    return frozenset(_original_method_names(cls))


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
    DynamoDBBackend.update_item = _update_item_writing_one_record  # type: ignore[method-assign]
    StreamShard.add = _add_unless_placeholder  # type: ignore[method-assign]
    DynamoDBStreamsBackend.get_records = _get_records_forgetting_the_iterator  # type: ignore[method-assign]
    BaseModel.__new__ = staticmethod(_untracked_new)  # type: ignore[assignment]
    UpdateExpressionParser.make = classmethod(_cached_parse)  # type: ignore[method-assign,assignment]
    UpdateExpressionValidator.__init__ = _validator_init  # type: ignore[method-assign]
    UpdateExpressionValidator.validate = _validate_checking_once  # type: ignore[method-assign]
    DepthFirstTraverser.nodes_to_be_processed = _nodes_to_be_processed_once  # type: ignore[method-assign]
    DepthFirstTraverser.process = _process_with_map_once  # type: ignore[method-assign]
    DepthFirstTraverser.traverse_node_recursively = _traverse_with_map_once  # type: ignore[method-assign]
    Node.find_clauses = _find_clauses_once  # type: ignore[method-assign]
    moto_responses.method_names_from_class = _method_names_once  # type: ignore[assignment]
    reset_model_data()  # what earlier code (tests) left tracked
    from functions import dynamodb
    from localsite.transport import moto_transport

    previous_transport = dynamodb.use_transport(moto_transport)  # the functions' clients built from now on
    try:
        with mock_aws():
            yield
    finally:
        dynamodb.use_transport(previous_transport)
        BotocoreStubber.__call__ = _original_call  # type: ignore[method-assign]
        DynamoDBBackend.transact_write_items = _original_transact  # type: ignore[method-assign]
        DynamoDBBackend.update_item = _original_update_item  # type: ignore[method-assign]
        StreamShard.add = _original_stream_add  # type: ignore[method-assign]
        DynamoDBStreamsBackend.get_records = _original_get_records  # type: ignore[method-assign]
        BaseModel.__new__ = _original_new  # type: ignore[assignment]
        UpdateExpressionParser.make = _original_parse  # type: ignore[method-assign]
        UpdateExpressionValidator.__init__ = _original_validator_init  # type: ignore[method-assign]
        UpdateExpressionValidator.validate = _original_validate  # type: ignore[method-assign]
        DepthFirstTraverser.nodes_to_be_processed = _original_nodes_to_be_processed  # type: ignore[method-assign]
        DepthFirstTraverser.process = _original_process  # type: ignore[method-assign]
        DepthFirstTraverser.traverse_node_recursively = _original_traverse  # type: ignore[method-assign]
        Node.find_clauses = _original_find_clauses  # type: ignore[method-assign]
        moto_responses.method_names_from_class = _original_method_names  # type: ignore[assignment]


def _table(table_name: str) -> Table:
    return dynamodb_backends[ACCOUNT_ID][REGION].get_table(table_name)


def _epoch(moment: datetime) -> float:
    # moto stamps records with naive UTC datetimes.
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def stream_end(table_name: str) -> int:
    """The sequence number the table's next stream record will get."""
    with _stream_lock:  # moto appends a record in one step; everything else changing the stream holds this
        shard = _table(table_name).stream_shard
        assert shard is not None, "the table has no stream"
        return shard.starting_sequence_number + len(shard.items)


def load_items(table_name: str, items: Iterable[dict[str, Any]]) -> int:
    """Put items (DynamoDB JSON) into a table as if it had always held them, and return how many.

    For the saved state at start: no stream record is written (DynamoDB's stream holds changes, not an item
    written before the stream was read, and moto would keep each with its image: 686 MB on 200,000 tags
    against 307 MB before the stop) and no request is made (8,000 ``BatchWriteItem`` calls took a minute on
    200,000 tags; this takes about 10 us an item). The items were read back from this table: valid as they are.

    They live as long as the table, so they are then moved out of the garbage collector's way
    (``gc.freeze``): each full collection would otherwise walk every one of them, stalling every request
    (330 ms on 250,000 items; 100 ms for what a run adds since).
    """
    count = 0
    collecting = gc.isenabled()
    gc.disable()  # what is made here all lives on: collections while making it would only walk it, again and again
    try:
        with _dispatch_lock, _stream_lock:
            table = _table(table_name)
            assert table.range_key_attr is None, "tag-counter's table has a partition key only"
            for attributes in items:
                key = DynamoType(attributes[table.hash_key_attr])
                item = table.items[key] = Item(key, None, {})
                # moto's own construction checks the item's size again at each attribute, over every attribute
                # before it (three quarters of a restart's time): these were checked when they were written.
                dict.update(item.attrs, {name: DynamoType(value) for name, value in attributes.items()})
                count += 1
    finally:
        # One full collection first (about 0.3 s on 200,000 items): it frees the start's garbage, so none is
        # frozen, and makes the collector count these items as long-lived, so that full collections stay as rare
        # as a heap this size makes them. Without it they came every few thousand new objects: the slowest read
        # during a sweep of 50,000 markers among 200,000 tags was 44-60 ms, against 37 ms with it.
        gc.collect()
        gc.freeze()
        if collecting:
            gc.enable()
    return count


class StreamReader:
    """Reads a table's stream in order, in this process, without the Streams API: from its oldest record kept
    (``TRIM_HORIZON``) or from its end (``LATEST``).

    For every local consumer (the processor's event source mapping, the saved state, which reads the stream
    within every write): ``GetRecords`` through boto3 and moto serialises each record to JSON and back (4 ms a
    call, measured; a third of the site's CPU while it imports or counts new tags), where this hands out
    moto's own records in the form boto3 returns them (``ApproximateCreationDateTime`` an aware UTC
    ``datetime``). Each record and its ``dynamodb`` map are copies; the images inside are the stream's: read
    them, never change them. The operator command reads the site's stream through the API, as on AWS.
    """

    def __init__(self, table_name: str, position: str = "LATEST") -> None:
        if position not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError(f"a stream position is TRIM_HORIZON or LATEST, not {position!r}")
        self.table_name = table_name
        self._next = 0 if position == "TRIM_HORIZON" else stream_end(table_name)
        with _stream_lock:
            shard = _table(table_name).stream_shard
            assert shard is not None, "the table has no stream"
            self.shard_id: str = shard.id
            """The one shard's id, as ``DescribeStream`` gives it (moto gives a table one shard)."""
        self.position: int | None = None
        """The sequence number of the last record read (``None`` before the first)."""

    def read(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The next records (up to ``limit``; empty at the end of the stream)."""
        with _stream_lock:
            shard = _table(self.table_name).stream_shard
            assert shard is not None, "the table has no stream"
            start = max(self._next, shard.starting_sequence_number)  # records past retention are gone
            records = shard.get(start, limit)
        if records:
            self.position = int(records[-1]["dynamodb"]["SequenceNumber"])
            self._next = self.position + 1
        return [_as_boto3_returns(record) for record in records]


def _as_boto3_returns(record: dict[str, Any]) -> dict[str, Any]:
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime) and created.tzinfo is None:
        dynamodb["ApproximateCreationDateTime"] = created.replace(tzinfo=timezone.utc)  # moto's are naive UTC
    return {**record, "dynamodb": dynamodb}


def trim_stream(table_name: str, *, read_by: int | None, keep: int, now: float) -> int:
    """Drop stream records as DynamoDB's retention would, and those every local consumer has read.

    Records older than :data:`STREAM_RETENTION_SECONDS` go, read or not (as in DynamoDB). Of the records up
    to sequence number ``read_by`` (every consumer's position; ``None``: keep them), all but the newest
    ``keep`` go too, so a replay of a recent batch still finds its records. Returns how many were dropped.
    """
    with _dispatch_lock, _stream_lock:
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
        dropped = records[:drop] if drop > 0 else []
        if drop > 0:
            del records[:drop]
            shard.starting_sequence_number += drop
    # Freed outside the locks, a slice at a time: tens of thousands of records freed at once hold the
    # interpreter for 100 ms and more.
    while dropped:
        del dropped[-RELEASE_SLICE:]
    return max(drop, 0)


def expire_items(table_name: str, now: float) -> list[dict[str, Any]]:
    """Delete the items whose TTL attribute is a time before ``now``, as DynamoDB's TTL process does.

    Each deletion writes a ``REMOVE`` stream record with the TTL process's ``userIdentity``. Only a table
    with TTL enabled is swept, by the attribute it names; a value that is not a number is left alone (as
    DynamoDB does). Returns the deleted items' keys, in DynamoDB JSON.

    Requests wait for the sweep only briefly (:data:`SWEEP_SLICE`): the items are listed under moto's lock
    (a copy of the table's index, not moto's sorted ``all_items``: 1.6 s of stall on 250,000 items), looked
    at without it, and deleted a slice at a time, each item checked again first (a write since may have
    moved its expiry or deleted it).
    """
    with _dispatch_lock:
        table = _table(table_name)
        if table.ttl.get("TimeToLiveStatus") != "ENABLED" or "AttributeName" not in table.ttl:
            return []
        attribute = table.ttl["AttributeName"]
        if table.range_key_attr is None:
            listed: list[Item] = list(table.items.values())
        else:
            listed = [item for held in table.items.values() for item in held.values()]
    expired = [item for item in listed if _expired(item, attribute, now)]
    keys = []
    for start in range(0, len(expired), SWEEP_SLICE):
        if start:
            time.sleep(SWEEP_PAUSE_SECONDS)  # the lock goes to waiting requests, not straight back to the sweep
        with _dispatch_lock, _stream_lock:
            for item in expired[start:start + SWEEP_SLICE]:
                current = table.get_item(item.hash_key, item.range_key)
                if current is None or not _expired(current, attribute, now):
                    continue
                keys.append({name: value for name, value in current.to_json()["Attributes"].items()
                             if name in (table.hash_key_attr, table.range_key_attr)})
                table.delete_item(current.hash_key, current.range_key)
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
    in-process writes call the after-write listeners: the stream mapping wakes, the counts are saved.
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
        class HostsRemembered(DomainDispatcherApplication):  # type: ignore[misc]
            """moto's dispatcher, remembering which backend serves a host: moto lists its package folder on
            disk to find out, for every request (a tenth of an imported row's time in the site)."""

            def get_backend_for_host(self, host: str | None) -> Any:
                known = self.__dict__.setdefault("_backends", {})
                if host not in known:
                    known[host] = super().get_backend_for_host(host)
                return known[host]

        app = HostsRemembered(create_backend_app)
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


