"""The etcd-like store: `open_store()` for the embedded implementation.

The interface (`Store`, `Watcher`) and value types live in `base`; a second
backend implements the same Protocol in its own module.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from engine.store.base import (
    Compacted,
    Compare,
    Delete,
    DeleteResult,
    Event,
    FutureRevision,
    KeyValue,
    LeaseNotFound,
    Op,
    Put,
    PutResult,
    Range,
    RangeResult,
    Store,
    StoreClosed,
    StoreCorrupted,
    StoreError,
    StoreFormatError,
    StoreLocked,
    StoreWriteFailed,
    Txn,
    TxnConflict,
    TxnResult,
    Watcher,
)
from engine.store.embedded import EmbeddedStore, EmbeddedWatcher
from engine.store.keys import kind_prefix, object_key


def open_store(
    data_dir: str | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    snapshot_every: int = 10_000,
    read_only: bool = False,
) -> EmbeddedStore:
    """The embedded store: in memory, or persisted in `data_dir` (created if
    missing). `clock` is the engine's clock for lease expiry. `read_only`
    reads an existing `data_dir` without locking or changing it."""
    return EmbeddedStore(data_dir, clock=clock, snapshot_every=snapshot_every, read_only=read_only)


__all__ = [
    "Compacted",
    "Compare",
    "Delete",
    "DeleteResult",
    "EmbeddedStore",
    "EmbeddedWatcher",
    "Event",
    "FutureRevision",
    "KeyValue",
    "LeaseNotFound",
    "Op",
    "Put",
    "PutResult",
    "Range",
    "RangeResult",
    "Store",
    "StoreClosed",
    "StoreCorrupted",
    "StoreError",
    "StoreFormatError",
    "StoreLocked",
    "StoreWriteFailed",
    "Txn",
    "TxnConflict",
    "TxnResult",
    "Watcher",
    "kind_prefix",
    "object_key",
    "open_store",
]
