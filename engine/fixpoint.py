"""Fixpoint: run a program's controllers against the store until nothing changes.

A *rule instance* is a rule with its first `for` variable bound to one object
(a rule without a `for` over a kind has one instance). Evaluating an instance
gives the writes it wants — `set` only where it changes something, `create`
where the object is missing, `ensure` where the owned object differs, deletes
of objects it ensured before and no longer does. A *step* applies the writes of
the first instance, in firing order, that wants any. Reconcile ends when no
instance wants a write and no timer is pending: a fixed point, stable by
construction, since running it again finds nothing to do.

Two modes find that first instance. The naive mode evaluates every instance
every step: the reference. The incremental mode keeps a queue of *dirty*
instances: an instance is evaluated again only when an object it is bound to,
or a kind it read, changed, or a deadline it recorded came due. Both pick the
same instance at every step, so they reach the same state by the same path.

Time is virtual. While evaluating, `now()` is symbolic (engine.eval.Clock) and
every comparison against it records when its answer would change; when no
instance wants a write, the clock jumps to the earliest such deadline.

Every write goes through the API server as the controller's identity and is
recorded with its rule, instance, revision and clock, for `explain` and
`trace`.
"""

from __future__ import annotations

import gc
import hashlib
import heapq
import json
from collections import Counter, deque
from collections.abc import Callable, Iterable
from fractions import Fraction
from itertools import chain, compress
from operator import itemgetter, not_
from types import MappingProxyType
from typing import Any

import attrs

from . import ast as A
from .api import encode_object
from .check import ENGINE_FAULT_KIND, Program
from .errors import Diagnostic, KonvergeError, Span
from .eval import Evaluator, _conjuncts, _mentions, _settled, materialize
from .picks import Picks
from .reads import Reads, derived
from .types import RecordT, strip
from .values import SORTED_JSON, Unnamed, assign, decode, differs, encode, freeze, number_value, unit_value, value_key
from .values import same as same_value

DEFAULT_BUDGET = 200_000
DEFAULT_HORIZON = 7 * 86400  # a week of virtual time
META = ("kind", "name", "namespace", "resourceVersion", "createdRevision", "managedBy")


@attrs.frozen(slots=True)
class Write:
    """One write the engine made, with why: for `explain` and `trace`."""

    step: int
    revision: int
    clock: int | Fraction
    actor: str  # controller name, or "scenario" / "spec"
    rule: str | None
    instance: str | None
    verb: str  # create, update, delete, refused
    kind: str
    namespace: str | None
    name: str
    message: str = ""


@attrs.frozen(slots=True)
class Cycle:
    period: int  # steps
    instances: tuple[str, ...]
    objects: tuple[str, ...]


@attrs.frozen(slots=True)
class Result:
    converged: bool
    steps: int
    revision: int
    clock: int | Fraction
    objects: tuple[dict, ...]
    trace: tuple[Write, ...]
    reason: str = ""  # why it did not converge: "budget", "cycle" or "horizon"
    cycle: Cycle | None = None
    violations: tuple[str, ...] = ()


def object_key(kind: str, namespace: str | None, name: str) -> tuple:
    return (kind, namespace or "", name)


def key_text(key: tuple) -> str:
    kind, ns, name = key
    return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


# ---- the engine's view of the store --------------------------------------------------


class Cache:
    """The objects as the controllers see them: kept from the API server's watch."""

    def __init__(self):
        self.by_kind: dict[str, dict[tuple, dict]] = {}
        self._sorted: dict[str, list[dict]] = {}
        self.clock: int | Fraction = 0
        self.state_hash = 0  # order-independent hash of every object's content
        self.hashes: dict[tuple, int] = {}  # key → its object's content hash
        # id(object) → (object, how a memo key names it, how memo keys name its content: a set
        # of fields → their texts, and a field → its text, of which those are made: _projection,
        # kept by a new version for the fields it leaves alone (put), a def → the memo key of
        # calling it with the object alone, and the API server's texts of its fields, or None:
        # put), for the objects held
        self.memo_parts: dict[int, tuple] = {}
        self.owned: dict[str, set[tuple]] = {}  # managedBy → keys of the objects it owns
        self.indexes: dict[str, dict[tuple, dict]] = {}  # kind → ("eq"|"has"|"sub", path) → entry → keys
        # key → for each index of its kind, in order, the index reads (what a lookup records) of the
        # entries its object is in: an update that leaves an indexed value alone leaves its entries
        # as they are, and its reads are named without making them again
        self.placed: dict[tuple, list[tuple]] = {}
        # kind → a field → the indexes of paths that start at it: (place in the kind's order, mode,
        # path, index). An update changes a few fields, which few indexes are of: those alone are
        # looked at (_reindex).
        self.indexed: dict[str, dict[str, list[tuple]]] = {}
        # (kind, the fields an update changed) → those indexes of those fields, by place: updates
        # of a kind change few sets of fields (a kubelet's status, a scheduler's binding), each
        # looked up once; emptied by _index, the one place `indexed` grows
        self._looks: dict[tuple[str, frozenset], list[tuple]] = {}

    def __setstate__(self, state: dict) -> None:
        """A copy (a forked run's) holds copies of the objects: `memo_parts` goes by their ids."""
        self.__dict__.update(state)
        self.memo_parts = {id(part[0]): part for part in self.memo_parts.values()}

    def lookup(self, kind: str, mode: str, path: tuple, value) -> list[dict]:
        """Objects of a kind whose field at `path` equals `value` ("eq"), one of the elements of
        the list `value` ("in"; any other value: every object), is not none ("has") or a list,
        map or text that is not empty ("nonempty"), or whose
        map at `path` holds every entry of `value` ("sub"), in key order, from indexes kept on
        every write."""
        if mode == "in":
            if not isinstance(value, list):
                return self.scan(kind)
            index = self._index(kind, "eq", path)
            found: set[tuple] = set()
            for v in value:
                found.update(index.get(freeze(v), ()))
            objs = self.by_kind.get(kind, {})
            return list(map(objs.__getitem__, sorted(found)))
        if mode != "sub":
            bucket = self._index(kind, mode, path).get(True if mode in _PRESENCE else freeze(value))
            if not bucket:
                return []
            # the most asked of the cache, each found object in C
            return list(map(self.by_kind[kind].__getitem__, bucket.in_order()))
        if not isinstance(value, dict) or not value:
            return self.scan(kind)
        index = self._index(kind, "sub", path)
        postings = sorted((index.get((k, freeze(v)), ()) for k, v in value.items()), key=len)
        smallest, rest = postings[0], postings[1:]
        if not smallest:
            return []
        objs = self.by_kind[kind]
        return [objs[k] for k in smallest.in_order() if all(k in p for p in rest)]

    def lookup_size(self, kind: str, mode: str, path: tuple, value) -> int:
        """How many candidates `lookup` would start from: for the planner."""
        if mode == "in":
            if not isinstance(value, list):
                return len(self.by_kind.get(kind, ()))
            index = self._index(kind, "eq", path)
            return sum(len(index.get(freeze(v), ())) for v in value)
        if mode != "sub":
            return len(self._index(kind, mode, path).get(True if mode in _PRESENCE else freeze(value), ()))
        if not isinstance(value, dict) or not value:
            return len(self.by_kind.get(kind, ()))
        index = self._index(kind, "sub", path)
        return min(len(index.get((k, freeze(v)), ())) for k, v in value.items())

    def _index(self, kind: str, mode: str, path: tuple) -> dict:
        of_kind = self.indexes.get(kind)
        if of_kind is None:
            of_kind = self.indexes[kind] = {}
        index = of_kind.get((mode, path))
        if index is None:
            index = of_kind[(mode, path)] = {}
            self.indexed.setdefault(kind, {}).setdefault(path[0], []).append((len(of_kind) - 1, mode, path, index))
            self._looks.clear()
            placed = self.placed
            for key, obj in self.by_kind.get(kind, {}).items():
                placed[key].append(_index_add(index, mode, kind, path, key, obj))
        return index

    def scan(self, kind: str) -> list[dict]:
        cached = self._sorted.get(kind)
        if cached is None:
            objs = self.by_kind.get(kind, {})
            cached = list(map(objs.__getitem__, sorted(objs)))
            self._sorted[kind] = cached
        return cached

    def now(self):
        return self.clock

    def get(self, key: tuple) -> dict | None:
        objs = self.by_kind.get(key[0])  # asked at every change, and by many evaluations: no `{}` made
        return objs.get(key) if objs is not None else None

    def put(self, obj: dict, data: bytes | None = None, reads: tuple[list, list] | None = None,
            changed: frozenset | None = None,
            field_text: Callable[[str, Any], str | None] | None = None, key: tuple | None = None) -> dict | None:
        """Store an object (`data`: its stored bytes, if known); the version it replaces. `reads`
        is given the index reads the change touched (`_reindex`). `changed`, where known, holds the
        fields in which it differs from that version as the language tells values apart
        (Engine.changed_fields): the texts of the others, and the projections on them, are kept.
        `field_text`, if given, tells a field's text where the API server made it
        (WatchEvent.field_text). `key`: its object_key, where the caller has made it."""
        if key is None:
            key = object_key(obj["kind"], obj.get("namespace"), obj["name"])
        objs = self.by_kind.get(key[0])
        if objs is None:
            objs = self.by_kind[key[0]] = {}
        old = objs.get(key)
        content_parts = {}
        if old is not None:
            self.state_hash = (self.state_hash - self.hashes[key]) % 2**64
            self._disown(old, key)
            was = self.memo_parts.pop(id(old), None)
            if changed is not None and was is not None:
                content_parts = _unchanged(was[2], changed)
        self._reindex(key, old, obj, reads, changed)
        objs[key] = obj
        self.hashes[key] = content = _hash(obj, data)
        self.memo_parts[id(obj)] = (obj, (*key, obj.get("resourceVersion")), content_parts, {}, field_text)
        self.state_hash = (self.state_hash + content) % 2**64
        if obj.get("managedBy"):
            self.owned.setdefault(obj["managedBy"], set()).add(key)
        self._sorted.pop(key[0], None)
        return old

    def _reindex(self, key: tuple, old: dict | None, new: dict | None, reads: tuple[list, list] | None = None,
                 changed: frozenset | None = None) -> None:
        """Move an object between the entries of its kind's indexes. `reads`, if given, is a pair of
        lists given the index reads ((mode, kind, path, entry): what a lookup records) of the
        entries it is in: first those that answer the same objects before and after (an update
        that leaves the indexed value alone), then those it left or joined. `changed`, where
        known, holds every field whose value differs from the old version's (Engine.changed_fields):
        an index of another field needs no look."""
        kind = key[0]
        same, moved = reads if reads is not None else ([], [])
        of_kind = self.indexes.get(kind, {})
        if old is None:
            self.placed[key] = placed = [_index_add(index, mode, kind, path, key, new)
                                         for (mode, path), index in of_kind.items()]
            moved.extend(chain.from_iterable(placed))
            return
        if new is None:
            for index, entries in zip(of_kind.values(), self.placed.pop(key), strict=True):
                _index_drop(index, key, entries)
                moved.extend(entries)
            return
        placed = self.placed[key]
        if not placed:
            return
        if changed is None:
            looks = [(i, mode, path, index) for i, ((mode, path), index) in enumerate(of_kind.items())]
        else:
            looks = self._looks.get((kind, changed))
            if looks is None:
                by_field = self.indexed[kind]
                # by place: the reads come in the order an update told nothing gives them
                looks = sorted(look for f in by_field.keys() & changed for look in by_field[f])
                if len(self._looks) >= _LOOKS:
                    self._looks.clear()
                self._looks[(kind, changed)] = looks
        left = None  # the places of the indexes whose entries it left
        for i, mode, path, index in looks:
            if len(path) == 1:  # most indexes: of a field, at once
                value, was = new.get(path[0]), old.get(path[0])
            else:
                value, was = value_at(new, path), value_at(old, path)
            if value != was:
                entries = placed[i]
                _index_drop(index, key, entries)
                moved.extend(entries)
                placed[i] = entries = _index_add(index, mode, kind, path, key, new)
                moved.extend(entries)
                if left is None:
                    left = set()
                left.add(i)
        if left is None:
            same.extend(chain.from_iterable(placed))  # in the same entries, which hold its key
        else:
            for i, entries in enumerate(placed):
                if i not in left:
                    same.extend(entries)

    def _disown(self, obj: dict, key: tuple) -> None:
        owner = obj.get("managedBy")
        if owner and owner in self.owned:
            self.owned[owner].discard(key)
            if not self.owned[owner]:
                del self.owned[owner]

    def remove(self, key: tuple, reads: tuple[list, list] | None = None) -> dict | None:
        """Drop an object; the version dropped. `reads` is given the index reads it touched (`_reindex`)."""
        old = self.by_kind.get(key[0], {}).pop(key, None)
        if old is not None:
            self.state_hash = (self.state_hash - self.hashes.pop(key)) % 2**64
            self._disown(old, key)
            self.memo_parts.pop(id(old), None)
            self._reindex(key, old, None, reads)
            self._sorted.pop(key[0], None)
        return old

    def owned_by(self, owner: str) -> list[dict]:
        keys = self.owned.get(owner)
        return [self.get(k) for k in sorted(keys)] if keys else []  # most own nothing: asked at every evaluation

    def all(self) -> list[dict]:
        return [self.by_kind[k][key] for k in sorted(self.by_kind) for key in sorted(self.by_kind[k])]


