"""Counts that survive a restart of the local site: tag items kept in SQLite in the state directory.

moto keeps everything in memory. A second consumer of the table's stream (DynamoDB allows two per shard,
beside the processor's mapping) copies every tag item's new image to ``<state dir>/tags.sqlite3`` as soon as
the write happens (each write through boto3 wakes it), and deletes removed items. It does not depend on the
processor: a poison batch or a fault that stalls the total never stalls what is saved.

At the next start the saved tag items are written back before the stream mapping starts, the mapping starts
after them (they must not be counted again), and the total is recomputed from them with
``admin.reconcile.reconcile``. Stream records still in flight when the site stopped were never durable
locally; the reconcile makes the total exact again anyway. Only tag items are saved: the total is derived,
and the processor's idempotency markers are only needed for records that no longer exist.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from functions.keys import PARTITION_KEY, TAG_PREFIX
from localsite.esm import ShardReader

log = logging.getLogger("localsite.state")

STATE_FILE = "tags.sqlite3"


class StateStore:
    """The saved tag items: one row per item, its DynamoDB JSON as written by the table."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / STATE_FILE
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS items (pk TEXT PRIMARY KEY, item TEXT NOT NULL)")

    def clear(self) -> None:
        """Forget every saved item (``--fresh``)."""
        with self._lock:
            self._db.execute("DELETE FROM items")

    def items(self) -> Iterator[dict[str, Any]]:
        """The saved items, in DynamoDB JSON."""
        with self._lock:
            rows = self._db.execute("SELECT item FROM items ORDER BY pk").fetchall()
        for (item,) in rows:
            yield json.loads(item)

    def apply(self, records: list[dict[str, Any]]) -> int:
        """Save the effect of stream records on tag items, in one transaction; return how many counted."""
        changes: list[tuple[str, dict[str, Any] | None]] = []
        for record in records:
            pk = record["dynamodb"].get("Keys", {}).get(PARTITION_KEY, {}).get("S", "")
            if not pk.startswith(TAG_PREFIX):
                continue
            new_image = record["dynamodb"].get("NewImage") if record["eventName"] != "REMOVE" else None
            changes.append((pk, new_image))
        if not changes:
            return 0
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for pk, image in changes:
                    if image is None:
                        self._db.execute("DELETE FROM items WHERE pk = ?", (pk,))
                    else:
                        self._db.execute(
                            "INSERT INTO items (pk, item) VALUES (?, ?) ON CONFLICT(pk) DO UPDATE SET item = excluded.item",
                            (pk, json.dumps(image, sort_keys=True)),
                        )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(changes)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def restore(store: StateStore, client: Any, table_name: str) -> int:
    """Write the saved tag items into the (new, empty) table; return how many there were."""
    items = list(store.items())
    for start in range(0, len(items), 25):  # BatchWriteItem's limit
        pending: dict[str, Any] = {table_name: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return len(items)


class StatePersister:
    """The stream consumer that keeps :class:`StateStore` up to date, on its own thread."""

    def __init__(self, store: StateStore, streams_client: Any, stream_arn: str, idle_interval: float = 1.0) -> None:
        self.store = store
        self._reader = ShardReader(streams_client, stream_arn, "LATEST")
        self._idle_interval = idle_interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="state-persister", daemon=True)
        self.saved = 0

    def start(self) -> None:
        self._thread.start()

    def wake(self, *_: Any) -> None:
        """Read the stream now (a write just happened)."""
        self._wake.set()

    def catch_up(self) -> int:
        """Save everything written so far; return how many tag records that was."""
        saved = 0
        with self._lock:
            while True:
                records = self._reader.read()
                if not records:
                    break
                saved += self.store.apply(records)
            self.saved += saved
        return saved

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._idle_interval)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self.catch_up()
            except Exception:  # keep saving later writes; the reconcile at the next start repairs the total
                log.exception("saving the counts failed")

    def stop(self) -> None:
        """Save what is left, then stop."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(10)
        self.catch_up()
