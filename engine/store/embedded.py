"""The embedded store: in-process MVCC, optionally persisted to a data directory.

Objects live under Kubernetes' key layout, `/registry/<kind>/<namespace>/<name>`
(cluster-scoped kinds: `/registry/<kind>/<name>`; see `keys.object_key`), so a
kind or a namespace is a prefix range. Values are opaque bytes (callers store
JSON of attrs objects).

Memory layout, after etcd's mvcc: per key, the list of its (revision,
sub-revision) stamps and the KeyValue written at each (None for a delete); the
live KeyValue of every key for reads at the current revision; a sorted key
list for prefix ranges; and one event log that watchers hold positions in, so
a write costs nothing per watcher.

Durability (with a data_dir): each write transaction is one checksummed log
record, and a call returns only after its record is fsynced. `txn_many`
shares one fsync among many transactions (group commit). Writes are applied
to memory first and rolled back if the log write fails, so a failed write
changes nothing that readers can see. Snapshots are taken every so many
records (`snapshot_every`, and at least as many as there are live keys) and
cut the log.

Read-only (`read_only=True`, for `konverge get` beside a running writer):
the snapshot and log are replayed in memory, no lock is taken, nothing on disk
changes, leases never expire, and every write raises.

Deliberate differences from etcd:
- reads (Range ops) inside a transaction see the state before the
  transaction's writes, like its compares;
- compacting at or below the current compact revision is a no-op;
- after a restart every lease gets its full TTL again (etcd does the same on
  a leader change) because the clock is not persisted.
"""

from __future__ import annotations

import heapq
import json
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence

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
    StoreClosed,
    StoreCorrupted,
    StoreError,
    Txn,
    TxnConflict,
    TxnResult,
)
from engine.store.wal import DataDir

_SUB_BITS = 32
_SUB_MAX = (1 << _SUB_BITS) - 1
_NO_VALUE = b""


def _tombstone(key: str, revision: int) -> KeyValue:
    return KeyValue(key, _NO_VALUE, 0, revision, 0, 0)


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _compare(actual: object, op: str, operand: object) -> bool:
    if op == "==":
        return actual == operand
    if op == "!=":
        return actual != operand
    if op == "<":
        return actual < operand  # type: ignore[operator]
    return actual > operand  # type: ignore[operator]


