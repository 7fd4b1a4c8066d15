"""The API server: the one door every write goes through.

The user's objects and every controller action alike are written here, as
kube-apiserver does it: the caller is authenticated (it passes an `Identity`;
`authenticate` turns a token into one), authorized with RBAC, its object is
defaulted from the kind's declaration, validated against the schema, changed
by the program's mutating admission policies (`mutate`), checked by its
validating ones (`deny`), and committed with a compare-and-swap on the key's
mod revision. Reads (get, list, watch) are authorized the same way.

It knows no kind by name except the RBAC kinds (Role, RoleBinding,
ClusterRole, ClusterRoleBinding, User); RBAC is off when the program declares
no binding kind, and allows everything until the first binding exists.

Objects are dicts: `kind`, `name`, `namespace` (None for cluster-scoped
kinds), `resourceVersion` (the key's mod revision), `createdRevision`,
`managedBy` and the declared fields, every one present (an optional field
without a value is None). The store holds them as sorted-key JSON of
`values.encode` without the two revisions, which the store itself keeps.

Deliberate differences from Kubernetes:
- schema validation runs before the admission policies, mutating ones
  included, so that a policy only ever sees a well-typed object (Kubernetes
  decodes a request into its type before admission); a write that is both
  malformed and denied reports the schema error. A mutated object is defaulted
  and validated again, as Kubernetes does with what a webhook patched;
- an update without a `resourceVersion` is refused rather than applied
  unconditionally;
- an update that changes nothing is not written: it keeps its revision.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import pickle
import re
from collections.abc import Callable, Iterator
from fractions import Fraction
from json.encoder import encode_basestring
from typing import Any, Literal

import attrs

from . import ast as A
from .check import KindInfo, Program, valid_name
from .errors import Diagnostic, KonvergeError, Span
from .eval import EvalError, Evaluator
from .names import closest
from .reads import Reads, kinds_read
from .store import Compacted, Compare, Delete, Put, Store, kind_prefix, object_key
from .types import ANY, KindT, ListT, MapT, OptT, Prim, RecordT, RefT, Type
from .values import (
    SORTED_JSON, assign, differs, json_default, number_shaped, one_pass, stored_number, stray_in,
)

META = ("kind", "name", "namespace", "resourceVersion", "createdRevision", "managedBy")
VERBS = ("get", "list", "watch", "create", "update", "delete")
RBAC_KINDS = ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "User")


# ---- errors ---------------------------------------------------------------------


class APIError(KonvergeError):
    """A refused request, with Kubernetes' Status reason and HTTP code."""

    reason = "InternalError"
    code = 500

    def __init__(self, message: str, hint: str | None = None, span: Span | None = None):
        self.message = message
        super().__init__(Diagnostic("E200", message, span=span, hint=hint))


class BadRequest(APIError):
    reason, code = "BadRequest", 400


class Unauthorized(APIError):
    reason, code = "Unauthorized", 401


class Forbidden(APIError):
    reason, code = "Forbidden", 403


class NotFound(APIError):
    reason, code = "NotFound", 404


class Conflict(APIError):
    reason, code = "Conflict", 409


class AlreadyExists(APIError):
    reason, code = "AlreadyExists", 409


class Expired(APIError):
    """A watch from a revision the store has compacted away: relist."""

    reason, code = "Expired", 410


class Invalid(APIError):
    reason, code = "Invalid", 422

    def __init__(self, kind: str, name: str, causes: list[str]):
        self.causes = list(causes)
        detail = causes[0] if len(causes) == 1 else "[" + ", ".join(causes) + "]"
        super().__init__(f'{kind} "{name}" is invalid: {detail}')


# ---- values ---------------------------------------------------------------------


@attrs.frozen(slots=True, cache_hash=True)  # a key of RBAC's decisions, asked at every write
class Identity:
    name: str
    kind: Literal["user", "controller", "admin"]
    groups: tuple[str, ...] = attrs.field(default=(), converter=tuple)


@attrs.frozen(slots=True)
class WatchEvent:
    """ADDED, MODIFIED or DELETED. For DELETED, `object` is the last state with
    the revision of the delete, as Kubernetes sends it."""

    type: Literal["ADDED", "MODIFIED", "DELETED"]
    object: dict = attrs.field(eq=False)
    # The version before (None for ADDED): a dict, or the store's record of it, decoded when
    # asked for — most watchers never ask.
    _previous: Any = attrs.field(default=None, eq=False, alias="previous")
    data: bytes | None = attrs.field(default=None, eq=False)  # `object` as stored (encode_object), if known
    # The SORTED_JSON text of a field's value in `object` where the server made it when it wrote
    # the object (`_Stored.text`), else None: a cache that names objects by their fields' texts
    # need not encode them again.
    field_text: Callable[[str, Any], str | None] | None = attrs.field(default=None, eq=False)
    # Where the server knows it (_Stored.since): the revision of the version `object` updates, and
    # the fields in which it may not hold the very values of that version as this server wrote it
    # (in the others it does): a cache need not compare those.
    since: tuple[int, tuple[str, ...]] | None = attrs.field(default=None, eq=False)

    @property
    def previous(self) -> dict | None:
        p = self._previous
        return p if p is None or isinstance(p, dict) else decode_object(p)

    @property
    def revision(self) -> int:
        return self.object["resourceVersion"]


ADMIN = Identity("admin", "admin", ("system:masters",))
ANONYMOUS = Identity("system:anonymous", "user", ("system:unauthenticated",))


def resource_name(kind: str) -> str:
    """The plural resource name: `pods`, `networkpolicies`, `endpoints`."""
    low = kind.lower()
    if low.endswith("y"):
        return low[:-1] + "ies"
    if low.endswith("s"):
        return low
    return low + "s"


_REVISIONS = ("resourceVersion", "createdRevision")  # an object's fields the store keeps apart from its bytes


def encode_object(obj: dict) -> bytes:
    """The stored bytes of an object: deterministic, without the revisions."""
    stored = dict(obj)
    for field in _REVISIONS:
        stored.pop(field, None)
    return SORTED_JSON(stored).encode()


def decode_object(kv) -> dict:
    # as json.loads, less the guess of an encoding: the store's bytes are UTF-8 (encode_object)
    obj = _decoded(kv.value.decode())
    obj["resourceVersion"] = kv.mod_revision
    obj["createdRevision"] = kv.create_revision
    return obj


def _decoded(text: str):
    """A value from its stored text: an object's (decode_object), or a field's within it."""
    return (_WITH_FRACTIONS if '"$frac"' in text else _PLAIN).decode(text)


@attrs.frozen(slots=True)
class _Stored:
    """What this server wrote for a key: the bytes, and the object they decode to (decode_object:
    maps in key order, exact numbers, lists), which no one is given to change. While the store
    holds these very bytes at that revision, the object is what decoding them gives: a watch
    hands it over (a copy of its top level) instead of decoding, and an update that keeps a field
    of it (the same Python object) neither defaults, validates nor encodes that field again: it
    was, when admitted, and what admission does to a field depends on its value alone."""

    data: bytes
    object: dict  # its fields in key order, then resourceVersion and createdRevision, as decode_object puts them
    pieces: dict  # field → `"field":` and its SORTED_JSON text, in key order: the parts of `data`
    # An update's: the revision of the version it updates, and its fields that may not hold that
    # version's very values (`_admit`'s not_kept, and the revisions); None where not known.
    since: tuple[int, tuple[str, ...]] | None = None

    def holds(self, kv) -> bool:
        obj = self.object
        return (kv.value is self.data and kv.mod_revision == obj["resourceVersion"]
                and kv.create_revision == obj["createdRevision"])

    def text(self, field: str, value) -> str | None:
        """The SORTED_JSON text of `value` if it is the object's value of `field`, else None."""
        piece = self.pieces.get(field)
        if piece is None or value is not self.object[field]:
            return None
        return piece[len(_named(field)):]


# Values decoding their text gives back as they are: of the same type, equal (a float as repr
# writes it, NaN and the infinities too).
_AS_DECODED = frozenset({str, int, bool, float, type(None), Fraction})


class _Decodings:
    """The values stored texts of fields decode to, by text, up to a bound: the objects a set
    creates from one template hold alike values (containers, labels, tolerations), which are
    decoded once and shared by their stored objects (_Stored), as an object's versions share the
    values an update keeps; the objects a controller updates alike (a kubelet starting a set's
    pods) hold alike new values too. No one is given to change them. A long text is decoded
    afresh: a field that grows write by write would otherwise keep each of its versions."""

    LONGEST = 2_000  # characters of a text kept

    def __init__(self, limit: int = 100_000):
        self._values: dict[str, Any] = {}
        self._limit = limit  # texts

    def value(self, text: str):
        """_decoded(text), made once."""
        if len(text) > self.LONGEST:
            return _decoded(text)
        values = self._values
        value = values.get(text)
        if value is None:
            if len(values) >= self._limit:
                values.clear()
            value = values[text] = _decoded(text)
        return value


def _piece(field: str, text: str) -> str:
    """A field's part of an object's stored bytes: its name and its value's SORTED_JSON `text`."""
    return _named(field) + text


@functools.lru_cache(maxsize=10_000)
def _named(field: str) -> str:
    """`"field":`, the start of a field's pieces, made once per field (the declared ones, and a few more)."""
    return encode_basestring(field) + ":"


def _joined(pieces: dict) -> bytes:
    """The stored bytes of an object from its fields' pieces, in key order (_Stored.pieces)."""
    return ("{" + ",".join(pieces.values()) + "}").encode()


