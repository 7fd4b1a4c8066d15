"""Hypothesis strategies for random, valid Konverge ASTs.

Valid means the grammar can write the tree down: identifiers are plain names
that are not keywords, numbers, quantities, IPs and CIDRs look like their
tokens, a query (`count(pod p where …)`, a Comprehension without an element)
appears only as the sole argument of a call, and so on. The trees need not
make sense to the checker (`1 + "a"` is fine); use them for syntax-level
promises such as round-tripping through the formatter.

    from tests.strategies import modules, exprs
"""

from __future__ import annotations

from hypothesis import strategies as st

from engine import ast as A
from engine.fastparse import KEYWORDS

__all__ = [
    "identifiers", "object_names", "keys", "strings", "numbers", "units", "ip_addresses",
    "cidrs", "literals", "kind_sources", "sources", "exprs", "type_refs", "field_decls",
    "kind_decls", "record_decls", "entries", "object_decls", "clauses", "set_actions", "actions",
    "picks", "rules", "controller_decls", "params", "def_decls", "denies", "mutations",
    "policy_decls", "fault_decls", "events", "scenario_items", "scenario_decls", "invariant_decls",
    "imports", "decls", "modules",
]

UNIT_SUFFIXES = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "ms", "m", "k", "M", "G", "T", "P", "E", "s", "h", "d")
BINARY_OPS = ("or", "and", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "+", "-", "*", "/", "%")

# ---- tokens ---------------------------------------------------------------------

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True).filter(
    lambda s: s not in KEYWORDS)
"""Names: `[A-Za-z_][A-Za-z0-9_]*`, never a keyword."""

strings = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
"""Any text (no lone surrogates): written with JSON escapes."""

object_names = st.one_of(
    st.from_regex(r"[a-z0-9]([-a-z0-9_.]{0,10}[a-z0-9])?", fullmatch=True),
    strings,
)
"""Kubernetes-style names, which print bare, or any string, which prints quoted."""

keys = st.one_of(identifiers, st.sampled_from(KEYWORDS), strings)
"""Map and entry keys: names, keywords and arbitrary strings (the last two print quoted)."""

_digits = st.from_regex(r"[0-9]{1,6}(\.[0-9]{1,3})?", fullmatch=True)
numbers = st.builds(A.Number, _digits)
units = st.builds(A.Unit, _digits, st.sampled_from(UNIT_SUFFIXES))
_octet = st.integers(0, 255).map(str)
_ip_text = st.tuples(_octet, _octet, _octet, _octet).map(".".join)
ip_addresses = st.builds(A.IPLit, _ip_text)
cidrs = st.builds(A.CIDRLit, st.tuples(_ip_text, st.integers(0, 32)).map(lambda t: f"{t[0]}/{t[1]}"))

literals = st.one_of(
    numbers, units, ip_addresses, cidrs,
    st.builds(A.String, strings),
    st.builds(A.Bool, st.booleans()),
    st.just(A.NoneLit()),
    st.builds(A.Name, identifiers),
)

# ---- expressions -----------------------------------------------------------------

kind_sources = st.builds(A.KindSource, identifiers, identifiers)


def _small(s, max_size=3):
    return st.lists(s, max_size=max_size).map(tuple)


def _compound(children):
    """Every expression form one level above `children`."""
    maybe = st.none() | children
    order = _small(st.builds(A.OrderKey, children, st.booleans()), 2)
    list_source = st.builds(A.ListSource, identifiers, children)
    source = st.one_of(kind_sources, list_source)
    comprehension = st.builds(A.Comprehension, children, source, maybe, order)
    query = st.builds(A.Comprehension, st.none(), kind_sources, maybe, st.just(()))
    return st.one_of(
        st.builds(A.Attr, children, identifiers),
        st.builds(A.Index, children, children),
        st.builds(A.Call, identifiers, _small(children)),
        st.builds(A.Call, identifiers, st.tuples(comprehension | query)),
        comprehension,
        st.builds(A.ListLit, _small(children)),
        st.builds(A.MapLit, _small(st.builds(A.MapItem, keys, children))),
        st.builds(A.Unary, st.sampled_from(("-", "not")), children),
        st.builds(A.Binary, st.sampled_from(BINARY_OPS), children, children),
        st.builds(A.IfElse, children, children, children),
        st.builds(A.Quantifier, st.sampled_from(("forall", "exists")), source, maybe, children),
    )


exprs = st.recursive(literals, _compound, max_leaves=12)
"""Expressions of every node type, nested a few levels."""

