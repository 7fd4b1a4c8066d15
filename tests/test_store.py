"""Example tests for the embedded store: one per operation and per error."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from engine.errors import KonvergeError
from engine.store import (
    Compacted,
    Compare,
    Delete,
    FutureRevision,
    KeyValue,
    LeaseNotFound,
    Put,
    Range,
    StoreCorrupted,
    StoreFormatError,
    StoreLocked,
    StoreWriteFailed,
    Txn,
    TxnConflict,
    object_key,
    open_store,
)
from engine.store.wal import frame


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "disk"])
def store(request, tmp_path, clock):
    s = open_store(None if request.param == "memory" else str(tmp_path / "data"), clock=clock)
    yield s
    s.close()


def wal_files(data_dir) -> list[str]:
    return sorted(str(p) for p in data_dir.iterdir() if p.name.startswith("wal-"))


# --- revisions and versions ----------------------------------------------------------


def test_each_write_transaction_bumps_the_global_revision_once(store):
    assert store.revision == 0
    assert store.put("a", b"1").revision == 1
    result = store.txn((), (Put("b", b"2"), Put("c", b"3")))
    assert result.revision == 2
    assert [kv.mod_revision for kv in store.range("", prefix=True).kvs] == [1, 2, 2]


def test_a_transaction_without_writes_does_not_bump_the_revision(store):
    store.put("a", b"1")
    result = store.txn((Compare("a", "value", "==", b"1"),), (Range("a"),))
    assert result.succeeded and result.revision == 1 and store.revision == 1
    assert store.delete("missing").deleted == 0
    assert store.revision == 1


def test_put_keeps_create_revision_and_counts_versions(store):
    store.put("a", b"1")
    store.put("other", b"x")
    prev = store.put("a", b"2").prev_kv
    assert prev == KeyValue("a", b"1", 1, 1, 1)
    assert store.range("a").kvs == (KeyValue("a", b"2", 1, 3, 2),)


def test_a_recreated_key_starts_again_at_version_1_with_a_new_create_revision(store):
    store.put("a", b"1")
    store.put("a", b"2")
    assert store.delete("a").prev_kvs == (KeyValue("a", b"2", 1, 2, 2),)
    assert store.range("a").kvs == ()
    store.put("a", b"3")
    assert store.range("a").kvs == (KeyValue("a", b"3", 4, 4, 1),)


# --- transactions ------------------------------------------------------------------


def test_compare_and_swap_succeeds_when_the_mod_revision_matches(store):
    rev = store.put("a", b"1").revision
    result = store.txn((Compare("a", "mod", "==", rev),), (Put("a", b"2"),), (Range("a"),))
    assert result.succeeded
    assert store.range("a").kvs[0].value == b"2"


def test_compare_and_swap_runs_the_failure_branch_when_the_key_changed(store):
    rev = store.put("a", b"1").revision
    store.put("a", b"other writer")
    result = store.txn((Compare("a", "mod", "==", rev),), (Put("a", b"2"),), (Range("a"),))
    assert not result.succeeded
    assert result.responses[0].kvs[0].value == b"other writer"
    assert store.revision == 2


def test_a_failed_compare_writes_the_failure_branch_with_the_revision_it_bumps(store):
    store.put("a", b"1")
    result = store.txn((Compare("a", "mod", "==", 99),), (Put("a", b"2"),), (Put("b", b"3"),))
    assert not result.succeeded
    assert result.revision == store.revision == 2
    assert result.responses[0].revision == 2 and result.responses[0].prev_kv is None
    assert store.range("a").kvs[0].value == b"1" and store.range("b").kvs[0].value == b"3"
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in store.watch("", 2).poll()] == [("PUT", "b", 2)]


def test_create_only_if_absent_compares_version_with_zero(store):
    create = lambda v: store.txn((Compare("a", "version", "==", 0),), (Put("a", v),))  # noqa: E731
    assert create(b"first").succeeded
    assert not create(b"second").succeeded
    assert store.range("a").kvs[0].value == b"first"


def test_a_value_compare_on_a_missing_key_is_false_whatever_the_op(store):
    for op in ("==", "!=", "<", ">"):
        assert not store.txn((Compare("a", "value", op, b"x"),), ()).succeeded


def test_reads_in_a_transaction_see_the_state_before_its_writes(store):
    store.put("a", b"old")
    result = store.txn((), (Put("a", b"new"), Range("a")))
    assert result.responses[0].prev_kv.value == b"old"
    assert result.responses[1].kvs[0].value == b"old"


def test_a_transaction_writing_a_key_twice_is_refused_and_changes_nothing(store):
    store.put("a/1", b"1")
    with pytest.raises(TxnConflict, match="'a/1' twice"):
        store.txn((), (Put("b", b"x"), Delete("a/", prefix=True), Put("a/1", b"2")))
    assert store.revision == 1 and store.range("b").kvs == ()


def test_txn_many_runs_transactions_in_order_each_seeing_the_previous(store):
    cas = Txn((Compare("a", "version", "==", 0),), (Put("a", b"mine"),))
    results = store.txn_many([cas, cas, Txn((), (Put("b", b"x"),))])
    assert [r.succeeded for r in results] == [True, False, True]
    assert [r.revision for r in results] == [1, 1, 2]


def test_txn_many_is_all_or_nothing_when_one_transaction_is_refused(store):
    store.put("z", b"0")
    with pytest.raises(LeaseNotFound):
        store.txn_many([Txn((), (Put("a", b"1"), Delete("z"))), Txn((), (Put("b", b"2", lease=99),))])
    assert store.revision == 1
    assert [kv.key for kv in store.range("", prefix=True).kvs] == ["z"]
    assert store.watch("", 1).poll()[-1].kv.key == "z"


# --- ranges ----------------------------------------------------------------------------


def test_prefix_range_returns_sorted_keys_and_reports_more_past_the_limit(store):
    for name in ("c", "a", "b"):
        store.put(object_key("pods", "default", name), name.encode())
    store.put(object_key("pods", "kube-system", "dns"), b"d")
    store.put(object_key("nodes", None, "n1"), b"n")
    result = store.range("/registry/pods/default/", prefix=True, limit=2)
    assert [kv.key for kv in result.kvs] == ["/registry/pods/default/a", "/registry/pods/default/b"]
    assert result.count == 3 and result.more
    everything = store.range("/registry/pods/", prefix=True)
    assert everything.count == 4 and not everything.more
    assert store.range("/registry/nodes/n1").kvs[0].value == b"n"


def test_a_read_at_a_past_revision_sees_the_state_then(store):
    store.put("a", b"1")
    store.put("a", b"2")
    store.delete("a")
    store.put("b", b"x")
    assert store.range("a", revision=1).kvs[0].value == b"1"
    assert store.range("a", revision=2).kvs[0].value == b"2"
    assert store.range("a", revision=3).kvs == ()
    assert [kv.key for kv in store.range("", prefix=True, revision=2).kvs] == ["a"]


def test_a_read_at_a_future_revision_is_refused(store):
    store.put("a", b"1")
    with pytest.raises(FutureRevision, match="revision 5 does not exist yet.*revision 1"):
        store.range("a", revision=5)


# --- compaction ------------------------------------------------------------------------


def test_reads_below_the_compacted_revision_raise_compacted_naming_both_revisions(store):
    for v in (b"1", b"2", b"3"):
        store.put("a", v)
    store.compact(2)
    with pytest.raises(Compacted, match="revision 1.*revision 2") as info:
        store.range("a", revision=1)
    assert isinstance(info.value, KonvergeError) and info.value.compact_revision == 2
    assert store.range("a", revision=2).kvs[0].value == b"2"
    assert store.range("a").kvs[0].value == b"3"


def test_compaction_keeps_keys_last_written_before_it(store):
    store.put("old", b"kept")
    store.put("gone", b"x")
    store.delete("gone")
    store.put("new", b"y")
    store.compact(4)
    assert [kv.key for kv in store.range("", prefix=True, revision=4).kvs] == ["new", "old"]
    events = store.watch("", 4).poll()
    assert [(e.type, e.kv.key) for e in events] == [("PUT", "new")]


def test_compacting_the_future_is_refused(store):
    with pytest.raises(FutureRevision):
        store.compact(1)


# --- watches -----------------------------------------------------------------------------


def test_a_watch_from_a_past_revision_replays_events_with_prev_kv(store):
    store.put("/a/x", b"1")
    store.put("/b/y", b"other prefix")
    store.put("/a/x", b"2")
    store.delete("/a/x")
    events = store.watch("/a/", start_revision=2).poll()
    assert [(e.type, e.kv.mod_revision) for e in events] == [("PUT", 3), ("DELETE", 4)]
    assert events[0].prev_kv.value == b"1"
    assert events[1].prev_kv == KeyValue("/a/x", b"2", 1, 3, 2)


def test_a_watch_returns_each_new_event_once_and_nothing_after_cancel(store):
    watcher = store.watch("/a/")
    store.put("/a/1", b"1")
    assert [e.kv.key for e in watcher] == ["/a/1"]
    assert watcher.poll() == []
    store.put("/a/2", b"2")
    watcher.cancel()
    assert watcher.poll() == [] and watcher.cancelled


def test_a_watch_from_a_future_revision_waits_for_it(store):
    watcher = store.watch("", start_revision=3)
    store.put("a", b"1")
    assert watcher.poll() == []
    store.put("a", b"2")
    store.put("a", b"3")
    assert [e.kv.mod_revision for e in watcher.poll()] == [3]


def test_a_watch_from_a_compacted_revision_raises_compacted(store):
    store.put("a", b"1")
    store.put("a", b"2")
    store.compact(2)
    with pytest.raises(Compacted, match="watch from revision 1"):
        store.watch("", start_revision=1)


def test_a_watcher_left_behind_by_compaction_raises_compacted(store):
    watcher = store.watch("", start_revision=1)
    store.put("a", b"1")
    store.put("a", b"2")
    store.compact(2)
    with pytest.raises(Compacted):
        watcher.poll()


def test_a_watch_told_it_has_no_event_through_a_revision_returns_those_after_it(store):
    # As an informer tells it (APIWatcher.skip), knowing which prefixes were written since it polled.
    watcher, untold = store.watch("/a/"), store.watch("/a/")
    store.put("/a/x", b"1")
    assert [e.kv.mod_revision for e in watcher.poll()] == [1]
    for n in range(3):
        store.put(f"/b/{n}", b"other prefix")
    watcher.skip(store.revision)
    watcher.skip(2)  # a revision it is past: nothing changes
    store.put("/a/x", b"2")
    assert [(e.kv.mod_revision, e.prev_kv.value) for e in watcher.poll()] == [(5, b"1")]
    assert [e.kv.mod_revision for e in untold.poll()] == [1, 5]
    assert watcher.poll() == [] and watcher.next_revision == untold.next_revision == 6


def test_a_watch_told_it_has_no_event_through_a_compacted_revision_still_says_it_was_left_behind(store):
    watcher = store.watch("/a/", start_revision=1)
    store.put("/b/y", b"1")
    store.put("/a/x", b"1")
    store.put("/b/z", b"1")
    store.compact(3)  # the event at 2 is gone, which the watch never returned
    watcher.skip(1)
    with pytest.raises(Compacted):
        watcher.poll()


# --- leases ------------------------------------------------------------------------------


def test_keys_of_an_expired_lease_are_deleted_when_the_clock_passes_the_ttl(store, clock):
    lease = store.lease_grant(10)
    store.put("/leader", b"me", lease=lease)
    store.put("/plain", b"stays")
    clock.now += 9
    assert store.expire_leases() == []
    clock.now += 1
    assert store.expire_leases() == [lease]
    assert [kv.key for kv in store.range("/", prefix=True).kvs] == ["/plain"]
    with pytest.raises(LeaseNotFound):
        store.lease_keepalive(lease)


def test_leases_also_expire_lazily_on_the_next_operation(store, clock):
    lease = store.lease_grant(5)
    store.put("k", b"v", lease=lease)
    clock.now += 6
    assert store.range("k").kvs == ()


def test_keepalive_pushes_the_deadline_back_by_the_ttl(store, clock):
    lease = store.lease_grant(10)
    store.put("k", b"v", lease=lease)
    clock.now += 8
    store.lease_keepalive(lease)
    clock.now += 8
    assert store.expire_leases() == []
    clock.now += 2
    assert store.expire_leases() == [lease]


def test_revoking_a_lease_deletes_its_keys_in_one_revision(store):
    lease = store.lease_grant(10)
    store.put("a", b"1", lease=lease)
    store.put("b", b"2", lease=lease)
    store.put("b", b"3")  # a put without the lease detaches the key
    store.put("c", b"4", lease=lease)
    store.lease_revoke(lease)
    assert store.revision == 5
    assert [kv.key for kv in store.range("", prefix=True).kvs] == ["b"]
    with pytest.raises(LeaseNotFound, match="lease 1 does not exist"):
        store.lease_revoke(lease)


def test_a_put_with_an_unknown_lease_is_refused(store):
    with pytest.raises(LeaseNotFound):
        store.put("a", b"1", lease=42)
    assert store.revision == 0


def test_a_lease_ttl_must_be_positive(store):
    with pytest.raises(KonvergeError, match="positive"):
        store.lease_grant(0)


# --- persistence -------------------------------------------------------------------------


def fill(s) -> None:
    lease = s.lease_grant(30)
    s.put("/a", b"1")
    s.put("/a", b"2")
    s.put("/l", b"leased", lease=lease)
    s.delete("/a")
    s.put("/b", b"\x00\xff binary")
    s.compact(2)


def test_a_reopened_store_has_the_same_state_history_and_leases(tmp_path, clock):
    data = str(tmp_path / "d")
    with open_store(data, clock=clock) as s:
        fill(s)
        expected = (s.revision, s.range("", prefix=True), s.watch("", 2).poll(), s.leases())
    with open_store(data, clock=clock) as s:
        assert (s.revision, s.range("", prefix=True), s.watch("", 2).poll(), s.leases()) == expected
        assert s.range("/a", revision=2).kvs[0].value == b"2"
        with pytest.raises(Compacted):
            s.range("/a", revision=1)
        assert s.lease_grant(5) == 2  # lease ids are not reused


def test_a_snapshot_cuts_the_log_and_the_store_reopens_from_it(tmp_path, clock):
    data = tmp_path / "d"
    with open_store(str(data), clock=clock) as s:
        fill(s)
        s.snapshot()
        s.put("/after", b"snap")
        expected = (s.revision, s.range("", prefix=True), s.watch("", 2).poll(), s.leases())
        assert len(wal_files(data)) == 1
    with open_store(str(data), clock=clock) as s:
        assert (s.revision, s.range("", prefix=True), s.watch("", 2).poll(), s.leases()) == expected


def test_snapshots_happen_automatically_every_n_records(tmp_path):
    data = tmp_path / "d"
    with open_store(str(data), snapshot_every=10) as s:
        for i in range(25):
            s.put(f"k{i}", b"v")
    assert (data / "snapshot").exists()
    with open_store(str(data)) as s:
        assert s.revision == 25 and s.range("", prefix=True).count == 25


def test_leases_get_their_full_ttl_again_after_a_reopen(tmp_path, clock):
    data = str(tmp_path / "d")
    with open_store(data, clock=clock) as s:
        lease = s.lease_grant(10)
        s.put("k", b"v", lease=lease)
        clock.now += 9
    with open_store(data, clock=clock) as s:
        clock.now += 9
        assert s.range("k").count == 1
        clock.now += 1
        assert s.expire_leases() == [lease]


def test_a_torn_last_record_is_truncated_on_open(tmp_path):
    data = tmp_path / "d"
    with open_store(str(data)) as s:
        s.put("a", b"1")
        s.put("b", b"2")
    wal = wal_files(data)[-1]
    size = os.path.getsize(wal)
    with open(wal, "ab") as f:
        f.write(frame(b'["t",3,[["c","3",0]],[]]')[:-5])
    with open_store(str(data)) as s:
        assert s.revision == 2 and s.range("c").kvs == ()
        s.put("c", b"after")
    assert os.path.getsize(wal) > size
    with open_store(str(data)) as s:
        assert s.range("c").kvs[0].value == b"after"


def test_a_read_only_open_ignores_a_torn_tail_like_a_writer_and_leaves_it_in_place(tmp_path):
    data = tmp_path / "d"
    with open_store(str(data), snapshot_every=3) as s:
        for i in range(5):
            s.put(f"k{i}", b"v")  # a snapshot, then records after it
        s.delete("k0")
    wal = wal_files(data)[-1]
    with open(wal, "ab") as f:
        f.write(frame(b'["t",7,[["k9","9",0]],[]]')[:-5])
    torn_size = os.path.getsize(wal)

    def seen(read_only: bool):
        with open_store(str(data), read_only=read_only) as s:
            return s.revision, s.range("", prefix=True), s.watch("", 1).poll()

    read_only = seen(True)
    assert os.path.getsize(wal) == torn_size
    assert read_only == seen(False) == seen(True)
    assert read_only[0] == 6 and os.path.getsize(wal) < torn_size


def test_a_corrupted_record_followed_by_valid_ones_is_refused_naming_file_and_offset(tmp_path):
    data = tmp_path / "d"
    with open_store(str(data)) as s:
        s.put("a", b"1")
        s.put("b", b"2")
        s.put("c", b"3")
    wal = wal_files(data)[-1]
    with open(wal, "rb") as f:
        raw = bytearray(f.read())
    second = len(frame(b'["t",1,[["a","1",0]],[]]'))
    raw[second + 12] ^= 0xFF  # a byte inside the second record's payload
    with open(wal, "wb") as f:
        f.write(raw)
    with pytest.raises(StoreCorrupted) as info:
        open_store(str(data))
    assert info.value.path == wal and info.value.offset == second
    assert f"{wal} at byte offset {second}" in str(info.value)
    with pytest.raises(StoreCorrupted):  # the failed open released the lock
        open_store(str(data))


def test_a_directory_from_a_newer_format_is_refused(tmp_path):
    data = tmp_path / "d"
    open_store(str(data)).close()
    (data / "FORMAT").write_text("konverge-store 2\n")
    with pytest.raises(StoreFormatError, match="format 2, newer than the format 1"):
        open_store(str(data))


def test_a_second_opener_of_the_same_directory_is_refused(tmp_path):
    data = str(tmp_path / "d")
    with open_store(data):
        with pytest.raises(StoreLocked, match=f"{data} is in use .*process {os.getpid()}"):
            open_store(data)
    open_store(data).close()  # released on close


def test_a_second_process_opening_the_same_directory_is_refused(tmp_path):
    data = str(tmp_path / "d")
    code = (
        "import sys\nfrom engine.store import open_store, StoreLocked\n"
        "try:\n    open_store(sys.argv[1])\nexcept StoreLocked as e:\n    print(e); sys.exit(3)\n"
    )
    with open_store(data):
        child = subprocess.run([sys.executable, "-c", code, data], capture_output=True, text=True, env=_env())
    assert child.returncode == 3 and "in use by another store" in child.stdout


def _env() -> dict[str, str]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return {**os.environ, "PYTHONPATH": root}


# --- write failures ---------------------------------------------------------------------


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_write_on_a_full_disk_raises_changes_nothing_and_the_store_stays_usable(tmp_path, monkeypatch):
    data = str(tmp_path / "d")
    s = open_store(data)
    s.put("a", b"1")
    watcher = s.watch("")
    before = (s.revision, s.range("", prefix=True))
    with monkeypatch.context() as m:
        m.setattr(os, "write", _enospc)
        with pytest.raises(StoreWriteFailed, match="the disk is full; the write was not applied"):
            s.put("a", b"2")
        with pytest.raises(StoreWriteFailed):
            s.txn_many([Txn((), (Put("b", b"1"),)), Txn((), (Delete("a"),))])
    assert (s.revision, s.range("", prefix=True)) == before
    assert watcher.poll() == []
    s.put("c", b"3")
    s.close()
    with open_store(data) as s:
        assert [(kv.key, kv.value, kv.mod_revision) for kv in s.range("", prefix=True).kvs] == [
            ("a", b"1", 1),
            ("c", b"3", 2),
        ]


def test_a_failed_fsync_is_not_acknowledged_and_later_writes_are_refused_until_reopen(tmp_path, monkeypatch):
    data = str(tmp_path / "d")
    s = open_store(data)
    s.put("a", b"1")
    with monkeypatch.context() as m:
        m.setattr(os, "fdatasync", _enospc)
        m.setattr(os, "fsync", _enospc)
        with pytest.raises(StoreWriteFailed):
            s.put("a", b"2")
    assert s.range("a").kvs[0].value == b"1" and s.revision == 1
    with pytest.raises(StoreWriteFailed, match="close and reopen"):
        s.put("b", b"1")
    s.close()
    with open_store(data) as s:
        assert s.range("a").kvs[0].value == b"1" and s.revision == 1
        s.put("b", b"1")
        assert s.revision == 2


def test_a_failed_snapshot_does_not_fail_the_acknowledged_write(tmp_path, monkeypatch):
    data = str(tmp_path / "d")
    s = open_store(data, snapshot_every=3)
    s.put("a", b"1")
    s.put("a", b"2")
    real_rename = os.rename
    with monkeypatch.context() as m:
        m.setattr(os, "rename", _enospc)
        s.put("a", b"3")  # triggers the snapshot, which fails
    assert os.rename is real_rename
    s.put("a", b"4")
    s.close()
    with open_store(data) as s:
        assert s.range("a").kvs[0].value == b"4" and s.revision == 4


def test_a_snapshot_whose_directory_fsync_fails_loses_no_acknowledged_write(tmp_path, monkeypatch):
    import engine.store.wal as wal

    data = str(tmp_path / "d")
    s = open_store(data)
    s.put("a", b"1")
    with monkeypatch.context() as m:
        m.setattr(wal, "fsync_dir", _enospc)
        with pytest.raises(StoreWriteFailed):
            s.snapshot()  # the new snapshot was renamed into place, but maybe not durably
    with pytest.raises(StoreWriteFailed, match="close and reopen"):
        s.put("a", b"2")
    s.close()
    with open_store(data) as s:
        assert s.range("a").kvs[0].value == b"1"
        s.put("a", b"3")
    with open_store(data) as s:
        assert (s.revision, s.range("a").kvs[0].value) == (2, b"3")


def test_a_closed_store_refuses_operations(store):
    store.close()
    with pytest.raises(KonvergeError, match="closed"):
        store.put("a", b"1")


def test_object_keys_follow_the_kubernetes_registry_layout():
    assert object_key("pods", "default", "web-0") == "/registry/pods/default/web-0"
    assert object_key("nodes", None, "n1") == "/registry/nodes/n1"
