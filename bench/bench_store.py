"""Store throughput: in-memory puts, durable group-committed puts, durable
one-at-a-time writes beside the disk's own fsync latency.

    PYTHONPATH=. python bench/bench_store.py [--puts N] [--repeat R] [--dir D]

Prints medians of R repetitions; the fsync latency is measured just before
each one-at-a-time run, since it drifts with whatever else uses the disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.store import Put, Txn, open_store  # noqa: E402

VALUE = b'{"kind":"Pod","metadata":{"name":"web-0","namespace":"default"},"spec":{"nodeName":"n1"}}'


def key(i: int) -> str:
    # Spread over namespaces so prefix indexing is exercised, not just appends.
    return f"/registry/pods/ns{i % 50}/pod-{i}"


def in_memory_puts(n: int, _dir: str) -> tuple[float, float]:
    """Puts per wall-clock second and per CPU second (the latter ignores
    other load on the machine)."""
    store = open_store()
    start, start_cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        store.put(key(i), VALUE)
    return n / (time.perf_counter() - start), n / (time.process_time() - start_cpu)


def durable_grouped_puts(n: int, base: str, group: int = 100) -> float:
    data_dir = tempfile.mkdtemp(dir=base)
    with open_store(data_dir) as store:
        start = time.perf_counter()
        for first in range(0, n, group):
            store.txn_many([Txn((), (Put(key(i), VALUE),)) for i in range(first, min(n, first + group))])
        rate = n / (time.perf_counter() - start)
    shutil.rmtree(data_dir)
    return rate


def durable_single_writes(n: int, base: str) -> float:
    data_dir = tempfile.mkdtemp(dir=base)
    with open_store(data_dir) as store:
        start = time.perf_counter()
        for i in range(n):
            store.put(key(i), VALUE)
        rate = n / (time.perf_counter() - start)
    shutil.rmtree(data_dir)
    return rate


def fsync_latency_ms(n: int, base: str) -> float:
    fd, path = tempfile.mkstemp(dir=base)
    try:
        samples = []
        for _ in range(n):
            os.write(fd, VALUE)
            start = time.perf_counter()
            os.fsync(fd)
            samples.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        os.unlink(path)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puts", type=int, default=100_000, help="puts per in-memory and grouped run")
    parser.add_argument("--single", type=int, default=2_000, help="writes per one-at-a-time durable run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="directory on the disk to measure (default: a temp dir)")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="konverge-bench-", dir=args.dir)
    try:
        memory = [in_memory_puts(args.puts, base) for _ in range(args.repeat)]
        rows = [
            ("in-memory puts/s", [wall for wall, _ in memory]),
            ("in-memory puts per CPU-second", [cpu for _, cpu in memory]),
            ("durable puts/s, group commit of 100", [durable_grouped_puts(args.puts, base) for _ in range(args.repeat)]),
        ]
        # The disk's fsync latency drifts with other load, so measure it
        # right before each one-at-a-time run to compare like with like.
        latencies, singles = [], []
        for _ in range(args.repeat):
            latencies.append(fsync_latency_ms(200, base))
            singles.append(durable_single_writes(args.single, base))
        rows.append(("durable writes/s, one fsync each", singles))
        rows.append(("fsync latency (ms), same disk", latencies))
        rows.append(("1000 / fsync latency", [1000 / lat for lat in latencies]))
        print(f"{'measure':<40}{'median':>12}   runs")
        for name, results in rows:
            print(f"{name:<40}{_fmt(statistics.median(results)):>12}   {', '.join(map(_fmt, results))}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _fmt(x: float) -> str:
    return f"{x:,.2f}" if x < 100 else f"{x:,.0f}"


if __name__ == "__main__":
    main()
