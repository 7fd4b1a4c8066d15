"""Runtime values of the language, and their JSON form.

Quantities and durations are exact: a `Fraction` (an `int` when whole) of
base units — cores or bytes for quantities, seconds for durations — so `250m`
is 1/4 and `2Gi` is 2147483648. Addresses and CIDRs are strings; lists are
lists; maps, records and objects are plain dicts (the compiled code asks
`type(v) is dict`: decoded JSON, YAML and the language's own literals make
nothing else). Nothing here knows a kind.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from fractions import Fraction
from json.encoder import c_make_encoder, encode_basestring, encode_basestring_ascii
from typing import Any

QUANTITY_FACTORS = {
    "m": Fraction(1, 1000), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
DURATION_FACTORS = {"ms": Fraction(1, 1000), "s": 1, "m": 60, "h": 3600, "d": 86400}


def exact(x) -> int | Fraction:
    """A number as an int when it is whole, else a Fraction."""
    t = type(x)
    if t is int:
        return x
    if t is Fraction:
        return x.numerator if x.denominator == 1 else x
    f = Fraction(x)
    return f.numerator if f.denominator == 1 else f


def same(a, b) -> bool:
    """Whether two values are one value to the language: equal, and of the same types all
    through, so that 1, 1.0 and true differ, as do 0.0 and -0.0 (`==` holds of each pair, but
    `str` and `type_of` tell them apart). A map's key order is not compared: the store keeps
    maps sorted."""
    t = type(a)
    if t is not type(b):
        return False
    if t is list:
        return len(a) == len(b) and all(map(same, a, b))
    if t is dict:
        return len(a) == len(b) and all(k in b and same(v, b[k]) for k, v in a.items())
    if t is float:
        return a.hex() == b.hex()
    return a == b


def differs(a, b, loose: bool) -> bool:
    """Whether `a` and `b` are two values: by `!=`, and by `same` where `loose` (a field that may
    hold values `==` calls equal, check.Program.loose_fields), as that costs more."""
    return a != b or loose and not same(a, b)


def exact_sum(xs) -> int | Fraction:
    """The sum of ints and Fractions as `exact` gives it, adding numerators over the least common
    denominator so far: one Fraction is made, at the end, where adding Fractions makes one a term."""
    n, d = 0, 1
    for x in xs:
        if type(x) is int:
            n += x * d
        elif x.denominator == d:
            n += x.numerator
        else:
            common = math.lcm(d, x.denominator)
            n, d = n * (common // d) + x.numerator * (common // x.denominator), common
    return n if d == 1 else exact(Fraction(n, d))


def unit_value(number: str, suffix: str, as_duration: bool) -> int | Fraction:
    factors = DURATION_FACTORS if as_duration else QUANTITY_FACTORS
    return exact(Fraction(number) * factors[suffix])


def number_value(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def format_quantity(q) -> str:
    """Kubernetes' canonical text for a quantity: `250m`, `4`, `128Mi`, `1500k`."""
    q = Fraction(q)
    if q.denominator != 1:
        millis = q * 1000
        return f"{millis.numerator}m" if millis.denominator == 1 else str(float(q))
    n = q.numerator
    if n == 0:
        return "0"
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        if n % QUANTITY_FACTORS[suffix] == 0:
            return f"{n // QUANTITY_FACTORS[suffix]}{suffix}"
    return str(n)


def format_duration(d) -> str:
    d = Fraction(d)
    if d.denominator != 1:
        ms = d * 1000
        return f"{ms.numerator}ms" if ms.denominator == 1 else f"{float(d)}s"
    n = d.numerator
    for suffix, factor in (("h", 3600), ("m", 60)):
        if n and n % factor == 0:
            return f"{n // factor}{suffix}"
    return f"{n}s"


def freeze(v):
    """A hashable twin of a value, for sets and dict keys."""
    if type(v) is str:
        return v  # the common case (a name looked up), first
    if isinstance(v, dict):
        return tuple(sorted((k, freeze(x)) for k, x in v.items()))
    if isinstance(v, list | tuple):
        return tuple(freeze(x) for x in v)
    return v


def assign(obj: dict, path, value) -> dict:
    """A copy of `obj` with `value` at a path of fields (`("health", "retries")`): what a
    `set` does. A step that is missing or not a map becomes an empty map; `obj` is left alone."""
    head, rest = path[0], path[1:]
    new = dict(obj)
    if not rest:
        new[head] = value
    else:
        inner = obj.get(head)
        new[head] = assign(inner if isinstance(inner, dict) else {}, rest, value)
    return new