def _encode_fields(obj: dict, base: _Stored | None, decoded: _Decodings | None = None,
                   not_kept: list[str] | None = None, texts: dict | None = None) -> tuple[bytes, dict, dict]:
    """encode_object(obj), the object those bytes decode to (less its revisions) and their
    pieces (_Stored). It is made field by field, for SORTED_JSON of a map is its fields' pieces
    in key order, and decoding reads each on its own (_value). An update of `base` keeps the
    piece and decoded value of a field that holds the same object as there, or an equal one;
    `not_kept`, where the caller knows them, are the fields that may not (`_admit`: `obj` has
    `base`'s fields then). The values decoded are shared through `decoded` where it is given
    (_Decodings). `texts`: the SORTED_JSON texts of some fields' values, where made already."""
    if texts is None:
        texts = {}
    kept = base.object if base is not None else None
    if kept is None or not_kept is None and obj.keys() != kept.keys():  # given `not_kept`, the same
        pieces = {}
        values = {}
        for f in sorted(obj):
            if f not in _REVISIONS:
                v = obj[f]
                text = texts.get(f) or SORTED_JSON(v)
                pieces[f] = _named(f) + text
                # _value, written out: most fields hold a string, a number, a flag or none
                values[f] = v if type(v) in _AS_DECODED and v == v else _value(v, text, decoded)
        return _joined(pieces), values, pieces
    changed = not_kept if not_kept is not None else [f for f, v in obj.items()
                                                     if v is not kept[f] and f not in _REVISIONS]
    pieces = dict(base.pieces)
    values = dict(kept)
    for f in changed:
        v = obj[f]
        text = texts.get(f) or SORTED_JSON(v)
        piece = _piece(f, text)
        if piece != pieces[f]:  # else an equal value, made afresh: the decoded one is kept
            pieces[f], values[f] = piece, _value(v, text, decoded)
    return _joined(pieces), values, pieces


def _value(v, text: str, decoded: _Decodings | None = None):
    """What a field's stored text (`text`, of `v`) decodes to: `v` itself where decoding gives it
    back as it is (but NaN: every decoded NaN is one object, which `in` finds), else a decoding,
    shared through `decoded` where it is given."""
    if type(v) in _AS_DECODED and v == v:
        return v
    return decoded.value(text) if decoded is not None else _decoded(text)


@attrs.frozen(slots=True)
class _Alike:
    """A create as `APIServer._alike` keeps it: the objects a set creates from one template differ
    in their names alone, and every one would be defaulted, validated, mutated, judged and encoded
    alike. No one changes these values (but `texts`, which grows as they are judged again): the
    creates that share them are `shared` ones."""

    # The newest kept: alike creates come together (a ReplicaSet creates the pods it misses in one
    # step), and an object kept here holds its whole body.
    LIMIT = 1_000
    # Shared creates of a kind since one was found alike, past which only every so many are named
    # (`APIServer._count_alike`).
    UNALIKE = 32

    given: dict  # the object as given, less its name
    admitted: dict  # as admitted, before its revisions are set
    stored: dict  # its stored bytes decoded (_Stored.object), less its revisions
    pieces: dict  # its stored bytes' pieces (_Stored.pieces)
    judged: int  # the store revision its denies that read the store's objects passed at
    # A path of fields → the text of its value in `admitted` (_holds), as the denies its alike
    # creates are judged by again make them: those creates share these values, all but the name.
    texts: dict = attrs.Factory(dict)


def _fraction(d: dict):
    """json's `object_hook`: `values.decode` of a map whose values are decoded already."""
    if "$frac" not in d:
        return d  # most maps, at once
    number = stored_number(d)
    return d if number is None else number


# decode(json.loads(b)) and json.dumps(encode(v), separators=…), without a walk of the value in Python
_TEXT = one_pass(json.JSONEncoder(separators=(",", ":"), default=json_default))
_WITH_FRACTIONS = json.JSONDecoder(object_hook=_fraction)
_PLAIN = json.JSONDecoder()  # for the objects that hold no number `decode` would change


class _EmptyWorld:
    def __init__(self, clock: Callable[[], Any]):
        self._clock = clock

    def scan(self, kind: str):
        return ()

    def now(self):
        return self._clock()


class _AdmissionCalls:
    """The admission evaluator's memo: the values of calls of defs that read nothing but their
    arguments and the store's objects of some kinds, given plain arguments (strings, integers,
    none), kept while the server can tell no object of those kinds was written since, up to a
    bound. The label checks walk each label character by character, and the objects made
    from one template repeat its labels; every create asks whether its namespace exists.

    It serves as `Evaluator.memo` does for the engine, less the world and picks: a hit here adds
    no read to its caller's, for admission records none."""

    LIMIT = 100_000

    def __init__(self, api: APIServer):
        self._api = api
        self._reads: dict[str, tuple[str, ...] | None] = {}  # def → the kinds it reads; None: more
        self.entries: dict[tuple, tuple] = {}  # key → (value, reads: none, the store revision)

    def key(self, name: str, args: list) -> tuple | None:
        kinds = self._reads.get(name, False)
        if kinds is False:
            kinds = self._reads[name] = _kinds_read(self._api.program, name)
        if kinds is None:
            return None
        for a in args:
            t = type(a)
            if t is not str and t is not int and a is not None:
                return None  # True, 1.0 and Fraction(1) equal 1: only these are named by value
        key = (name, *args)
        if kinds:
            entry = self.entries.get(key)
            if entry is not None and not self._api.unwritten_since(kinds, entry[2]):
                del self.entries[key]
        return key

    def enter(self) -> None:
        pass

    def leave(self, outer: None, key: tuple, value, cacheable: bool) -> None:
        # Only a value no caller can change: a mutation puts what a def gives into the object
        # admitted, which the caller may then edit (a list, a map).
        if cacheable and type(value) in _IMMUTABLE:
            if len(self.entries) >= self.LIMIT:
                self.entries.clear()
            self.entries[key] = (value, (), self._api.store.revision)


_IMMUTABLE = frozenset({str, int, float, bool, Fraction, type(None)})


def _not_kept(obj: dict, base: dict) -> list[str] | None:
    """The fields of `obj` (but its revisions) that do not hold the very value of `base`'s, an
    admitted object, where it has the same fields; else None. Admitted, `base` has every
    declared field, none required is none, and each holds what defaulting gives back as it is
    and validation passes: what admission does to a field depends on its value alone, so an
    update need only default and validate the others."""
    if len(obj) != len(base):
        return None
    try:  # as many fields, each of them base's: the same ones, told without comparing the keys first
        return [f for f, v in obj.items() if v is not base[f] and f not in _REVISIONS]
    except KeyError:
        return None


def _kinds_read(program: Program, name: str) -> tuple[str, ...] | None:
    """The kinds whose objects a call of the def `name` reads, through the defs it calls; None
    where it reads more than those and its arguments (the clock, an earlier state)."""
    return _kinds_of(program, program.defs[name].body)


def _kinds_of(program: Program, e: A.Expr) -> tuple[str, ...] | None:
    """The kinds whose objects `e` reads, by their declared names, through the defs it calls; None
    where it reads more than those and its variables (the clock, an earlier state)."""
    kinds = kinds_read(program.defs, e)
    if kinds is None:
        return None
    return tuple(sorted({info.name if (info := program.kind(k)) is not None else k for k in kinds}))


class _StoreWorld:
    """The current store, as admission policies see it. A kind's objects are read once and kept
    while no write has touched the kind since: every service created would read all services."""

    def __init__(self, api: APIServer):
        self._api = api
        self._scans: dict[str, tuple[int, list]] = {}  # kind → (store revision when read, objects)
        # The write being admitted, for `before` in a deny: (kind, namespace, name) and what it
        # replaces — None for a create, the stored object, or a call that decodes it when asked.
        self.replacing: tuple | None = None

    def before(self, obj: dict) -> dict | None:
        """`before(x)` in a deny: the object the write being admitted replaces, as stored (none for
        a create), as a ValidatingAdmissionPolicy's oldObject; any other object is as it is, for
        the write leaves it alone."""
        r = self.replacing
        if r is None or (obj["kind"], obj.get("namespace"), obj.get("name")) != r[0]:
            return obj
        old = r[1]
        if callable(old):
            old = old()
            self.replacing = (r[0], old)
        return old

    def scan(self, kind: str):
        api = self._api
        info = api.program.kind(kind)
        if info is None:
            return []
        kept = self._scans.get(info.name)
        if kept is not None and api.unwritten_since(info.name, kept[0]):
            return kept[1]
        revision = api.store.revision
        found = [decode_object(kv) for kv in api.store.range(kind_prefix(api.resource(info)), prefix=True).kvs]
        self._scans[info.name] = (revision, found)
        return found

    def now(self):
        return self._api.clock()


# ---- the server -------------------------------------------------------------------


