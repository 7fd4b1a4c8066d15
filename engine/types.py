"""The types of the Konverge language and the signatures of its built-ins.

Types are small frozen values; `assignable` and `join` are the two questions
the checker asks of them. Built-in functions are described as data here so
that the checker, the README's table and (later) the evaluator agree.
"""

from __future__ import annotations

import attrs

PRIMITIVES = ("int", "float", "bool", "string", "quantity", "duration", "ip", "cidr", "any")
NUMERIC = ("int", "float", "quantity", "duration")

QUANTITY_SUFFIXES = ("m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
DURATION_SUFFIXES = ("ms", "s", "m", "h", "d")


@attrs.frozen(slots=True)
class Prim:
    name: str

    def __str__(self) -> str:
        return self.name


@attrs.frozen(slots=True)
class ListT:
    elem: "Type"

    def __str__(self) -> str:
        return f"list<{self.elem}>"


@attrs.frozen(slots=True)
class MapT:
    value: "Type"

    def __str__(self) -> str:
        return "map" if self.value == ANY else f"map<{self.value}>"


@attrs.frozen(slots=True)
class RecordT:
    name: str

    def __str__(self) -> str:
        return self.name


@attrs.frozen(slots=True)
class KindT:
    """An object of a kind, as bound by `for pod p`."""

    name: str

    def __str__(self) -> str:
        return self.name


@attrs.frozen(slots=True)
class RefT:
    """`ref<Pod>`: the name of an object of a kind."""

    kind: str

    def __str__(self) -> str:
        return f"ref<{self.kind}>"


@attrs.frozen(slots=True)
class OptT:
    inner: "Type"

    def __str__(self) -> str:
        return f"{self.inner}?"


Type = Prim | ListT | MapT | RecordT | KindT | RefT | OptT

ANY = Prim("any")
INT = Prim("int")
FLOAT = Prim("float")
BOOL = Prim("bool")
STRING = Prim("string")
QUANTITY = Prim("quantity")
DURATION = Prim("duration")
IP = Prim("ip")
CIDR = Prim("cidr")
NONE = Prim("none")

# The types whose values `==` may call equal where the language tells them apart: 1 and 1.0 in a
# float, and 1, 1.0 and true in an `any`, or 0.0 and -0.0 (values.same tells them apart).
LOOSE = frozenset({ANY, FLOAT})


def strip(t: Type) -> Type:
    return t.inner if isinstance(t, OptT) else t


def is_any(t: Type) -> bool:
    return strip(t) == ANY


def is_numeric(t: Type) -> bool:
    t = strip(t)
    return t == ANY or (isinstance(t, Prim) and t.name in NUMERIC)


def assignable(value: Type, target: Type) -> bool:
    """May a value of type `value` stand where `target` is expected?"""
    if value == target or value == ANY or target == ANY:
        return True
    if value == NONE:
        return isinstance(target, OptT)
    if isinstance(target, OptT):
        return assignable(strip(value), target.inner)
    value = strip(value)
    if value == ANY or value == target:
        return True
    if isinstance(target, Prim):
        if target.name in ("float", "quantity", "duration") and value in (INT, FLOAT):
            return True
        if target.name in ("ip", "cidr") and value == STRING:
            return True
        if target == STRING and isinstance(value, RefT | Prim) and (isinstance(value, RefT) or value in (IP, CIDR)):
            return True
        return False
    if isinstance(target, RefT):
        return value == STRING or (isinstance(value, KindT) and value.name == target.kind)
    if isinstance(target, ListT) and isinstance(value, ListT):
        return assignable(value.elem, target.elem)
    if isinstance(target, MapT):
        if isinstance(value, MapT):
            return assignable(value.value, target.value)
        return isinstance(value, RecordT | KindT) and target.value == ANY
    if isinstance(target, RecordT) and isinstance(value, MapT):
        return True  # a map literal checked field by field where it is written
    return False


def join(a: Type, b: Type) -> Type:
    """The type of a value that is either an `a` or a `b` (list elements, if branches)."""
    if a == b:
        return a
    if a == NONE:
        return b if isinstance(b, OptT) else OptT(b)
    if b == NONE:
        return join(b, a)
    if is_any(a) or is_any(b):
        return ANY
    sa, sb = strip(a), strip(b)
    opt = isinstance(a, OptT) or isinstance(b, OptT)
    if assignable(sa, sb):
        r = sb
    elif assignable(sb, sa):
        r = sa
    else:
        return ANY
    return OptT(r) if opt else r


@attrs.frozen(slots=True)
class Builtin:
    name: str
    params: str  # human signature for docs and diagnostics
    min_args: int
    max_args: int  # -1: any number
    summary: str


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin("count", "(list | query)", 1, 1, "number of elements: `count(pod p where p.ready)`"),
        Builtin("sum", "(list | generator)", 1, 1, "sum of numbers or quantities; 0 for an empty list"),
        Builtin("min", "(list) or (a, b, …)", 1, -1, "smallest element; none for an empty list"),
        Builtin("max", "(list) or (a, b, …)", 1, -1, "largest element; none for an empty list"),
        Builtin("any", "(list | query)", 1, 1, "true if some element is true (or, for a query, exists)"),
        Builtin("all", "(list)", 1, 1, "true if every element is true"),
        Builtin("len", "(list | map | string)", 1, 1, "length"),
        Builtin("str", "(value)", 1, 1, "text of a value (`250m`, `2Gi`, `30s` for units)"),
        Builtin("int", "(value)", 1, 1, "integer value; quantities in their base unit, rounded up; none for text that is no whole number"),
        Builtin("float", "(value)", 1, 1, "floating-point value"),
        Builtin("abs", "(number)", 1, 1, "absolute value"),
        Builtin("ceil", "(number)", 1, 1, "smallest integer ≥ the number"),
        Builtin("floor", "(number)", 1, 1, "largest integer ≤ the number"),
        Builtin("round", "(number)", 1, 1, "nearest integer, halves away from zero"),
        Builtin("log", "(number)", 1, 1, "natural logarithm, as a float"),
        Builtin("millis", "(quantity)", 1, 1, "a quantity in thousandths, as an int (cpu in millicores)"),
        Builtin("seconds", "(duration)", 1, 1, "a duration in seconds, as a float"),
        Builtin("keys", "(map)", 1, 1, "the keys of a map, sorted"),
        Builtin("values", "(map)", 1, 1, "the values of a map, by sorted key"),
        Builtin("get", "(map, key, default)", 3, 3, "the value at key, or default"),
        Builtin("put", "(map, key, value)", 3, 3, "a copy of the map with key set to value"),
        Builtin("without", "(map, key)", 2, 2, "a copy of the map without key"),
        Builtin("only", "(map, keys)", 2, 2, "a copy of the map with only the entries whose key is in the list"),
        Builtin("coalesce", "(a, b, …)", 2, -1, "the first argument that is not none"),
        Builtin("has_duplicates", "(list)", 1, 1, "true if some element appears twice"),
        Builtin("distinct", "(list)", 1, 1, "the elements without repeats, first occurrence kept"),
        Builtin("sorted", "(list)", 1, 1, "the elements in ascending order"),
        Builtin("first", "(list)", 1, 1, "the first element, or none"),
        Builtin("range", "(n)", 1, 1, "the integers 0 … n-1"),
        Builtin("flatten", "(list of lists)", 1, 1, "the elements of the inner lists, in order"),
        Builtin("pow", "(base, exponent)", 2, 2, "base to the power exponent"),
        Builtin("type_of", "(value)", 1, 1, "the runtime type: int, float, string, bool, list, map or none"),
        Builtin("join", "(list<string>, sep)", 2, 2, "the strings joined by sep"),
        Builtin("split", "(string, sep)", 2, 2, "the parts of a string"),
        Builtin("contains", "(string, part)", 2, 2, "true if part occurs in the string"),
        Builtin("startswith", "(string, prefix)", 2, 2, "true if the string starts with prefix"),
        Builtin("lower", "(string)", 1, 1, "lower-case text"),
        Builtin("matches", "(string, pattern)", 2, 2, "true if the whole text matches the regular expression"),
        Builtin("hash", "(value)", 1, 1, "a stable 32-bit hash, the same on every run"),
        Builtin("now", "()", 0, 0, "the engine's virtual clock, as a duration since the start"),
        Builtin("before", "(object)", 1, 1, "in an invariant checked after every step: the object as it was "
                "before the latest step, none if that step created it; in a policy's deny: the object as "
                "stored before the write being admitted, none for a create"),
        Builtin("cidr_contains", "(cidr, ip)", 2, 2, "true if the address is inside the block"),
        Builtin("cidr_size", "(cidr)", 1, 1, "number of addresses in the block"),
        Builtin("cidr_subnet", "(cidr, prefix, index)", 3, 3, "the index-th sub-block of the given prefix length"),
        Builtin("cidr_host", "(cidr, index)", 2, 2, "the index-th address of the block"),
        Builtin("ip_index", "(cidr, ip)", 2, 2, "the position of an address inside the block"),
        Builtin("is_ip", "(string)", 1, 1, "true if the text is an IPv4 or IPv6 address"),
    )
}