def to_json(v):
    """A value in JSON-ready form: exact numbers stay numbers where JSON can hold them."""
    if isinstance(v, Fraction):
        return float(v)
    if isinstance(v, dict):
        return {k: to_json(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [to_json(x) for x in v]
    return v


def json_default(v):
    """json's `default`: what `encode` makes of a Fraction, the one value JSON has no form for;
    the rest of `encode` is what json does anyway."""
    if isinstance(v, Fraction):
        return {"$frac": [v.numerator, v.denominator]}
    raise TypeError(f"Object of type {type(v).__name__} is not JSON serializable")


def one_pass(e: json.JSONEncoder) -> Callable[[Any], str]:
    """`e.encode`, without what that sets up at each call: a C encoder, and its check for values
    that hold themselves, which no value here does. That costs more than encoding a small value
    (a field of an object, named by its text in a memo key), and a write encodes a dozen."""
    make = c_make_encoder
    if make is None or e.indent is not None:
        return e.encode
    strings = encode_basestring_ascii if e.ensure_ascii else encode_basestring
    one = make(None, e.default, strings, None, e.key_separator, e.item_separator, e.sort_keys, e.skipkeys,
               e.allow_nan)
    int_text = int.__repr__

    def text(v):
        # Most values encoded are a field's string, none, flag or count: what the C encoder makes
        # of them (`strings`, the constants, int's repr) without the list it builds and joins.
        t = type(v)
        if t is str:
            return strings(v)
        if v is None:
            return "null"
        if t is bool:
            return "true" if v else "false"
        if t is int:
            return int_text(v)
        return "".join(one(v, 0))
    return text


# json.dumps(encode(v), sort_keys=True, separators=(",", ":"), ensure_ascii=False) in one pass of
# the C encoder: the stored form of an object, and the name of a content
SORTED_JSON = one_pass(json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                                        default=json_default))


def encode(v):
    """A value as JSON data that `decode` turns back into the same value, exactly."""
    t = type(v)
    if t is str or t is int or t is bool or t is float or v is None:
        return v  # the common cases first, by type: isinstance(v, Fraction) asks the ABC machinery
    if t is dict:
        return {k: encode(x) for k, x in v.items()}
    if t is list:
        return [encode(x) for x in v]
    if isinstance(v, Fraction):
        return {"$frac": [v.numerator, v.denominator]}
    if isinstance(v, dict):
        return {k: encode(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [encode(x) for x in v]
    return v


def number_shaped(m: dict) -> bool:
    """Whether a map has the stored form of an exact number, `{"$frac": …}`: it would be read
    back as one, so the API server refuses it (engine/api.py)."""
    return len(m) == 1 and "$frac" in m


def stray_in(v) -> tuple[list, str, Any] | None:
    """The first part of `v` the store cannot keep as it is: the keys and indexes leading to it,
    what is wrong ("number": a map `number_shaped` holds of; "key": a map's key that is not a
    string; "value": a value of none of the language's types, such as bytes) and the part itself;
    None where there is none."""
    if isinstance(v, dict):
        if number_shaped(v):
            return [], "number", v
        for k, x in v.items():
            if not isinstance(k, str):
                return [], "key", k
            found = stray_in(x)
            if found is not None:
                return [k, *found[0]], found[1], found[2]
        return None
    if isinstance(v, list):
        for i, x in enumerate(v):
            found = stray_in(x)
            if found is not None:
                return [i, *found[0]], found[1], found[2]
        return None
    return None if v is None or isinstance(v, str | int | float | Fraction) else ([], "value", v)


def stored_number(m: dict) -> Fraction | None:
    """The exact number a map stores, `{"$frac": [n, d]}`; None for any other map (one stored
    before such maps were refused stays a map)."""
    if number_shaped(m):
        nd = m["$frac"]
        if type(nd) is list and len(nd) == 2 and type(nd[0]) is int and type(nd[1]) is int and nd[1]:
            return Fraction(nd[0], nd[1])
    return None


def decode(v):
    if isinstance(v, dict):
        number = stored_number(v)
        if number is not None:
            return number
        return {k: decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode(x) for x in v]
    return v


@functools.lru_cache(maxsize=1024)
def pattern(text: str) -> re.Pattern:
    """The regular expression `matches` tests a whole text against, with ASCII classes (`\\d`,
    `\\w` and `\\s` as RE2, Kubernetes' regular expressions, reads them)."""
    return re.compile(text, re.ASCII)


class Opaque(Exception):
    """A value that holds an object the cache holds (value_key), which a key names otherwise."""


class Unnamed(Exception):
    """A value a key cannot hold (one with the clock in it)."""


def value_key(v, held: dict | None = None):
    """A value as part of a key (a pick's group, a memo entry, a fold's entry): by its type and
    content (1, 1.0 and True are equal, yet judged alike they may not be; -0.0 and 0.0 too), a
    map's keys in their order (equal maps in two orders print apart). Raises Opaque when it holds
    an object the cache holds (`held`, where the caller names those apart), Unnamed when it
    holds the clock."""
    t = type(v)
    if t is dict:
        known = held.get(id(v)) if held else None
        if known is not None and known[0] is v:
            raise Opaque
        return ("record", tuple((k, value_key(x, held)) for k, x in v.items()))
    if t is list:
        return ("list", tuple(value_key(x, held) for x in v))
    if t is float:
        return (t, v.hex())  # and a nan names one group, as nan equals nothing
    if t is Fraction:
        return (t, v.numerator, v.denominator)  # in lowest terms; hashed faster than a Fraction
    if t in _SCALARS:
        return (t, v)
    raise Unnamed  # the clock, or a value of a kind this does not know


_SCALARS = frozenset({str, int, bool, type(None)})