class EmbeddedStore:
    def __init__(
        self,
        data_dir: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        snapshot_every: int = 10_000,
        read_only: bool = False,
    ):
        self._read_only = read_only
        self._clock = clock
        self._snapshot_every = snapshot_every
        self._rev = 0
        self._compact = 0
        # key -> (stamps, values); stamp = revision << 32 | sub-revision
        self._hist: dict[str, tuple[list[int], list[KeyValue | None]]] = {}
        self._live: dict[str, KeyValue] = {}
        self._keys: list[str] = []  # sorted; keys with any history
        self._new_keys: list[str] = []  # merged into _keys on the next prefix range
        self._events: list[Event] = []
        self._event_revs: list[int] = []
        self._events_base = 0  # absolute position of _events[0]; watchers hold absolute positions
        self._lease_ttl: dict[int, float] = {}
        self._lease_deadline: dict[int, float] = {}
        self._lease_keys: dict[int, set[str]] = {}
        self._lease_heap: list[tuple[float, int]] = []  # may hold stale entries
        self._next_lease = 1
        self._closed = False
        self._disk: DataDir | None = None
        self._since_snapshot = 0
        if data_dir is not None:
            try:
                disk = DataDir(data_dir, read_only=read_only)
            except OSError as e:
                raise StoreError(f"cannot open the data directory {data_dir}: {e.strerror or e}", file=data_dir) from None
            try:
                self._recover(disk)
            except OSError as e:
                disk.close()
                raise StoreError(f"cannot read the data directory {data_dir}: {e.strerror or e}", file=data_dir) from None
            except BaseException:
                disk.close()
                raise
            self._disk = disk

    # --- reads ----------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._rev

    @property
    def compact_revision(self) -> int:
        return self._compact

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def data_dir(self) -> str | None:
        return self._disk.path if self._disk else None

    def range(
        self, key: str, *, prefix: bool = False, revision: int | None = None, limit: int | None = None
    ) -> RangeResult:
        self._check_open()
        self._expire()
        if revision is None and not prefix:  # most reads: one key, now (an update reads what it replaces)
            kv = self._live.get(key)
            return RangeResult(() if kv is None else (kv,), self._rev, 0 if kv is None else 1, False)
        return self._range(key, prefix, revision, limit)

    def _range(self, key: str, prefix: bool, revision: int | None, limit: int | None) -> RangeResult:
        at = self._read_revision(revision)
        if not prefix:
            kv = self._live.get(key) if at is None else self._at(key, at)
            kvs: tuple[KeyValue, ...] = () if kv is None else (kv,)
            return RangeResult(kvs, self._rev, len(kvs), False)
        keys = self._sorted_keys()
        out: list[KeyValue] = []
        count = 0
        live = self._live
        for i in range(bisect_left(keys, key), len(keys)):
            k = keys[i]
            if not k.startswith(key):
                break
            kv = live.get(k) if at is None else self._at(k, at)
            if kv is not None:
                count += 1
                if not limit or len(out) < limit:
                    out.append(kv)
        return RangeResult(tuple(out), self._rev, count, len(out) < count)

    def _read_revision(self, revision: int | None) -> int | None:
        """None for the current revision, else a checked past revision."""
        if revision is None or revision == self._rev or revision == 0:
            return None
        if revision > self._rev:
            raise FutureRevision(revision, self._rev)
        if revision < 0:
            raise StoreError(f"revision {revision} is negative; revisions start at 1")
        if revision < self._compact:
            raise Compacted(revision, self._compact)
        return revision

    def _at(self, key: str, revision: int) -> KeyValue | None:
        hist = self._hist.get(key)
        if hist is None:
            return None
        i = bisect_right(hist[0], revision << _SUB_BITS | _SUB_MAX) - 1
        return hist[1][i] if i >= 0 else None

    def _sorted_keys(self) -> list[str]:
        if self._new_keys:
            self._keys.extend(self._new_keys)
            self._keys.sort()  # timsort: linear on a sorted run plus a few new keys
            self._new_keys.clear()
        return self._keys

    # --- writes ---------------------------------------------------------------

    def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult:
        self._check_open()
        self._check_writable()
        self._expire()
        if self._disk is None:  # `_commit` less what it does for a log and for several transactions
            return self._execute(compares, success, failure, None, None)
        return self._commit(((compares, success, failure),))[0]

    def txn_many(self, txns: Sequence[Txn]) -> list[TxnResult]:
        """Run transactions in order, each seeing the ones before it, with one
        fsync for all. All or nothing while the process lives: if one is
        refused (or the log write fails) none is applied. Not across a crash:
        each transaction is its own log record, so a crash during the write
        may leave a prefix of them, which recovery replays (as it would had
        they been committed one by one)."""
        self._check_open()
        self._check_writable()
        self._expire()
        return self._commit([(t.compares, t.success, t.failure) for t in txns])

    def put(self, key: str, value: bytes, *, lease: int = 0) -> PutResult:
        return self.txn((), (Put(key, value, lease),)).responses[0]  # type: ignore[return-value]

    def delete(self, key: str, *, prefix: bool = False) -> DeleteResult:
        return self.txn((), (Delete(key, prefix),)).responses[0]  # type: ignore[return-value]

    def _commit(self, txns: Sequence[tuple[Sequence[Compare], Sequence[Op], Sequence[Op]]]) -> list[TxnResult]:
        disk = self._disk
        # A lone in-memory txn validates before it mutates, so needs no undo.
        undo: dict[str, tuple[int, KeyValue | None]] | None = {} if disk or len(txns) > 1 else None
        rev0, events0 = self._rev, len(self._events)
        records: list[bytes] = []
        results = []
        try:
            for compares, success, failure in txns:
                results.append(self._execute(compares, success, failure, undo, records if disk else None))
            if records:
                disk.append(records)  # type: ignore[union-attr]
        except BaseException:
            if undo is not None:
                self._rollback(rev0, events0, undo)
            raise
        if records:
            self._since_snapshot += len(records)
            self._maybe_snapshot()
        return results

    def _execute(
        self,
        compares: Sequence[Compare],
        success: Sequence[Op],
        failure: Sequence[Op],
        undo: dict[str, tuple[int, KeyValue | None]] | None,
        records: list[bytes] | None,
    ) -> TxnResult:
        succeeded = True
        for c in compares:
            if not self._holds(c):
                succeeded = False
                break
        ops = success if succeeded else failure
        op = ops[0] if len(ops) == 1 else None
        if type(op) is Put:  # most transactions: a create or an update of one key
            if op.lease and op.lease not in self._lease_ttl:
                raise LeaseNotFound(op.lease)
            rev = self._rev + 1
            prev = self._live.get(op.key)
            writes = [(op.key, op.value, op.lease)]
            self._apply_writes(rev, writes, undo)
            if records is not None:
                records.append(_dumps(["t", rev, _encode_writes(writes), []]))
            return TxnResult(succeeded, rev, (PutResult(rev, prev),))
        live = self._live
        writes: list[tuple[str, bytes | None, int]] = []
        written: set[str] = set()
        plan: list[object] = []  # per op: prev kv, prev kvs, or a RangeResult

        for op in ops:
            kind = type(op)
            if kind is Put:
                if op.lease and op.lease not in self._lease_ttl:  # type: ignore[union-attr]
                    raise LeaseNotFound(op.lease)  # type: ignore[union-attr]
                _claim(written, op.key)
                writes.append((op.key, op.value, op.lease))  # type: ignore[union-attr]
                plan.append(live.get(op.key))
            elif kind is Delete:
                prevs = self._range(op.key, op.prefix, None, None).kvs  # type: ignore[union-attr]
                for kv in prevs:
                    _claim(written, kv.key)
                    writes.append((kv.key, None, 0))
                plan.append(prevs)
            elif kind is Range:
                plan.append(self._range(op.key, op.prefix, op.revision, op.limit))  # type: ignore[union-attr]
            else:
                raise TypeError(f"not a transaction operation: {op!r}")

        rev = self._rev + 1 if writes else self._rev
        responses: list[RangeResult | PutResult | DeleteResult] = []
        for p in plan:
            if type(p) is RangeResult:
                responses.append(p)
            elif type(p) is tuple:
                responses.append(DeleteResult(rev, len(p), p))
            else:
                responses.append(PutResult(rev, p))  # type: ignore[arg-type]
        if writes:
            self._apply_writes(rev, writes, undo)
            if records is not None:
                records.append(_dumps(["t", rev, _encode_writes(writes), []]))
        return TxnResult(succeeded, rev, tuple(responses))

    def _holds(self, c: Compare) -> bool:
        kv = self._live.get(c.key)
        if c.target == "value":
            return kv is not None and _compare(kv.value, c.op, c.operand)
        if kv is None:
            actual = 0
        elif c.target == "version":
            actual = kv.version
        elif c.target == "create":
            actual = kv.create_revision
        else:
            actual = kv.mod_revision
        return _compare(actual, c.op, c.operand)

    def _apply_writes(
        self,
        rev: int,
        writes: list[tuple[str, bytes | None, int]],
        undo: dict[str, tuple[int, KeyValue | None]] | None,
    ) -> None:
        self._rev = rev
        hists, live, lease_keys = self._hist, self._live, self._lease_keys
        events, event_revs = self._events, self._event_revs
        for sub, (key, value, lease) in enumerate(writes):
            hist = hists.get(key)
            if hist is None:
                hist = hists[key] = ([], [])
                self._new_keys.append(key)
            prev = live.get(key)
            if undo is not None and key not in undo:
                undo[key] = (len(hist[0]), prev)
            if prev is not None and prev.lease:
                lease_keys[prev.lease].discard(key)
            if value is None:
                kv = None
                del live[key]
                events.append(Event("DELETE", _tombstone(key, rev), prev))
            else:
                if prev is None:
                    kv = KeyValue(key, value, rev, rev, 1, lease)
                else:
                    kv = KeyValue(key, value, prev.create_revision, rev, prev.version + 1, lease)
                live[key] = kv
                if lease:
                    lease_keys[lease].add(key)
                events.append(Event("PUT", kv, prev))
            hist[0].append(rev << _SUB_BITS | sub)
            hist[1].append(kv)
            event_revs.append(rev)

    def _rollback(self, rev: int, events: int, undo: dict[str, tuple[int, KeyValue | None]]) -> None:
        for key, (length, prev) in undo.items():
            now = self._live.get(key)
            if now is not None and now.lease:
                self._lease_keys[now.lease].discard(key)
            stamps, values = self._hist[key]
            del stamps[length:]
            del values[length:]
            if not stamps:
                del self._hist[key]
                if key in self._new_keys:
                    self._new_keys.remove(key)
                else:
                    del self._keys[bisect_left(self._keys, key)]
            if prev is None:
                self._live.pop(key, None)
            else:
                self._live[key] = prev
                if prev.lease:
                    self._lease_keys[prev.lease].add(key)
        del self._events[events:]
        del self._event_revs[events:]
        self._rev = rev

    # --- leases ---------------------------------------------------------------

    def lease_grant(self, ttl: float) -> int:
        self._check_open()
        self._check_writable()
        self._expire()
        if not isinstance(ttl, (int, float)) or ttl <= 0:
            raise StoreError(f"a lease TTL must be a positive number of seconds, not {ttl!r}")
        lease = self._next_lease
        if self._disk:
            self._log(["g", lease, ttl])
        self._grant(lease, ttl)
        self._maybe_snapshot()
        return lease

    def _grant(self, lease: int, ttl: float) -> None:
        self._next_lease = max(self._next_lease, lease + 1)
        self._lease_ttl[lease] = ttl
        self._lease_keys[lease] = set()
        self._set_deadline(lease)

    def _set_deadline(self, lease: int) -> None:
        deadline = self._clock() + self._lease_ttl[lease]
        self._lease_deadline[lease] = deadline
        heap = self._lease_heap
        heapq.heappush(heap, (deadline, lease))
        if len(heap) > 2 * len(self._lease_deadline) + 64:  # drop stale entries left by keepalives
            self._lease_heap = [(d, i) for i, d in self._lease_deadline.items()]
            heapq.heapify(self._lease_heap)

    def lease_keepalive(self, lease: int) -> None:
        self._check_open()
        self._check_writable()
        self._expire()
        if lease not in self._lease_ttl:
            raise LeaseNotFound(lease)
        self._set_deadline(lease)

    def lease_revoke(self, lease: int) -> None:
        self._check_open()
        self._check_writable()
        self._expire()
        if lease not in self._lease_ttl:
            raise LeaseNotFound(lease)
        self._revoke(lease)
        self._maybe_snapshot()

    def leases(self) -> dict[int, float]:
        """Live leases and their TTLs."""
        return dict(self._lease_ttl)

    def expire_leases(self) -> list[int]:
        """Revoke every lease whose deadline has passed on the clock; the
        engine calls this as its virtual clock advances."""
        self._check_open()
        return self._expire()

    def _expire(self) -> list[int]:
        heap = self._lease_heap
        if self._read_only or not heap or heap[0][0] > self._clock():
            return []
        now = self._clock()
        expired = []
        while heap and heap[0][0] <= now:
            deadline, lease = heap[0]
            if self._lease_deadline.get(lease) == deadline:
                self._revoke(lease)  # if this raises, the entry stays for the next try
                expired.append(lease)
            heapq.heappop(heap)
        if expired:
            self._maybe_snapshot()
        return expired

    def _revoke(self, lease: int) -> None:
        keys = sorted(self._lease_keys[lease])
        writes: list[tuple[str, bytes | None, int]] = [(k, None, 0) for k in keys]
        rev = self._rev + 1 if writes else self._rev
        if self._disk:
            self._log(["t", rev, _encode_writes(writes), [lease]])
        if writes:
            self._apply_writes(rev, writes, None)
        self._drop_lease(lease)

    def _drop_lease(self, lease: int) -> None:
        del self._lease_ttl[lease], self._lease_deadline[lease], self._lease_keys[lease]

    # --- compaction -------------------------------------------------------------

    def compact(self, revision: int) -> None:
        """Forget history before `revision`: reads and watches from earlier
        revisions raise Compacted afterwards."""
        self._check_open()
        self._check_writable()
        self._expire()
        if revision > self._rev:
            raise FutureRevision(revision, self._rev)
        if revision <= self._compact:
            return
        if self._disk:
            self._log(["c", revision])
        self._apply_compact(revision)
        self._maybe_snapshot()

    def _apply_compact(self, revision: int) -> None:
        first = revision << _SUB_BITS
        gone = set()
        for key, (stamps, values) in self._hist.items():
            cut = bisect_left(stamps, first)
            if cut == 0:
                continue
            # Keep the value in effect just before `revision`: it is the
            # state reads at `revision` build on and the prev_kv of later events.
            keep = cut - 1 if values[cut - 1] is not None else cut
            del stamps[:keep]
            del values[:keep]
            if not stamps:
                gone.add(key)
        if gone:
            for key in gone:
                del self._hist[key]
            self._keys = [k for k in self._sorted_keys() if k not in gone]
        n = bisect_left(self._event_revs, revision)
        del self._events[:n]
        del self._event_revs[:n]
        self._events_base += n
        self._compact = revision

    # --- watches ---------------------------------------------------------------

    def watch(self, prefix: str, start_revision: int | None = None) -> EmbeddedWatcher:
        """Events under `prefix` with revision >= start_revision (default: the
        next revision), with prev_kv. Raises Compacted if that history is gone."""
        self._check_open()
        self._expire()
        start = self._rev + 1 if start_revision is None else start_revision
        if start < self._compact:
            raise Compacted(start, self._compact, "watch from")
        position = self._events_base + bisect_left(self._event_revs, start)
        return EmbeddedWatcher(self, prefix, start, position)

    # --- persistence -------------------------------------------------------------

    def _log(self, record: list[object]) -> None:
        self._disk.append([_dumps(record)])  # type: ignore[union-attr]
        self._since_snapshot += 1

    def _maybe_snapshot(self) -> None:
        # At least as many records as live keys, so a large store does not
        # spend its time rewriting itself. History is snapshotted too, so the
        # engine should compact for snapshots to stay small.
        if self._since_snapshot >= max(self._snapshot_every, len(self._live)):
            try:
                self.snapshot()
            except StoreError:
                # The write was acknowledged already; a snapshot is only an
                # optimisation, so try again after as many records again.
                self._since_snapshot = 0

    def snapshot(self) -> None:
        """Write the whole state to the snapshot file and cut the log."""
        self._check_open()
        self._check_writable()
        if self._disk is None:
            return
        entries = []
        for key, (stamps, values) in self._hist.items():
            for stamp, kv in zip(stamps, values):
                if kv is None:
                    entries.append([stamp, key, None, 0, 0, 0])
                else:
                    entries.append([stamp, key, kv.value.decode("latin-1"), kv.create_revision, kv.version, kv.lease])
        entries.sort(key=lambda e: e[0])
        state = {
            "revision": self._rev,
            "compact": self._compact,
            "next_lease": self._next_lease,
            "leases": [[lease, ttl] for lease, ttl in self._lease_ttl.items()],
            "entries": entries,
        }
        self._disk.write_snapshot(_dumps(state))
        self._since_snapshot = 0

    def _recover(self, disk: DataDir) -> None:
        state, records = disk.load()
        if state is not None:
            try:
                self._load_snapshot(json.loads(state))
            except (ValueError, KeyError, TypeError, IndexError) as e:
                raise StoreCorrupted(disk.path + "/snapshot", None, f"unreadable snapshot ({e})") from None
        for path, offset, payload in records:
            try:
                self._replay(json.loads(payload))
            except (ValueError, KeyError, TypeError, IndexError) as e:
                raise StoreCorrupted(path, offset, f"a log record cannot be replayed ({e})") from None
        self._since_snapshot = len(records)

    def _load_snapshot(self, state: dict) -> None:
        self._compact = state["compact"]
        self._next_lease = state["next_lease"]
        for lease, ttl in state["leases"]:
            self._grant(lease, ttl)
        hists, live = self._hist, self._live
        for stamp, key, value, create, version, lease in state["entries"]:
            rev = stamp >> _SUB_BITS
            hist = hists.get(key)
            if hist is None:
                hist = hists[key] = ([], [])
                self._new_keys.append(key)
            prev = live.get(key)
            if value is None:
                kv = None
                del live[key]
                event = Event("DELETE", _tombstone(key, rev), prev)
            else:
                kv = live[key] = KeyValue(key, value.encode("latin-1"), create, rev, version, lease)
                event = Event("PUT", kv, prev)
            hist[0].append(stamp)
            hist[1].append(kv)
            if rev >= self._compact:
                self._events.append(event)
                self._event_revs.append(rev)
        self._rev = state["revision"]
        # Only live keys hold leases: older values may name revoked ones.
        for key, kv in live.items():
            if kv.lease:
                self._lease_keys[kv.lease].add(key)

    def _replay(self, record: list) -> None:
        kind = record[0]
        if kind == "t":
            _, rev, writes, revoked = record
            decoded = [(w[0], w[1].encode("latin-1") if len(w) > 1 else None, w[2] if len(w) > 1 else 0) for w in writes]
            if decoded:
                if rev != self._rev + 1:
                    raise ValueError(f"revision {rev} follows revision {self._rev}")
                self._apply_writes(rev, decoded, None)
            for lease in revoked:
                self._drop_lease(lease)
        elif kind == "g":
            self._grant(record[1], record[2])
        elif kind == "c":
            self._apply_compact(record[1])
        else:
            raise ValueError(f"unknown record kind {kind!r}")

    # --- lifecycle -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed()

    def _check_writable(self) -> None:
        if self._read_only:
            raise StoreError("the store is open read-only; it cannot be written")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._disk:
                self._disk.close()

    def __enter__(self) -> EmbeddedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _claim(written: set[str], key: str) -> None:
    if key in written:
        raise TxnConflict(f"a transaction writes key {key!r} twice; etcd refuses that too")
    written.add(key)


