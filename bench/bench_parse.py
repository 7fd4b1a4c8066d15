"""Parse and check a generated 10,000-object spec; parse it with Lark alone for comparison.

    python bench/bench_parse.py [n_objects]

The target (issue: the language) is parse + check of the 10,000-object spec in
≤ 1.5 s. Prints the median of 5 runs of each (wall clock, and CPU time, which
holds up better on a busy machine), lines per second, the ratio of the fast
path to pure Lark measured in the same run, and the cost of the
young-generation collection that the fast path defers to whoever allocates
next (it pauses the cycle collector while it builds the tree).
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gen_spec import generate_spec  # noqa: E402
from engine.check import check_modules, load_modules  # noqa: E402
from engine.parse import parse_text  # noqa: E402

RUNS = 5


def median_times(text: str, fast: bool) -> tuple[float, float, float]:
    """Median wall time, CPU time, and the collection that follows, in seconds."""
    walls, cpus, gcs = [], [], []
    for _ in range(RUNS):
        module = None
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        module = parse_text(text, "bench.konv", fast=fast)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        g0 = time.process_time()
        gc.collect(1)
        gcs.append(time.process_time() - g0)
    del module
    return statistics.median(walls), statistics.median(cpus), statistics.median(gcs)


def median_parse_and_check(text: str, std_modules) -> tuple[float, float]:
    """Median wall and CPU time of parse + check against the standard kinds (parsed once, as
    `konverge check` does for several specs)."""
    walls, cpus = [], []
    for _ in range(RUNS):
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        module = parse_text(text, "bench.konv")
        program = check_modules([*std_modules, module])
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        assert len(program.objects) >= 10_000 or len(program.objects) > 0
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    text = generate_spec(n, seed=1)
    lines = text.count("\n")
    parse_text(text, "bench.konv")  # warm the grammar cache
    std_modules, errors = load_modules([], std=True)
    assert not errors, errors
    both = median_parse_and_check(text, std_modules)
    fast = median_times(text, fast=True)
    lark = median_times(text, fast=False)
    print(f"{n} objects, {lines} lines, median of {RUNS} runs")
    print(f"parse + check: {both[0]:7.3f} s wall  {both[1]:7.3f} s cpu  {lines / both[0]:10,.0f} lines/s"
          f"  (target 1.5 s)")
    for label, (wall, cpu, collect) in (("fast path", fast), ("pure Lark", lark)):
        print(f"{label}: {wall:7.3f} s wall  {cpu:7.3f} s cpu  {lines / wall:10,.0f} lines/s"
              f"  (then gen-0/1 collection {collect:.3f} s cpu)")
    print(f"speed-up:  {lark[0] / fast[0]:7.1f}x wall  {lark[1] / fast[1]:7.1f}x cpu")


if __name__ == "__main__":
    main()