def value_at(obj, path: tuple):
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


_PRESENCE = frozenset({"has", "nonempty"})  # the indexes with one entry, True
_LOOKS = 4_096  # sets of changed fields whose indexes are kept (Cache._looks)


def index_entries(mode: str, v) -> list:
    """The entries an object whose indexed field holds `v` has in an index: its value, whether
    it has one, whether it holds something, or its map's (key, value) pairs. Equal values have equal entries."""
    if mode == "eq":
        return [freeze(v)]
    if mode == "has":
        return [] if v is None else [True]
    if mode == "nonempty":  # only an empty list, map or text is out: `len` fails on anything else,
        # so the condition, which the caller still applies, fails on it as it would in a scan
        return [] if isinstance(v, list | dict | str) and len(v) == 0 else [True]
    return [(k, freeze(x)) for k, x in v.items()] if isinstance(v, dict) else []


def _touch(touched: dict, reads: Iterable[tuple], fields: frozenset | None) -> None:
    """Note reads a change touched, with the fields it changed (None: which objects they answer)."""
    for read in reads:
        if read not in touched:
            touched[read] = fields
        elif (was := touched[read]) is not None:
            touched[read] = None if fields is None else was | fields


class _Bucket(set):
    """The keys of the objects in one entry of an index, in order once a lookup has asked (until a
    key comes or goes: replacing an object leaves them as they are), with the entry's read, which
    every object in it shares (Cache.placed)."""

    __slots__ = ("order", "read")

    def __init__(self, read: tuple, keys: Iterable[tuple] = ()):
        super().__init__(keys)
        self.order = None
        self.read = read

    def __reduce__(self):
        """A copy (a forked run's) has the read too: a set's own copy keeps only the keys."""
        return _Bucket, (self.read, list(self))

    def in_order(self) -> list[tuple]:
        if self.order is None:
            self.order = sorted(self)
        return self.order


def _index_add(index: dict, mode: str, kind: str, path: tuple, key: tuple, obj: dict) -> tuple:
    """Put an object's key in its entries of an index; the index reads of those entries."""
    value = obj.get(path[0]) if len(path) == 1 else value_at(obj, path)  # most indexes: of a field
    if mode == "eq":  # most indexes: one entry, most often a text
        entry = value if type(value) is str else freeze(value)
        bucket = index.get(entry)
        if bucket is None:
            bucket = index[entry] = _Bucket((mode, kind, path, entry))
        bucket.add(key)
        bucket.order = None
        return (bucket.read,)
    entries = index_entries(mode, value)
    reads = []
    for entry in entries:
        bucket = index.get(entry)
        if bucket is None:
            bucket = index[entry] = _Bucket((mode, kind, path, entry))
        bucket.add(key)
        bucket.order = None
        reads.append(bucket.read)
    return tuple(reads)


def _index_drop(index: dict, key: tuple, reads: tuple) -> None:
    """Take an object's key out of the entries of an index it is in (their reads, `_index_add`)."""
    for read in reads:
        entry = read[3]
        bucket = index.get(entry)
        if bucket is None:
            continue  # an entry the object's value names twice (a list holding a member twice): gone
        bucket.discard(key)
        bucket.order = None
        if not bucket:
            del index[entry]


# What tells apart two objects of equal content: not read by a def that is memoised by content.
IDENTITY = ("name", "resourceVersion", "createdRevision", "managedBy")
_IDENTITY_SET = frozenset(IDENTITY)


def _hash(obj: dict, data: bytes | None = None) -> int:
    """An object's content hash: all but its versions — of its stored bytes, which the watch
    brings along (`data`), or are made again. Python's own hash of them: the state hashes made
    of these are only compared within one process (a cycle, a state explored before), where it
    is as unlikely to collide as a 64-bit digest, and it costs a tenth of one."""
    if data is None:
        data = encode_object(obj)
    return hash(data) % 2**64


def _unchanged(content_parts: dict, changed: frozenset) -> dict:
    """Of how memo keys name an object's content (the third part of its Cache.memo_parts), what
    holds of a new version whose fields `changed` differ: the other fields' texts, and the
    projections on those alone. Values the language cannot tell apart have one text (a map's
    keys are sorted in it; the fields whose `==` is looser are compared by `same`)."""
    return {k: v for k, v in content_parts.items()
            if (k not in changed if type(k) is str else changed.isdisjoint(k))}


def _projection(obj: dict, fields: frozenset, texts: dict,
                field_text: Callable[[str, Any], str | None] | None = None, order: tuple | None = None) -> tuple:
    """How a memo key names an object by some of its fields: their values' texts, in the fields'
    order, as they are (a tuple of them is hashed faster than a digest of them is made, each text
    keeping its hash). Equal contents in any key order name alike, while 1, 1.0 and true, or 0.0
    and -0.0, do not (they are equal in Python, not to type_of or str). Each field's text is made
    once per object and kept in `texts`, as the projections of an object share fields (a list of
    records may be in most), or taken from `field_text`, the API server's (WatchEvent.field_text),
    where it has it: the text of a value it decoded is the text it decoded. `order`: the fields
    sorted, where the caller keeps them so."""
    if order is None:
        order = sorted(fields)
    values = [texts.get(f) for f in order]
    if None in values:  # a text no projection of this version has made yet
        for i, f in enumerate(order):
            if values[i] is None:
                value = obj.get(f)
                text = field_text(f, value) if field_text is not None else None
                texts[f] = values[i] = SORTED_JSON(value) if text is None else text
    return obj["kind"], fields, tuple(values)


class _TrackingWorld:
    """The cache, recording what an evaluation read: whole kinds, or index entries."""

    def __init__(self, cache: Cache):
        self.cache = cache
        self.scanned: set[tuple] = set()
        # The planner's question records nothing (an index's size says nothing of its members):
        # the cache's own, without a call of this world's in between at every binding
        self.lookup_size = cache.lookup_size

    def scan(self, kind: str):
        self.scanned.add(("scan", kind))
        return self.cache.scan(kind)

    def lookup(self, kind: str, mode: str, path: tuple, value):
        if mode == "eq":
            self.scanned.add(("eq", kind, path, freeze(value)))
        elif mode == "in":
            if not isinstance(value, list):  # membership in a map or a text: the lookup scans
                self.scanned.add(("scan", kind))
            for v in value if isinstance(value, list) else ():
                self.scanned.add(("eq", kind, path, freeze(v)))
        elif mode in _PRESENCE:
            self.scanned.add((mode, kind, path, True))
        elif isinstance(value, dict) and value:
            # A change can alter the answer only for objects that match the whole selector
            # before or after it, and those carry its first entry: watch that one.
            k = min(value)
            self.scanned.add(("sub", kind, path, (k, freeze(value[k]))))
        else:
            self.scanned.add(("scan", kind))
        return self.cache.lookup(kind, mode, path, value)

    def now(self):
        return self.cache.clock


_PLAIN = frozenset({str, int, float, Fraction, bool, type(None)})  # values a memo key holds as they are


_SECOND = itemgetter(1)  # a read's kind (_Memo._as_whole)



class _Memo:
    """Results of `def` calls, each with what it read, dropped when that changes.

    A call is keyed by the def and its arguments; an object argument by its key and
    resourceVersion, so a change to the object itself makes a new key — or, where the def
    reads nothing of it that tells equal objects apart (`_by_content`), by the texts of
    the fields it reads, so that objects alike in those (made from one template) share the
    result. A record argument (a value of a record type) is named by the values of the fields the
    def reads of it (`by_record`), or by its whole value where it uses it whole. A hit adds
    the call's reads to the caller's, so the rule instance still wakes when they change.
    A pick's guard path is kept here too (Picks._key), under a key of its own kind.
    """

    LIMIT = 200_000
    # Entries that read nothing of the world (a def of its arguments' values alone, such as the
    # scheduler's judgement of a node by its content and use) are dropped by no change: of those,
    # the PURE newest are kept, so that values met once (a node's past uses) do not fill the memo
    # up to LIMIT and empty it, with every entry that still serves.
    PURE = 50_000
    # A call's index reads of one kind, from this many, may stand for the whole kind (_as_whole).
    WHOLE = 64
    # Object versions take_over keeps as the first of their projections: each holds its object.
    ALIKE = 10_000

    def __init__(self, world: "_TrackingWorld", program: Program):
        self.world = world
        self.reads = Reads(program)
        self.wake_reads = Reads(program, derive=True)  # what the engine's wake-ups count as read
        # def or pick → parameter → the fields read of it that say nothing of an object's identity
        # (_by_content); def → parameter → the fields it reads of a record, in order: a record has
        # no identity to keep out of them. A def's are worked out at its first use (_work_out), not
        # for every def at the start: a run calls few of the standard control plane's defs.
        self.by_content: dict[str | tuple, dict[int, frozenset]] = {}
        self.by_record: dict[str, dict[int, tuple[str, ...]]] = {}
        # def or pick → how `key` names its arguments (_namer): of by_content and by_record, worked
        # out once, not asked of both at every call; dropped where by_content changes
        self.namers: dict[str | tuple, tuple] = {}
        self.picks = Picks(self)
        self.entries: dict[tuple, tuple] = {}
        self.readers: dict[tuple, set[tuple]] = {}
        self.pure: deque[tuple] = deque()  # the keys of the entries that read nothing, oldest first
        # A projection (_projection) → [the cache's memo parts of the first object version named by
        # it, how many texts, projections and keys of defs of it alone it had made when those of
        # them another version alike in those fields may take were last found, those projections,
        # those keys] (take_over)
        self.alike: dict[tuple, list] = {}

    def key(self, name: str | tuple, args: list):
        """The memo key of calling `name` with `args`, or None where an argument cannot be named."""
        held = self.world.cache.memo_parts
        try:
            alone, namer = self.namers[name]
        except KeyError:
            alone, namer = self.namers[name] = self._namer(name, len(args))
        one = None
        if alone:
            a = args[0]
            known = held.get(id(a))
            if known is not None and known[0] is a:
                # A def of one object the cache holds (`pod_cpu(q)`): the key is made once for
                # this version of the object, and kept with it (a def names it one way always).
                one = known[3]
                found = one.get(name)
                if found is not None:
                    return found
            elif type(a) is str:
                return (name, a)  # a def of a name (`node_named(q.node)`), as below
        parts = [name]
        for a, (content, order, fields) in zip(args, namer):
            t = type(a)
            if t is dict:
                known = held.get(id(a))
                if known is not None and known[0] is a:  # an object the cache holds
                    if content is None:
                        parts.append(known[1])
                    else:
                        projections = known[2]
                        part = projections.get(content)
                        if part is None:
                            part = projections[content] = _projection(a, content, projections, known[4], order)
                        parts.append(part)
                else:
                    # A record (a port, a taint), or an object the cache does not hold (one a rule
                    # built with `+`: its resourceVersion does not cover its content): by value —
                    # of the fields the def reads of it, or whole where it uses it whole — typed
                    # (1, 1.0 and true tell apart to type_of and str). With the clock inside, a
                    # call's answer would change with time under one key: it has none.
                    try:
                        if fields is None:
                            parts.append(("record", value_key(a)))
                        else:
                            named = []
                            for f in fields:  # most are texts and numbers: named as value_key names them
                                v = a.get(f)
                                vt = type(v)
                                named.append((vt, v) if vt is str or vt is int or vt is bool or v is None else value_key(v))
                            parts.append(("fields", fields, tuple(named)))
                    except Unnamed:
                        return None
            elif t is str or t is int or a is None:
                parts.append(a)
            elif t is float:
                parts.append((t, a.hex()))  # -0.0 equals 0.0 and prints apart; nan equals nothing
            elif t is Fraction:
                parts.append((t, a.numerator, a.denominator))  # in lowest terms; hashed faster than a Fraction
            elif t in _PLAIN:
                parts.append((t, a))  # True, 1.0 and Fraction(1) equal 1, and must not share its entry
            elif t is list and all(type(x) is dict and (k := held.get(id(x))) is not None and k[0] is x for x in a):
                parts.append(tuple(held[id(x)][1] for x in a))  # objects the cache holds
            else:
                return None
        if one is None:
            return tuple(parts)
        found = one[name] = tuple(parts)
        return found

    def take_over(self, key: tuple, args: list) -> None:
        """Give each object argument of the key `key` made of `args` (an object the cache holds,
        named by a projection) what keys made of the first version named by the same projection,
        on its fields: the projections on some of them, and the keys of defs of it alone that
        name it by some of them. Those are the same for both, made once instead of again for
        each version. A pick's path projects the fields its judging reads of a pod (Picks._path),
        so a pod made from the template of one judged before takes over the keys of every def
        of it its judging calls."""
        alike = self.alike
        for a, part in zip(args, key[1:]):
            mine = self.projected(a, part)
            if mine is None:
                continue
            like = alike.get(part)
            if like is None:
                if len(alike) >= self.ALIKE:
                    alike.clear()
                alike[part] = [mine, -1, None, None]
                continue
            first = like[0]
            if first is mine:
                continue
            # Which of the first version's projections and keys may be taken: found again only when
            # it has made more since
            if like[1] != len(first[2]) + len(first[3]):
                fields = part[1]
                like[1] = len(first[2]) + len(first[3])
                # texts (by a field) were made for `part` already: only the projections are taken
                like[2] = {content: projection for content, projection in first[2].items()
                           if type(content) is frozenset and content <= fields}
                # (name, the object's part): a projection's, or its identity's (key, resourceVersion)
                like[3] = {name: found for name, found in first[3].items()
                           if type(found[1][1]) is frozenset and found[1][1] <= fields}
            mine[2].update(like[2])  # equal to any the version made itself
            mine[3].update(like[3])

    def projected(self, a, part) -> tuple | None:
        """The cache's memo parts of `a` (Cache.memo_parts) where it is an object the cache holds
        and `part`, its part of a key, names it by a projection (_projection: kind, fields,
        texts); else None."""
        if type(a) is not dict or type(part) is not tuple or len(part) != 3 or type(part[1]) is not frozenset:
            return None
        known = self.world.cache.memo_parts.get(id(a))
        return known if known is not None and known[0] is a else None

    def _namer(self, name: str | tuple, arity: int) -> tuple:
        """How `key` names a call's `arity` arguments: whether it is a def's of one (whose key an
        object the cache holds keeps), and for each argument an object the cache holds by the
        fields by_content gives (a set, and in order), or by its identity (None, None); a record
        by the fields by_record gives, or whole (None). Made at a name's first call: every call of
        a def has as many arguments as it has parameters (the checker refuses others), and every
        call of a pick's path as many as the pick's variables."""
        self._work_out(name)
        content, record = self.by_content.get(name) or {}, self.by_record.get(name) or {}
        return arity == 1 and type(name) is str, tuple(
            (content.get(i), None if content.get(i) is None else tuple(sorted(content[i])), record.get(i))
            for i in range(arity))

    def name_by_content(self, name: str | tuple, fields: Iterable[frozenset | None]) -> None:
        """Have memo keys for `name` (a def, or a pick) name each object argument by the fields
        `fields` gives for its position, where those say nothing of its identity."""
        self._work_out(name)
        self.by_content[name] = _by_content(fields)
        self.namers.pop(name, None)

    def name_by_identity(self, name: str | tuple) -> None:
        """Have memo keys for `name` name each object argument by its key and resourceVersion again."""
        self._work_out(name)
        self.by_content.pop(name, None)
        self.namers.pop(name, None)

    def _work_out(self, name: str | tuple) -> None:
        """Fill in by_content and by_record for a def, at its first use."""
        if type(name) is str and name not in self.by_record and name in self.reads.program.defs:
            fields = self.reads.params(name)
            self.by_content[name] = _by_content(fields)
            self.by_record[name] = {i: tuple(sorted(f)) for i, f in enumerate(fields) if f is not None}

    def enter(self) -> set:
        """Start recording the reads of a call: what was recorded so far, for `leave`."""
        world = self.world
        outer, world.scanned = world.scanned, set()
        return outer

    def leave(self, outer: set, key: tuple, value, cacheable: bool) -> None:
        """End the call `enter` started: its reads are the caller's too, and its value is kept."""
        world = self.world
        reads, world.scanned = world.scanned, outer
        if len(reads) >= self.WHOLE:
            reads = self._as_whole(reads)
        outer |= reads
        if cacheable:
            self.keep(key, value, reads)  # no longer written to: the caller's set is `outer`

    def _as_whole(self, reads: set) -> set:
        """`reads` with the index entries of a kind read as the whole kind (its scan, which every
        change to the kind touches), where they are at least WHOLE and as many as half its objects:
        a call that looked up most of a kind entry by entry (the pool's lowest unclaimed block,
        past every block claimed) then carries one read instead of one an object, through every
        caller's set, the memo's readers and the engine's, and is woken by little more."""
        # Counted in C: a call that walks the pool's blocks is made at every claim, with a read for
        # each block claimed before. A read's second part is its kind, but a pick token's (its
        # group's key, a tuple); a kind's own scan is no entry of it.
        objects = self.world.cache.by_kind
        whole = set()
        for kind, n in Counter(map(_SECOND, reads)).items():
            if n >= self.WHOLE and type(kind) is str:
                n -= ("scan", kind) in reads
                if n >= self.WHOLE and 2 * n >= len(objects.get(kind, ())):
                    whole.add(kind)
        if not whole:
            return reads
        # What stays, picked in C: the reads of the other kinds and the tokens (the scans of these
        # kinds are put back after). Only those are hashed again: a tuple keeps no hash.
        listed = list(reads)
        kept = set(compress(listed, map(not_, map(whole.__contains__, map(_SECOND, listed)))))
        kept.update(("scan", kind) for kind in whole)
        return kept

    def keep(self, key: tuple, value, reads: set) -> None:
        """Keep `value` under `key` until any of `reads` changes."""
        entries = self.entries
        if len(entries) >= self.LIMIT:
            entries.clear()
            self.readers.clear()
            self.pure.clear()
        entries[key] = (value, reads)
        if reads:
            readers = self.readers
            for read in reads:  # as _add_reader, without its call: most calls that miss are kept
                found = readers.get(read)
                if found is None:
                    readers[read] = {key}
                else:
                    found.add(key)
            return
        pure = self.pure
        pure.append(key)
        if len(pure) > self.PURE:
            oldest = pure.popleft()
            entry = entries.get(oldest)
            if entry is not None and not entry[1]:
                del entries[oldest]

    def invalidate(self, reads: Iterable[tuple]) -> None:
        """Drop the entries that read any of `reads`. Most of those no entry read: they are passed
        over in C, and the rest taken in any order, as the same entries go."""
        readers, entries = self.readers, self.entries
        for read in readers.keys() & reads:
            for key in readers.pop(read, ()):
                entry = entries.pop(key, None)
                for other in entry[1] if entry is not None else ():
                    keys = readers.get(other)
                    if keys is not None:
                        keys.discard(key)