class APIServer:
    def __init__(self, program: Program, store: Store, *, clock: Callable[[], Any] = lambda: 0):
        self.program = program
        self.store = store
        self.clock = clock
        self.admin = ADMIN
        self._resources: dict[str, str] = {}
        seen: dict[str, str] = {}
        for name in program.kinds:
            r = resource_name(name)
            if r in seen:
                raise KonvergeError(f"kinds `{seen[r]}` and `{name}` would share the resource name `{r}`")
            seen[r] = name
            self._resources[name] = r
        self._by_resource = seen
        self._schema = _Schema(program, Evaluator(program, _EmptyWorld(clock)))
        # The store revision after this server's latest write, and per kind after its latest write
        # of that kind: a store at that revision holds no write from elsewhere since. A write that
        # finds the store moved on from the last one (explore's restores, a lease) puts every
        # read before it in doubt.
        self._last_write = self._doubt_before = store.revision
        self._kind_written: dict[str, int] = {}  # in the order of those writes, the latest last
        # Of those, the latest of an RBAC kind: what RBAC's decisions depend on, asked at every request.
        self._rbac_written = 0
        self._world = _StoreWorld(self)
        self._admission = Evaluator(program, self._world)
        self._admission.memo = _AdmissionCalls(self)
        # kind → (policy, deny, the fields its verdict depends on alone, or None): an update that
        # keeps those fields as this server admitted them keeps the verdict (ratcheting).
        self._policies: dict[str, list[tuple[A.PolicyDecl, A.Deny, frozenset | None]]] = {}
        # A deny whose `when` reads only its object, by the fields it reads (_judged): its verdicts
        # by their values (a set's pods are alike in all of them but their names; sets alike in
        # their templates' containers but their labels), kept up to a bound.
        self._judged_by: dict[int, tuple[tuple[tuple[str, ...], bool], ...]] = {}
        reads = Reads(program)
        for policy in program.policies:
            for deny in policy.denies:
                info = program.kind(deny.source.kind)
                if info is not None:
                    exprs = (deny.cond, deny.because)
                    fields = reads.fields(deny.source.var, exprs) if reads.pure(exprs) else None
                    self._policies.setdefault(info.name, []).append((policy, deny, fields))
                    if reads.pure(deny.cond) and (judged := _judged(program, reads, info, deny.source.var,
                                                                     deny.cond)) is not None:
                        self._judged_by[id(deny)] = judged
        # The kinds a deny of which looks back (`before`): their writes say what they replace.
        self._looks_back = frozenset(info.name for k in program.looks_back if (info := program.kind(k)) is not None)
        # kind → the policies an update passes: less the denies of creates alone
        self._on_update = {kind: [p for p in ps if not _creates_only(p[1])] for kind, ps in self._policies.items()}
        # (kind, the fields a ratcheted update changes) → those of them it is judged by (_ratcheted_denies)
        self._denies_of_change: dict[tuple[str, frozenset], list] = {}
        # kind → its mutations, in declaration order (files, policies, clauses); a `when` that
        # reads only its object is judged by the fields it reads, as a deny is
        self._mutations: dict[str, list[tuple[A.PolicyDecl, A.Mutate]]] = {}
        for policy in program.policies:
            for m in policy.mutations:
                info = program.kind(m.source.kind)
                if info is not None:
                    self._mutations.setdefault(info.name, []).append((policy, m))
                    if reads.pure(m.cond) and (judged := _judged(program, reads, info, m.source.var,
                                                                 m.cond)) is not None:
                        self._judged_by[id(m)] = judged
        # id(clause) of those → its verdicts by the texts of the paths it reads (_holds), and that
        # path where it reads one alone, not loosely (most): then its text alone is the key
        self._verdicts: dict[int, tuple[dict, tuple[str, ...] | None]] = {
            clause: ({}, judged[0][0] if len(judged) == 1 and not judged[0][1] else None)
            for clause, judged in self._judged_by.items()}
        self._verdicts_kept = 0  # in all of them
        self._sets: dict[int, dict] = {}  # id(mutation) → the fields it sets
        # kind → the denies a create alike to an earlier one but for its name is judged by again
        # (_admit_alike), those of them judged again only once the store's objects they read are
        # written, and the kinds of those; or None where a mutation of the kind reads more than
        # the object's other fields
        self._judged_again = {kind: self._denies_judged_again(kind, reads) for kind in program.kinds}
        self._alike: dict[tuple, _Alike] = {}  # _alike_key → the newest create so named
        self._unalike: dict[str, int] = {}  # kind → its shared creates since one was alike (_count_alike)
        # kind → the fields its ratcheted policies read; of those, the ones `==` may call kept
        # when they changed (values.differs)
        self._ratcheted: dict[str, frozenset[str]] = {}
        self._loose: dict[str, frozenset[str]] = {}
        for kind, ps in self._policies.items():
            fields = frozenset().union(*(f for _, _, f in ps if f is not None))
            self._ratcheted[kind] = fields
            self._loose[kind] = fields & program.loose_fields(kind)
        # store key → (revision, the object admitted, as stored: _Stored.object, which no one
        # changes, unlike the object handed back). Kept apart from `_stored`, which a write by
        # another hand empties: an update of that revision still ratchets.
        self._admitted: dict[str, tuple[int, dict]] = {}
        self._stored: dict[str, _Stored] = {}  # store key → what this server wrote there last
        self._decoded = _Decodings()
        # An update's new values, for a few of its latest texts alone: a field that grows update
        # by update (its record gone, so it is not built on) keeps no more than those versions.
        self._updated = _Decodings(limit=256)
        self.rbac_enabled = "RoleBinding" in program.kinds or "ClusterRoleBinding" in program.kinds
        self._users_declared = "User" in program.kinds
        self._rbac = _RBACCache(self) if self.rbac_enabled or self._users_declared else None

    # -- names

    def kind_info(self, kind: str) -> KindInfo:
        """The kind named `pod`, `Pod` or `pods`; NotFound with a suggestion if none."""
        info = self.program.kind(kind) or self.program.kinds.get(self._by_resource.get(kind.lower(), ""))
        if info is None:
            names = sorted(k.lower() for k in self.program.kinds)
            guess = closest(kind.lower(), names)
            raise NotFound(f'the server doesn\'t have a resource type "{kind}"',
                           hint=f"did you mean `{guess}`?" if guess else
                           "known kinds: " + ", ".join(names) if names else None)
        return info

    def resource(self, info: KindInfo) -> str:
        return self._resources[info.name]

    def key(self, info: KindInfo, namespace: str | None, name: str) -> str:
        return object_key(self.resource(info), namespace, name)

    # -- identities

    @property
    def revision(self) -> int:
        return self.store.revision

    def defaulted(self, kind: str, obj: dict) -> dict:
        """The object with its defaults filled in and its mutations applied, as a create would
        store it: what a controller compares with the stored object before deciding to write."""
        info = self.kind_info(kind)
        obj = self._default_fields(info.fields, self._incoming(info, obj))
        try:
            return self._mutate(info, obj)
        except APIError:
            return obj  # the write will be refused with the reason: the controller learns it there

    def controller(self, name: str) -> Identity:
        return Identity(name, "controller", ("system:controllers",))

    def authenticate(self, token: str | None) -> Identity:
        """The user a bearer token belongs to. With no User kind declared, or
        none stored, every request is an anonymous user."""
        users = self._rbac.users() if self._rbac is not None else {}
        if not users:
            return ANONYMOUS
        user = users.get(token) if token else None
        if user is None:
            raise Unauthorized("Unauthorized", hint="pass the token of a declared User")
        return Identity(user["name"], "user", tuple(user.get("groups") or ()))

    # -- reads

    def get(self, who: Identity, kind: str, namespace: str | None, name: str) -> dict:
        info = self.kind_info(kind)
        namespace = self._namespace(info, namespace)
        self._authorize(who, "get", info, namespace, name)
        kvs = self.store.range(self.key(info, namespace, name)).kvs
        if not kvs:
            raise self._not_found(info, name)
        return decode_object(kvs[0])

    def list(self, who: Identity, kind: str, namespace: str | None = None) -> tuple[list[dict], int]:
        """Every object of a kind (in a namespace), in key order, and the
        store revision the list was read at."""
        info = self.kind_info(kind)
        if info.cluster:
            namespace = None
        self._authorize(who, "list", info, namespace, None)
        r = self.store.range(kind_prefix(self.resource(info), namespace), prefix=True)
        return [decode_object(kv) for kv in r.kvs], r.revision

    def watch(self, who: Identity, kind: str, start_revision: int | None = None,
              namespace: str | None = None, *, shared: bool = False) -> APIWatcher:
        """Changes from `start_revision` (default: the next one). Raises
        Expired if that history has been compacted. `shared`: the watcher never changes a value
        of an object in place (it changes a copy), so it may be handed the objects this server
        wrote, which share their values with the server, rather than a fresh decoding of each."""
        info = self.kind_info(kind)
        if info.cluster:
            namespace = None
        self._authorize(who, "watch", info, namespace, None)
        prefix = kind_prefix(self.resource(info), namespace)
        try:
            w = self.store.watch(prefix, start_revision)
        except Compacted as e:
            raise _expired(e) from None
        return APIWatcher(w, self.store, prefix, self._stored if shared else None)

    # -- writes

    def create(self, who: Identity, kind: str, obj: dict, *, shared: bool = False) -> dict:
        """Create an object; returns it as admitted. `shared`: the caller changes no value of the
        object it gives nor of the one it is given back (the engine, which hands its objects over
        and drops the answer), so a create alike to an earlier one but for its name may be
        admitted as that one was, and share its values (_admit_alike)."""
        info = self.kind_info(kind)
        obj = self._incoming(info, obj)
        name, namespace = obj["name"], obj["namespace"]
        self._authorize(who, "create", info, namespace, None)
        if obj.get("resourceVersion"):
            raise Invalid(info.name, name, [f"resourceVersion: Invalid value: {obj['resourceVersion']}: "
                                            "must be unset to create an object"])
        obj["resourceVersion"] = None
        obj["createdRevision"] = None
        alike = self._alike_key(info, obj) if shared and self._count_alike(info.name) else None
        earlier = self._alike.get(alike[0]) if alike is not None else None
        if info.name in self._looks_back:
            self._world.replacing = ((info.name, namespace, name), None)  # `before`: none, it is new
        try:
            if earlier is not None and earlier.given == alike[1] and valid_name(name):
                obj, data, stored, pieces = self._admit_alike(info, alike[0], earlier, name)
                self._unalike[info.name] = 0
            else:
                obj, _, texts = self._admit(info, obj)  # which says what is wrong with a name
                data, stored, pieces = _encode_fields(obj, None, self._decoded, texts=texts)
                if alike is not None:
                    self._keep_alike(*alike, obj, stored, pieces)
        finally:
            self._world.replacing = None
        key = self.key(info, namespace, name)
        r = self.store.txn([Compare(key, "create", "==", 0)], [Put(key, data)])
        if not r.succeeded:
            raise AlreadyExists(f'{self.resource(info)} "{name}" already exists')
        obj["resourceVersion"] = obj["createdRevision"] = r.revision
        stored["resourceVersion"] = stored["createdRevision"] = r.revision
        self._remember(info, key, r.revision, stored)
        self._stored[key] = _Stored(data, stored, pieces)
        return obj

    def update(self, who: Identity, kind: str, obj: dict) -> dict:
        info = self.kind_info(kind)
        obj = self._incoming(info, obj)
        name, namespace = obj["name"], obj["namespace"]
        self._authorize(who, "update", info, namespace, name)
        rv = obj.get("resourceVersion")
        if not isinstance(rv, int) or isinstance(rv, bool) or rv <= 0:
            raise Invalid(info.name, name, [f"resourceVersion: Invalid value: {_show(rv)}: "
                                            "must be specified for an update"])
        key = self.key(info, namespace, name)
        kvs = self.store.range(key).kvs
        if not kvs:
            raise self._not_found(info, name)
        current = kvs[0]
        if current.mod_revision != rv:
            raise self._conflict(info, name)
        obj["createdRevision"] = current.create_revision
        admitted = self._admitted.get(key)
        old = admitted[1] if admitted is not None and admitted[0] == rv else None
        base = self._stored.get(key)
        if base is not None and not base.holds(current):
            base = None  # written since by another hand (explore's restores)
        if info.name in self._looks_back:
            # What `before` in a deny gives: the old object as admitted, else as stored, decoded if asked.
            replaced = old if old is not None else lambda: decode_object(current)
            self._world.replacing = ((info.name, namespace, name), replaced)
        try:
            obj, not_kept, texts = self._admit(info, obj, old, base)
        finally:
            self._world.replacing = None
        data, stored, pieces = _encode_fields(obj, base, self._updated, not_kept, texts)
        if data == current.value:
            return decode_object(current)  # nothing changed: no write, no new revision
        r = self.store.txn([Compare(key, "mod", "==", rv)], [Put(key, data)])
        if not r.succeeded:
            if not self.store.range(key).kvs:
                raise self._not_found(info, name)
            raise self._conflict(info, name)
        obj["resourceVersion"] = stored["resourceVersion"] = r.revision
        stored["createdRevision"] = current.create_revision
        self._remember(info, key, r.revision, stored)
        self._stored[key] = _Stored(data, stored, pieces, None if not_kept is None else (rv, (*not_kept, *_REVISIONS)))
        return obj

    def _denies_judged_again(self, kind: str, reads: Reads) -> tuple[tuple, frozenset, tuple[str, ...]] | None:
        """The denies of `kind` a create alike to an earlier one but for its name is judged by
        again: those that read the store or the clock, its name, or it whole; of those, the ids of
        the ones that read no more than its other fields and the store's objects of some kinds,
        which give the earlier one's verdict while no object of those kinds is written; and those
        kinds. None where a mutation's `when` or value reads more than the object's fields but its
        name, for then what the mutations make of alike objects may differ."""
        for _, m in self._mutations.get(kind, ()):
            for e in (m.cond, *(s.value for s in m.sets)):
                if not reads.pure(e) or (fields := reads.fields(m.source.var, e)) is None or "name" in fields:
                    return None
        again = tuple((policy, deny) for policy, deny, _ in self._policies.get(kind, ())
                      if (judged := self._judged_by.get(id(deny))) is None or any(p[0] == "name" for p, _ in judged))
        by_store, kinds = set(), set()
        for _, deny in again:
            found = _kinds_of(self.program, deny.cond)
            fields = reads.fields(deny.source.var, deny.cond) if found is not None else None
            if fields is not None and "name" not in fields:
                by_store.add(id(deny))
                kinds.update(found)
        return again, frozenset(by_store), tuple(sorted(kinds))

    def _count_alike(self, kind: str) -> bool:
        """Count a shared create of `kind`; whether it is named for `_alike`: each is, but once the kind's
        last `_Alike.UNALIKE` shared creates found none alike, only every so many, until one does.
        Some kinds' objects each differ from all others (a service's endpoints, a node's block of
        addresses), and naming one encodes all of it for nothing; a hit, which a named create
        finds as well as ever, brings every create of the kind back."""
        n = self._unalike.get(kind, 0)
        self._unalike[kind] = n + 1
        return n < _Alike.UNALIKE or n % _Alike.UNALIKE == 0

    def _alike_key(self, info: KindInfo, obj: dict) -> tuple[tuple, dict] | None:
        """How `_alike` names a create's object (before admission): by its kind, the clock and the
        pickle of all of it but its name, which names each part by its type and value (1, 1.0 and
        True apart; a map's keys in their order) and is made in C at a third of the cost of its
        text, every value but a Fraction; with that rest of it, which `==` compares too. Two
        values alike but for which parts of them are one object pickle apart: such a create is
        admitted afresh, to the same object. None where the kind is never admitted alike
        (`_judged_again`), or a value cannot be pickled."""
        if self._judged_again.get(info.name) is None:
            return None
        rest = dict(obj)
        del rest["name"]
        try:
            return (info.name, self.clock(), pickle.dumps(rest, 5)), rest
        except Exception:  # whatever a stray object raises as it is reduced
            return None  # no value of the language: `_admit` says what is wrong

    def _keep_alike(self, key: tuple, given: dict, admitted: dict, stored: dict, pieces: dict) -> None:
        alike = self._alike
        alike.pop(key, None)  # kept again (named alike to a value `==` is not, a NaN): now the newest
        if len(alike) >= _Alike.LIMIT:
            del alike[next(iter(alike))]  # the oldest
        # judged at the revision before its own write, as it is kept before that
        alike[key] = _Alike(given, dict(admitted), dict(stored), pieces, self.store.revision)

    def _admit_alike(self, info: KindInfo, key: tuple, earlier: _Alike,
                     name: str) -> tuple[dict, bytes, dict, dict]:
        """What admitting and encoding a create alike to `earlier` (kept as `key`) but for its
        (valid) name makes: that one's, with this name. Defaulting, validating and mutating an
        object read its fields but its name (and the clock, which the key holds); of its denies
        only those that `_judged_again` names are judged again, the others held of none of the
        earlier object's fields; of those, the ones that read the store's objects of some kinds
        and not its name hold of none while no object of those kinds was written since they
        last passed. As `_encode_fields`: the object, its bytes, their decoding and pieces."""
        obj = dict(earlier.admitted)
        obj["name"] = name
        again, by_store, kinds = self._judged_again[info.name]
        kept = bool(by_store) and self.unwritten_since(kinds, earlier.judged)
        revision = self.store.revision
        values = dict(earlier.texts)
        for policy, deny in again:
            if kept and id(deny) in by_store:
                continue
            env = {deny.source.var: obj}
            if self._holds(deny, deny.cond, env, obj, values):
                raise self._denied(info, name, policy, deny, env)
        earlier.texts.update((path, text) for path, text in values.items() if path[0] != "name")
        if by_store and not kept:
            self._alike[key] = attrs.evolve(earlier, judged=revision)
        pieces = dict(earlier.pieces)
        pieces["name"] = _piece("name", SORTED_JSON(name))
        stored = dict(earlier.stored)
        stored["name"] = name
        return obj, _joined(pieces), stored, pieces

    def unwritten_since(self, kind: str | tuple[str, ...], revision: int) -> bool:
        """Whether the store holds the same objects of `kind` (or of each of several) as at
        `revision`, as far as this server can tell: no write of the kind since, by this server or
        another."""
        if not self._knows_writes_since(revision):
            return False
        written = self._kind_written
        if isinstance(kind, str):
            return written.get(kind, 0) <= revision
        return all([written.get(k, 0) <= revision for k in kind])

    def written_since(self, revision: int) -> set[str] | None:
        """The kinds written since `revision`, when this server can tell (see `unwritten_since`);
        else None."""
        if not self._knows_writes_since(revision):
            return None
        kinds = set()
        for kind, written in reversed(self._kind_written.items()):  # most polls follow a write or two
            if written <= revision:
                break
            kinds.add(kind)
        return kinds

    def _knows_writes_since(self, revision: int) -> bool:
        """Whether every write since `revision` went through this server."""
        self.store.expire_leases()  # as a read would: a lease past its deadline takes its keys away
        return self.store.revision == self._last_write and revision >= self._doubt_before

    def _wrote(self, info: KindInfo, revision: int) -> None:
        if revision != self._last_write + 1:
            self._doubt_before = revision
            # Written by another hand since (explore's restores, a lease's end): what this server
            # wrote may be gone or replaced, and a key deleted so would keep its record for ever.
            self._stored.clear()
        self._kind_written.pop(info.name, None)  # now the latest
        self._kind_written[info.name] = self._last_write = revision
        if info.name in RBAC_KINDS:
            self._rbac_written = revision

    def rbac_unwritten_since(self, revision: int) -> bool:
        """unwritten_since(every RBAC kind, revision), less a look at each of them."""
        return self._knows_writes_since(revision) and self._rbac_written <= revision

    def _remember(self, info: KindInfo, key: str, revision: int, stored: dict) -> None:
        """Note a write of an object, `stored` as its stored bytes decode (_Stored.object): what a
        ratcheted update of it compares with (`_admit`). Its fields hold what was admitted, as
        decoding gives it back, and the revision it was written at, which an update of it names
        (else it conflicts): a policy that reads the revision finds it unchanged, as Kubernetes
        finds an update's resourceVersion its old object's. No one changes them: no copy."""
        self._wrote(info, revision)
        if self._ratcheted.get(info.name):
            self._admitted[key] = (revision, stored)

    def delete(self, who: Identity, kind: str, namespace: str | None, name: str,
               resource_version: int | None = None) -> dict:
        """Delete an object (if `resource_version` is given, only that
        version of it); returns the deleted object."""
        info = self.kind_info(kind)
        namespace = self._namespace(info, namespace)
        self._authorize(who, "delete", info, namespace, name)
        key = self.key(info, namespace, name)
        compares = [Compare(key, "create", ">", 0)]
        if resource_version is not None:
            compares.append(Compare(key, "mod", "==", resource_version))
        r = self.store.txn(compares, [Delete(key)], [])
        if not r.succeeded:
            kvs = self.store.range(key).kvs
            if not kvs:
                raise self._not_found(info, name)
            raise Conflict(
                f'Operation cannot be fulfilled on {self.resource(info)} "{name}": the ResourceVersion in the '
                f"precondition ({resource_version}) does not match the ResourceVersion in record "
                f"({kvs[0].mod_revision}). The object might have been modified")
        self._wrote(info, r.revision)
        self._admitted.pop(key, None)
        self._stored.pop(key, None)
        prev = r.responses[0].prev_kvs[0]
        obj = decode_object(prev)
        obj["resourceVersion"] = r.revision
        return obj

    # -- the pipeline

    def _namespace(self, info: KindInfo, namespace: str | None) -> str | None:
        if info.cluster:
            return None
        return "default" if namespace is None else namespace

    def _incoming(self, info: KindInfo, obj: dict) -> dict:
        """A copy of the caller's object with its metadata checked enough to
        name it; the schema is validated later."""
        if not isinstance(obj, dict):
            raise BadRequest(f"an object of kind {info.name} must be a dict, not {type(obj).__name__}")
        obj = dict(obj)
        name = obj.get("name")
        if not isinstance(name, str) or not name:
            raise Invalid(info.name, "" if name is None else str(name), ["name: Required value: name is required"])
        given = obj.get("kind", info.name)
        if given != info.name and self.program.kind(str(given)) is not info:
            raise BadRequest(f'the object\'s kind "{given}" does not match the request\'s kind "{info.name}"')
        if "kind" not in obj or type(given) is not str or given != info.name:
            obj["kind"] = info.name  # a kind given as it is stays the same object: see _Stored
        if info.cluster:
            if obj.get("namespace") is not None:
                raise Invalid(info.name, name, [f"namespace: Forbidden: {info.name} is cluster-scoped, "
                                                "so it has no namespace"])
            obj["namespace"] = None
        elif obj.get("namespace") is None:
            obj["namespace"] = "default"
        obj.setdefault("managedBy", None)
        return obj

    def _admit(self, info: KindInfo, obj: dict, old: dict | None = None,
               stored: _Stored | None = None) -> tuple[dict, list[str] | None, dict[str, str]]:
        """Defaulting, validation, the mutating admission policies, then the validating ones: the
        object admitted. An update of `old`, as this server admitted it (_remember), is not denied
        by a policy that reads only fields the mutated object keeps: as Kubernetes ratchets
        validation, an unchanged field is not judged again; one that holds the very value of `old`
        is kept without a compare (a shared watch hands those values over). A field that holds
        the very value of `stored` (what it updates, as stored) is neither defaulted nor
        validated again: it was, when admitted; nor one of the others whose value an update
        admitted as it was given before, which it keeps as given (_Schema.to_admit).

        With the object admitted, the fields of it that may not hold the very values of `stored`'s,
        where the caller need not look at the others: those that were not kept, when no mutation
        applied; else None. And the SORTED_JSON texts of the values of the fields judged by their
        text (_text_at), which encoding takes over."""
        not_kept = _not_kept(obj, stored.object) if stored is not None else None
        # of those, a field → the SORTED_JSON text of its value where that names it (_text_at)
        texts: dict[str, str] = {}
        given, checked = obj, not_kept
        if not_kept is not None:
            checked = self._schema.to_admit(info.fields, obj, not_kept, texts)
        defaulted = obj = self._schema.default_fields(info.fields, obj, checked)
        self._check_schema(info, obj, checked)
        if texts:
            self._schema.note_admitted_as_given(info.fields, given, obj, checked, texts)
        # a path of fields → its value as text (_holds), made once
        values: dict[tuple, str | tuple] = {(f,): text for f, text in texts.items()}
        obj = self._mutate(info, obj, values, stored)
        if obj is not defaulted:
            not_kept = None  # a mutation may have changed any field
        # else defaulting gave the kept fields their values back as they were
        changed = None  # with `old`: the fields a ratcheted policy reads that are not kept
        if old is not None:
            loose = self._loose.get(info.name, ())
            ratcheted = self._ratcheted.get(info.name, ())
            if not_kept is not None and old is stored.object:  # the others hold its very values
                ratcheted = [f for f in (*not_kept, *_REVISIONS) if f in ratcheted]
            changed = {f for f in ratcheted
                       if (value := obj.get(f)) is not (kept := old.get(f)) and differs(kept, value, f in loose)}
        if changed is not None and obj["resourceVersion"] is not None:
            denies = self._ratcheted_denies(info.name, changed)
        else:
            denies = (self._policies if obj["resourceVersion"] is None else self._on_update).get(info.name, ())
        for policy, deny, _ in denies:
            env = {deny.source.var: obj}
            if self._holds(deny, deny.cond, env, obj, values, stored):
                raise self._denied(info, obj["name"], policy, deny, env)
        # `values` names the admitted object's: the mutation that changed it last emptied them
        return obj, not_kept, {path[0]: text for path, text in values.items() if len(path) == 1 and type(text) is str}

    def _ratcheted_denies(self, kind: str, changed: set[str]) -> list:
        """The policies an update of `kind` that changes those of the fields its ratcheted
        policies read (`changed`) is judged by, in their order: those that read a changed field,
        or more than the object's fields. An update of a controller changes the same few fields
        write after write."""
        key = (kind, frozenset(changed))
        denies = self._denies_of_change.get(key)
        if denies is None:
            if len(self._denies_of_change) >= 10_000:
                self._denies_of_change.clear()
            denies = self._denies_of_change[key] = [
                p for p in self._on_update.get(kind, ()) if p[2] is None or not changed.isdisjoint(p[2])]
        return denies

    def _denied(self, info: KindInfo, name: str, policy: A.PolicyDecl, deny: A.Deny, env: dict) -> APIError:
        """A deny's refusal, with its `because` (or the policy's message), worded as Kubernetes
        words its reason (A.DENY_REASONS)."""
        message = policy.message
        if deny.because is not None:
            because = self._admission.eval(deny.because, env)
            if because is not None:
                message = str(because)
        reason = deny.reason
        if reason == "Forbidden":
            return Forbidden(f'{self.resource(info)} "{name}" is forbidden: {message}')
        if reason == "NotFound":
            return NotFound(message)
        return Invalid(info.name, name, [message])

    def _holds(self, clause: A.Deny | A.Mutate, cond: A.Expr, env: dict, obj: dict, values: dict[tuple, str | tuple],
               stored: _Stored | None = None) -> bool:
        """Whether a deny's or a mutation's `when` holds of `obj`: one that reads only its object
        is judged once for the values at the paths of fields it reads (_judged; `values`: their
        text by path, as made so far for this `obj`). A field that keeps its value as `stored` is
        named by its stored text, which is in the map's own order too (key order, as decoded),
        less the escapes of what is not ASCII: a text names the value it decodes to, whichever
        encoder wrote it."""
        judging = self._verdicts.get(id(clause))
        if judging is None:
            return self._admission.eval(cond, env) is True
        verdicts, one = judging
        if one is not None:
            key = values.get(one)
            if key is None:
                key = values[one] = _text_at(obj, one, stored)
        else:
            parts = []
            for path, loose in self._judged_by[id(clause)]:
                text = values.get(path)
                if text is None:
                    text = values[path] = _text_at(obj, path, stored)
                parts.append(text)
                if loose:
                    parts.append(repr(obj.get(path[0])))
            key = tuple(parts)
        verdict = verdicts.get(key)
        if verdict is None:
            if self._verdicts_kept >= 100_000:
                for kept, _ in self._verdicts.values():
                    kept.clear()
                self._verdicts_kept = 0
            verdict = verdicts[key] = self._admission.eval(cond, env) is True
            self._verdicts_kept += 1
        return verdict

    def _check_schema(self, info: KindInfo, obj: dict, not_kept: list[str] | None = None) -> None:
        causes = self._validate(info, obj, not_kept)
        if causes:
            raise Invalid(info.name, obj["name"], causes)

    # -- mutating admission

    def _mutate(self, info: KindInfo, obj: dict, values: dict[tuple, str | tuple] | None = None,
                stored: _Stored | None = None) -> dict:
        """The object as the kind's mutations leave it, applied in declaration order, each to the
        object as the ones before it left it; `obj` itself when none applies. Each mutation's
        `when` should stop holding once it has applied, as every update passes them again. The
        fields they set are defaulted and validated again, as Kubernetes does with what a webhook
        patched."""
        touched: dict = {}
        if values is None:
            values = {}
        for policy, m in self._mutations.get(info.name, ()):
            try:
                mutated = self._apply_mutation(info, m, obj, touched, values, stored)
            except EvalError as e:
                raise _mutation_failed(policy, info, obj, e) from None
            if mutated is not obj:
                values.clear()  # the text of the fields as they were
                obj = mutated
        if touched:  # what the mutations made of the fields they set, once all have run
            set_fields = {f: obj.get(f) for f in touched}
            if not self._schema.values_valid(touched.values(), set_fields):
                causes: list[str] = []
                _check_fields(self.program, touched, set_fields, "", causes)
                if causes:
                    raise Invalid(info.name, obj["name"], causes)
        return obj

    def _apply_mutation(self, info: KindInfo, m: A.Mutate, obj: dict, touched: dict, values: dict[tuple, str | tuple],
                        stored: _Stored | None) -> dict:
        var = m.source.var
        if not self._holds(m, m.cond, {var: obj}, obj, values, stored):
            return obj
        for s in m.sets:  # each sees the ones before it
            obj = assign(obj, s.path[1:], self._admission.eval(s.value, {var: obj}))
        sets = self._sets.get(id(m))  # the checker knows them all; `m` lives as long as the program
        if sets is None:
            sets = self._sets[id(m)] = {s.path[1]: info.fields[s.path[1]] for s in m.sets}
        touched.update(sets)
        return self._default_fields(sets, obj)  # the next mutation sees the records it brought in defaulted

    # -- defaulting

    def _default_fields(self, fields: dict, obj: dict) -> dict:
        return self._schema.default_fields(fields, obj)

    # -- validation

    def _validate(self, info: KindInfo, obj: dict, not_kept: list[str] | None = None) -> list[str]:
        """What is wrong with `obj`. With `not_kept`, it holds the very values of an admitted
        object but in those fields (`_not_kept`), which alone are validated."""
        causes: list[str] = []
        for field in ("name", "namespace"):
            value = obj[field]
            if value is None or not_kept is not None and field not in not_kept:
                continue
            if not isinstance(value, str) or not valid_name(value):
                causes.append(
                    f"{field}: Invalid value: {_show(value)}: a lowercase RFC 1123 subdomain must consist of "
                    "lower case alphanumeric characters, '-' or '.', and must start and end with an "
                    "alphanumeric character (e.g. 'example.com')")
        managed = obj.get("managedBy")
        if managed is not None and not isinstance(managed, str):
            causes.append(f"managedBy: Invalid value: {_show(managed)}: must be of type string")
        if not self._schema.fields_valid(info.fields, obj, meta=True, not_kept=not_kept):
            _check_fields(self.program, info.fields, obj, "", causes, set(META))
        return causes

    # -- RBAC

    def _authorize(self, who: Identity, verb: str, info: KindInfo, namespace: str | None, name: str | None):
        if who.kind == "admin" or self._rbac is None or not self.rbac_enabled:
            return
        if self._rbac.allows(who, verb, info, namespace):
            return
        resource = self.resource(info)
        subject = f'{resource} "{name}"' if name is not None else resource
        scope = f'in the namespace "{namespace}"' if namespace is not None else "at the cluster scope"
        raise Forbidden(f'{subject} is forbidden: User "{who.name}" cannot {verb} resource "{resource}" {scope}')

    def allows(self, who: Identity, verb: str, kind: str, namespace: str | None = None) -> bool:
        """Would RBAC let `who` do `verb` on `kind` in `namespace` (None: every
        namespace, or a cluster-scoped kind)?"""
        info = self.kind_info(kind)
        try:
            self._authorize(who, verb, info, None if info.cluster else namespace, None)
        except Forbidden:
            return False
        return True

    def _not_found(self, info: KindInfo, name: str) -> NotFound:
        return NotFound(f'{self.resource(info)} "{name}" not found')

    def _conflict(self, info: KindInfo, name: str) -> Conflict:
        return Conflict(f'Operation cannot be fulfilled on {self.resource(info)} "{name}": the object has been '
                        "modified; please apply your changes to the latest version and try again")


