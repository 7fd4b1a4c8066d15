"""What `konverge reconcile -o json|yaml` spends writing the JSON contract, apart from the run.

    python bench/bench_output.py [--nodes 300] [--pods 1000] [--services 100] [--repeat 3]
                                 [--against TREE] [--spec FILE]

Reconciles a cluster once (bench_cluster.py's spec, or --spec) in a subprocess per source
tree, then writes the contract as JSON and as YAML `--repeat` times, timing each in CPU
seconds and hashing its text (never holding it: at 1,000 nodes the JSON is 1.5 GB). With
--against a second tree (e.g. a worktree of an older commit), both trees run the same
cluster, and the report gives the ratio of their medians and whether their texts are the
same bytes. Each tree is byte-compiled first, as in bench_cluster.py.

The collector is off while it writes, as the CLI has it for a one-run command.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_cluster import cluster_spec

ROOT = Path(__file__).resolve().parent.parent

# Run in the tree measured, so that its engine is the one imported.
CHILD = r"""
import gc, hashlib, json, sys, time
from engine.check import load_program
from engine.fixpoint import reconcile
from engine.kube.contract import stream

gc.disable()
spec, repeat = sys.argv[1], int(sys.argv[2])
program = load_program([spec])
result = reconcile(program, budget=10_000_000)
out = {}
for fmt in ("json", "yaml"):
    times, size = [], 0
    for _ in range(repeat):
        digest, size = hashlib.md5(), 0
        t0 = time.process_time()
        for piece in stream(program, result, as_yaml=fmt == "yaml"):
            data = piece.encode()
            digest.update(data)
            size += len(data)
        times.append(time.process_time() - t0)
    out[fmt] = {"times": times, "md5": digest.hexdigest(), "bytes": size}
print(json.dumps(out))
"""


def measure(tree: Path, spec: Path, repeat: int) -> dict:
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "engine")], check=True)
    done = subprocess.run([sys.executable, "-c", CHILD, str(spec), str(repeat)], cwd=tree, capture_output=True,
                          text=True)
    if done.returncode != 0:
        sys.exit(f"{tree}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=300)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--spec", type=Path, help="a spec of your own instead of the generated cluster")
    ap.add_argument("--repeat", type=int, default=3, help="writes of each format; the median is reported")
    ap.add_argument("--against", type=Path, metavar="TREE", help="another source tree to compare with")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = args.spec.resolve() if args.spec else Path(tmp) / "cluster.konv"
        if not args.spec:
            spec.write_text(cluster_spec(args.nodes, args.pods, args.services))
        trees = [ROOT] + ([args.against.resolve()] if args.against else [])
        runs = {tree: measure(tree, spec, args.repeat) for tree in trees}
    what = args.spec or f"{args.nodes} nodes, {args.pods} pods, {args.services} services"
    print(f"load average {os.getloadavg()[0]:.2f}; {what}; median CPU seconds of {args.repeat} writes")
    for fmt in ("json", "yaml"):
        this = runs[ROOT][fmt]
        line = f"{fmt}: {statistics.median(this['times']):.2f} s, {this['bytes']:,} bytes"
        if args.against:
            other = runs[args.against.resolve()][fmt]
            ratio = statistics.median(other["times"]) / statistics.median(this["times"])
            same = "the same bytes" if other["md5"] == this["md5"] else "DIFFERENT bytes"
            line += f"; {args.against}: {statistics.median(other['times']):.2f} s ({ratio:.1f}x this), {same}"
        print(f"{line}  md5 {this['md5']}")


if __name__ == "__main__":
    main()