def _encode_writes(writes: list[tuple[str, bytes | None, int]]) -> list[list[object]]:
    return [[k] if v is None else [k, v.decode("latin-1"), lease] for k, v, lease in writes]


class EmbeddedWatcher:
    """A position in the store's event log plus a prefix filter."""

    def __init__(self, store: EmbeddedStore, prefix: str, start: int, position: int):
        self._store = store
        self._prefix = prefix
        self._start = start
        self._position = position
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def next_revision(self) -> int:
        """The revision of the next event this watcher could return."""
        store = self._store
        i = self._position - store._events_base
        if 0 <= i < len(store._event_revs):
            return max(self._start, store._event_revs[i])
        return max(self._start, store._rev + 1)

    def poll(self) -> list[Event]:
        if self._cancelled:
            return []
        store = self._store
        store._check_open()
        store._expire()
        i = self._position - store._events_base
        if i < 0:
            self._cancelled = True
            raise Compacted(self._start, store._compact, "continue watching from")
        events = store._events
        prefix, start = self._prefix, self._start
        out = [e for e in events[i:] if e.kv.mod_revision >= start and e.kv.key.startswith(prefix)]
        self._position = store._events_base + len(events)
        self._start = max(start, store._rev + 1)
        return out

    def skip(self, revision: int) -> None:
        """Pass over the events through `revision`: the caller knows none is under the prefix. A
        watch polled only once its prefix is written then reads the events since, not the history
        of every other prefix since its last poll. A stretch the store has compacted is not passed
        over: the next poll says so (Compacted), as it would have."""
        store = self._store
        if self._position < store._events_base or revision < self._start:
            return
        self._position = max(self._position, store._events_base + bisect_right(store._event_revs, revision))
        self._start = revision + 1

    def __iter__(self) -> Iterator[Event]:
        return iter(self.poll())

    def cancel(self) -> None:
        self._cancelled = True