def _add_reader(readers: dict[tuple, set], reads: Iterable[tuple], who) -> None:
    """Index `who` under each of its reads."""
    for read in reads:
        found = readers.get(read)
        if found is None:
            readers[read] = {who}
        else:
            found.add(who)


def _by_content(fields: Iterable[frozenset | None]) -> dict[int, frozenset]:
    """Of the fields read of each parameter (by a def, itself or through the defs it passes them
    to; by a pick's path), those of the parameters read only through fields that are not an
    object's identity (IDENTITY): a call may be memoised by those fields of the arguments, so
    that objects alike in them (a ReplicaSet's pods; two deployments' pods, for a def that reads
    only requests) share the result."""
    return {i: f for i, f in enumerate(fields) if f is not None and not f & _IDENTITY_SET}


# ---- rule instances -------------------------------------------------------------------


# Replaced, never changed, but not frozen: a frozen class's __init__ costs a call a field, and
# one is made at every change to its object.
@attrs.define(slots=True)
class _Instance:
    id: str
    priority: tuple[int, str]  # Engine.priority
    controller: str
    rule: A.Rule
    # The object the first `for` binds, if it ranges over a kind: as of when the instance was
    # made, which a change leaves behind. A look asks the cache by the key (Engine.look); an
    # instance handed on (to fire, to follow, to engine.explore) is given the object as it is
    # (Engine.refresh).
    primary: dict | None
    primary_key: tuple | None


_NOTHING: frozenset = frozenset()
_FAILED = object()  # a derivable def's value on an object on which it fails (Engine._derived_value)
_TO_DERIVE = 4_096  # sets of changed fields whose derived fields to look at are kept (Engine._to_derive)
_NO_PENDING = MappingProxyType({})  # a _Plan's changes before it acts: none (act() makes its own)


@attrs.define(slots=True)
class _Outcome:
    writes: list  # [(verb, kind, obj or key, expected resourceVersion)]
    reads: set  # kinds scanned
    deadlines: set
    keys: set | frozenset = _NOTHING  # objects it wants to exist or to change: a change to them wakes it,
    # except those of `made`, which it only creates (`create`, not `ensure`): only their coming and going does
    made: frozenset = _NOTHING
    acted: bool = True  # whether any binding passed its clauses (False: its actions and pick read nothing)
    # When none did, how many of the clauses, from the first, some binding got to (_Plan.reached);
    # None, not known: the instance is woken as one that acted.
    reached: int | None = None


# The outcome of a look that stopped at its rule's first `where`, having read nothing but its object
# (Engine.evaluate): one for all, as nothing changes an outcome once made (its writes a tuple, so
# that nothing can).
_STOPPED = _Outcome((), _NOTHING, _NOTHING, _NOTHING, _NOTHING, False, 2)