def _mutation_failed(policy: A.PolicyDecl, info: KindInfo, obj: dict, e: EvalError) -> APIError:
    """As Kubernetes answers for an admission webhook that fails (500 InternalError), pointing at
    the expression that could not be evaluated."""
    cause = e.diagnostics[0]
    return APIError(f'Internal error occurred: admission policy "{policy.message}" could not mutate '
                    f'{info.name} "{obj["name"]}": {cause.message}',
                    hint=cause.hint or f"narrow the mutation's `when` to the {info.name}s it can change",
                    span=cause.span)


def _expired(e: Compacted) -> Expired:
    return Expired(f"too old resource version: {e.requested} ({e.compact_revision})",
                   hint="list again and watch from the list's revision")


class APIWatcher:
    """Store events under one kind (and namespace) as WatchEvents. An object this server wrote is
    handed over rather than decoded (_Stored): its top level is the event's own, but its values
    are shared with the server and with the object's versions before and after, so a watcher
    changes a copy, never a value in place, as client-go asks of the readers of its caches."""

    def __init__(self, watcher, store: Store | None = None, prefix: str = "",
                 stored: dict[str, _Stored] | None = None):
        self._w = watcher
        self._store = store
        self._prefix = prefix
        self._stored = stored if stored is not None else {}  # the server's, for objects it need not decode
        self._quiet = 0  # a revision through which the store holds no event for it not yet returned

    def skip(self, revision: int) -> None:
        """Take note that the store holds no event for this watch through `revision` that it has
        not returned, as an informer knows from `APIServer.written_since`: polling can wait,
        even past a compaction of that stretch of history."""
        self._quiet = revision
        self._w.skip(revision)

    @property
    def next_revision(self) -> int:
        return self._w.next_revision

    def poll(self) -> list[WatchEvent]:
        try:
            events = self._w.poll()
        except Compacted as e:
            if self._store is None or e.compact_revision > self._quiet + 1:
                raise _expired(e) from None
            # Only what it had no event in is gone: a watch from the compaction on misses nothing.
            self._w = self._store.watch(self._prefix, e.compact_revision)
            events = self._w.poll()
        out = []
        for ev in events:
            if ev.type == "DELETE":
                prev, _ = self._object(ev.prev_kv)
                obj = dict(prev)
                obj["resourceVersion"] = ev.kv.mod_revision
                out.append(WatchEvent("DELETED", obj, prev))
            else:
                obj, stored = self._object(ev.kv)
                if stored is None:
                    out.append(WatchEvent("ADDED" if ev.prev_kv is None else "MODIFIED", obj, ev.prev_kv, ev.kv.value))
                else:
                    out.append(WatchEvent("ADDED" if ev.prev_kv is None else "MODIFIED", obj, ev.prev_kv, ev.kv.value,
                                          stored.text, stored.since))
        return out

    def _object(self, kv) -> tuple[dict, _Stored | None]:
        """decode_object(kv): the server's own object for those bytes where it has it, a top level
        of the watcher's own around values no one changes, with what it wrote (the texts it made of
        its fields, what an update kept: _Stored); else a decoding, with none."""
        stored = self._stored.get(kv.key)
        if stored is not None and stored.holds(kv):
            return dict(stored.object), stored
        return decode_object(kv), None

    def __iter__(self) -> Iterator[WatchEvent]:
        return iter(self.poll())

    def cancel(self) -> None:
        self._w.cancel()


