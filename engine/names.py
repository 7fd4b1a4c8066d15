"""Did-you-mean: the closest known name by edit distance, and the namespaces that hold a name."""

from __future__ import annotations

from collections.abc import Iterable


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Damerau-Levenshtein (adjacent transpositions count 1), capped at limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return min(prev[-1], limit + 1)


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to `name`, if it is near enough to be a typo."""
    limit = max(1, min(3, len(name) // 3))
    best = None
    best_d = limit + 1
    for c in sorted(set(candidates)):
        if c == name:
            continue
        d = edit_distance(name.lower(), c.lower(), limit)
        if d < best_d:
            best, best_d = c, d
    return best


def elsewhere(objects: Iterable[dict], kind: str, name: str, looked_in: str | None, *,
              prefix: bool = False) -> str | None:
    """A hint for an object not found in the namespace `looked_in`: the other namespaces that
    have one of that name (or, with `prefix`, whose name begins so), and the flag that looks
    there; None where none has."""
    found = sorted({o["namespace"] for o in objects
                    if o["kind"] == kind and o.get("namespace") not in (None, looked_in)
                    and (o["name"] == name or prefix and o["name"].startswith(name))})
    if not found:
        return None
    if len(found) == 1:
        return f"look in namespace {found[0]}: -n {found[0]}"
    return f"look in namespace {' or '.join(found)}: -n NAMESPACE"