class Engine:
    """One reconcile of one program against one API server."""

    def __init__(self, program: Program, api, *, order: str = "fixed", seed: int = 0,
                 naive: bool = False, budget: int = DEFAULT_BUDGET, horizon=DEFAULT_HORIZON):
        if order not in ("fixed", "random"):
            raise KonvergeError(Diagnostic("E200", f"unknown firing order `{order}`", hint="use fixed or random"))
        self.program = program
        self.api = api
        self.order = order
        self.seed = seed
        self.naive = naive
        self.budget = budget
        self.horizon = horizon
        self.cache = Cache()
        self.world = _TrackingWorld(self.cache)
        self.ev = Evaluator(program, self.world)
        if not naive:
            self.memo = self.ev.memo = _Memo(self.world, program)
            self.ev.folding = True
        else:
            self.memo = None
        self.trace: list[Write] = []
        self.steps = 0
        self.identities = {name: api.controller(c.account or name) for name, c in program.controllers.items()}
        # Incremental bookkeeping.
        self.rules = [(cname, ri, rule) for ci, (cname, c) in enumerate(program.controllers.items())
                      for ri, rule in enumerate(c.rules)]
        self.rule_index = {id(rule): (ci, ri) for ci, (cname, c) in enumerate(program.controllers.items())
                           for ri, rule in enumerate(c.rules)}
        # A rule's place in the fixed firing order: a batched rule waits until the others have
        # settled (it sees their changes together); the rest go in the order they are declared.
        self.rank = {id(rule): n for n, (_, _, rule) in enumerate(sorted(self.rules, key=lambda r: r[2].batched))}
        self._rules_of_kind: dict[str, list[tuple]] = {}
        # The dirty instances by priority (Engine.priority): for each rank, a heap of places, each
        # mapped to its instance's id; and a heap of the ranks that have any. A rank's heap is
        # shallower than one of all, and in the fixed order holds one string per object, which all
        # its instances share.
        self.dirty: list[list[str]] = [[] for _ in self.rules]
        self.queued: list[dict[str, str]] = [{} for _ in self.rules]
        self.dirty_ranks: list[int] = []
        self.dirty_ids: set[str] = set()
        self.instances: dict[str, _Instance] = {}
        self.bound: dict[tuple, set[str]] = {}  # object key → ids of instances bound to it
        # object key → ids of instances that create it: a `create` asks only whether it exists
        self.makers: dict[tuple, set[str]] = {}
        self.readers: dict[tuple, set[str]] = {}  # a read (scan or index entry) → ids of instances
        if self.memo is not None:
            self.memo.picks.waiting = self.readers
        self.reads_of: dict[str, set[tuple]] = {}
        # Instances whose latest evaluation passed no binding through the rule's clauses, each with
        # how many clauses, from the first, any binding got to (_Plan.reached): until they are
        # looked at again, only what those clauses read can change their outcome.
        self.stopped: dict[str, int] = {}
        self.timers: list = []  # heap of (deadline, id)
        # Instance id → the deadlines its latest evaluation read: a timer queued before is stale
        # once the instance no longer waits for it (its answer no longer turns then).
        self.deadlines_of: dict[str, set] = {}
        self.refused: dict[str, str] = {}  # instance id → fingerprint of writes the API refused
        self.seen_states: dict[tuple, int] = {}
        self.fired: list[str] = []
        self.informer = None
        self.progress = None
        self.after_step = None  # called after every step that wrote something
        self.at_rest = None  # called where no instance wants a write nor waits to retry one, before the clock moves
        self.faults = None  # engine faults (engine/faults.py), armed by scenario events
        # Instance ids to fire first, in this order (engine.explore's paths); an engine fault in it
        # (an A.FaultEvent aimed at a controller) is armed just before the firing that comes next.
        self.follow: deque = deque()
        self.on_sync = None  # given each sync's changes (key, before, after): the invariants of a step look back
        self._synced_reads: list[tuple[list, list]] = []  # the latest sync's changes' index reads (Cache._reindex)
        self._synced_fields: list[frozenset | None] = []  # and the fields each changed (sync)
        # An instance is woken by a change to its own object only when a field it may read
        # changed (`primary_fields`), and by a change to an object it looked up that leaves it
        # where it was only when a field its rule may read of that kind changed (`kind_fields`).
        # A field read only through a derivable def (`terminal(p)`, reads.Reads.derivable) is
        # that def's value: it counts as changed only where the def's value does (`derived_fields`).
        # Off where outcomes that want writes are kept between changes (engine.explore): their
        # payloads carry the whole object.
        self.field_wakeups = True
        self._primary_fields: dict[tuple, frozenset | None] = {}
        self._loose: dict[str, frozenset] = {}
        self._kind_fields: dict[tuple, dict[str, frozenset | None]] = {}
        self._derived: dict[str, dict[str, tuple]] = {}  # kind → derived_fields
        # kind → a field its derived fields' defs read (None: whole) → (place in derived_fields,
        # derived field) of those that read it: an update changes a few fields, which few read
        self._derived_by: dict[str, dict[str | None, list[tuple[int, str]]]] = {}
        # (kind, fields an update changed) → (derived field, its def) of those that read one of
        # them, in derived_fields' order: emptied by wakes_by_value, the one place derived fields
        # are added
        self._to_derive: dict[tuple[str, frozenset], tuple[tuple[str, A.DefDecl], ...]] = {}
        self._waking: set[tuple] = set()  # (id(rule), reached) whose wake-ups' derived fields are in _derived
        self._derivable = {derived(name): name for name in sorted(program.defs)}  # derived field → its def's name
        # id(object) → (object, derived field → its def's value on it), for the versions changed_fields
        # worked them out for that the cache holds
        self._derived_values: dict[int, tuple[dict, dict]] = {}

    def __setstate__(self, state: dict) -> None:
        """A copy (a forked run's) holds copies of the objects: `_derived_values` goes by their ids,
        as the cache's memo_parts do (Cache.__setstate__)."""
        self.__dict__.update(state)
        self._derived_values = {id(entry[0]): entry for entry in self._derived_values.values()}

    # -- the store through the API server

    def sync(self) -> list[tuple]:
        """Apply pending watch events to the cache; (key, before, after) of each change."""
        changed = []
        self._synced_reads, self._synced_fields = [], []
        # Each change's changed fields (None: a create or a delete), for the readers, the wakes and
        # the memo's names of the new version; with faults or without field wake-ups, none is
        # skipped for them, so they are not worked out.
        precise = self.field_wakeups and self.faults is None and not self.naive
        for event in self.informer.poll():
            obj = event.object
            key = object_key(obj["kind"], obj.get("namespace"), obj["name"])
            reads = ([], [])
            self._synced_reads.append(reads)
            if event.type == "DELETED":
                fields = None
                changed.append(change := (key, self.cache.remove(key, reads), None))
            else:
                fields = self.changed_fields(key[0], self.cache.get(key), obj, event.since) if precise else None
                changed.append(change := (key, self.cache.put(obj, event.data, reads, fields, event.field_text, key),
                                          obj))
            if change[1] is not None:
                self._derived_values.pop(id(change[1]), None)  # a version no longer held
            self._synced_fields.append(fields)
        if self.faults is not None:
            self.faults.observe(changed)  # what the controllers behind are given of it
        if self.on_sync is not None and changed:
            self.on_sync(changed)
        return changed

    def start(self) -> None:
        """List every kind, then follow the watch: the controllers' shared informer."""
        from .informer import Informer

        self.informer = Informer(self.api, self.api.admin, sorted(self.program.kinds))
        for kind in self.informer.kinds:
            for obj in self.informer.scan(kind):
                self.cache.put(obj)
        for inst in self.enumerate_instances():
            self.mark(inst)

    # -- instances

    def priority(self, rule: A.Rule, ci: int, ri: int, key: tuple, iid: str, place: str) -> tuple[int, str]:
        """Where an instance comes in the firing order: (rank, place). In the fixed order, its rule's
        rank, then its object's place (_place; a rule's instances bind objects of one kind). In the
        random order, one rank for all and a digest, then its id."""
        if self.order == "random":
            digest = hashlib.blake2b(f"{self.seed}:{ci}:{ri}:{key}".encode(), digest_size=8).hexdigest()
            return (0, f"{digest}\0{iid}")  # as (the digest as a number, id): the digits are of one width
        return (self.rank[id(rule)], place)

    def primary_source(self, rule: A.Rule) -> A.KindSource | None:
        for c in rule.clauses:
            if isinstance(c, A.ForClause):
                return c.source if isinstance(c.source, A.KindSource) else None
            return None
        return None

    def instances_of(self, cname: str, rule: A.Rule) -> Iterable[_Instance]:
        ci, ri = self.rule_index[id(rule)]
        src = self.primary_source(rule)
        if src is None:
            iid = f"{cname}/{rule.name}"
            yield _Instance(iid, self.priority(rule, ci, ri, (), iid, ""), cname, rule, None, None)
            return
        kind = self.ev.kind_name(src.kind)
        for obj in self.cache.scan(kind):
            key = object_key(kind, obj.get("namespace"), obj["name"])
            text = key_text(key)
            iid = f"{cname}/{rule.name}[{text}]"
            yield _Instance(iid, self.priority(rule, ci, ri, key, iid, _place(key, text)), cname, rule, obj, key)

    def enumerate_instances(self) -> Iterable[_Instance]:
        for cname, _, rule in self.rules:
            yield from self.instances_of(cname, rule)

    def mark(self, inst: _Instance) -> None:
        if self.naive:
            return  # the naive mode looks at every instance every step: nothing to queue
        self.instances[inst.id] = inst
        self.queue(inst)

    def queue(self, inst: _Instance) -> None:
        """Queue an instance the engine knows: its object, if it changed, is looked up as it runs."""
        if inst.id not in self.dirty_ids:
            self.dirty_ids.add(inst.id)
            rank, place = inst.priority
            heap = self.dirty[rank]
            if not heap:
                heapq.heappush(self.dirty_ranks, rank)
            heapq.heappush(heap, place)
            self.queued[rank][place] = inst.id

    def unqueue(self) -> str | None:
        """The id of the first queued instance in the firing order, taken off the queue; None if none is."""
        ranks = self.dirty_ranks
        if not ranks:
            return None
        rank = ranks[0]
        heap = self.dirty[rank]
        place = heapq.heappop(heap)
        if not heap:
            heapq.heappop(ranks)
        iid = self.queued[rank].pop(place)
        self.dirty_ids.discard(iid)
        return iid

    # -- evaluation of one instance

    def evaluate(self, inst: _Instance, primary: dict | None) -> _Outcome:
        """An instance's outcome, `primary` the object its first `for` binds (None: it has none)."""
        if self.faults is not None:
            outcome = self.faults.evaluate(inst)  # against the controller's own cache, if behind
            if outcome is not None:
                return outcome
        world, ev = self.world, self.ev
        world.scanned = set()
        ev.deadlines = set()
        ev.saw_clock = False
        rule = inst.rule
        code = ev.plans.get(id(rule)) or _code(ev, rule)
        if primary is None:
            plan = _Plan(self, inst, None, code)
            plan.run(0, {})
        else:
            var, guarded = code[3]
            env = {var: primary}
            if guarded:
                # The first `where`, of the object alone, fails for most looks: as _walk would, they
                # stop there (having reached two clauses), but without a plan unless the instance has
                # objects to collect. What _walk records of a `where` is kept here too.
                passed = (code[1][1] or _step(ev, rule, 1))[1](env) is True
                if not passed and inst.id not in self.cache.owned:
                    if not world.scanned and not ev.deadlines:  # most read nothing else: one outcome for all
                        ev.deadlines = None
                        return _STOPPED
                    outcome = _Outcome([], world.scanned, ev.deadlines, _NOTHING, _NOTHING, False, 2)
                    world.scanned = set()
                    ev.deadlines = None
                    return outcome
                plan = _Plan(self, inst, primary, code)
                plan.reached = 2
                if passed:
                    plan.run(2, env)
            else:
                plan = _Plan(self, inst, primary, code)
                plan.run(1, env)
        if inst.id in self.cache.owned:  # most own nothing
            plan.collect_stale()
        ensured, created = plan.ensured, plan.created
        outcome = _Outcome(plan.writes, world.scanned, ev.deadlines, ensured | created if created else ensured,
                           frozenset(created - ensured) if created else _NOTHING, plan.acted, plan.reached)
        world.scanned = set()  # the outcome keeps what it read: what is read after is no one's
        ev.deadlines = None
        return outcome

    # -- applying writes

    def apply(self, inst: _Instance, writes: list) -> bool:
        """Apply an instance's writes; False if the API server refused them all. A Conflict ends
        the attempt, as a reconcile returns on its first error: the watch brings the new state
        and marks the instance dirty."""
        who = self.identities[inst.controller]
        applied = False
        for n, (verb, kind, payload, rv) in enumerate(writes):
            if self.faults is not None and self.faults.interrupts(inst, n, writes):
                break  # a crash, or a transient refusal: the rest is not sent
            try:
                if verb == "create":
                    self.api.create(who, kind, payload, shared=True)
                elif verb == "update":
                    self.api.update(who, kind, payload)
                else:
                    _, ns, name = payload
                    self.api.delete(who, kind, ns or None, name, resource_version=rv)
                applied = True
                verb_done = verb
                message = ""
            except KonvergeError as e:
                if getattr(e, "reason", "") == "Conflict":
                    break  # stale
                verb_done = "refused"
                message = e.diagnostics[0].message if e.diagnostics else str(e)
            name = payload["name"] if isinstance(payload, dict) else payload[2]
            ns = payload.get("namespace") if isinstance(payload, dict) else (payload[1] or None)
            self.trace.append(Write(self.steps, self.api.revision, self.cache.clock, inst.controller,
                                    inst.rule.name, inst.id, verb_done, kind, ns, name, message))
        return applied

    def record_deps(self, inst: _Instance, outcome: _Outcome) -> None:
        iid, new = inst.id, outcome.reads
        if outcome.acted or outcome.reached is None:
            self.stopped.pop(iid, None)
            reached = None
        else:
            self.stopped[iid] = reached = outcome.reached
        if (id(inst.rule), reached) not in self._waking:
            self.wakes_by_value(inst.rule, reached)  # before any change its wake-ups are asked about
        old = self.reads_of.get(iid)
        if old is None:
            if new:  # many read nothing but their own object (their first guard fails)
                self.reads_of[iid] = new
                _add_reader(self.readers, new, iid)
        elif old != new:  # mostly an instance reads what it read last time
            readers = self.readers
            for read in old - new:
                found = readers.get(read)
                if found is not None:
                    found.discard(iid)
            self.reads_of[iid] = new
            _add_reader(readers, new - old, iid)
        key = inst.primary_key
        if key is not None and old is None:  # one whose reads were recorded before is bound already
            found = self.bound.get(key)
            if found is None:
                self.bound[key] = {iid}
            else:
                found.add(iid)
        for key in outcome.keys:
            (self.makers if key in outcome.made else self.bound).setdefault(key, set()).add(inst.id)
        waited = self.deadlines_of.get(iid)
        if outcome.deadlines:
            if outcome.deadlines != waited:
                for t in outcome.deadlines - waited if waited else outcome.deadlines:
                    heapq.heappush(self.timers, (t, iid))
                self.deadlines_of[iid] = outcome.deadlines
        elif waited:
            del self.deadlines_of[iid]

    def look(self, inst: _Instance) -> _Outcome:
        """An instance's outcome, with what it read recorded (incremental mode), its object as the
        cache holds it now: most instances are looked at after it changed, and are not made again
        to carry it. One whose object is gone has only its ensured objects left to collect, and
        reads nothing any more (a pick's group it read may go)."""
        primary = None
        if inst.primary_key is not None:
            primary = self.cache.get(inst.primary_key)
            if primary is None:
                self.stopped.pop(inst.id, None)
                for read in self.reads_of.pop(inst.id, ()):
                    self.readers.get(read, set()).discard(inst.id)
                self.deadlines_of.pop(inst.id, None)
                return self.collect_orphans(inst)
        outcome = self.evaluate(inst, primary)
        if not self.naive:
            self.record_deps(inst, outcome)
        return outcome

    def changed(self, changes: list[tuple]) -> None:
        """Mark dirty what the changed objects touch (`changes`: what the latest sync gave, whose
        index reads it kept); new objects bring new instances."""
        if self.naive:
            return
        # Each read a change touched, with the fields that changed where the objects it answers
        # are the same before and after (an update that leaves the indexed value alone), or None.
        # A change's reads are apart from one another (each index's entries are either the same
        # or moved): only where a sync brings several changes can one read come twice.
        touched: dict[tuple, frozenset | None] = {}
        changed_fields = self._synced_fields
        for (key, _, _), fields, (same, moved) in zip(changes, changed_fields, self._synced_reads, strict=True):
            if touched:
                _touch(touched, (("scan", key[0]),), fields)
                _touch(touched, same, fields)
            else:  # the first change, most often the only one: made at once of its reads
                touched = dict.fromkeys(same, fields)
                touched[("scan", key[0])] = fields
            touched.update(dict.fromkeys(moved))
        if self.memo is not None:
            self.memo.invalidate(touched)
            if self.memo.picks is not None:
                touched.update(dict.fromkeys(self.memo.picks.invalidate(touched)))
        readers, instances, dirty_ids = self.readers, self.instances, self.dirty_ids
        # Most reads a change touches, no instance made: the readers' are found by one pass in C
        # (the order they are queued in does not matter: the queue is kept by priority).
        for read in readers.keys() & touched.keys():
            fields = touched[read]
            for iid in readers[read]:
                if iid not in dirty_ids and (inst := instances.get(iid)) is not None:
                    if fields is not None and iid not in self.refused:
                        # Skip an instance whose rule reads none of the fields that changed.
                        read_fields = self.kind_fields(inst.rule, self.stopped.get(iid)).get(read[1])
                        if read_fields is not None and read_fields.isdisjoint(fields):
                            continue
                    self.queue(inst)
        bound, makers, get = self.bound, self.makers, self.cache.get
        for (key, before, _), fields in zip(changes, changed_fields):
            for iid in bound.get(key, ()):
                if iid not in dirty_ids and (inst := instances.get(iid)) is not None:
                    self.wake(inst, key, fields)
            for iid in makers.get(key, ()):
                # An update leaves what a `create` asks, whether the object exists, as it was.
                if (fields is None or iid in self.refused) and (inst := instances.get(iid)) is not None:
                    self.queue(inst)
            obj = get(key)
            if obj is None:
                continue
            # A new object: its instances. Those of an updated one were made when it was created;
            # each has been looked at, and so is bound to it (woken above), or waits, dirty, to be
            # looked at (its object is looked up then). One looked at while its object was gone is
            # bound to nothing, but such an object can only come back as a new one, here.
            if before is None:
                text = key_text(key)
                place = _place(key, text)
                fixed = self.order == "fixed"
                for cname, rule, ci, ri, named, rank in self.rules_of_kind(key[0]):
                    iid = f"{named}[{text}]"
                    known = instances.get(iid)
                    if known is None:  # in the fixed order, as priority() gives it: its rule's rank, its object's place
                        priority = (rank, place) if fixed else self.priority(rule, ci, ri, key, iid, place)
                        inst = _Instance(iid, priority, cname, rule, obj, key)
                    elif known.primary is not obj:
                        inst = _Instance(iid, known.priority, cname, rule, obj, key)
                    else:
                        continue
                    instances[iid] = inst
                    self.queue(inst)
            # Instances whose own objects were ensured (managedBy) must look again when those change.
            owner = obj.get("managedBy")
            if owner and owner in instances:
                self.queue(instances[owner])

    def wake(self, inst: _Instance, key: tuple, fields: frozenset | None) -> None:
        """Mark an instance bound to a changed object dirty, unless it is its own object and
        no field the rule may read of it changed (`fields`, as changed_fields gives them): its
        evaluation would come out the same. Either way it is given the new object only when it is
        looked at (every path that looks at an instance looks its object up again first).
        One whose writes were refused is woken all the same, to try them again. (With faults or
        without field wake-ups, `changed` gives no fields.) Asked only of one not queued already."""
        if fields is not None and inst.primary_key == key and inst.id not in self.refused:
            read = self.primary_fields(inst.rule, self.stopped.get(inst.id))
            if read is not None and read.isdisjoint(fields):
                return
        self.queue(inst)

    def changed_fields(self, kind: str, before: dict | None, after: dict | None,
                       since: tuple[int, tuple[str, ...]] | None = None) -> frozenset | None:
        """The fields an update changed, as the language tells values apart (values.differs),
        with the derived fields whose defs' values it changed (`derived_fields`); None for a
        create or a delete. `since`, where the API server tells it (WatchEvent.since): the
        revision of the version `after` updates, and the fields in which it may differ from it."""
        if before is None or after is None:
            return None
        loose = self._loose.get(kind)
        if loose is None:
            loose = self._loose[kind] = self.program.loose_fields(kind)
        # Most fields are in both versions and not loose: `!=` over the new version's fields, then
        # `differs` for the fields dropped and the loose ones. Most hold the very value they held
        # (the API server's versions share what an update kept): that is no change, at once.
        was = before.get
        if since is not None and before["resourceVersion"] == since[0]:
            # `before` is the version the server updated (a key's revision names one version: the
            # cache holds only versions the store's watch or list gave, and the store's revisions
            # never go back): in the fields it does not name, `after` holds its values, or ones
            # decoded from the same text, which `!=` finds equal; it has no field more nor less.
            found = {f for f in since[1] if (v := after[f]) is not (w := was(f)) and v != w}
        else:
            found = {f for f, v in after.items() if v is not (w := was(f)) and v != w}
            if not before.keys() <= after.keys():
                for f in before.keys() - after.keys():
                    if differs(before[f], None, f in loose):
                        found.add(f)
        for f in loose:
            if f not in found and differs(before.get(f), after.get(f), True):
                found.add(f)
        derived = self._derived.get(kind) if found else None
        if derived:
            # The values worked out for the new version are kept for the next change, whose old
            # version it is; a def that reads no field that changed has the old version's.
            was = self._derived_values.pop(id(before), None)
            was = was[1] if was is not None and was[0] is before else {}
            now = dict(was)
            # Those whose defs read a field that changed, in derived_fields' order: no other value
            # can differ. (A def reads no derived field, `reads.derived`: one found changed here
            # makes no other read one that changed.) Updates of a kind change few sets of fields
            # (a kubelet's status, a scheduler's binding): each set's are found once.
            to_derive = self._to_derive.get((kind, frozen := frozenset(found)))
            if to_derive is None:
                by = self._derived_by[kind]
                if len(self._to_derive) >= _TO_DERIVE:
                    self._to_derive.clear()
                to_derive = self._to_derive[(kind, frozen)] = tuple(
                    (name, derived[name][0])
                    for _, name in sorted({at for f in found if f in by for at in by[f]}.union(by.get(None, ()))))
            for name, d in to_derive:
                old = was[name] if name in was else self._derived_value(d, before)
                new = now[name] = self._derived_value(d, after)
                if old is _FAILED or new is _FAILED or not same_value(old, new):
                    found.add(name)
            self._derived_values[id(after)] = (after, now)
            if len(found) == len(frozen):
                return frozen
        return frozenset(found)

    def derived_fields(self, kind: str) -> dict[str, tuple]:
        """The derived fields (reads.derived) that the wake-ups of the instances looked at so far
        count as read of objects of `kind` (`wakes_by_value`), each with its def and the fields
        that def reads of them (None: whole): what reads a field only through such a def reads
        that def's value, so a change to the field that leaves the value as it was cannot change it."""
        return self._derived.get(kind, {})

    def wakes_by_value(self, rule: A.Rule, reached: int | None) -> None:
        """Add to `derived_fields` those that the wake-ups of a rule's instances stopped at
        `reached` clauses (Engine.stopped; None: not stopped) count as read (`kind_fields`,
        `primary_fields`). Asked as such an instance is first recorded, before any change is
        weighed against them: of all a rule's prefixes, few are ever where an instance stops, and
        working out what each reads is most of the cost of small runs. Taken from what the
        wake-ups read, not from the type the def's parameter names: an `any` between may give
        it an object of any kind."""
        self._waking.add((id(rule), reached))
        read = dict(self.kind_fields(rule, reached))
        src = self.primary_source(rule)
        if src is not None:
            kind = self.ev.kind_name(src.kind)
            read[kind] = (read.get(kind) or _NOTHING) | (self.primary_fields(rule, reached) or _NOTHING)
        for kind, fields in read.items():
            for name in sorted(fields or ()):
                d = self._derivable.get(name)
                if d is not None and name not in self._derived.get(kind, ()):
                    of_kind, reads = self._derived.setdefault(kind, {}), self.memo.reads.params(d)[0]
                    by = self._derived_by.setdefault(kind, {})
                    for f in (None,) if reads is None else reads:
                        by.setdefault(f, []).append((len(of_kind), name))
                    of_kind[name] = (self.program.defs[d], reads)
                    self._to_derive.clear()

    def _derived_value(self, d: A.DefDecl, obj: dict):
        """A derivable def's value on an object; _FAILED where it fails (a field it reads is none,
        a built-in given a value it takes no such): a version on which it fails counts as changed
        from any other, as a rule may not call it there."""
        try:
            return self.ev.value_of(d, [obj])
        except Exception:  # whatever the failure, the readers look again
            return _FAILED

    def primary_fields(self, rule: A.Rule, reached: int | None = None) -> frozenset | None:
        """The fields of a rule's first object that it may read, through the defs it calls
        too; None when it uses the object whole. A `set` of one of its fields reads it (the
        write is wanted only while the value differs); `delete` of the object reads only its
        name, and its resourceVersion when it is written. `reached`: for an instance none of whose
        bindings passed its clauses, those the first `reached` of them may read (Engine.stopped)."""
        key = (id(rule), reached)
        if key not in self._primary_fields:
            var = rule.clauses[0].source.var
            if reached is not None:
                whole = (rule.clauses[1:reached],)
            else:
                actions = _actions(rule)
                whole = (rule.clauses[1:], tuple(a for a in actions if not _deletes(a, var)),
                         rule.pick and attrs.evolve(rule.pick, then=(), otherwise=()))
            self._primary_fields[key] = self.memo.wake_reads.fields(var, whole)
        return self._primary_fields[key]

    def kind_fields(self, rule: A.Rule, reached: int | None = None) -> dict[str, frozenset | None]:
        """For each kind a rule ranges over — in a `for`, its `pick`, a comprehension or a quantifier,
        its own or in the defs it calls — the fields it may read of those objects, wherever they go
        (Reads.kinds: into the defs given them, out of those that return them), None where it may
        use one whole. A change to an object in other fields only, which leaves it in the same
        index entries, leaves the rule's evaluation as it was: the same objects, read alike.
        `reached`: for an instance none of whose bindings passed its clauses, those the first
        `reached` of them may read (Engine.stopped)."""
        key = (id(rule), reached)
        found = self._kind_fields.get(key)
        if found is None:
            roots = (rule.clauses[:reached],) if reached is not None else (rule.clauses, rule.actions, rule.pick)
            found = self._kind_fields[key] = self.memo.wake_reads.kinds(roots, self.ev.kind_name)
        return found

    def rules_of_kind(self, kind: str) -> list[tuple]:
        """(controller, rule, ci, ri, `controller/rule` as its instances' ids begin, rank) of the
        rules whose first `for` ranges over `kind`."""
        found = self._rules_of_kind.get(kind)
        if found is None:
            found = self._rules_of_kind[kind] = [
                (cname, rule, *self.rule_index[id(rule)], f"{cname}/{rule.name}", self.rank[id(rule)])
                for cname, _, rule in self.rules
                if (src := self.primary_source(rule)) is not None and self.ev.kind_name(src.kind) == kind]
        return found

    def refresh(self, inst: _Instance) -> _Instance:
        if inst.primary_key is None:
            return inst
        obj = self.cache.get(inst.primary_key)
        if obj is inst.primary:
            return inst
        return _Instance(inst.id, inst.priority, inst.controller, inst.rule, obj, inst.primary_key)

    # -- the loop

    def next_enabled(self) -> tuple[_Instance, _Outcome] | None:
        if self.follow:
            return self.next_followed()
        if self.naive:
            return self.next_enabled_naive()
        while (iid := self.unqueue()) is not None:
            inst = self.instances[iid]
            outcome = self.look(inst)
            if outcome.writes and self.wants(iid, outcome):  # most want none
                return self.refresh(inst), outcome  # with the object it wants writes to
        return None

    def wants(self, iid: str, outcome: _Outcome) -> bool:
        """Whether an instance wants writes, other than those the API server last refused it."""
        if not outcome.writes:
            return False
        refused = self.refused.get(iid)
        return refused is None or refused != _fingerprint(outcome.writes)

    def next_followed(self) -> tuple[_Instance, _Outcome] | None:
        """The next instance of `follow` (a firing path that engine.explore found), which must want a
        write here; None where no instance wants one (the clock moves on, or an event comes first).
        An instance waiting out a back-off (engine/faults.py) wants nothing until it ends."""
        armed = 0  # engine faults to arm first: a scenario event cannot come in the middle of a run
        while armed < len(self.follow) and not isinstance(self.follow[armed], str):
            armed += 1
        if armed == len(self.follow):
            self._arm_followed(armed)
            return self.next_enabled()
        iid = self.follow[armed]
        inst = self.instances.get(iid) or next((i for i in self.enumerate_instances() if i.id == iid), None)
        if inst is not None:
            inst = self.refresh(inst)
            outcome = self.look(inst)
            if self.wants(iid, outcome):
                self._arm_followed(armed)
                self.follow.popleft()
                self.instances.setdefault(iid, inst)
                return inst, outcome
        rest, self.follow = self.follow, deque()
        found = self.next_enabled()
        if found is None:
            self.follow = rest
            return None
        raise KonvergeError(Diagnostic(
            "E071", f"the firing path cannot be followed: at step {self.steps + 1} `{iid}` has nothing to write, "
                    f"but `{found[0].id}` has",
            hint="the path was found for another version of the spec or scenario; run `konverge verify "
                 "--exhaustive` again"))

    def _arm_followed(self, n: int) -> None:
        from .faults import engine_faults

        for _ in range(n):
            engine_faults(self).arm(self.follow.popleft())

    def evaluate_dirty(self) -> list[tuple[_Instance, _Outcome]]:
        """Evaluate every dirty instance and return each with its outcome, applying nothing and
        queueing no timer: for engine.explore, which keeps the outcomes and deadlines itself and
        tries every enabled instance in turn. Incremental mode only."""
        out = []
        while (iid := self.unqueue()) is not None:
            inst = self.instances[iid]
            outcome = self.look(inst)
            out.append((self.refresh(inst) if outcome.writes else inst, outcome))  # one that wants writes is kept
        self.timers.clear()
        return out

    def next_enabled_naive(self):
        best = None
        live = set()
        candidates = list(self.enumerate_instances())
        for inst in candidates:
            live.add(inst.id)
        for iid, owned in self.owned_by_instance().items():
            if iid not in live:
                inst = self.instances.get(iid)
                if inst is not None:
                    candidates.append(attrs.evolve(inst, primary=None))
        self.timers = []
        for inst in sorted(candidates, key=lambda i: i.priority):
            outcome = self.collect_orphans(inst) if inst.primary_key is not None and inst.primary is None \
                else self.evaluate(inst, inst.primary)
            self.instances[inst.id] = inst
            for t in outcome.deadlines:
                heapq.heappush(self.timers, (t, inst.id))
            if self.wants(inst.id, outcome):
                best = (inst, outcome)
                break
        return best

    def owned_by_instance(self) -> dict[str, list[tuple]]:
        return {owner: sorted(keys) for owner, keys in sorted(self.cache.owned.items())}

    def collect_orphans(self, inst: _Instance) -> _Outcome:
        writes = []
        for obj in self.cache.owned_by(inst.id):
            key = object_key(obj["kind"], obj.get("namespace"), obj["name"])
            writes.append(("delete", obj["kind"], key, obj["resourceVersion"]))
        return _Outcome(writes, set(), set())

    def advance_clock(self, limit) -> bool:
        """Jump to the next deadline not after `limit`; False if there is none."""
        while self.timers:
            t, iid = self.timers[0]
            if t <= self.cache.clock or self.stale(t, iid):
                heapq.heappop(self.timers)
                continue
            if limit is not None and t > limit:
                return False
            self.cache.clock = t
            while self.timers and self.timers[0][0] <= t:
                _, due = heapq.heappop(self.timers)
                if due in self.instances and not self.stale(t, due):
                    self.mark(self.refresh(self.instances[due]))
            return True
        return False

    def stale(self, t, iid: str) -> bool:
        """Whether a timer was queued by an evaluation of `iid` that a later one, which does not
        wait for `t`, replaced (incremental mode; the naive one queues every step afresh). A
        stale timer neither moves the clock nor keeps a run from converging, as in naive mode."""
        if self.naive or t in self.deadlines_of.get(iid, ()):
            return False
        return self.faults is None or not self.faults.backs_off(iid, t)  # a back-off, not a deadline

    def run(self, until=None) -> str:
        """Reconcile until quiescent with no deadline left before `until`.
        Returns "" when done, else why it stopped: "budget", "cycle" or "horizon".

        The cycle collector is off meanwhile (and on again after, if it was). A step makes no
        cyclic garbage: what it drops goes as its references do (tests/test_k8s_specs.py); only an
        engine fault leaves some, once, with the view of the store it gave a controller. Meanwhile
        the cache, the memo and the trace grow with the cluster, and each pass of the collector
        would walk what they hold again: a tenth of a large run."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._run(until)
        finally:
            if collecting:
                gc.enable()

    def _run(self, until) -> str:
        while True:
            if self.faults is not None:
                self.faults.tick()
            found = self.next_enabled()
            if found is None:
                if self.faults is not None:
                    if self.faults.settle():  # informers behind catch up before the engine rests
                        continue
                    for timer in self.faults.deadlines():
                        heapq.heappush(self.timers, timer)
                if self.at_rest is not None and (self.faults is None or not self.faults.backoffs):
                    self.at_rest()  # not while a refused request waits to be retried: work is pending
                if self.advance_clock(until if until is not None else self.horizon):
                    continue
                if until is None and self.timers and self.timers[0][0] > self.horizon:
                    return "horizon"
                if until is not None and until > self.cache.clock:
                    self.cache.clock = until
                return ""
            inst, outcome = found
            if self.steps >= self.budget:
                return "budget"
            self.steps += 1
            if self.progress is not None and self.steps % 100 == 0:
                self.progress(self.steps, self.cache.clock)
            self.fired.append(inst.id)
            applied = self.apply(inst, outcome.writes)
            if self.faults is not None and self.faults.interrupted(inst, outcome.writes):
                pass  # cut short by a fault: retried, not remembered as refused
            elif not applied:
                self.refused[inst.id] = _fingerprint(outcome.writes)
            else:
                self.refused.pop(inst.id, None)
            changed = self.sync()
            self.changed(changed)
            self.mark(self.refresh(inst))
            if not changed:
                if not applied:
                    continue  # nothing was written: no new state to compare
                # The API server took the writes and stored nothing new (a mutation put the value
                # back): the instance wants them again, from the same state, which is a cycle.
            elif self.after_step is not None:
                self.after_step()
            if self.faults is not None and self.faults.disturbing():
                continue  # a state seen before is not the same state while a controller's view differs
            state = (self.cache.state_hash, self.cache.clock)
            if state in self.seen_states:
                return "cycle"
            self.seen_states[state] = self.steps

    def cycle(self) -> Cycle:
        state = (self.cache.state_hash, self.cache.clock)
        first = self.seen_states.get(state, self.steps)
        period = self.steps - first
        fired = self.fired[first:]
        objects = sorted({key_text(object_key(w.kind, w.namespace, w.name)) for w in self.trace
                          if w.step > first})
        return Cycle(period, tuple(sorted(set(fired))), tuple(objects))


def _place(key: tuple, text: str) -> str:
    """An object's place among the instances of a rule in the fixed order, `text` its key_text:
    by namespace, then name (a rule's instances bind objects of one kind), joined by NULs, which
    come before any other character and which no name the API server admits holds (names are
    RFC 1123 subdomains), so that places order as (namespace, name) would. The key's text at the
    end tells apart, as it does their instances' ids, objects a store written around the API
    server named with NULs."""
    return f"{key[1]}\0{key[2]}\0{text}"


def _fingerprint(writes: list) -> str:
    return hashlib.blake2b(repr([(v, k, json.dumps(encode(p), sort_keys=True) if isinstance(p, dict) else p, rv)
                                 for v, k, p, rv in writes]).encode(), digest_size=8).hexdigest()


class _Plan:
    """The writes one instance wants: its clauses walked, its actions evaluated."""

    __slots__ = ("engine", "ev", "inst", "primary", "steps", "actions", "writes", "pending", "ensured", "created",
                 "deleted", "acted", "reached")

    def __init__(self, engine: Engine, inst: _Instance, primary: dict | None, code: tuple):
        self.engine = engine
        self.ev = engine.ev
        self.inst = inst
        self.primary = primary  # the object its first `for` binds, as evaluated
        _, self.steps, self.actions, _ = code  # the rule compiled for this evaluator (_code)
        self.writes: list = []
        # What the actions change — objects as changed so far (`pending`, in the order first
        # changed), ensured, created, deleted — made when a binding first passes the clauses
        # (act): most evaluations pass none, and read these empty.
        self.pending: dict[tuple, dict] = _NO_PENDING
        self.ensured: set[tuple] | frozenset = _NOTHING
        self.created: set[tuple] | frozenset = _NOTHING
        self.deleted: set[tuple] | frozenset = _NOTHING
        self.acted = False
        # How many of the rule's clauses, from the first, some binding got to: where none passed
        # them all, what the rest read cannot have mattered (Engine.stopped).
        self.reached = 0

    def run(self, start: int, env: dict) -> None:
        """Walk the clauses from the `start`th (those before bound `env`), then add the updates
        of the objects the actions changed."""
        self._walk(start, env)
        for key, obj in self.pending.items():
            self.writes.append(("update", key[0], obj, obj["resourceVersion"]))

    def _walk(self, i: int, env: dict) -> None:
        """Walk the rule's clauses from the `i`th: a `where` or a `let` in turn, a `for` by a walk
        of the rest for each binding."""
        steps = self.steps
        while i < len(steps):
            step = steps[i] or _step(self.ev, self.inst.rule, i)
            reached = i + 1  # how many of the rule's clauses, from the first, this one brings the walk to
            if step[0] is _WHERE:
                if reached > self.reached:
                    self.reached = reached
                if step[1](env) is not True:
                    return
            elif step[0] is _FOR:
                _, var, asks, source, free, tests, after = step
                # The `where`s that follow narrow its candidates (Evaluator.kind_bindings) before any binding.
                if after > self.reached:
                    self.reached = after
                # The leading conjuncts that do not mention the new variable are the same for every
                # binding: when one fails, no binding passes, and the source is not read at all.
                for test in free:
                    if test(env) is not True:
                        return
                # Each candidate is taken through those `where`s here, as a walk would take it, so
                # that one that fails them costs no walk of its own.
                for value in self.ev.kind_bindings(asks, env) if asks is not None else self.ev.elements(source, env):
                    inner = dict(env)
                    inner[var] = value
                    for test in tests:
                        if test(inner) is not True:
                            break
                    else:
                        self._walk(after, inner)
                return
            else:
                if reached > self.reached:
                    self.reached = reached
                inner = dict(env)
                inner[step[1]] = step[2](env)
                env = inner
            i = reached
        self.act(env)

    def act(self, env: dict) -> None:
        if not self.acted:
            self.acted = True
            self.ensured, self.created, self.deleted, self.pending = set(), set(), set(), {}
        rule = self.inst.rule
        actions, then, otherwise = self.actions[0] or _compile_actions(self.ev, rule, self.actions)
        for do, a, code in actions:
            do(self, a, code, env)
        if rule.pick is not None:
            p = rule.pick
            memo = self.ev.memo
            if memo is not None and memo.picks is not None:
                chosen = memo.picks.choose(self.ev, p, env)
            else:
                found = self.ev.select(p.source, p.where, p.order, env)
                chosen = found[0] if found else None
            if chosen is not None:
                for do, a, code in then:
                    do(self, a, code, chosen)
            else:
                for do, a, code in otherwise:
                    do(self, a, code, env)

    def delete(self, a: A.DeleteAction, target_of: Callable, env: dict) -> None:
        target = target_of(env)
        if isinstance(target, dict) and "kind" in target:
            key = object_key(target["kind"], target.get("namespace"), target["name"])
            if self.engine.cache.get(key) is not None and key not in self.deleted:
                self.deleted.add(key)
                self.writes.append(("delete", key[0], key, target["resourceVersion"]))

    def set(self, a: A.SetAction, value_of: Callable, env: dict) -> None:
        path = a.path  # the variable, then the fields
        target = env.get(path[0])
        if not isinstance(target, dict) or "kind" not in target:
            return
        key = object_key(target["kind"], target.get("namespace"), target["name"])
        current = mine = self.pending.get(key)
        if current is None:
            current = self.engine.cache.get(key)
        if current is None or key in self.deleted:
            return
        value = value_of(env)
        if self.ev.saw_clock:  # only then can a Clock hide in it (_settled)
            value = materialize(value)
        if len(path) == 2:  # most sets: of a field, which alone can differ (compared as dicts compare values)
            field = path[1]
            if field not in current or not (value is (held := current[field]) or value == held):
                if mine is not None:  # the copy an earlier set made, which nothing else holds yet
                    mine[field] = value
                else:
                    self.pending[key] = {**current, field: value}
            return
        updated = assign(current, path[1:], value)
        if updated != current:
            self.pending[key] = updated

    def create(self, a: A.CreateAction, code: tuple, env: dict) -> None:
        ev = self.ev
        name_of, kind, body_of = code
        name = _settled(ev, name_of(env))
        if kind is None or not isinstance(name, str):
            return
        body = body_of(env)
        if ev.saw_clock:  # only then can a Clock hide in it (_settled)
            body = materialize(body)
        namespace = None
        if not kind.cluster:
            namespace = body.pop("namespace", None) or self.default_namespace(env)
        key = object_key(kind.name, namespace, name)
        existing = self.engine.cache.get(key)
        obj = {"kind": kind.name, "name": name, "namespace": namespace, **body}
        if not a.ensure:
            if key not in self.created:
                self.created.add(key)
                if existing is None:
                    self.writes.append(("create", kind.name, obj, None))
            return
        if key in self.ensured:
            return
        self.ensured.add(key)
        obj["managedBy"] = self.inst.id
        if existing is None:
            self.writes.append(("create", kind.name, obj, None))
            return
        # Equal content is left alone whoever owns it, so that instances that agree do not
        # take the object from each other; a difference is written, and the writer owns it.
        desired = self.engine.api.defaulted(kind.name, obj)
        if any(existing.get(k) != v for k, v in desired.items()
               if k not in ("resourceVersion", "createdRevision", "managedBy")):
            merged = {**existing, **desired, "resourceVersion": existing["resourceVersion"]}
            self.writes.append(("update", kind.name, merged, existing["resourceVersion"]))

    def default_namespace(self, env: dict) -> str:
        primary = self.primary
        if isinstance(primary, dict) and primary.get("namespace"):
            return primary["namespace"]
        for v in env.values():
            if isinstance(v, dict) and v.get("namespace") and "kind" in v:
                return v["namespace"]
        return "default"

    def collect_stale(self) -> None:
        """Objects this instance ensured before and does not now: truth maintenance (asked only
        of an instance that owns some)."""
        for obj in self.engine.cache.owned_by(self.inst.id):
            key = object_key(obj["kind"], obj.get("namespace"), obj["name"])
            if key not in self.ensured and key not in self.deleted:
                self.writes.append(("delete", key[0], key, obj["resourceVersion"]))


def _actions(rule: A.Rule) -> tuple:
    """A rule's actions, its pick's too."""
    return rule.actions + ((rule.pick.then + rule.pick.otherwise) if rule.pick is not None else ())


def _deletes(a: A.Action, var: str) -> bool:
    return isinstance(a, A.DeleteAction) and isinstance(a.target, A.Name) and a.target.id == var


def _code(ev: Evaluator, rule: A.Rule) -> tuple:
    """A rule compiled, kept by the evaluator whose code it calls: the rule itself, so that no
    other rule takes its id while it is kept; its clauses as _Plan._walk takes them, each made
    when a walk first reaches it (_step); and, in a slot of its own, its actions as _Plan.act
    takes them, made when a binding first passes its clauses (_compile_actions); and, for a rule
    whose first clause is a `for`, its variable and whether a `where` follows it (Engine.evaluate,
    at every look)."""
    found = ev.plans.get(id(rule))
    if found is None:
        clauses = rule.clauses
        first = None
        if clauses and isinstance(clauses[0], A.ForClause):
            first = (clauses[0].source.var, len(clauses) > 1 and isinstance(clauses[1], A.WhereClause))
        found = ev.plans[id(rule)] = (rule, [None] * len(clauses), [None], first)
    return found


def _compile_actions(ev: Evaluator, rule: A.Rule, slot: list) -> tuple:
    """A rule's actions compiled (kept in `slot`, _code): those of the rule, of its pick's `then`,
    of its `otherwise`, each as (the _Plan method that takes it, the action, its code): a `set`'s
    value; a `create`'s name, kind (None where the program has none of that name) and body
    (_body); a `delete`'s target."""
    def compiled(a: A.Action) -> tuple:
        if isinstance(a, A.SetAction):
            return _Plan.set, a, ev.compile(a.value)
        if isinstance(a, A.CreateAction):
            kind = ev.program.kind(a.kind)
            body = _body(ev, kind.fields, a.entries) if kind is not None else None
            return _Plan.create, a, (ev.compile(a.name), kind, body)
        return _Plan.delete, a, ev.compile(a.target)

    p = rule.pick
    slot[0] = found = tuple(tuple(map(compiled, group)) for group in
                            (rule.actions, p.then if p is not None else (), p.otherwise if p is not None else ()))
    return found


def _step(ev: Evaluator, rule: A.Rule, i: int) -> tuple:
    """The `i`th clause of a rule, compiled: (_WHERE, its test), (_LET, its name, its value), or
    (_FOR, its variable, what a kind source asks the world (Evaluator.asks) else None, the
    source, the tests of the leading conjuncts of the `where`s that follow that do not mention
    the variable, the tests of those `where`s, the index of the clause after them)."""
    c = rule.clauses[i]
    if isinstance(c, A.WhereClause):
        step = (_WHERE, ev.compile(c.cond))
    elif isinstance(c, A.ForClause):
        wheres = []
        for following in rule.clauses[i + 1:]:
            if not isinstance(following, A.WhereClause):
                break
            wheres.append(following.cond)
        source, var = c.source, c.source.var
        free = []
        for conjunct in _conjuncts(wheres[0]) if wheres else ():
            if _mentions(conjunct, var):
                break
            free.append(ev.compile(conjunct))
        asks = ev.asks(source, tuple(wheres)) if isinstance(source, A.KindSource) else None
        step = (_FOR, var, asks, source, free, [ev.compile(w) for w in wheres], i + 1 + len(wheres))
    else:
        step = (_LET, c.name, ev.compile(c.value))
    _code(ev, rule)[1][i] = step
    return step


_WHERE, _FOR, _LET = "where", "for", "let"  # the kinds of a rule's steps (_step)


def build_entries(ev: Evaluator, fields: dict, entries: Iterable[A.Entry], env: dict) -> dict:
    """An object or record body as a value, every Clock in it settled (_body)."""
    return _settled(ev, _body(ev, fields, entries)(env))


def _body(ev: Evaluator, fields: dict, entries: Iterable[A.Entry]) -> Callable[[dict], dict]:
    """The function that evaluates an object or record body (of a type with these `fields`) in
    an environment: each entry's value by its compiled code, in the order written, named items
    gathered into lists; made once for a rule's `create` (_compile_actions), so that a create
    walks no entries. Clocks are left in it for the caller to settle once (_settled): where
    none was seen, none can hide in it."""
    entries = tuple(entries)
    if all(isinstance(e, A.FieldEntry) for e in entries):  # most bodies
        codes = tuple((e.key, ev.compile(e.value)) for e in entries)
        return lambda env: {key: value_of(env) for key, value_of in codes}
    parts = []  # (key, the item's name or None for a field or block, the code of its value)
    for e in entries:
        if isinstance(e, A.FieldEntry):
            parts.append((e.key, None, ev.compile(e.value)))
        elif isinstance(e, A.BlockEntry):
            parts.append((e.key, None, _block(ev, fields.get(e.key), e.entries)))
        else:
            key = e.key if e.key in fields or e.key + "s" not in fields else e.key + "s"
            f = fields.get(key)
            rec = ev.program.records.get(f.type.elem.name) if f is not None and hasattr(f.type, "elem") \
                and hasattr(f.type.elem, "name") else None
            parts.append((key, e.name, _body(ev, rec.fields if rec else {}, e.entries)))

    def code(env: dict) -> dict:
        out: dict = {}
        for key, name, value_of in parts:
            if name is None:
                out[key] = value_of(env)
            else:  # the list an entry gave may be shared: not appended to
                out[key] = [*out.get(key, ()), {"name": name, **value_of(env)}]
        return out
    return code


def _block(ev: Evaluator, field, entries: tuple) -> Callable[[dict], dict]:
    """A block's body compiled (_body): a record's where the field is one, else a map of its
    fields and blocks."""
    t = strip(field.type) if field is not None else None
    if isinstance(t, RecordT):
        return _body(ev, ev.program.records[t.name].fields, entries)
    codes = tuple((e.key, ev.compile(e.value) if isinstance(e, A.FieldEntry) else _block(ev, None, e.entries))
                  for e in entries if isinstance(e, A.FieldEntry | A.BlockEntry))
    return lambda env: {key: value_of(env) for key, value_of in codes}


def constant(program: Program, e: A.Expr):
    """The value of a constant expression (a default, an object field in a spec)."""
    if isinstance(e, A.Number):
        return number_value(e.text)
    if isinstance(e, A.Unit):
        return unit_value(e.number, e.suffix, program.unit_types.get(id(e)) == "duration")
    return materialize(Evaluator(program, _Empty()).eval(e, {}))


class _Empty:
    def scan(self, kind):
        return ()

    def now(self):
        return 0


# ---- reconcile: the Python API the CLI wraps ----------------------------------------------


def spec_objects(program: Program) -> list[tuple[str, dict, A.ObjectDecl]]:
    """The objects a spec declares, as (kind, value, declaration)."""
    ev = Evaluator(program, _Empty())
    out = []
    for d in program.objects:
        kind = program.kind(d.kind)
        body = build_entries(ev, kind.fields, d.entries, {})
        namespace = None if kind.cluster else (d.namespace or "default")
        out.append((kind.name, {"kind": kind.name, "name": d.name, "namespace": namespace, **body}, d))
    return out


def reconcile(program: Program, *, api=None, store=None, data_dir: str | None = None,
              scenario: A.ScenarioDecl | None = None, order: str = "fixed", seed: int = 0,
              naive: bool = False, budget: int = DEFAULT_BUDGET, horizon=DEFAULT_HORIZON,
              objects: Iterable[tuple[str, dict, Span | None]] = (), progress=None,
              follow: Iterable[str] = ()) -> Result:
    """Load the spec's objects (and `objects`, e.g. from Kubernetes manifests, as (kind, value,
    span) triples, the span, if any, where a refusal points) through the API server and run
    the controllers to a fixed point, through the scenario's events if one is given.
    `progress(steps, clock)`, if given, is called every 100 steps, for a progress bar.
    `follow`: rule instance ids to fire first, in that order, each where it wants a write (a
    path `engine.explore` found); then the firing order goes on."""
    items = scenario.items if scenario else ()
    run = Run(program, api=api, store=store, data_dir=data_dir, order=order, seed=seed, naive=naive,
              budget=budget, horizon=horizon, objects=objects, progress=progress, expectations=items)
    run.engine.follow.extend(follow)
    return run.play([i for i in items if isinstance(i, A.At)])


class _Clock:
    """The engine's virtual clock as the store and the API server read it: an object rather
    than a closure, so that a copy of a run (`Run.fork`) reads its own engine's."""

    def __init__(self):
        self.engine = None

    def __call__(self):
        return self.engine.cache.clock if self.engine is not None else 0


class Run:
    """One reconcile in two halves: making a Run applies the spec through the API server and
    starts the controllers; `play(events)` runs them through the scenario's events to the end.
    In between, `advance(T)` runs up to T, and `fork(shared)` copies the whole run (store, API
    server, engine), sharing `shared` — the program's objects by id, which must not be copied
    since the engine keys its tables by their ids. `verify` converges a spec once up to its
    first event and plays every example from a fork: the same steps, to the same bytes, as a
    whole reconcile of that scenario."""

    def __init__(self, program: Program, *, api=None, store=None, data_dir: str | None = None,
                 order: str = "fixed", seed: int = 0, naive: bool = False, budget: int = DEFAULT_BUDGET,
                 horizon=DEFAULT_HORIZON, objects: Iterable[tuple[str, dict, Span | None]] = (), progress=None,
                 expectations=()):
        from .api import APIServer
        from .store import open_store

        clock = _Clock()
        if api is None:
            if store is None:
                store = open_store(data_dir, clock=clock)
            api = APIServer(program, store, clock=clock)
        self.program = program
        self.api = api
        self.engine = engine = Engine(program, api, order=order, seed=seed, naive=naive, budget=budget,
                                      horizon=horizon)
        engine.progress = progress
        clock.engine = engine
        directory = getattr(api.store, "data_dir", None)
        if directory is not None:
            from .explain import read_trace  # here: explain builds on this module

            engine.cache.clock = read_trace(directory)[1]  # a persisted cluster goes on from its own time
        apply_spec(program, api, engine, extra=objects)
        engine.start()
        self.watch = _Properties(program, engine, expectations)
        if self.watch.after_steps():
            engine.after_step = self.watch.check
        engine.at_rest = self.watch.rest
        if self.watch.transitions:
            engine.on_sync = self.watch.history.note
        self.watch.check()
        self.reason = ""  # why the run stopped short: "budget", "cycle" or "horizon"
        self.last_event_step = 0  # the engine's steps when the last event came

    def advance(self, until) -> str:
        """Run up to the virtual time `until`, before any event of it."""
        if not self.reason:
            self.reason = self.engine.run(until=until)
        return self.reason

    def play(self, events: Iterable[A.At] = ()) -> Result:
        """Play the events in time order, then run to the end; the result."""
        program, engine = self.program, self.engine
        for at in sorted(events, key=lambda a: constant(program, a.time)):
            if self.advance(constant(program, at.time)):
                break
            apply_event(program, self.api, engine, at.event)
            self.last_event_step = engine.steps
            # A state seen before the event may come back after it (a deleted pod recreated under
            # its generated name): that is recovery, not a cycle, so cycles are looked for per segment.
            engine.seen_states.clear()
            engine.changed(engine.sync())
            self.watch.check()
        if not self.reason:
            self.reason = engine.run()
        reason = self.reason
        result = Result(
            converged=reason == "",
            steps=engine.steps,
            revision=self.api.revision,
            clock=engine.cache.clock,
            objects=tuple(engine.cache.all()),
            trace=tuple(engine.trace),
            reason=reason,
            cycle=engine.cycle() if reason == "cycle" else None,
            violations=tuple(self.watch.violations()),
        )
        from .explain import persist_trace  # here: explain builds on this module

        persist_trace(self.api.store, result)
        return result

    def fork(self, shared: dict) -> "Run":
        import copy

        owner, evaluators = self.__dict__.get("_evaluators", (None, []))
        if owner != id(self):  # found once per run forked (a copy carries its original's list)
            evaluators = _evaluators_in(self, {**shared, id(evaluators): evaluators})
            self.__dict__["_evaluators"] = (id(self), evaluators)
        memo = dict(shared)
        memo[id(evaluators)] = evaluators
        # An evaluator caches the closures it compiled, bound to itself; a copy would share them
        # with the original and read the original's world. Each copy starts afresh (below), so
        # what it holds but its program, world and memo is not copied at all.
        for ev in evaluators:
            for name, value in vars(ev).items():
                if name not in ("program", "world", "memo"):
                    memo[id(value)] = value
        twin = copy.deepcopy(self, memo)
        for ev in evaluators:
            mine = memo[id(ev)]
            kept, folding = mine.memo, mine.folding
            mine.__init__(mine.program, mine.world)
            mine.memo, mine.folding = kept, folding
        return twin


def _evaluators_in(root, shared: dict) -> list[Evaluator]:
    """The evaluators an object graph holds, outside `shared`."""
    seen = set(shared)
    out: list[Evaluator] = []
    stack = [root]
    while stack:
        x = stack.pop()
        if x is None or isinstance(x, str | int | float | bool | bytes | Fraction) or id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, Evaluator):
            out.append(x)
        if isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, list | tuple | set | frozenset):
            stack.extend(x)
        else:
            stack.extend(getattr(x, "__dict__", {}).values())
            stack.extend(getattr(x, name) for klass in type(x).__mro__ for name in getattr(klass, "__slots__", ())
                         if isinstance(name, str) and hasattr(x, name))
    return out