# ---- schema validation ----------------------------------------------------------------


def _show(v) -> str:
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, Fraction):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, dict | list):
        return "{…}" if isinstance(v, dict) else "[…]"
    return str(v)


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def _check_fields(program: Program, fields: dict, obj: dict, path: str, causes: list[str],
                  extra: set[str] = frozenset()) -> None:
    for key in obj:
        if key not in fields and key not in extra:
            guess = closest(key, fields) if isinstance(key, str) else None
            hint = f'; did you mean "{guess}"?' if guess else ""
            causes.append(f"{_join(path, str(key))}: Unsupported value: field not declared in schema{hint}")
    for f in fields.values():
        value = obj.get(f.name)
        where = _join(path, f.name)
        if value is None:
            if not isinstance(f.type, OptT):
                causes.append(f"{where}: Required value")
            continue
        _check_value(program, f.type, value, where, causes)


_NUMBER_TYPES = {
    "int": (int,),
    "float": (int, float),
    "quantity": (int, Fraction),
    "duration": (int, Fraction),
}


def _check_value(program: Program, t: Type, value, path: str, causes: list[str]) -> None:
    if isinstance(t, OptT):
        if value is not None:
            _check_value(program, t.inner, value, path, causes)
        return
    if value is None:
        causes.append(f"{path}: Required value")
        return
    if t == ANY:
        found = stray_in(value)
        if found is not None:
            keys, wrong, part = found
            where = path + "".join(f"[{k}]" for k in keys)
            if wrong == "number":
                _number_shaped(where, causes)
            elif wrong == "key":
                causes.append(f"{where}: Invalid value: {_show(part)}: map keys must be strings")
            else:
                causes.append(f"{where}: Invalid value: {type(part).__name__}: must be none, a bool, a number, "
                              "a string, a list or a map")
        return
    if isinstance(t, Prim):
        ok = _prim_ok(t.name, value)
        if ok is True:
            return
        causes.append(f"{path}: Invalid value: {_show(value)}: {ok or 'must be of type ' + t.name}")
        return
    if isinstance(t, RefT):
        if not isinstance(value, str):
            causes.append(f"{path}: Invalid value: {_show(value)}: must be the name of a {t.kind}, a string")
        return
    if isinstance(t, ListT):
        if not isinstance(value, list):
            causes.append(f"{path}: Invalid value: {_show(value)}: must be of type {t}")
            return
        for i, x in enumerate(value):
            _check_value(program, t.elem, x, f"{path}[{i}]", causes)
        return
    if isinstance(t, MapT):
        if not isinstance(value, dict):
            causes.append(f"{path}: Invalid value: {_show(value)}: must be of type {t}")
            return
        if number_shaped(value):
            _number_shaped(path, causes)
        for k, x in value.items():
            if not isinstance(k, str):
                causes.append(f"{path}: Invalid value: {_show(k)}: map keys must be strings")
            else:
                _check_value(program, t.value, x, f"{path}[{k}]", causes)
        return
    if isinstance(t, RecordT | KindT):
        if not isinstance(value, dict):
            causes.append(f"{path}: Invalid value: {_show(value)}: must be of type {t}")
            return
        decl = program.records.get(t.name) or program.kinds.get(t.name)
        if decl is not None:
            _check_fields(program, decl.fields, value, path, causes)
        return