sources = st.one_of(kind_sources, st.builds(A.ListSource, identifiers, exprs))

# ---- schemas and objects ------------------------------------------------------------

type_refs = st.recursive(
    st.builds(A.TypeRef, identifiers, st.just(()), st.booleans()),
    lambda inner: st.builds(A.TypeRef, identifiers, st.lists(inner, min_size=1, max_size=2).map(tuple),
                            st.booleans()),
    max_leaves=4,
)
field_decls = st.builds(A.FieldDecl, identifiers, type_refs, st.none() | exprs)
kind_decls = st.builds(A.KindDecl, identifiers, _small(field_decls, 4), st.booleans())
record_decls = st.builds(A.RecordDecl, identifiers, _small(field_decls, 4))

entries = st.recursive(
    st.builds(A.FieldEntry, keys, exprs),
    lambda inner: st.one_of(
        st.builds(A.BlockEntry, keys, _small(inner, 4)),
        st.builds(A.ItemEntry, identifiers, object_names, _small(inner, 4)),
    ),
    max_leaves=6,
)
object_decls = st.builds(A.ObjectDecl, identifiers, object_names, st.none() | object_names,
                         _small(entries, 5))

# ---- controllers -------------------------------------------------------------------------

clauses = st.one_of(
    st.builds(A.ForClause, sources),
    st.builds(A.LetClause, identifiers, exprs),
    st.builds(A.WhereClause, exprs),
)
set_actions = st.builds(A.SetAction, st.lists(identifiers, min_size=2, max_size=3).map(tuple), exprs)
actions = st.one_of(
    set_actions,
    st.builds(A.CreateAction, identifiers, exprs, _small(entries), st.booleans()),
    st.builds(A.DeleteAction, exprs),
)
_some_actions = st.lists(actions, min_size=1, max_size=3).map(tuple)
picks = st.builds(
    A.Pick, kind_sources, st.none() | exprs,
    _small(st.builds(A.OrderKey, exprs, st.booleans()), 2),
    _some_actions, _small(actions, 2),
)
rules = st.one_of(
    st.builds(A.Rule, identifiers, _small(clauses), _some_actions, st.none(), st.booleans()),
    st.builds(A.Rule, identifiers, _small(clauses), st.just(()), picks, st.booleans()),
)
controller_decls = st.builds(A.ControllerDecl, identifiers, _small(rules), st.booleans(),
                             st.none() | identifiers)
params = st.builds(A.Param, identifiers, st.none() | type_refs)
def_decls = st.builds(A.DefDecl, identifiers, _small(params), st.none() | type_refs, exprs)

# ---- admission, faults, scenarios, properties --------------------------------------------

denies = st.builds(A.Deny, kind_sources, exprs, st.none() | exprs)
mutations = st.builds(A.Mutate, kind_sources, exprs, st.lists(set_actions, min_size=1, max_size=3).map(tuple))
policy_decls = st.builds(A.PolicyDecl, strings, _small(denies | mutations))
fault_decls = st.builds(A.FaultDecl, identifiers, kind_sources,
                        _small(st.builds(A.Param, identifiers, st.none() | type_refs), 2), _some_actions)

object_refs = st.builds(A.ObjRef, object_names, st.none() | object_names)
events = st.one_of(
    st.builds(A.FaultEvent, identifiers, identifiers, object_refs,
              _small(st.builds(A.EventArg, identifiers, exprs), 2)),
    st.builds(A.CreateEvent, identifiers, object_names, st.none() | object_names, _small(entries)),
    st.builds(A.UpdateEvent, identifiers, object_refs, _small(entries)),
    st.builds(A.DeleteEvent, identifiers, object_refs),
)
_times = st.one_of(numbers, units)
scenario_items = st.one_of(
    st.builds(A.At, _times, events),
    st.builds(A.Expect, st.sampled_from(("eventually", "always")), exprs, st.none() | _times),
)
scenario_decls = st.builds(A.ScenarioDecl, strings, _small(scenario_items, 4))
invariant_decls = st.builds(A.InvariantDecl, strings, exprs, st.booleans())
imports = st.builds(A.Import, strings)

decls = st.one_of(
    imports, kind_decls, record_decls, object_decls, controller_decls, def_decls,
    policy_decls, fault_decls, scenario_decls, invariant_decls,
)
modules = st.builds(A.Module, st.just("<generated>"), st.lists(decls, max_size=6).map(tuple))
"""Whole files: every declaration kind, in any order."""