def shared_objects(program: Program) -> dict[int, object]:
    """Everything the program holds, by id: what `Run.fork` shares rather than copies."""
    out: dict[int, object] = {}
    stack: list = [program]
    while stack:
        x = stack.pop()
        if isinstance(x, str | int | float | bool | bytes | Fraction) or x is None or id(x) in out:
            continue
        out[id(x)] = x
        if attrs.has(type(x)):
            stack.extend(getattr(x, f.name) for f in attrs.fields(type(x)))
        elif isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list | tuple | set | frozenset):
            stack.extend(x)
    return out


APPLIED = "/konverge/applied/"  # the spec's objects as last applied: the engine's own bookkeeping


def apply_spec(program: Program, api, engine: Engine, extra: Iterable[tuple[str, dict, Span | None]] = ()) -> None:
    """Apply the spec's objects as `kubectl apply` does: missing ones are created; in an
    existing one (a persisted store) a field is written only where the spec now says something
    other than it said when last applied, so that what controllers changed since stays changed
    and applying the same spec again writes nothing. Like `kubectl apply -f`, it goes on past an
    object the API server refuses, so that every refusal is reported, each at its declaration;
    then none of the spec is recorded as applied and the refusals are raised together."""
    from .store import Put

    declared = [(kind, obj, decl.span) for kind, obj, decl in spec_objects(program)]
    store = api.store
    records = []
    refused: list[KonvergeError] = []
    for kind, obj, span in [*declared, *extra]:
        record = f"{APPLIED}{key_text(object_key(kind, obj.get('namespace'), obj['name']))}"
        body = json.dumps(encode(obj), sort_keys=True, separators=(",", ":")).encode()
        kvs = store.range(record).kvs
        previous = decode(json.loads(kvs[0].value)) if kvs else None
        try:
            try:
                api.create(api.admin, kind, obj)
                verb = "create"
            except KonvergeError as e:
                # As `kubectl apply` finds the object first: one that exists is patched, even where
                # the API server judged the create invalid (a change of type drops fields there).
                if getattr(e, "reason", "") != "AlreadyExists" and not _exists(api, kind, obj):
                    raise
                verb = _reapply(api, kind, obj, previous)
        except KonvergeError as e:
            if span is not None:  # a refusal of a declared object points at its declaration
                e.diagnostics = [d if d.span is not None else attrs.evolve(d, span=span) for d in e.diagnostics]
            refused.append(e)
            continue
        if not kvs or kvs[0].value != body:
            records.append(Put(record, body))
        if verb:
            engine.trace.append(Write(0, api.revision, 0, "spec", None, None, verb, kind, obj.get("namespace"),
                                      obj["name"]))
    if refused:
        raise KonvergeError([d for e in refused for d in e.diagnostics], exit_code=refused[0].exit_code)
    if records:
        store.txn([], records)  # one revision for all of them