def _number_shaped(path: str, causes: list[str]) -> None:
    causes.append(f'{path}: Invalid value: {{…}}: a map whose only key is "$frac" is how the store writes an '
                  "exact number, and would be read back as one: use another key")


def _prim_ok(name: str, value) -> bool | str:
    """True, or why not (an empty string: the plain type message)."""
    if isinstance(value, bool):
        return name == "bool" or ""
    if name == "bool":
        return ""
    if name in _NUMBER_TYPES:
        return isinstance(value, _NUMBER_TYPES[name]) or ""
    if not isinstance(value, str):
        return ""
    if name == "string":
        return True
    if name == "ip":
        try:
            ipaddress.ip_address(value)
            return True
        except ValueError:
            return "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
    if name == "cidr":
        try:
            if "/" not in value:
                raise ValueError(value)
            ipaddress.ip_network(value, strict=False)
            return True
        except ValueError:
            return "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
    return ""


# The IPv4 addresses ipaddress.ip_address takes in dotted-quad form: decimal octets up to 255, no
# leading zeros (ASCII digits: `\d` would take other scripts' digits, which it refuses).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")

_LEAF_TYPES = {
    "int": (int,),
    "float": (int, float),
    "quantity": (int, Fraction),
    "duration": (int, Fraction),
    "bool": (bool,),
    "string": (str,),
}


def _creates_only(deny: A.Deny) -> bool:
    """Whether a deny holds of a create alone: its `when` starts `x.resourceVersion == none and`,
    the idiom of a policy that would name the operation (rules/admission.konv), which an update's
    object fails before anything else is read: it has its resourceVersion, which no mutation may
    set."""
    cond = deny.cond
    while isinstance(cond, A.Binary) and cond.op == "and":
        cond = cond.left
    return (isinstance(cond, A.Binary) and cond.op == "==" and isinstance(cond.right, A.NoneLit)
            and isinstance(cond.left, A.Attr) and cond.left.name == "resourceVersion"
            and isinstance(cond.left.obj, A.Name) and cond.left.obj.id == deny.source.var)


