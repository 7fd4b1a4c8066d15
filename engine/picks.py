"""A `pick`'s candidates, judged once and kept between evaluations.

`pick node n where feasible(p, n) order by score(p, n) desc, n.name` judges every
node for every pod. Between two pods of one template little changes: the node the
first landed on, and nothing else. A *group* — one pick and the content of the
variables it reads, named as the memo names a def's arguments — keeps each
candidate's verdict (does it pass `where`, and its place in the order) with what
judging it read. A change drops the verdicts that read what changed; the next
evaluation judges only the candidates without one and takes the best of the rest.

The instance that evaluated the pick reads the group's *token*, ("pick", group
key), in place of what its candidates read: a dropped verdict touches the token,
and the engine wakes the token's readers as it wakes the readers of any read.
A verdict that read the clock is not kept (its answer changes with time).
"""

from __future__ import annotations

from collections import OrderedDict

from . import ast as A
from .eval import _sort_key


class _Reversed:
    """A value ordered backwards: a descending key among ascending ones."""

    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    def __lt__(self, other: "_Reversed") -> bool:
        return other.v < self.v

    def __eq__(self, other) -> bool:
        return isinstance(other, _Reversed) and self.v == other.v

    __hash__ = None


def _ranked(value, descending: bool):
    """The sort key of `value`, turned so that ascending order puts the best first."""
    k = _sort_key(value)
    if not descending:
        return k
    if len(k) == 1:
        return k
    rank, v = k
    return (-rank, -v if rank in (1, 2) else _Reversed(v))


class _Group:
    __slots__ = ("entries",)

    def __init__(self):
        # id(candidate) → (candidate, passes, order key, reads); the candidate is held, so that
        # its id names no other object while the verdict is kept: an object replaced in the cache
        # is a new candidate
        self.entries: dict[int, tuple] = {}


class Picks:
    """The groups of every pick, with the reads their verdicts depend on."""

    LIMIT = 300_000  # verdicts kept in all; past it the groups used least recently and read by no instance go

    def __init__(self, memo):
        self.memo = memo
        self.groups: OrderedDict[tuple, _Group] = OrderedDict()
        self.readers: dict[tuple, set[tuple]] = {}  # a read → (group key, candidate id) of the verdicts
        self.size = 0
        self.limit = self.LIMIT
        # The engine's readers (a read → the instances that made it): a group some instance
        # waits on is kept, as dropping it would leave that instance without a wake-up.
        self.waiting: dict[tuple, set] = {}
        self._names: dict[int, tuple] = {}  # id(pick) → (the pick, its name for memo keys, variables it reads)

    def __setstate__(self, state: dict) -> None:
        """A copy (a forked run's) holds copies of the candidates: verdicts go by their ids."""
        self.__dict__.update(state)
        self.readers = {}
        for key, group in self.groups.items():
            group.entries = {id(e[0]): e for e in group.entries.values()}
            for cid, e in group.entries.items():
                for read in e[3]:
                    self.readers.setdefault(read, set()).add((key, cid))

    def choose(self, ev, pick: A.Pick, env: dict) -> dict | None:
        """The environment of the candidate `pick` chooses in `env`, or None."""
        _, name, names = self._info(pick, env)
        key = self.memo.key(name, [env[n] for n in names])
        if key is None:  # a variable the memo cannot name (a list of values, the clock)
            chosen = ev.select(pick.source, pick.where, pick.order, env)
            return chosen[0] if chosen else None
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group()
        else:
            self.groups.move_to_end(key)
        world = self.memo.world
        world.scanned.add(("pick", key))
        entries = group.entries
        best = None
        seen = 0
        for c in ev.bindings(pick.source, env, () if pick.where is None else (pick.where,)):
            seen += 1
            e = entries.get(id(c))
            if e is None:
                e = self._judge(ev, pick, env, key, group, c)
            if e[1] and (best is None or e[2] < best[2]):
                best = e
        if len(entries) > 2 * seen + 16:
            self._prune(key, group)
        if self.size > self.limit:
            self._evict()
        if best is None:
            return None
        inner = dict(env)
        inner[pick.source.var] = best[0]
        return inner

    def _info(self, pick: A.Pick, env: dict) -> tuple:
        info = self._names.get(id(pick))
        if info is None or info[0] is not pick:
            var = pick.source.var
            exprs = (pick.where, tuple(k.expr for k in pick.order))
            # The rule's variables the pick mentions (the same in every environment of its rule;
            # a name bound inside, by a comprehension of the condition, is not one of them).
            names = tuple(sorted({n.id for n in A.walk(exprs) if isinstance(n, A.Name) and n.id in env} - {var}))
            name = ("pick", id(pick))
            self.memo.name_by_content(name, (self.memo.reads.fields(n, exprs) for n in names))
            info = self._names[id(pick)] = (pick, name, names)
        return info

    def _judge(self, ev, pick: A.Pick, env: dict, key: tuple, group: _Group, c: dict) -> tuple:
        world = self.memo.world
        outer, world.scanned = world.scanned, set()
        outer_clock, ev.clock_used = ev.clock_used, False
        inner = dict(env)
        inner[pick.source.var] = c
        try:
            passes = pick.where is None or ev.eval(pick.where, inner) is True
            order = None
            if passes:
                order = tuple(_ranked(ev.eval(k.expr, inner), k.descending) for k in pick.order) + \
                    ((c["kind"], c.get("namespace") or "", c["name"]),)  # ties in the source's order
            timeless = not ev.clock_used
        finally:
            reads = world.scanned
            world.scanned = outer
            ev.clock_used = ev.clock_used or outer_clock
        if not timeless:
            outer |= reads  # judged afresh every time: the instance reads what it read
            return (c, passes, order, None)
        entry = (c, passes, order, reads)
        group.entries[id(c)] = entry
        self.size += 1
        cid = (key, id(c))
        for read in reads:
            self.readers.setdefault(read, set()).add(cid)
        return entry

    def _forget(self, key: tuple, cid: int, entry: tuple) -> None:
        self.size -= 1
        for read in entry[3]:
            found = self.readers.get(read)
            if found is not None:
                found.discard((key, cid))
                if not found:
                    del self.readers[read]

    def _prune(self, key: tuple, group: _Group) -> None:
        """Drop the verdicts on candidates the cache no longer holds (objects replaced or gone)."""
        for cid, entry in list(group.entries.items()):
            if not self._current(entry[0]):
                del group.entries[cid]
                self._forget(key, cid, entry)

    def _current(self, c: dict) -> bool:
        cache = self.memo.world.cache
        return cache.get((c["kind"], c.get("namespace") or "", c["name"])) is c

    def _evict(self) -> None:
        reading = self.memo.world.scanned  # the evaluation under way waits on these once it is recorded
        for key in list(self.groups):
            if self.size <= self.LIMIT // 2:
                break
            token = ("pick", key)
            if not self.waiting.get(token) and token not in reading:
                group = self.groups.pop(key)
                for cid, entry in group.entries.items():
                    self._forget(key, cid, entry)
        self.limit = max(self.LIMIT, 2 * self.size)  # the rest is waited on: let it grow before looking again

    def invalidate(self, reads: set) -> set[tuple]:
        """Drop the verdicts that read any of `reads`; the tokens of their groups."""
        tokens = set()
        for read in reads:
            for key, cid in self.readers.pop(read, ()):
                group = self.groups.get(key)
                entry = group.entries.pop(cid, None) if group is not None else None
                if entry is not None:
                    self._forget(key, cid, entry)
                    tokens.add(("pick", key))
                    if not group.entries:
                        del self.groups[key]
        return tokens