def _exists(api, kind: str, obj: dict) -> bool:
    try:
        api.get(api.admin, kind, obj.get("namespace"), obj["name"])
    except KonvergeError as e:
        if getattr(e, "reason", "") == "NotFound":
            return False
        raise
    return True


def _reapply(api, kind: str, obj: dict, previous: dict | None) -> str | None:
    existing = api.get(api.admin, kind, obj.get("namespace"), obj["name"])
    # A field the spec now sets, even to none where the last apply left it out, is the user's: an
    # explicit none clears what the server defaulted, as a null in an applied configuration does.
    changed = {k: v for k, v in obj.items()
               if k not in META and (previous is None or k not in previous or previous[k] != v)}
    merged = {**existing, **changed, "resourceVersion": existing["resourceVersion"]}
    wanted = api.defaulted(kind, merged)
    if all(existing.get(k) == v for k, v in wanted.items() if k not in ("resourceVersion", "createdRevision")):
        return None
    before = api.revision
    api.update(api.admin, kind, merged)
    return "update" if api.revision != before else None


def apply_event(program: Program, api, engine: Engine, event) -> None:
    """One scenario event, written as the admin: a fault, or a create, update or delete; or a
    fault of the engine aimed at a controller (engine/faults.py), which arms it."""
    who = api.admin
    if isinstance(event, A.FaultEvent) and event.kind == ENGINE_FAULT_KIND:
        from .faults import engine_faults

        engine_faults(engine).arm(event)
        return
    if isinstance(event, A.FaultEvent):
        fault = program.faults[event.fault]
        kind = program.kind(event.kind)
        key = object_key(kind.name, None if kind.cluster else (event.ref.namespace or "default"), event.ref.name)
        target = engine.cache.get(key)
        if target is None:
            engine.trace.append(Write(engine.steps, api.revision, engine.cache.clock, "scenario", event.fault,
                                      None, "refused", kind.name, key[1] or None, key[2],
                                      f"{kind.name.lower()} {key_text(key)} does not exist"))
            return
        env = {fault.target.var: target}
        for arg in event.args:
            env[arg.name] = constant(program, arg.value)
        rule = A.Rule(event.fault, (), fault.actions)
        inst = _Instance(f"scenario/{event.fault}[{key_text(key)}]", (0, ""), "scenario", rule, target, key)
        engine.identities.setdefault("scenario", who)
        plan = _Plan(engine, inst, target, _code(engine.ev, rule))
        plan.run(0, env)
        engine.apply(inst, plan.writes)
        return
    kind = program.kind(event.kind)
    inst = _Instance("scenario", (0, ""), "scenario", A.Rule("scenario", ()), None, None)
    engine.identities.setdefault("scenario", who)
    if isinstance(event, A.CreateEvent):
        body = build_entries(engine.ev, kind.fields, event.entries, {})
        ns = None if kind.cluster else (event.namespace or "default")
        engine.apply(inst, [("create", kind.name, {"kind": kind.name, "name": event.name, "namespace": ns, **body},
                             None)])
        return
    ns = None if kind.cluster else (event.ref.namespace or "default")
    key = object_key(kind.name, ns, event.ref.name)
    current = engine.cache.get(key)
    if current is None:
        engine.trace.append(Write(engine.steps, api.revision, engine.cache.clock, "scenario", None, None,
                                  "refused", kind.name, ns, event.ref.name, f"{key_text(key)} does not exist"))
        return
    if isinstance(event, A.UpdateEvent):
        body = build_entries(engine.ev, kind.fields, event.entries, {})
        engine.apply(inst, [("update", kind.name, {**current, **body}, current["resourceVersion"])])
    else:
        engine.apply(inst, [("delete", kind.name, key, current["resourceVersion"])])