def _judged(program: Program, reads: Reads, info: KindInfo, var: str,
            cond: A.Expr) -> tuple[tuple[tuple[str, ...], bool], ...] | None:
    """The paths of fields the verdicts of a pure `when` over objects of `info` bound to `var`
    are kept by (_paths_read, else its fields as Reads follows them into the defs it hands the
    object to), each with whether a value of `any` type may sit in its field, where values its
    JSON text names alike differ (a Fraction and a map shaped like its encoding; keys 1 and "1"):
    such a path is named by its field's repr too. None where it uses the object whole."""
    paths = _paths_read(var, cond)
    if paths is None:
        fields = reads.fields(var, cond)
        if fields is None:
            return None
        paths = {(f,) for f in fields}
    return tuple((p, p[0] in info.fields and program.may_hold(info.fields[p[0]].type, _ANY)) for p in sorted(paths))


def _paths_read(var: str, e) -> set[tuple[str, ...]] | None:
    """The paths of fields `e` reads of the object bound to `var`: its chains of attributes on it
    (`x.template.labels`: ("template", "labels")), less those within another; None where it uses
    the object otherwise (whole, or handed to a def). Its value is told by the values at those
    paths alone, where it is pure: a def it calls is given those values, not the object."""
    paths: set[tuple[str, ...]] = set()
    pending = [e]
    while pending:
        n = pending.pop()
        if isinstance(n, list | tuple):
            pending.extend(n)
        elif isinstance(n, A.Attr):
            chain = []
            while isinstance(n, A.Attr):
                chain.append(n.name)
                n = n.obj
            if isinstance(n, A.Name) and n.id == var:
                paths.add(tuple(reversed(chain)))
            else:
                pending.append(n)
        elif isinstance(n, A.Name):
            if n.id == var:
                return None
        elif attrs.has(type(n)) and not isinstance(n, Span):
            pending.extend(getattr(n, f.name) for f in attrs.fields(type(n)))
    return {p for p in paths if not any(p[:k] in paths for k in range(1, len(p)))}


def _text_at(obj: dict, path: tuple[str, ...], stored: _Stored | None) -> str | tuple[str]:
    """How a verdict's key names the value at a path of fields of `obj` (_holds), in the map's
    own order (a policy may print a map, and str() keeps its order). A field's value by its
    SORTED_JSON text where its maps are in key order: a field that keeps its value as `stored`
    by its stored text, another by the text `_encode_fields` then takes over rather than make
    again (`_admit`); one whose maps are not, by its text in that order, as a 1-tuple, which no
    text equals. A path within a field as `_path_text` names it."""
    if len(path) > 1:
        return _path_text(obj, path)
    value = obj.get(path[0])
    text = stored.text(path[0], value) if stored is not None else None
    if text is not None:
        return text
    return SORTED_JSON(value) if _in_key_order(value) else (_TEXT(value),)


def _in_key_order(value) -> bool:
    """Whether `value` is what decoding its SORTED_JSON text gives: of the types decoding makes
    alone, every map's keys strings, in order, and no map shaped like the text of an exact number
    (number_shaped). Then that text is its text in its own order too, and names it alone."""
    t = type(value)
    if t is dict:
        keys = list(value)
        try:
            "".join(keys)
        except TypeError:
            return False  # a key that is not a string: no value of the language, written as one
        if keys != sorted(keys) or number_shaped(value):
            return False
        for x in value.values():
            if type(x) not in _AS_DECODED and not _in_key_order(x):
                return False
    elif t is list:
        for x in value:
            if type(x) not in _AS_DECODED and not _in_key_order(x):
                return False
    elif t not in _AS_DECODED:
        return False  # a tuple or a map of another type, which its text would name as a list or a map
    return True


def _path_text(obj: dict, path: tuple[str, ...]) -> str | tuple[str]:
    """How a verdict's key names the value at a path of fields of `obj` (_holds): its text, in
    its maps' own order; where there is none (a step is not a map's key), the text of its first
    field, as a 1-tuple, which no text equals."""
    value = obj.get(path[0])
    for name in path[1:]:
        if type(value) is not dict or name not in value:
            return (_TEXT(obj.get(path[0])),)
        value = value[name]
    return _TEXT(value)


_ANY = frozenset({ANY})


class _Schema:
    """The declared types compiled once into defaulters and validity tests, which every write runs
    on every field: walking a type's declaration at each level of each value cost more than the
    values themselves.

    A validity test holds only of a value `_check_value` finds nothing wrong with; it may fail of
    one that `_check_value` passes (an int or dict subclass), which then takes that slower walk:
    the walk alone words the causes, in its order."""

    def __init__(self, program: Program, defaults: Evaluator):
        self.program = program
        self._defaults = defaults
        self._tests: dict[Type, Callable[[Any], bool]] = {}
        self._fills: dict[Type, Callable[[Any], Any] | None] = {}  # None: the value is its own default
        self._fields: dict[int, _Fields] = {}  # by id(fields): a _Fields keeps its dict, so the id stays its own
        self._addresses: dict[tuple[str, str], bool] = {}  # (ip or cidr, text) → valid, up to a bound
        # (id of a field's type, the text of a value of it an update admitted as given), up to a
        # bound: by id, as hashing a type walks it, and the types live as long as the program
        self._as_given: set[tuple[int, str]] = set()

    def __deepcopy__(self, memo: dict) -> "_Schema":
        """A copy (a forked run's) compiles afresh: the compiled closures hold this schema's own
        defaults evaluator, whose clock is the original run's."""
        return _Schema(memo.get(id(self.program), self.program), copy.deepcopy(self._defaults, memo))

    # -- per field

    def _plan(self, fields: dict) -> _Fields:
        """The plan of a fields dict, made when first asked for. `default_fields` and
        `fields_valid` look a made one up themselves: they run for every record of every write,
        and the call cost more than the lookup."""
        plan = self._fields.get(id(fields))
        if plan is None or plan.fields is not fields:
            optional = {name: isinstance(f.type, OptT) for name, f in fields.items()}
            fills = [(name, self.fill(f.type)) for name, f in fields.items()]
            leaves = {name: _leaf_types(f.type.inner if optional[name] else f.type) for name, f in fields.items()}
            defaults = tuple((name, optional[name], fields[name].default, fill) for name, fill in fills)
            leaf_tests = tuple((name, types | {type(None)} if optional[name] else types)
                               for name, types in leaves.items() if types is not None)
            tests = tuple((name, optional[name], self.test(f.type)) for name, f in fields.items()
                          if leaves[name] is None)
            plan = self._fields[id(fields)] = _Fields(
                fields, frozenset(fields), frozenset(fields) | set(META), defaults,
                tuple(name for name, opt in optional.items() if not opt),
                tuple((name, fill) for name, fill in fills if fill is not None),
                leaf_tests, tests,
                {row[0]: row for row in defaults},
                {**{name: (types, False, None) for name, types in leaf_tests},
                 **{name: (None, opt, test) for name, opt, test in tests}})
        return plan

    def default_fields(self, fields: dict, obj: dict, not_kept: list[str] | None = None) -> dict:
        """`obj` with every field present: a missing one (or a required one that is none) takes its
        default or none, and records within take theirs. With `not_kept`, `obj` holds the very
        values of an admitted object but in those fields (`_not_kept`): the others are left as
        they are, for defaulting them again would change nothing."""
        plan = self._fields.get(id(fields))
        if plan is None or plan.fields is not fields:
            plan = self._plan(fields)
        out = dict(obj)
        if not_kept is not None:
            by_name = plan.by_name
            defaults = [by_name[name] for name in not_kept if name in by_name]  # not metadata
        elif out.keys() >= plan.names and type(None) not in set(map(type, map(out.__getitem__, plan.required))):
            for name, fill in plan.fills:  # no field wants its default: only those within the values
                value = out[name]
                if value is not None:
                    out[name] = fill(value)
            return out
        else:
            defaults = plan.defaults
        for name, optional, default, fill in defaults:
            value = out.get(name)
            if value is None and (not optional or name not in out):
                if default is not None:
                    value = self._defaults.eval(default, {})
                out[name] = value
            if fill is not None and value is not None:
                out[name] = fill(value)
        return out

    def to_admit(self, fields: dict, obj: dict, names: list[str], texts: dict[str, str]) -> list[str]:
        """Of `names`, fields of `obj`, those to default and validate: not a map or list that is
        what decoding its SORTED_JSON text gives (`_in_key_order`) where that text names a value
        of its field's type admitted before as it was given (`note_admitted_as_given`), for what
        defaulting and validation make of a value depend on the value alone. Such a field's text
        goes to `texts`, as does that of each such map or list, for `note_admitted_as_given` and
        encoding: a pod started holds its containers anew, each update alike to the last pod's."""
        rest = []
        for name in names:
            value = obj[name]
            if (type(value) is list or type(value) is dict) and name in fields and _in_key_order(value):
                text = SORTED_JSON(value)
                if len(text) <= _Decodings.LONGEST:
                    texts[name] = text
                    if (id(fields[name].type), text) in self._as_given:
                        continue
            rest.append(name)
        return rest

    def note_admitted_as_given(self, fields: dict, given: dict, admitted: dict, checked: list[str],
                          texts: dict[str, str]) -> None:
        """Note the texts (`to_admit`) of the fields of `given`, defaulted and validated
        (`checked`) into `admitted`, whose values defaulting gave back as they were, equal; drop
        the others', which no longer name the values admitted."""
        kept = self._as_given
        for name in checked:
            text = texts.get(name)
            if text is not None:
                # Nothing filled in: the same text. (`==` says so, as a fill only adds what is
                # missing and copies maps and lists, never making a value an equal one of
                # another type: _compile_fill.)
                if admitted[name] == given[name]:
                    if len(kept) >= 100_000:
                        kept.clear()
                    kept.add((id(fields[name].type), text))
                else:
                    del texts[name]

    def fields_valid(self, fields: dict, obj: dict, meta: bool = False, not_kept: list[str] | None = None) -> bool:
        """Whether `_check_fields` would find nothing wrong with `obj` (True only if so); with
        `meta`, the object's metadata fields are allowed beside the declared ones. With `not_kept`,
        `obj` holds the very values of an admitted object but in those fields (`_not_kept`),
        which alone are tested: validity depends on the value alone."""
        plan = self._fields.get(id(fields))
        if plan is None or plan.fields is not fields:
            plan = self._plan(fields)
        if not_kept is not None:
            checks = plan.checks
            for name in not_kept:
                found = checks.get(name)
                if found is None:
                    continue  # metadata
                types, optional, test = found
                value = obj[name]
                if types is not None:
                    if type(value) not in types:
                        return False
                elif value is None:
                    if not optional:
                        return False
                elif not test(value):
                    return False
            return True
        if not obj.keys() <= (plan.with_meta if meta else plan.names):
            return False
        get = obj.get
        for name, types in plan.leaves:
            if type(get(name)) not in types:
                return False
        for name, optional, test in plan.tests:
            value = get(name)
            if value is None:
                if not optional:
                    return False
            elif not test(value):
                return False
        return True

    def values_valid(self, fields, values: dict) -> bool:
        """As `fields_valid`, of some fields (FieldInfos) of an object."""
        for f in fields:
            value = values.get(f.name)
            if value is None:
                if not isinstance(f.type, OptT):
                    return False
            elif not self.test(f.type)(value):
                return False
        return True

    # -- per type

    def fill(self, t: Type) -> Callable[[Any], Any] | None:
        """The defaulter of values of type `t` (none stays none), or None where a value is its own."""
        if t not in self._fills:
            self._fills[t] = self._compile_fill(t)  # a record's fields are compiled when first met
        return self._fills[t]

    def _compile_fill(self, t: Type) -> Callable[[Any], Any] | None:
        # A fill adds the fields a record lacks and copies maps and lists; it never turns a value
        # into an equal one of another type (1 into 1.0): note_admitted_as_given relies on it.
        if isinstance(t, OptT):
            return self.fill(t.inner)
        if isinstance(t, RecordT):
            rec = self.program.records.get(t.name)
            if rec is None:
                name = t.name

                def missing(v):
                    if isinstance(v, dict):
                        raise KeyError(name)
                    return v
                return missing
            fields, default_fields = rec.fields, self.default_fields
            return lambda v: default_fields(fields, v) if isinstance(v, dict) else v
        if isinstance(t, ListT):
            elem = self.fill(t.elem)
            if elem is None:
                return lambda v: list(v) if isinstance(v, list) else v
            return lambda v: [elem(x) for x in v] if isinstance(v, list) else v
        if isinstance(t, MapT):
            item = self.fill(t.value)
            if item is None:
                return lambda v: ((dict(v) if type(v) is dict else {k: x for k, x in v.items()})
                                  if isinstance(v, dict) else v)
            return lambda v: {k: item(x) for k, x in v.items()} if isinstance(v, dict) else v
        return None

    def test(self, t: Type) -> Callable[[Any], bool]:
        """A validity test of a value of type `t`; see the class."""
        test = self._tests.get(t)
        if test is None:
            test = self._tests[t] = self._compile_test(t)  # a record's fields are compiled when first met
        return test

    def _compile_test(self, t: Type) -> Callable[[Any], bool]:
        if isinstance(t, OptT):
            inner = self.test(t.inner)
            return lambda v: v is None or inner(v)
        if t == ANY:
            return lambda v: v is not None and stray_in(v) is None
        leaf = _leaf_types(t)
        if leaf is not None:
            return lambda v: type(v) in leaf
        if isinstance(t, Prim):
            if t.name in ("ip", "cidr"):
                name, addresses = t.name, self._addresses

                def address(v):
                    if type(v) is not str:
                        return False
                    if name == "ip" and _IPV4.fullmatch(v):  # most addresses, each new (a pod's): told without ipaddress
                        return True
                    ok = addresses.get((name, v))
                    if ok is None:
                        if len(addresses) >= 100_000:
                            addresses.clear()
                        ok = addresses[(name, v)] = _prim_ok(name, v) is True
                    return ok
                return address
            return lambda v: False  # a type no value has: `_check_value` says so
        if isinstance(t, ListT):
            leaf = _leaf_types(t.elem)
            if leaf is not None:
                return lambda v: type(v) is list and all([type(x) in leaf for x in v])
            elem = self.test(t.elem)

            def each(v):
                if type(v) is not list:
                    return False
                for x in v:
                    if not elem(x):
                        return False
                return True
            return each
        if isinstance(t, MapT):
            leaf = _leaf_types(t.value)
            if leaf is not None:
                return lambda v: (type(v) is dict and all([type(k) is str and type(x) in leaf for k, x in v.items()])
                                  and not number_shaped(v))
            item = self.test(t.value)

            def entries(v):
                if type(v) is not dict or number_shaped(v):
                    return False
                for k, x in v.items():
                    if type(k) is not str or not item(x):
                        return False
                return True
            return entries
        if isinstance(t, RecordT | KindT):
            decl = self.program.records.get(t.name) or self.program.kinds.get(t.name)
            if decl is None:
                return lambda v: type(v) is dict
            fields, valid = decl.fields, self.fields_valid
            return lambda v: type(v) is dict and valid(fields, v)
        return lambda v: False


