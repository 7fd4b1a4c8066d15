"""A `pick`'s candidates, judged once and kept between evaluations.

`pick node n where feasible(p, n) order by score(p, n) desc, n.name` judges every
node for every pod. Between two pods alike in what judging reads of them little
changes: the node the first landed on, and nothing else. A *group* — one pick, the
values of its guards and the content of the fields of the rule's variables it reads
beside them (_Walk) — keeps each candidate's verdict (does it pass `where`, and its
place in the order) with what judging it read. A change drops the verdicts that read
what changed; the next evaluation judges only the candidates without one and takes
the best of the rest. Where the candidates are a whole kind that has not changed since
(the cache's list is the same), the group knows which verdicts were dropped and keeps
the passing ones in a heap, so a choice costs those re-judged, not every candidate.

The instance that evaluated the pick reads the group's *token*, ("pick", group
key), in place of what its candidates read: a dropped verdict touches the token,
and the engine wakes the token's readers as it wakes the readers of any read.
A verdict that read the clock is not kept (its answer changes with time).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from operator import is_

import attrs

from . import ast as A
from .eval import EvalError, _sort_key
from .values import Opaque, Unnamed, value_key


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
    __slots__ = ("entries", "candidates", "dropped", "ranked")

    def __init__(self):
        # id(candidate) → (candidate, passes, order key, reads); the candidate is held, so that
        # its id names no other object while the verdict is kept: an object replaced in the cache
        # is a new candidate
        self.entries: dict[int, tuple] = {}
        # The candidate list every one of whose members had a kept verdict after the last choice
        # (the cache hands out the same list while the kind is unchanged), the candidates whose
        # verdicts were dropped since, and the passing verdicts as a heap by order (stale ones
        # are skipped when they come up): the next choice judges only the dropped ones.
        self.candidates: list | None = None
        self.dropped: list[dict] = []
        self.ranked: list[tuple] = []


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
        self._trees: dict[int, _Tree] = {}  # id(pick) → its guards' tree
        self._leaves = 0  # leaves made so far: each names its groups apart from every other's

    def __setstate__(self, state: dict) -> None:
        """A copy (a forked run's) holds copies of the candidates: verdicts go by their ids."""
        self.__dict__.update(state)
        self.readers = {}
        for key, group in self.groups.items():
            group.entries = {id(e[0]): e for e in group.entries.values()}
            group.candidates, group.dropped, group.ranked = None, [], []
            for cid, e in group.entries.items():
                for read in e[3]:
                    self.readers.setdefault(read, set()).add((key, cid))

    def choose(self, ev, pick: A.Pick, env: dict) -> dict | None:
        """The environment of the candidate `pick` chooses in `env`, or None."""
        key = self._key(ev, pick, env)
        if key is None:  # a variable the memo cannot name (a list of values, the clock), or a guard failed
            chosen = ev.select(pick.source, pick.where, pick.order, env)
            return chosen[0] if chosen else None
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group()
        else:
            self.groups.move_to_end(key)
        world = self.memo.world
        world.scanned.add(("pick", key))
        candidates = ev.bindings(pick.source, env, () if pick.where is None else (pick.where,))
        if candidates is group.candidates:
            best = self._rejudge(ev, pick, env, key, group)
        else:
            best = self._judge_all(ev, pick, env, key, group, candidates)
        if self.size > self.limit:
            self._evict()
        if best is None:
            return None
        inner = dict(env)
        inner[pick.source.var] = best[0]
        return inner

    def _judge_all(self, ev, pick: A.Pick, env: dict, key: tuple, group: _Group, candidates) -> tuple | None:
        """The best candidate, each judged unless its verdict is kept."""
        group.candidates, group.dropped = None, []
        entries = group.entries
        best = None
        seen = 0
        kept = True
        for c in candidates:
            seen += 1
            e = entries.get(id(c))
            if e is None:
                e = self._judge(ev, pick, env, key, group, c)
                kept = kept and e[3] is not None
            if e[1] and (best is None or e[2] < best[2]):
                best = e
        if len(entries) > 2 * seen + 16:
            self._prune(key, group)
        if kept and isinstance(candidates, list):
            group.candidates = candidates
            group.ranked = _ranking(entries[id(c)] for c in candidates)
        return best

    def _rejudge(self, ev, pick: A.Pick, env: dict, key: tuple, group: _Group) -> tuple | None:
        """The best candidate of the same list as last time: only those whose verdicts were
        dropped since are judged, and the best comes off the heap."""
        entries, ranked = group.entries, group.ranked
        dropped, group.dropped, candidates, group.candidates = group.dropped, [], group.candidates, None
        for c in dropped:
            if id(c) not in entries and self._current(c):  # the list is the cache's: it holds the current objects
                e = self._judge(ev, pick, env, key, group, c)
                if e[3] is None:
                    return self._judge_all(ev, pick, env, key, group, candidates)  # read the clock
                if e[1]:
                    if ranked and ranked[0][2][0] is c:
                        # most often the candidate chosen last: its stale verdict on top gives way
                        heapq.heapreplace(ranked, (e[2], id(e), e))
                    else:
                        heapq.heappush(ranked, (e[2], id(e), e))
        while ranked and entries.get(id(ranked[0][2][0])) is not ranked[0][2]:
            heapq.heappop(ranked)  # a verdict dropped (and judged again) since it was pushed
        if len(ranked) > 2 * len(candidates) + 16:
            group.ranked = ranked = _ranking(entries[id(c)] for c in candidates)
        group.candidates = candidates
        return ranked[0][2] if ranked else None

    def _key(self, ev, pick: A.Pick, env: dict) -> tuple | None:
        """The group of `pick` in `env`: the values of its guards, and the fields of the rule's
        variables the rest of it reads (see _Walk), or None when those cannot be named.

        Found by evaluating the guards along the tree, or kept in the memo from an evaluation
        alike in what they read (the content of the fields of the rule's variables the pick
        reads, and what the guards read of the world): the instance reads what they read."""
        tree = self._trees.get(id(pick))
        if tree is None or tree.pick is not pick:
            tree = self._trees[id(pick)] = _Tree(pick)
        memo, world = self.memo, self.memo.world
        path = self._path(tree, env)
        found = None if path is None else memo.entries.get(path)
        if found is not None:
            world.scanned |= found[1]
            return found[0]
        step, values = tree.root, []
        walked = False
        # A guard is evaluated where judging might not reach it: its deadlines are not the
        # instance's (one that reads the clock makes the pick judged afresh, which records them).
        saved = ev.clock_used, ev.saw_clock, ev.deadlines
        ev.clock_used = False
        if ev.deadlines is not None:
            ev.deadlines = set()
        outer = memo.enter()
        group = None
        try:
            while step.leaf is None:
                if step.expr is None:  # a path not taken before: walk it
                    step, values = self._learn(ev, tree, env)
                    walked = True
                    break
                value = ev.eval(step.expr, {local: env[var] for local, var in step.env})
                try:
                    v = (value is True) if step.truth else value_key(value, world.cache.memo_parts)
                except Opaque:
                    tree.enter(step.expr, memo)
                    step, values = self._learn(ev, tree, env)
                    walked = True
                    break
                values.append(v)
                step = step.child(v)
            if ev.clock_used:  # a guard's answer changes with time
                return None
            name, names = step.leaf
            key = memo.key(name, [env[n] for n in names])
            if key is not None:
                group = (key, tuple(values))
        except (EvalError, Unnamed):
            return None  # judging every candidate meets the error, or does not reach it
        finally:
            ev.clock_used = ev.clock_used or saved[0]
            ev.saw_clock, ev.deadlines = saved[1], saved[2]
            # kept under the path's name, unless a walk started the tree afresh (that name with it)
            memo.leave(outer, path, group, group is not None and path is not None and not walked)
        return group

    def _path(self, tree: "_Tree", env: dict) -> tuple | None:
        """The memo key of the guards' path in `env`: the rule's variables the pick reads, each
        by the fields it reads of them where those say nothing of an object's identity. As those
        are all the fields judging reads of them, a version alike an earlier one in them takes
        over the keys made of it (_Memo.take_over)."""
        if tree.path is None:
            pick = tree.pick
            exprs = [e for e in (pick.where, *(k.expr for k in pick.order)) if e is not None]
            names = tuple(sorted({v for e in exprs for v in tree.free(e)} - {pick.source.var}))
            fields = []
            for v in names:
                read = [self.memo.reads.fields(v, e) for e in exprs]
                fields.append(None if None in read else frozenset().union(*read))
            name = ("pick path", self._leaves)
            self._leaves += 1
            self.memo.name_by_content(name, fields)
            tree.path = (name, names)
        name, names = tree.path
        if not all(v in env for v in names):
            return None
        args = [env[v] for v in names]
        named = tree.named
        if named is not None and self._alike(named[0], args):
            key = named[1]
        else:
            key = self.memo.key(name, args)
            tree.named = None if key is None else self._naming(key, args)
        if key is not None:
            self.memo.take_over(key, args)
        return key

    def _naming(self, key: tuple, args: list) -> tuple | None:
        """What names `args` as `key` does, for _alike: each argument's kind and the very values
        of the fields the key projects it on; None where an argument is not named by a projection
        of an object the cache holds."""
        named = []
        for a, part in zip(args, key[1:]):
            if self.memo.projected(a, part) is None:
                return None
            order = tuple(sorted(part[1]))
            named.append((a["kind"], order, tuple(map(a.get, order))))
        return tuple(named), key

    def _alike(self, named: tuple, args: list) -> bool:
        """Whether `args` are objects the cache holds whose fields that name them (_naming) hold the
        very values the last arguments named held. The pods a set creates from one template share
        their fields' decoded values (api._Decodings), which no one changes, and a field's text in
        a projection is its value's: such a pod has the key of the one before without its texts
        made, hashed and compared again (most pods bound one after another are alike)."""
        held = self.memo.world.cache.memo_parts
        for a, (kind, order, values) in zip(args, named):
            known = held.get(id(a)) if type(a) is dict else None
            if known is None or known[0] is not a or a["kind"] != kind \
                    or not all(map(is_, map(a.get, order), values)):
                return False
        return True

    def _learn(self, ev, tree: "_Tree", env: dict) -> tuple:
        """Walk the pick in `env` and record its path in the tree: the leaf, and the values."""
        if len(tree.names) >= tree.LIMIT:  # guards with ever new values: start afresh
            tree.reset(self.memo)
        while True:
            walk = _Walk(self, ev, tree, env)
            try:
                return walk.learn()
            except Opaque:  # a guard named an object (the walk has entered it): walk again
                pass

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

    def invalidate(self, reads) -> set[tuple]:
        """Drop the verdicts that read any of `reads`; the tokens of their groups. Most of those no
        verdict read: they are passed over in C, and the rest taken in any order, as the same
        verdicts go (a group re-judges those dropped in any order: each by itself)."""
        tokens = set()
        readers = self.readers
        for read in readers.keys() & reads:
            for key, cid in readers.pop(read, ()):  # _forget may have taken it since
                group = self.groups.get(key)
                entry = group.entries.pop(cid, None) if group is not None else None
                if entry is not None:
                    self._forget(key, cid, entry)
                    if group.candidates is not None:  # else the next choice judges every candidate anyway
                        group.dropped.append(entry[0])
                    tokens.add(("pick", key))
                    if not group.entries:
                        del self.groups[key]
        return tokens


def _ranking(entries) -> list[tuple]:
    """The passing verdicts as a heap, best first: (order, id, verdict). Two candidates' orders
    differ (their names are in them); the id tells apart two verdicts on one candidate (one stale),
    which are not compared further."""
    ranked = [(e[2], id(e), e) for e in entries if e[1]]
    heapq.heapify(ranked)
    return ranked


# ---- a pick's groups ---------------------------------------------------------------------


class _Step:
    """A node of a pick's tree of guards: the guard to evaluate next, or, at a leaf, the memo's
    name for the pick along this path with the rule's variables it names the group by."""

    __slots__ = ("expr", "env", "truth", "next", "leaf")

    def __init__(self):
        self.expr = None  # the guard, an expression of the rule's variables
        self.truth = False  # whether it is a condition (its value: is it true) or a call (its value)
        self.env: tuple = ()  # ((its name for a variable, the rule's name), …)
        self.next: dict = {}  # a condition's truth → the step after it; a call's: None → the one step after it
        self.leaf: tuple | None = None  # (memo name, rule variables)

    def child(self, v) -> "_Step":
        """The step after this guard when its value is `v`, made on first use. Only a
        condition chooses a branch: a call's value names the group (it is on the path's values)
        but the walk goes on past it alike whatever it is, so the steps after a call are one for
        all its values. A call with a value of its own for each evaluation (`new_rs_name(d)`,
        one a deployment) is then met without walking the pick again for each."""
        if not self.truth:
            v = None
        after = self.next.get(v)
        if after is None:
            after = self.next[v] = _Step()
        return after


class _Tree:
    """A pick's guards: the paths walked so far, and the guards found to name objects."""

    LIMIT = 10_000  # leaves; past it the tree starts afresh

    __slots__ = ("pick", "root", "opaque", "names", "frees", "path", "named")

    def __init__(self, pick: A.Pick):
        self.pick = pick
        self.root = _Step()
        # The memo's name for the path along the tree (Picks._path), with the rule's variables
        # it names it by: made on first use, and afresh with the tree.
        self.path: tuple | None = None
        # The last arguments the path was named for, as _naming gives them, with that key: made
        # afresh with the path.
        self.named: tuple | None = None
        # Guards whose value held an object the cache holds (`active(rs)`: the set's pods): as a
        # group's name it would change with every change to one of them. The walk enters these.
        self.opaque: dict[int, object] = {}
        self.names: list = []  # the leaves' memo names
        self.frees: dict[int, tuple] = {}  # id(expression) → (it, the names it uses free)

    def free(self, e) -> frozenset:
        """The names `e` uses that it does not bind (_free), found once: a walk asks it of every
        expression it meets, and each walk of the pick meets the same ones."""
        found = self.frees.get(id(e))
        if found is None or found[0] is not e:
            found = self.frees[id(e)] = (e, frozenset(_free(e)))
        return found[1]

    def enter(self, guard, memo) -> None:
        """Take `guard`, found to name an object, for no guard any more: the walk enters it. The
        paths that went through it go."""
        self.opaque[id(guard)] = guard
        self.reset(memo)

    def reset(self, memo) -> None:
        self.root = _Step()
        for name in self.names:
            memo.name_by_identity(name)
        self.names = []
        if self.path is not None:
            memo.name_by_identity(self.path[0])
            self.path = self.named = None


class _Walk:
    """Which verdicts two evaluations of a pick may share.

    `pick node n where feasible(p, n) order by score(p, n) desc` gives the same verdict on a
    node for any two pods that agree in what judging reads of them. Judging reads a pod
    two ways: through a *guard* — a condition of an `if`, the left side of `and`/`or`, or a
    call of a def, that does not depend on the candidate (`has_pod_constraints(p)`,
    `pod_cpu(p)`), whose value is one for every candidate — and through fields read beside
    the candidate (`p.nodeSelector <= n.labels`). A group is named by the guards' values and
    those fields' content. A guard's value also decides which branch judging takes, and only
    the fields read on the branches taken count: a pod without spread constraints or
    affinity is judged without reading its labels, so pods of many templates share one group.

    The walk below follows the where and order expressions, and the bodies of the defs they
    pass the rule's variables to, evaluating each guard it meets; its path, the guards'
    values in order, is kept as a tree (_Step), so that later evaluations only evaluate the
    guards along it.
    """

    def __init__(self, picks: Picks, ev, tree: _Tree, env: dict):
        self.picks, self.ev, self.tree, self.pick, self.env = picks, ev, tree, tree.pick, env
        self.path: list[tuple] = []  # (guard, its env, a condition?, its value's key)
        self.failed: tuple = ()  # (guard, its env, a condition?) that raised
        self.fields: dict[str, set | None] = {}  # rule variable → the fields read of it; None: read whole
        self.decided: dict[tuple, bool] = {}  # (function, rule variables, a condition?) → its truth on the path

    def learn(self) -> tuple[_Step, list]:
        scope = {name: name for name in self.env}
        scope[self.pick.source.var] = None
        try:
            for e in (self.pick.where, *(k.expr for k in self.pick.order)):
                if e is not None:
                    self.visit(e, scope)
        except (EvalError, Unnamed):
            # Kept as the step after the path so far: the next evaluation meets the error there
            # again without walking, or walks on from a value it gets.
            step = self.record()
            if step.expr is None:
                step.expr, step.env, step.truth = self.failed
            raise
        step = self.record()
        if step.leaf is None:
            tree = self.tree
            names = tuple(sorted(self.fields))
            name = ("pick", self.picks._leaves)
            self.picks._leaves += 1
            tree.names.append(name)
            self.picks.memo.name_by_content(
                name, (None if self.fields[n] is None else frozenset(self.fields[n]) for n in names))
            step.leaf = (name, names)
        return step, [v for *_, v in self.path]

    def record(self) -> _Step:
        """The path walked, as steps of the tree; the step it ends at."""
        step = self.tree.root
        for expr, spec, truth, v in self.path:
            if step.expr is not None and (step.expr, step.env, step.truth) != (expr, spec, truth):
                step.next, step.leaf = {}, None  # cannot happen, as the walk follows the values; if it did, start here afresh
            step.expr, step.env, step.truth = expr, spec, truth
            step = step.child(v)
        return step

    def decide(self, e, scope: dict, truth: bool) -> bool:
        """Evaluate the guard `e` and record it on the path; whether it is true. Two guards are
        left off the path, as their values are known without evaluating them: one that reads
        nothing (`limit()`) has the same value every time, and a call made again with the same
        variables (`need(i)` in two defs) has the value recorded for the first."""
        spec = tuple(sorted((local, scope[local]) for local in self.tree.free(e)))
        again = None
        if isinstance(e, A.Call) and all(isinstance(a, A.Name) for a in e.args):
            again = (e.fn, tuple(scope[a.id] for a in e.args), truth)
            if again in self.decided:
                return self.decided[again]
        try:
            value = self.ev.eval(e, {local: self.env[var] for local, var in spec})
            v = (value is True) if truth else value_key(value, self.picks.memo.world.cache.memo_parts)
        except Opaque:
            self.tree.enter(e, self.picks.memo)
            raise
        except (EvalError, Unnamed):
            self.failed = (e, spec, truth)
            raise
        if spec or not self.picks.memo.reads.pure(e):
            self.path.append((e, spec, truth, v))
            if again is not None:
                self.decided[again] = value is True
        return value is True

    def guard(self, e, scope: dict) -> bool:
        """Whether `e` depends on the rule's variables only (not on the candidate, nor on a
        name bound inside the walk), and its value can name a group."""
        return self.tree.opaque.get(id(e)) is not e and all(scope.get(local) is not None for local in self.tree.free(e))

    def read(self, var: str, field: str | None) -> None:
        if field is None:
            self.fields[var] = None
        elif self.fields.get(var, ()) is not None:
            self.fields.setdefault(var, set()).add(field)

    def visit(self, e, scope: dict) -> None:
        if isinstance(e, A.Name):
            if scope.get(e.id) is not None:
                self.read(scope[e.id], None)  # used whole
        elif isinstance(e, A.Attr) and isinstance(e.obj, A.Name) and scope.get(e.obj.id) is not None:
            self.read(scope[e.obj.id], e.name)
        elif isinstance(e, A.IfElse) and self.guard(e.cond, scope):
            self.visit(e.then if self.decide(e.cond, scope, truth=True) else e.otherwise, scope)
        elif isinstance(e, A.Binary) and e.op in ("and", "or") and self.guard(e.left, scope):
            if self.decide(e.left, scope, truth=True) == (e.op == "and"):
                self.visit(e.right, scope)
        elif isinstance(e, A.Call) and e.fn in self.picks.memo.reads.program.defs:
            if self.guard(e, scope):
                self.decide(e, scope, truth=False)
                return
            d = self.picks.memo.reads.program.defs[e.fn]
            inner = {}
            for param, a in zip(d.params, e.args):
                if isinstance(a, A.Name) and scope.get(a.id) is not None:
                    inner[param.name] = scope[a.id]  # the rule's variable, under the def's name
                else:
                    self.visit(a, scope)
                    inner[param.name] = None
            self.visit(d.body, inner)
        elif isinstance(e, (A.Comprehension, A.Quantifier)):
            if isinstance(e.source, A.ListSource):
                self.visit(e.source.iterable, scope)
            inner = dict(scope)
            inner[e.source.var] = None
            for f in attrs.fields(type(e)):
                if f.name not in ("source", "span"):
                    self.visit(getattr(e, f.name), inner)
        elif isinstance(e, (list, tuple)):
            for x in e:
                self.visit(x, scope)
        elif attrs.has(type(e)) and not isinstance(e, A.Span):
            for f in attrs.fields(type(e)):
                if f.name != "span":
                    self.visit(getattr(e, f.name), scope)


def _free(e, bound: frozenset = frozenset()) -> set[str]:
    """The names `e` uses that it does not bind."""
    if isinstance(e, A.Name):
        return set() if e.id in bound else {e.id}
    if isinstance(e, (A.Comprehension, A.Quantifier)):
        out = _free(e.source.iterable, bound) if isinstance(e.source, A.ListSource) else set()
        inner = bound | {e.source.var}
        for f in attrs.fields(type(e)):
            if f.name not in ("source", "span"):
                out |= _free(getattr(e, f.name), inner)
        return out
    if isinstance(e, (list, tuple)):
        return set().union(*(_free(x, bound) for x in e))
    if attrs.has(type(e)) and not isinstance(e, A.Span):
        return set().union(*(_free(getattr(e, f.name), bound) for f in attrs.fields(type(e)) if f.name != "span"))
    return set()