class _History:
    """The cache, and the versions of the objects the latest step (or scenario event) replaced:
    the world an invariant of a step is evaluated in. The engine hands it every sync's changes
    (Engine.on_sync); what it keeps is forgotten once the step is checked, so it holds what one
    step changed, never the cluster."""

    def __init__(self, cache: Cache):
        self.cache = cache
        self.previous: dict[tuple, dict | None] = {}  # key → its version before the step; None: created

    def note(self, changes: list[tuple]) -> None:
        for key, before, _ in changes:
            self.previous.setdefault(key, before)  # the first: what the step started from

    def before(self, obj: dict) -> dict | None:
        """`before(x)`: x as it was before the step; none if the step created it (or deleted it
        and created another under its name); x itself if the step left it alone."""
        key = object_key(obj["kind"], obj.get("namespace"), obj["name"])
        if key not in self.previous:
            return obj
        old = self.previous[key]
        if old is None or old.get("createdRevision") != obj.get("createdRevision"):
            return None
        return old

    def scan(self, kind: str):
        return self.cache.scan(kind)

    def lookup(self, kind: str, mode: str, path: tuple, value):
        return self.cache.lookup(kind, mode, path, value)

    def lookup_size(self, kind: str, mode: str, path: tuple, value) -> int:
        return self.cache.lookup_size(kind, mode, path, value)

    def get(self, key: tuple) -> dict | None:
        return self.cache.get(key)

    def now(self):
        return self.cache.clock


