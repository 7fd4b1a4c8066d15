"""The abstract syntax tree of the Konverge language.

Every node is a frozen attrs class with slots and carries the `Span` of the
text it came from. Spans are left out of equality, so a tree parsed from the
formatted text of another tree compares equal to it.
"""

from __future__ import annotations

import functools
from typing import Union

import attrs

from .errors import Span, tuple_state

NO_SPAN = Span("<generated>", 0, 0, 0, 0)


def _span():
    return attrs.field(default=NO_SPAN, eq=False, repr=False, kw_only=True)


def walk(roots):
    """Every syntax node under `roots` (a node, or lists and tuples of them), depth first."""
    stack = [roots]
    field_names = _field_names
    while stack:
        n = stack.pop()
        if isinstance(n, (list, tuple)):
            stack.extend(n)
            continue
        names = field_names(type(n))
        if names is False:
            continue
        yield n
        stack.extend(getattr(n, name) for name in names)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...] | bool:
    """The names of a class's fields, in order, where it is a node (an attrs class but Span), else
    False: asked of attrs once per class rather than twice per node walked (the checker, the
    engine's analyses and the API server's start walk the rules' trees again and again)."""
    if not attrs.has(cls) or issubclass(cls, Span):
        return False
    return tuple(f.name for f in attrs.fields(cls))


def node(cls):
    return tuple_state(attrs.frozen(slots=True)(cls))


# ---- expressions -------------------------------------------------------------


@node
class Number:
    text: str  # kept as written: `3`, `1.50`
    span: Span = _span()


@node
class Unit:
    """A number with a unit suffix: a quantity (`250m`, `2Gi`) or a duration (`30s`, `5m`).

    `m` is milli for a quantity and minutes for a duration; the checker decides
    which from the type the context expects.
    """

    number: str
    suffix: str
    span: Span = _span()


@node
class String:
    value: str
    span: Span = _span()


@node
class Bool:
    value: bool
    span: Span = _span()


@node
class NoneLit:
    span: Span = _span()


@node
class IPLit:
    text: str
    span: Span = _span()


@node
class CIDRLit:
    text: str
    span: Span = _span()


@node
class Name:
    id: str
    span: Span = _span()


@node
class Attr:
    obj: Expr
    name: str
    span: Span = _span()


@node
class Index:
    obj: Expr
    index: Expr
    span: Span = _span()


@node
class Call:
    fn: str
    args: tuple[Expr, ...]
    span: Span = _span()


@node
class KindSource:
    """`pod p`: every object of a kind, bound to a variable."""

    kind: str
    var: str
    span: Span = _span()


@node
class ListSource:
    """`c in p.containers`: every element of a list (or key of a map)."""

    var: str
    iterable: Expr
    span: Span = _span()


Source = Union[KindSource, ListSource]


@node
class OrderKey:
    expr: Expr
    descending: bool = False
    span: Span = _span()


@node
class Comprehension:
    """`[e for s where c order by k]`; also the argument of `count(pod p where c)`.

    `element` is None in the query form, which yields the bound objects.
    """

    element: Expr | None
    source: Source
    where: Expr | None = None
    order: tuple[OrderKey, ...] = ()
    span: Span = _span()


@node
class ListLit:
    items: tuple[Expr, ...]
    span: Span = _span()


@node
class MapItem:
    key: str
    value: Expr
    span: Span = _span()


@node
class MapLit:
    items: tuple[MapItem, ...]
    span: Span = _span()


@node
class Unary:
    op: str  # "-" or "not"
    operand: Expr
    span: Span = _span()


@node
class Binary:
    op: str  # or and == != < <= > >= in "not in" + - * / %
    left: Expr
    right: Expr
    span: Span = _span()


@node
class IfElse:
    cond: Expr
    then: Expr
    otherwise: Expr
    span: Span = _span()


@node
class Quantifier:
    quantifier: str  # "forall" or "exists"
    source: Source
    where: Expr | None
    body: Expr
    span: Span = _span()


Expr = Union[
    Number, Unit, String, Bool, NoneLit, IPLit, CIDRLit, Name, Attr, Index, Call,
    Comprehension, ListLit, MapLit, Unary, Binary, IfElse, Quantifier,
]


# ---- schemas -------------------------------------------------------------------


@node
class TypeRef:
    name: str
    args: tuple[TypeRef, ...] = ()
    optional: bool = False
    span: Span = _span()


@node
class FieldDecl:
    name: str
    type: TypeRef
    default: Expr | None = None
    span: Span = _span()


@node
class KindDecl:
    name: str
    fields: tuple[FieldDecl, ...]
    cluster: bool = False  # cluster-scoped kinds have no namespace
    span: Span = _span()


@node
class RecordDecl:
    name: str
    fields: tuple[FieldDecl, ...]
    span: Span = _span()


# ---- objects -------------------------------------------------------------------


@node
class FieldEntry:
    """`key: value`"""

    key: str
    value: Expr
    span: Span = _span()


@node
class BlockEntry:
    """`key { entries }`: a nested record or a map."""

    key: str
    entries: tuple[Entry, ...]
    span: Span = _span()


@node
class ItemEntry:
    """`container nginx { entries }`: a named element of the list field `containers`."""

    key: str
    name: str
    entries: tuple[Entry, ...]
    span: Span = _span()


Entry = Union[FieldEntry, BlockEntry, ItemEntry]


