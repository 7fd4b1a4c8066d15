"""Writes to a persistent store until killed; used by test_store_crash.py.

Prints one line per acknowledged write, flushed before the next write starts:
`P <rev> <key> <value>`, `D <rev> <key>` or `C <rev> <compacted to>`. Mixes
single writes, group commits (txn_many), deletes, compactions and, through a
small snapshot_every, snapshots, so kills land in each of them.
"""

import random
import sys

from engine.store import Put, Txn, open_store


def main(data_dir: str, seed: int) -> None:
    rng = random.Random(seed)
    out = sys.stdout
    with open_store(data_dir, snapshot_every=40) as store:
        print("READY", store.revision, flush=True)
        n = 0
        while True:
            n += 1
            roll = rng.random()
            if roll < 0.5:
                key, value = f"k{rng.randrange(30)}", f"{seed}-{n}"
                rev = store.put(key, value.encode()).revision
                out.write(f"P {rev} {key} {value}\n")
            elif roll < 0.6:
                key = f"k{rng.randrange(30)}"
                result = store.delete(key)
                if result.deleted:
                    out.write(f"D {result.revision} {key}\n")
            elif roll < 0.98:
                batch = [(f"k{i}", f"{seed}-{n}-{i}") for i in rng.sample(range(30), rng.randint(1, 8))]
                results = store.txn_many([Txn((), (Put(k, v.encode()),)) for k, v in batch])
                out.write("".join(f"P {r.revision} {k} {v}\n" for r, (k, v) in zip(results, batch)))
            else:
                target = max(store.compact_revision, store.revision - 50)
                store.compact(target)
                out.write(f"C {store.revision} {target}\n")
            out.flush()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