def step_culprits(ev: Evaluator, inv: A.InvariantDecl, changed: Iterable[tuple],
                  checks: tuple | None = None) -> list[tuple]:
    """The keys of the objects an invariant of a step (Program.transitions: `forall KIND x …`, or an
    `and` of them) fails on, evaluated only on `changed`, the keys a step created or changed (a
    deleted one is not looked at), in `ev`, whose world answers `before` (_History).

    That is its meaning: an invariant of a step is about each change. It agrees with evaluating the
    `forall` over every object whenever the body holds of an object the step left alone (where
    `before(x)` is `x`), as a relation between old and new that allows "no change" does.
    `checks`: its step_checks, where the caller keeps them."""
    out: dict[tuple, None] = {}
    get = ev.world.get
    changed = sorted(changed)  # once for every `forall` (it may be an iterator), in key order
    for kind, var, where, body in checks if checks is not None else step_checks(ev, inv):
        for key in changed:
            obj = get(key) if key[0] == kind else None
            if obj is None:
                continue
            env = {var: obj}
            if (where is None or ev.eval(where, env) is True) and ev.eval(body, env) is not True:
                out[key] = None
    return list(out)


def step_checks(ev: Evaluator, inv: A.InvariantDecl) -> tuple:
    """An invariant of a step's `forall`s as step_culprits evaluates them: (kind, variable, `where`
    or None, body) each. Made once, not at every step: the nodes, not their compiled code, which
    is its evaluator's (a forked run's evaluators compile afresh, Run.fork)."""
    return tuple((ev.kind_name(q.source.kind), q.source.var, q.where, q.body) for q in _conjuncts(inv.cond))


class _Properties:
    """What a run watches as it goes: the invariants — after every step, or, those declared
    `at rest`, wherever no rule instance wants a write or waits to retry one (before the clock
    moves on, an event comes, or the run ends) — and a scenario's `expect`s: `always` after every write,
    `eventually … within T` until it holds at or before T, plain `eventually` at the end.
    The invariants of a step (they call `before`) are checked after every step and event, on the
    objects it created or changed (step_culprits). Each violation is reported once, where it was
    first seen."""

    def __init__(self, program: Program, engine: Engine, items):
        self.program = program
        self.engine = engine
        # Through the engine's world and memo: a def a rule has called is not evaluated again,
        # and an entry made here holds what it read, to be dropped when that changes.
        self.ev = Evaluator(program, engine.world)
        self.ev.memo = engine.memo
        self.items = [i for i in items if isinstance(i, A.Expect)]
        self.steady = [i for i in program.invariants if not i.at_rest]
        self.resting = [i for i in program.invariants if i.at_rest]
        self.history = _History(engine.cache)
        self.step_ev = Evaluator(program, self.history)
        # Each invariant of a step with its step_checks and the kinds they range over: one the
        # step changed no object of holds (step_culprits looks at no other)
        self.transitions = []
        for inv in program.transitions:
            checks = step_checks(self.step_ev, inv)
            self.transitions.append((inv, checks, {check[0] for check in checks}))
        self.broken: dict[int, str] = {}  # index → first violation
        self.met: set[int] = set()
        self.failed: dict[str, str] = {}  # invariant name → its first violation
        self.culprits: dict[str, tuple] = {}  # invariant of a step → the objects whose change broke it

    def after_steps(self) -> bool:
        """Whether anything is checked after every step."""
        return bool(self.items or self.steady or self.transitions)

    def check(self) -> None:
        self._invariants(self.steady)
        self._transitions()
        clock = self.engine.cache.clock
        for n, item in enumerate(self.items):
            if item.mode == "always":
                if n not in self.broken and self.ev.eval(item.cond, {}) is not True:
                    self.broken[n] = f"expect always does not hold at {_clock_text(clock)} ({item.span})"
            elif item.within is not None and n not in self.met:
                if clock <= constant(self.program, item.within) and self.ev.eval(item.cond, {}) is True:
                    self.met.add(n)

    def rest(self) -> None:
        self._invariants(self.resting)

    def _transitions(self) -> None:
        changed = self.history.previous
        if not changed:
            return
        kinds = {key[0] for key in changed}
        try:
            for inv, checks, over in self.transitions:
                if inv.name in self.failed or over.isdisjoint(kinds):
                    continue
                bad = step_culprits(self.step_ev, inv, changed, checks)
                if bad:
                    more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
                    self.culprits[inv.name] = tuple(bad)
                    self.failed[inv.name] = (f'invariant "{inv.name}" does not hold (after step {self.engine.steps}, '
                                             f"virtual clock {_clock_text(self.engine.cache.clock)}) on "
                                             f"{key_text(bad[0])}{more}")
        finally:
            self.history.previous = {}

    def _invariants(self, invariants) -> None:
        for inv in invariants:
            if inv.name not in self.failed and self.ev.eval(inv.cond, {}) is not True:
                where = "at rest after step" if inv.at_rest else "after step"
                self.failed[inv.name] = (f'invariant "{inv.name}" does not hold ({where} {self.engine.steps}, '
                                         f"virtual clock {_clock_text(self.engine.cache.clock)})")

    def violations(self) -> list[str]:
        self.check()
        out = [self.failed[i.name] for i in (*self.program.invariants, *self.program.transitions)
               if i.name in self.failed]
        out += [self.broken[n] for n in sorted(self.broken)]
        for n, item in enumerate(self.items):
            if item.mode != "eventually":
                continue
            if item.within is not None and n not in self.met:
                out.append(f"expect eventually does not hold within {_clock_text(constant(self.program, item.within))}"
                           f" ({item.span})")
            elif item.within is None and self.ev.eval(item.cond, {}) is not True:
                out.append(f"expect eventually does not hold at the end ({item.span})")
        return out


def _clock_text(t) -> str:
    from .values import format_duration

    return format_duration(t)