@node
class ObjectDecl:
    kind: str
    name: str
    namespace: str | None
    entries: tuple[Entry, ...]
    span: Span = _span()


# ---- controllers ------------------------------------------------------------------


@node
class ForClause:
    source: Source
    span: Span = _span()


@node
class LetClause:
    name: str
    value: Expr
    span: Span = _span()


@node
class WhereClause:
    cond: Expr
    span: Span = _span()


Clause = Union[ForClause, LetClause, WhereClause]


@node
class SetAction:
    path: tuple[str, ...]  # variable, then fields
    value: Expr
    span: Span = _span()


@node
class CreateAction:
    """`create KIND name { … }`, or with `ensure`, an object owned by the rule
    instance: kept equal to the body while the instance holds, deleted when it
    no longer does."""

    kind: str
    name: Expr
    entries: tuple[Entry, ...]
    ensure: bool = False
    span: Span = _span()


@node
class DeleteAction:
    target: Expr
    span: Span = _span()


Action = Union[SetAction, CreateAction, DeleteAction]


@node
class Pick:
    source: KindSource
    where: Expr | None
    order: tuple[OrderKey, ...]
    then: tuple[Action, ...]
    otherwise: tuple[Action, ...] = ()
    span: Span = _span()


@node
class Rule:
    name: str
    clauses: tuple[Clause, ...]
    actions: tuple[Action, ...] = ()  # empty when the rule ends in a pick
    pick: Pick | None = None
    # Fires, in the fixed order, only when no rule that is not batched wants to write.
    batched: bool = False
    span: Span = _span()


@node
class ControllerDecl:
    name: str
    rules: tuple[Rule, ...]
    replace: bool = False
    account: str | None = None  # the identity it writes as; defaults to its name
    span: Span = _span()


@node
class Param:
    name: str
    type: TypeRef | None = None
    span: Span = _span()


@node
class DefDecl:
    name: str
    params: tuple[Param, ...]
    returns: TypeRef | None
    body: Expr
    span: Span = _span()


# ---- admission, faults, scenarios, properties -----------------------------------


@node
class Deny:
    """`deny item i when c because m as Forbidden`: validating admission. The reason (the API's
    Status reason, DENY_REASONS) is Invalid when none is given."""

    source: KindSource
    cond: Expr
    because: Expr | None = None
    reason: str | None = None
    reason_span: Span = _span()
    span: Span = _span()


# What a deny may answer: Invalid (422, `Item "i" is invalid: …`), Forbidden (403, `items "i"
# is forbidden: …`), or NotFound (404, the message alone).
DENY_REASONS = ("Invalid", "Forbidden", "NotFound")


@node
class Mutate:
    """`mutate pod p when c set p.f = e …`: mutating admission. On every create and update of
    the kind, while `when` holds, the API server applies the sets in order, each evaluated
    against the object as changed so far."""

    source: KindSource
    cond: Expr
    sets: tuple[SetAction, ...]
    span: Span = _span()


@node
class PolicyDecl:
    message: str
    clauses: tuple[Deny | Mutate, ...]  # as written
    span: Span = _span()

    @property
    def denies(self) -> tuple[Deny, ...]:
        return tuple(c for c in self.clauses if isinstance(c, Deny))

    @property
    def mutations(self) -> tuple[Mutate, ...]:
        return tuple(c for c in self.clauses if isinstance(c, Mutate))


@node
class FaultDecl:
    name: str
    target: KindSource
    params: tuple[Param, ...]
    actions: tuple[Action, ...]
    span: Span = _span()


@node
class ObjRef:
    name: str
    namespace: str | None = None
    span: Span = _span()


@node
class EventArg:
    name: str
    value: Expr
    span: Span = _span()


@node
class FaultEvent:
    fault: str
    kind: str
    ref: ObjRef
    args: tuple[EventArg, ...] = ()
    span: Span = _span()


@node
class CreateEvent:
    kind: str
    name: str
    namespace: str | None
    entries: tuple[Entry, ...]
    span: Span = _span()


@node
class UpdateEvent:
    kind: str
    ref: ObjRef
    entries: tuple[Entry, ...]
    span: Span = _span()


@node
class DeleteEvent:
    kind: str
    ref: ObjRef
    span: Span = _span()


Event = Union[FaultEvent, CreateEvent, UpdateEvent, DeleteEvent]


@node
class At:
    time: Number | Unit
    event: Event
    span: Span = _span()


@node
class Expect:
    mode: str  # "eventually" or "always"
    cond: Expr
    within: Number | Unit | None = None
    span: Span = _span()


@node
class ScenarioDecl:
    name: str
    items: tuple[At | Expect, ...]
    span: Span = _span()


@node
class InvariantDecl:
    name: str
    cond: Expr
    at_rest: bool = False  # checked only where nothing is left to do, not after every step
    span: Span = _span()


@node
class Import:
    path: str
    span: Span = _span()


Decl = Union[
    Import, KindDecl, RecordDecl, ObjectDecl, ControllerDecl, DefDecl, PolicyDecl,
    FaultDecl, ScenarioDecl, InvariantDecl,
]


@node
class Comment:
    """A `#` comment, kept so that `fmt` can write it back."""

    text: str
    line: int
    trailing: bool  # code stands before it on its line


@node
class Module:
    path: str
    decls: tuple[Decl, ...]
    comments: tuple[Comment, ...] = attrs.field(default=(), eq=False)
    span: Span = _span()