@attrs.frozen(slots=True)
class _Fields:
    """What `_Schema` runs over the fields of a kind or record."""

    fields: dict  # the FieldInfos by name
    names: frozenset
    with_meta: frozenset  # and the object metadata
    defaults: tuple  # per field: (name, optional, its default expression or None, its values' defaulter or None)
    required: tuple  # the names of the fields that are not optional
    fills: tuple  # (name, its values' defaulter) of the fields whose values have defaults within
    leaves: tuple  # (name, the Python types of its valid values) where they tell
    tests: tuple  # (name, optional, validity test) for the rest
    by_name: dict  # name → its row of `defaults`
    checks: dict  # name → (its valid values' types, as in `leaves`, False, None) or (None, optional, test)


def _leaf_types(t: Type) -> frozenset | None:
    """The Python types a valid value of `t` has, for a type checked by its value's type alone."""
    if isinstance(t, RefT):
        return frozenset((str,))
    if isinstance(t, Prim) and t.name in _LEAF_TYPES:
        return frozenset(_LEAF_TYPES[t.name])
    return None


# ---- RBAC -------------------------------------------------------------------------------


class _RBACCache:
    """Bindings, roles and users, reread only when a watch on their kinds
    says something changed."""

    def __init__(self, api: APIServer):
        self._api = api
        self._infos = [api.program.kinds[k] for k in RBAC_KINDS if k in api.program.kinds]
        self._watchers: list | None = None
        self._objects: dict[str, list[dict]] = {}
        self._users: dict[str, dict] = {}
        self._revision = 0  # the store's when the watchers were last polled
        self._decisions: dict[tuple, bool] = {}  # (who, verb, kind, namespace) → allowed, for these objects

    def _refresh(self) -> None:
        api = self._api
        store = api.store
        stale = self._watchers is None
        if not stale:
            if api.rbac_unwritten_since(self._revision):
                return  # the watchers have nothing: every write since was another kind's
            for w in self._watchers:
                try:
                    if w.poll():
                        stale = True
                except Compacted:
                    stale = True
        self._revision = store.revision
        if not stale:
            return
        self._decisions.clear()
        for w in self._watchers or ():
            w.cancel()
        self._objects = {}
        watchers = []
        for info in self._infos:
            prefix = kind_prefix(self._api.resource(info))
            r = store.range(prefix, prefix=True)
            self._objects[info.name] = [decode_object(kv) for kv in r.kvs]
            watchers.append(store.watch(prefix, r.revision + 1))
        self._watchers = watchers
        users: dict[str, dict] = {}
        for u in self._objects.get("User", ()):
            if u.get("token"):
                users.setdefault(u["token"], u)
        self._users = users

    def users(self) -> dict[str, dict]:
        self._refresh()
        return self._users

    def allows(self, who: Identity, verb: str, info: KindInfo, namespace: str | None) -> bool:
        self._refresh()
        key = (who, verb, info.name, namespace)
        allowed = self._decisions.get(key)
        if allowed is None:
            allowed = self._decisions[key] = self._allows(who, verb, info, namespace)
        return allowed

    def _allows(self, who: Identity, verb: str, info: KindInfo, namespace: str | None) -> bool:
        crbs = self._objects.get("ClusterRoleBinding", ())
        rbs = self._objects.get("RoleBinding", ())
        if not crbs and not rbs:
            return True  # RBAC starts enforcing with the first binding
        cluster_roles = {r["name"]: r for r in self._objects.get("ClusterRole", ())}
        roles = {(r["namespace"], r["name"]): r for r in self._objects.get("Role", ())}
        for b in crbs:
            if _subject_matches(who, b.get("subjects") or ()):
                if _grants(cluster_roles.get(b.get("role")), verb, info):
                    return True
        if namespace is None or info.cluster:
            return False  # only a ClusterRoleBinding grants across namespaces or on cluster-scoped kinds
        for b in rbs:
            if b["namespace"] != namespace or not _subject_matches(who, b.get("subjects") or ()):
                continue
            if b.get("roleKind") == "ClusterRole":
                role = cluster_roles.get(b.get("role"))
            else:
                role = roles.get((namespace, b.get("role")))
            if _grants(role, verb, info):
                return True
        return False


def _subject_matches(who: Identity, subjects) -> bool:
    """A subject is a name (of a user, a controller or a group), or
    `user:NAME`, `controller:NAME`, `group:NAME`."""
    for s in subjects:
        kind, sep, name = s.partition(":")
        if sep and kind in ("user", "controller"):
            if who.kind == kind and who.name == name:
                return True
        elif sep and kind == "group":
            if name in who.groups:
                return True
        elif s == who.name or s in who.groups:
            return True
    return False


def _grants(role: dict | None, verb: str, info: KindInfo) -> bool:
    if role is None:
        return False
    names = {"*", info.name, info.name.lower(), resource_name(info.name)}
    for rule in role.get("rules") or ():
        verbs = rule.get("verbs") or ()
        if verb in verbs or "*" in verbs:
            if any(k in names for k in rule.get("kinds") or ()):
                return True
    return False
