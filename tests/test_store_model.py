"""The embedded store behaves like a plain model: a dict per revision.

The model keeps the whole state at every revision and every event, so past
reads, compaction and watches are checked against the obvious answer. The
persistent variant also closes and reopens the store between steps.
"""

from __future__ import annotations

import shutil
import tempfile

import hypothesis.strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from engine.store import (
    Compacted,
    Compare,
    Delete,
    DeleteResult,
    Event,
    FutureRevision,
    KeyValue,
    LeaseNotFound,
    Put,
    PutResult,
    Range,
    RangeResult,
    Txn,
    TxnConflict,
    TxnResult,
    open_store,
)

KEYS = ["a", "a/1", "a/2", "ab", "b", "b/1"]
PREFIXES = ["", "a", "a/", "b"]

keys = st.sampled_from(KEYS)
values = st.binary(max_size=3)  # includes bytes that are not UTF-8
lease_ids = st.integers(0, 4)
revisions = st.integers(0, 40)
compares = st.one_of(
    st.builds(Compare, keys, st.just("value"), st.sampled_from(["==", "!=", "<", ">"]), values),
    st.builds(
        Compare,
        keys,
        st.sampled_from(["version", "create", "mod"]),
        st.sampled_from(["==", "!=", "<", ">"]),
        st.integers(0, 6),
    ),
)
ops = st.one_of(
    st.builds(Put, keys, values, lease_ids),
    st.builds(Delete, keys, st.booleans()),
    st.builds(Range, st.sampled_from(KEYS + PREFIXES), st.booleans(), st.none(), st.integers(0, 2)),
)
txns = st.builds(
    Txn, st.lists(compares, max_size=2), st.lists(ops, max_size=3), st.lists(ops, max_size=3)
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Model:
    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.states: list[dict[str, KeyValue]] = [{}]
        self.events: list[Event] = []
        self.compact = 0
        self.leases: dict[int, list[float]] = {}  # id -> [ttl, deadline]
        self.next_lease = 1

    @property
    def rev(self) -> int:
        return len(self.states) - 1

    @property
    def now(self) -> dict[str, KeyValue]:
        return self.states[-1]

    def write(self, writes: list[tuple[str, bytes | None, int]]) -> None:
        state = dict(self.now)
        rev = self.rev + 1
        for key, value, lease in writes:
            prev = state.get(key)
            if value is None:
                del state[key]
                self.events.append(Event("DELETE", KeyValue(key, b"", 0, rev, 0, 0), prev))
            else:
                kv = KeyValue(
                    key, value, prev.create_revision if prev else rev, rev, prev.version + 1 if prev else 1, lease
                )
                state[key] = kv
                self.events.append(Event("PUT", kv, prev))
        self.states.append(state)

    def expire(self) -> list[int]:
        due = sorted((deadline, lease) for lease, (_, deadline) in self.leases.items() if deadline <= self.clock())
        for _, lease in due:
            self.revoke(lease)
        return [lease for _, lease in due]

    def revoke(self, lease: int) -> None:
        doomed = sorted(k for k, kv in self.now.items() if kv.lease == lease)
        if doomed:
            self.write([(k, None, 0) for k in doomed])
        del self.leases[lease]

    def range(self, key: str, prefix: bool, revision: int | None, limit: int | None) -> RangeResult:
        if revision is None or revision == 0:
            state = self.now
        elif revision > self.rev:
            raise FutureRevision(revision, self.rev)
        elif revision < self.compact:
            raise Compacted(revision, self.compact)
        else:
            state = self.states[revision]
        found = sorted((k for k in state if k.startswith(key)) if prefix else [k for k in state if k == key])
        kvs = tuple(state[k] for k in found[: limit or None])
        return RangeResult(kvs, self.rev, len(found), len(kvs) < len(found))

    def holds(self, c: Compare) -> bool:
        kv = self.now.get(c.key)
        if c.target == "value":
            if kv is None:
                return False
            actual: object = kv.value
        else:
            actual = 0 if kv is None else {"version": kv.version, "create": kv.create_revision, "mod": kv.mod_revision}[c.target]
        return {"==": actual == c.operand, "!=": actual != c.operand, "<": actual < c.operand, ">": actual > c.operand}[c.op]  # type: ignore[operator]

    def txn(self, t: Txn) -> TxnResult:
        succeeded = all(self.holds(c) for c in t.compares)
        writes: list[tuple[str, bytes | None, int]] = []
        plan: list[object] = []
        for op in t.success if succeeded else t.failure:
            if isinstance(op, Put):
                if op.lease and op.lease not in self.leases:
                    raise LeaseNotFound(op.lease)
                if op.key in [w[0] for w in writes]:
                    raise TxnConflict("twice")
                writes.append((op.key, op.value, op.lease))
                plan.append(self.now.get(op.key))
            elif isinstance(op, Delete):
                prevs = self.range(op.key, op.prefix, None, None).kvs
                for kv in prevs:
                    if kv.key in [w[0] for w in writes]:
                        raise TxnConflict("twice")
                    writes.append((kv.key, None, 0))
                plan.append(prevs)
            else:
                plan.append(self.range(op.key, op.prefix, op.revision, op.limit))
        rev = self.rev + 1 if writes else self.rev
        responses = tuple(
            p if isinstance(p, RangeResult) else DeleteResult(rev, len(p), p) if isinstance(p, tuple) else PutResult(rev, p)
            for p in plan
        )
        if writes:
            self.write(writes)
        return TxnResult(succeeded, rev, responses)

    def watch(self, prefix: str, start: int) -> list[Event]:
        if start < self.compact:
            raise Compacted(start, self.compact)
        return [e for e in self.events if e.kv.mod_revision >= start and e.kv.key.startswith(prefix)]


def outcome(f):
    """The result, or the type of the store error raised."""
    try:
        return f()
    except (Compacted, FutureRevision, LeaseNotFound, TxnConflict) as e:
        return type(e)


class InMemoryStore(RuleBasedStateMachine):
    data_dir: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.model = Model(self.clock)
        self.store = self.open()
        self.watcher = self.store.watch("", 1)
        self.seen: list[Event] = []

    def open(self):
        return open_store(self.data_dir, clock=self.clock)

    def teardown(self) -> None:
        self.store.close()

    def both(self, store_call, model_call):
        """Run an operation on both after the lazy lease expiry both do."""
        self.model.expire()
        expected = outcome(model_call)
        assert outcome(store_call) == expected

    @rule(key=keys, value=values, lease=lease_ids)
    def put(self, key, value, lease):
        self.both(
            lambda: self.store.put(key, value, lease=lease),
            lambda: self.model.txn(Txn((), (Put(key, value, lease),))).responses[0],
        )

    @rule(key=keys, prefix=st.booleans())
    def delete(self, key, prefix):
        self.both(
            lambda: self.store.delete(key, prefix=prefix),
            lambda: self.model.txn(Txn((), (Delete(key, prefix),))).responses[0],
        )

    @rule(t=txns)
    def txn(self, t):
        self.both(lambda: self.store.txn(t.compares, t.success, t.failure), lambda: self.model.txn(t))

    @rule(batch=st.lists(txns, max_size=4))
    def txn_many(self, batch):
        def model_batch():
            saved = (list(self.model.states), list(self.model.events))
            try:
                return [self.model.txn(t) for t in batch]
            except (LeaseNotFound, TxnConflict):
                self.model.states, self.model.events = saved
                raise

        self.both(lambda: self.store.txn_many(batch), model_batch)

    @rule(ttl=st.integers(1, 10))
    def lease_grant(self, ttl):
        self.model.expire()
        lease = self.store.lease_grant(ttl)
        assert lease == self.model.next_lease
        self.model.next_lease += 1
        self.model.leases[lease] = [ttl, self.clock() + ttl]

    @rule(lease=lease_ids)
    def lease_keepalive(self, lease):
        def model_keepalive():
            if lease not in self.model.leases:
                raise LeaseNotFound(lease)
            self.model.leases[lease][1] = self.clock() + self.model.leases[lease][0]

        self.both(lambda: self.store.lease_keepalive(lease), model_keepalive)

    @rule(lease=lease_ids)
    def lease_revoke(self, lease):
        def model_revoke():
            if lease not in self.model.leases:
                raise LeaseNotFound(lease)
            self.model.revoke(lease)

        self.both(lambda: self.store.lease_revoke(lease), model_revoke)

    @rule(dt=st.integers(0, 6), explicit=st.booleans())
    def advance_clock(self, dt, explicit):
        self.clock.now += dt
        if explicit:
            assert self.store.expire_leases() == self.model.expire()

    @rule(revision=revisions)
    def compact(self, revision):
        revision = min(revision, self.model.rev + len(self.model.leases))  # lazy expiry may add revisions

        def model_compact():
            if revision > self.model.rev:
                raise FutureRevision(revision, self.model.rev)
            self.model.compact = max(self.model.compact, revision)

        self.both(lambda: self.store.compact(revision), model_compact)

    @rule(key=st.sampled_from(KEYS + PREFIXES), prefix=st.booleans(), revision=revisions, limit=st.integers(0, 3))
    def read(self, key, prefix, revision, limit):
        self.both(
            lambda: self.store.range(key, prefix=prefix, revision=revision, limit=limit),
            lambda: self.model.range(key, prefix, revision, limit),
        )

    @rule(prefix=st.sampled_from(PREFIXES + KEYS), start=revisions)
    def watch_from(self, prefix, start):
        self.both(lambda: self.store.watch(prefix, start).poll(), lambda: self.model.watch(prefix, start))

    @invariant()
    def state_matches_the_model(self):
        self.model.expire()
        assert self.store.range("", prefix=True).kvs == tuple(v for _, v in sorted(self.model.now.items()))
        assert (self.store.revision, self.store.compact_revision) == (self.model.rev, self.model.compact)
        assert self.store.leases() == {lease: ttl for lease, (ttl, _) in self.model.leases.items()}

    @invariant()
    def a_long_lived_watcher_sees_every_event_once_in_order(self):
        self.model.expire()
        self.seen.extend(self.watcher.poll())
        assert self.seen == self.model.events


class PersistentStore(InMemoryStore):
    def __init__(self) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="konverge-store-model-")
        super().__init__()

    def open(self):
        return open_store(self.data_dir, clock=self.clock, snapshot_every=7)

    def teardown(self) -> None:
        super().teardown()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @rule()
    def reopen(self):
        self.seen.extend(self.watcher.poll())
        self.store.close()
        self.store = self.open()
        self.watcher = self.store.watch("", self.model.rev + 1)
        for lease in self.model.leases.values():  # leases get their full TTL again
            lease[1] = self.clock() + lease[0]

    @rule()
    def snapshot(self):
        self.store.snapshot()


TestInMemoryStoreAgreesWithTheModel = InMemoryStore.TestCase
TestPersistentStoreAgreesWithTheModel = PersistentStore.TestCase
