"""A store killed at any instant loses no acknowledged write.

A child process (tests/store_crash_child.py) writes in a loop and prints each
write after the store acknowledged it; we SIGKILL it at random instants,
reopen the directory and check every acknowledged write against the history.
SIGKILL tests process crashes (the page cache survives); torn writes from a
power cut are covered by the torn-tail tests in test_store.py.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from engine.store import open_store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILD = os.path.join(ROOT, "tests", "store_crash_child.py")


def run_and_kill(data_dir: str, seed: int, rng: random.Random) -> list[list[str]]:
    """Acknowledged-write lines of one child killed after a random delay."""
    return kill_after_ready([sys.executable, CHILD, data_dir, str(seed)], rng.uniform(0.0, 0.4))


def kill_after_ready(argv: list[str], delay: float) -> list[list[str]]:
    """The lines a child prints after its READY line, split into fields, when
    it is SIGKILLed `delay` seconds after READY."""
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": ROOT},
    ) as child:
        ready = child.stdout.readline()
        if ready.startswith(b"READY"):
            time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        # Read on through the reader readline() used: on a loaded machine the
        # child prints acks before we read READY, readline() buffers them, and
        # communicate() reads the pipe's fd directly, so it would drop them.
        out, err = child.stdout.read(), child.stderr.read()
    assert ready.startswith(b"READY"), ready + out + err
    assert child.returncode == -signal.SIGKILL, err.decode()
    complete = out[: out.rfind(b"\n") + 1].decode()  # the last line may be cut short
    return [line.split(" ") for line in complete.splitlines()]


def check(data_dir: str, baseline: dict[str, bytes], acks: list[list[str]]) -> dict[str, bytes]:
    """Checks the reopened store against the writes acknowledged since
    `baseline` (the state found at the previous reopen); returns the new state."""
    expected = dict(baseline)
    last_rev = 0
    with open_store(data_dir) as store:
        for ack in acks:
            kind, rev = ack[0], int(ack[1])
            assert rev >= last_rev, f"acknowledged revisions go back: {ack}"
            last_rev = rev
            if kind == "P":
                expected[ack[2]] = ack[3].encode()
            elif kind == "D":
                del expected[ack[2]]
            if kind == "C" or rev < store.compact_revision:
                continue
            kvs = store.range(ack[2], revision=rev).kvs
            if kind == "P":
                assert [(kv.value, kv.mod_revision) for kv in kvs] == [(ack[3].encode(), rev)], ack
            else:
                assert kvs == (), ack
        assert store.revision >= last_rev
        if acks:
            at_last_ack = store.range("", prefix=True, revision=max(last_rev, store.compact_revision)).kvs
            assert {kv.key: kv.value for kv in at_last_ack} == expected
        check_history_is_consistent(store)
        return {kv.key: kv.value for kv in store.range("", prefix=True).kvs}


def check_history_is_consistent(store) -> None:
    events = store.watch("", store.compact_revision).poll()
    revisions = [e.kv.mod_revision for e in events]
    assert revisions == sorted(revisions)
    latest = {}
    for e in events:
        prev = latest.get(e.kv.key, e.prev_kv)
        assert e.prev_kv == prev
        if e.type == "PUT":
            if prev is None:
                assert (e.kv.version, e.kv.create_revision) == (1, e.kv.mod_revision)
            else:
                assert (e.kv.version, e.kv.create_revision) == (prev.version + 1, prev.create_revision)
            latest[e.kv.key] = e.kv
        else:
            assert prev is not None
            latest[e.kv.key] = None
    live = {k: kv for k, kv in latest.items() if kv is not None}
    for kv in store.range("", prefix=True).kvs:
        assert live.get(kv.key, kv) == kv


def crash_many(tmp_path, points: int, seed: int, fresh_every: int) -> None:
    rng = random.Random(seed)
    state: dict[str, bytes] = {}
    acknowledged = 0
    for point in range(points):
        data_dir = str(tmp_path / f"data{point // fresh_every}")
        if point % fresh_every == 0:
            state = {}
        acks = run_and_kill(data_dir, seed * 1000 + point, rng)
        acknowledged += len(acks)
        state = check(data_dir, state, acks)
    assert acknowledged > points  # the children did get writes acknowledged


def test_acks_printed_together_with_ready_are_all_read():
    # One write puts READY and an ack in the pipe together, as a child that
    # runs ahead of a loaded test process does, so readline() buffers both.
    code = "import sys, time; sys.stdout.write('READY 0\\nP 1 k23 v\\n'); sys.stdout.flush(); time.sleep(60)"
    assert kill_after_ready([sys.executable, "-c", code], 0.0) == [["P", "1", "k23", "v"]]


def test_no_acknowledged_write_is_lost_across_20_kills(tmp_path):
    crash_many(tmp_path, points=20, seed=1, fresh_every=20)


@pytest.mark.slow
def test_no_acknowledged_write_is_lost_across_200_kills(tmp_path):
    crash_many(tmp_path, points=200, seed=2, fresh_every=25)
