"""The store's interface: etcd v3 semantics as value types and a Protocol.

A second backend (a real etcd) implements `Store` in a new module; nothing
here knows about disks. All values are frozen attrs classes so that results
can be kept, compared and hashed without defensive copies.

Revisions follow etcd: one global revision, bumped once per transaction that
writes (a read-only or failed-compare-only transaction does not bump it). Each
key carries its create revision, mod revision and version; deleting a key
resets it, so a recreated key starts again at version 1.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal, Protocol, Union

import attrs

from engine.errors import Diagnostic, KonvergeError

# --- values ----------------------------------------------------------------


@attrs.frozen(slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


@attrs.frozen(slots=True)
class Event:
    """One change. For a DELETE, `kv` holds only the key and the revision of
    the delete (as etcd does) and `prev_kv` holds what was deleted."""

    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev_kv: KeyValue | None = None


# --- transaction operations ---------------------------------------------------

_TARGETS = ("value", "version", "create", "mod")
_OPS = ("==", "!=", "<", ">")


@attrs.frozen(slots=True)
class Compare:
    """A guard on one key. On a missing key, version/create/mod read as 0 and a
    `value` compare is false whatever the op (etcd's rule)."""

    key: str
    target: Literal["value", "version", "create", "mod"]
    op: Literal["==", "!=", "<", ">"]
    operand: bytes | int = 0

    def __attrs_post_init__(self) -> None:
        # as attrs.validators.in_ words it, at a fraction of its cost: every update makes one
        if self.target not in _TARGETS:
            raise ValueError(f"'target' must be in {_TARGETS!r} (got {self.target!r})")
        if self.op not in _OPS:
            raise ValueError(f"'op' must be in {_OPS!r} (got {self.op!r})")


@attrs.frozen(slots=True)
class Put:
    key: str
    value: bytes
    lease: int = 0


@attrs.frozen(slots=True)
class Delete:
    key: str
    prefix: bool = False


@attrs.frozen(slots=True)
class Range:
    key: str
    prefix: bool = False
    revision: int | None = None
    limit: int | None = None


Op = Union[Put, Delete, Range]


@attrs.frozen(slots=True)
class Txn:
    """A transaction as a value, for `txn_many` (group commit)."""

    compares: tuple[Compare, ...] = attrs.field(default=(), converter=tuple)
    success: tuple[Op, ...] = attrs.field(default=(), converter=tuple)
    failure: tuple[Op, ...] = attrs.field(default=(), converter=tuple)


# --- results -----------------------------------------------------------------


@attrs.frozen(slots=True)
class RangeResult:
    kvs: tuple[KeyValue, ...]
    revision: int  # the store's revision when the read was served
    count: int  # matching keys, before `limit`
    more: bool  # True when `limit` cut the result short


@attrs.frozen(slots=True)
class PutResult:
    revision: int
    prev_kv: KeyValue | None


@attrs.frozen(slots=True)
class DeleteResult:
    revision: int
    deleted: int
    prev_kvs: tuple[KeyValue, ...]


@attrs.frozen(slots=True)
class TxnResult:
    succeeded: bool
    revision: int  # the revision the transaction's writes got, or the current one
    responses: tuple[RangeResult | PutResult | DeleteResult, ...]


# --- errors ------------------------------------------------------------------


class StoreError(KonvergeError):
    """Base of the store's user-facing errors."""

    def __init__(self, message: str, file: str | None = None):
        super().__init__(Diagnostic(code="E000", message=message, file=file))


class Compacted(StoreError):
    def __init__(self, requested: int, compact_revision: int, what: str = "read at"):
        self.requested = requested
        self.compact_revision = compact_revision
        super().__init__(
            f"cannot {what} revision {requested}: history before revision "
            f"{compact_revision} has been compacted; use revision {compact_revision} or later"
        )


class FutureRevision(StoreError):
    def __init__(self, requested: int, current: int):
        self.requested = requested
        self.current = current
        super().__init__(f"revision {requested} does not exist yet: the store is at revision {current}")


class LeaseNotFound(StoreError):
    def __init__(self, lease: int):
        self.lease = lease
        super().__init__(f"lease {lease} does not exist (never granted, revoked, or expired)")


class TxnConflict(StoreError):
    """A transaction that writes the same key twice (etcd refuses it too)."""


class StoreCorrupted(StoreError):
    def __init__(self, path: str, offset: int | None, reason: str):
        self.path = path
        self.offset = offset
        where = f"{path} at byte offset {offset}" if offset is not None else path
        super().__init__(
            f"store data is corrupted in {where}: {reason}; restore the data directory from a backup",
            file=path,
        )


class StoreLocked(StoreError):
    pass


class StoreFormatError(StoreError):
    pass


class StoreWriteFailed(StoreError):
    pass


class StoreClosed(StoreError):
    def __init__(self) -> None:
        super().__init__("the store is closed")


# --- the interface -------------------------------------------------------------


class Watcher(Protocol):
    """A cursor over the store's history of changes under one prefix.

    Non-blocking: `poll()` returns the events that exist now and have not been
    returned yet, in revision order; iterating does the same.
    """

    @property
    def next_revision(self) -> int: ...

    def poll(self) -> list[Event]: ...

    def skip(self, revision: int) -> None:
        """Take note that no event through `revision` is under the prefix but those returned."""

    def __iter__(self) -> Iterator[Event]: ...

    def cancel(self) -> None: ...

    @property
    def cancelled(self) -> bool: ...


class Store(Protocol):
    @property
    def revision(self) -> int: ...

    @property
    def compact_revision(self) -> int: ...

    def range(
        self, key: str, *, prefix: bool = False, revision: int | None = None, limit: int | None = None
    ) -> RangeResult: ...

    def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult: ...

    def put(self, key: str, value: bytes, *, lease: int = 0) -> PutResult: ...

    def delete(self, key: str, *, prefix: bool = False) -> DeleteResult: ...

    def watch(self, prefix: str, start_revision: int | None = None) -> Watcher: ...

    def lease_grant(self, ttl: float) -> int: ...

    def lease_keepalive(self, lease: int) -> None: ...

    def lease_revoke(self, lease: int) -> None: ...

    def expire_leases(self) -> list[int]: ...

    def compact(self, revision: int) -> None: ...

    def close(self) -> None: ...
