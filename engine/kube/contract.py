"""The JSON contract of `konverge reconcile -o json`.

One document, the same bytes for the same input:

    {"converged": bool, "steps": int, "revision": int, "clock": seconds,
     "reason": "", "violations": [], "objects": [{"kind", "namespace", "name", …fields}, …]}

Objects are sorted by kind, namespace, name. Every declared field is there
(null where unset), in the order kinds.konv declares them; map keys are sorted.
Values are plain numbers rather than the text of their type: a quantity field
that measures cpu (`cpu`, an HPA's `load`) is in millicores, any other
quantity in base units (bytes), both integers rounded up as Kubernetes rounds;
durations are seconds. Defaults that Kubernetes computes from other fields are
filled in: a Service port's omitted targetPort is its port. The engine's
bookkeeping (resourceVersion, createdRevision, managedBy) is left out: it
records the path the engine took, not the state it reached, and the contract
is meant to compare states — two firing orders that converge to the same
cluster give the same objects.

`stream` writes the document's text an object at a time, the same bytes as
`dumps(document(…))`: at 1,000 nodes kube-proxy's per-node table is a Route
per node and service port, too many to hold at once, and, written copy by
copy, most of the time a run with `-o json` took; so a node's copy is written
from the stored Route's text, made once.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import re
from collections.abc import Iterator
from fractions import Fraction

from ..check import Program
from ..types import DURATION, QUANTITY, ListT, MapT, OptT, Prim, RecordT
from ..types import Type

BOOKKEEPING = ("resourceVersion", "createdRevision", "managedBy")
# Quantity fields that measure cpu, printed in millicores: a container's or node's `cpu`, and
# an HPA's `load` (the workload's total cpu use).
CPU_FIELDS = ("cpu", "load")


def document(program: Program, result) -> dict:
    """The contract's document for a reconcile Result."""
    return {**header(result), "objects": list(contract_objects(program, result))}


def header(result) -> dict:
    """The document but its objects, which come last."""
    return {
        "converged": result.converged,
        "steps": result.steps,
        "revision": result.revision,
        "clock": number(result.clock),
        "reason": result.reason or "",
        "violations": list(result.violations),
    }


def contract_objects(program: Program, result) -> Iterator[dict]:
    """The document's objects, made one at a time."""
    return (contract_object(program, o) for o in listed_objects(program, result.objects))


def listed_objects(program: Program, objects: tuple[dict, ...]) -> Iterator[dict]:
    """The objects as the contract lists them, sorted by kind, namespace, name, made lazily:
    at 1,000 nodes kube-proxy's table alone (`per_node_routes`) is too many to hold at once."""
    return (o if node is None else _node_route(o, node) for o, node in _listing(program, objects))


def _listing(program: Program, objects: tuple[dict, ...]) -> Iterator[tuple[dict, str | None]]:
    """`listed_objects` before a node's copy of a Route is made: (object, None) for an object
    listed as stored, (stored Route, node) for that node's copy of it. `stream` writes the
    copies from texts made once per stored Route."""
    route = program.kinds.get("Route")
    if route is not None and "node" not in route.fields:  # kube-proxy's, from rules/proxy.konv
        return _merged_routes(objects)
    return ((o, None) for o in sorted(objects, key=_order))


def _order(o: dict) -> tuple[str, str, str]:
    return o["kind"], o.get("namespace") or "", o["name"]


def _merged_routes(objects: list[dict]) -> Iterator[tuple[dict, str | None]]:
    """`per_node_routes(objects)` sorted as the contract lists it, made lazily, as `_listing`
    gives it. For one node the names `NODE.NAME` sort as the names do, so each node's routes
    are the Routes sorted once, and merging the nodes' streams (ties broken by the Route's
    place, as a stable sort does) gives the whole table in order. Most clusters' node names
    need no merge: see `_node_major`."""
    nodes = sorted(o["name"] for o in objects if o["kind"] == "Node")
    rest = sorted((o for o in objects if o["kind"] != "Route"), key=_order)
    routes = [r for r in objects if r["kind"] == "Route"]
    ranked = sorted(range(len(routes)), key=lambda i: (*_order(routes[i]), i))
    if _node_major(nodes):
        before = sum(1 for o in rest if o["kind"] < "Route")  # rest is sorted by kind first
        yield from ((o, None) for o in rest[:before])
        for _, group in itertools.groupby(ranked, key=lambda i: routes[i].get("namespace") or ""):
            in_namespace = [routes[i] for i in group]
            for n in nodes:
                for r in in_namespace:
                    yield r, n
        yield from ((o, None) for o in rest[before:])
        return

    def on(n: str) -> Iterator[tuple[tuple, dict, str]]:
        for i in ranked:
            r = routes[i]
            yield (r["kind"], r.get("namespace") or "", f"{n}.{r['name']}", i), r, n

    merged = heapq.merge(((_order(o), o, None) for o in rest), *(on(n) for n in nodes), key=lambda p: p[0])
    yield from ((o, n) for _, o, n in merged)


def _node_major(nodes: list[str]) -> bool:
    """Whether, in a namespace, the node copies sort node by node: `A.x` before `B.y` whenever
    node A sorts before node B. It fails only where A is B's prefix and B goes on with a
    character that sorts at or before the dot (nodes `a` and `a-b`: `a-b.x` < `a.x`); other
    names differ at a character before the dot, or A's dot meets a greater character of B. Two
    nodes of one name (of a spec's own namespaced Node kind) interleave their copies: merged."""
    names = set(nodes)
    return len(names) == len(nodes) and not any(n[:k] in names for n in nodes for k, c in enumerate(n) if c <= ".")


def per_node_routes(objects: list[dict]) -> list[dict]:
    """The objects with kube-proxy's table as the contract lists it: a Route per node and
    service port. The rules keep one Route per service port, since every node's proxy programs
    the same chains (rules/proxy.konv); here each is repeated for each node, as `NODE.NAME`
    with its `node`."""
    nodes = sorted(o["name"] for o in objects if o["kind"] == "Node")
    out = [o for o in objects if o["kind"] != "Route"]
    for r in objects:
        if r["kind"] == "Route":
            out += [_node_route(r, n) for n in nodes]
    return out


def _node_route(r: dict, n: str) -> dict:
    return {"kind": "Route", "namespace": r.get("namespace"), "name": f"{n}.{r['name']}", "node": n,
            **{k: v for k, v in r.items() if k not in ("kind", "namespace", "name")}}


def contract_object(program: Program, obj: dict) -> dict:
    info = program.kinds.get(obj["kind"])
    out = {"kind": obj["kind"], "namespace": obj.get("namespace"), "name": obj["name"]}
    fields = info.fields if info is not None else {}
    if obj["kind"] == "Route" and "node" in obj:  # repeated per node by per_node_routes
        out["node"] = obj["node"]
    for f in fields.values():
        out[f.name] = value(program, f.type, obj.get(f.name), f.name)
    for key in sorted(obj):  # fields the schema does not declare (a kind replaced by a spec)
        if key not in out and key not in BOOKKEEPING:
            out[key] = plain(obj[key])
    return defaulted(out)


def defaulted(out: dict) -> dict:
    """Kubernetes' defaulting of what the store leaves unset because the language's defaults
    are constants: a Service port's targetPort is its port (the endpoints controller reads it
    the same way)."""
    if out["kind"] == "Service" and isinstance(out.get("ports"), list):
        out["ports"] = [{**sp, "targetPort": sp["port"]} if isinstance(sp, dict) and sp.get("targetPort") is None
                        and "port" in sp else sp for sp in out["ports"]]
    return out


def value(program: Program, t: Type, v, name: str = ""):
    """A value as the contract shows it, by its declared type."""
    if v is None:
        return None
    if isinstance(t, OptT):
        return value(program, t.inner, v, name)
    if t == QUANTITY and isinstance(v, int | Fraction) and not isinstance(v, bool):
        return math.ceil(Fraction(v) * 1000) if name in CPU_FIELDS else math.ceil(Fraction(v))
    if t == DURATION and isinstance(v, int | Fraction) and not isinstance(v, bool):
        return number(v)
    if isinstance(t, Prim) and t.name == "float" and isinstance(v, int | Fraction) and not isinstance(v, bool):
        return float(v)
    if isinstance(t, ListT) and isinstance(v, list | tuple):
        return [value(program, t.elem, x, name) for x in v]
    if isinstance(t, MapT) and isinstance(v, dict):
        return {k: value(program, t.value, v[k]) for k in sorted(v)}
    if isinstance(t, RecordT) and isinstance(v, dict) and t.name in program.records:
        fields = program.records[t.name].fields
        out = {f.name: value(program, f.type, v.get(f.name), f.name) for f in fields.values()}
        out.update((k, plain(x)) for k, x in sorted(v.items()) if k not in out)
        return out
    return plain(v)


def number(x):
    """An exact number as JSON holds it: an int when whole, else a float."""
    if isinstance(x, Fraction):
        return x.numerator if x.denominator == 1 else float(x)
    return x


def plain(v):
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, Fraction):
        return number(v)
    if isinstance(v, dict):
        return {k: plain(v[k]) for k in sorted(v)}
    if isinstance(v, list | tuple):
        return [plain(x) for x in v]
    return v


def dumps(doc: dict) -> str:
    """The contract's text: two-space indented JSON, UTF-8, one trailing newline."""
    return _json(doc) + "\n"


def _json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)


def dumps_yaml(doc) -> str:
    """The contract's YAML: PyYAML's block style, keys in the document's order, UTF-8, lines
    of up to 1,000 columns. libyaml's emitter (PyYAML's CSafeDumper) writes it several times
    faster, and the same text where every string is printable ASCII and every key 1 to 120
    characters long (tests/test_kube_contract.py holds it to that); elsewhere the two differ
    (non-BMP characters, control characters, an empty label key, a key of 123 to 128
    characters), and PyYAML's own emitter writes it,
    as it does where PyYAML is built without libyaml."""
    import yaml

    fast = getattr(yaml, "CSafeDumper", None)
    dumper = fast if fast is not None and _libyaml_writes_alike(doc) else yaml.SafeDumper
    return yaml.dump(doc, Dumper=dumper, sort_keys=False, allow_unicode=True, width=1000)


def _libyaml_writes_alike(v) -> bool:
    """Whether libyaml's emitter writes `v` as PyYAML's does: see `dumps_yaml`."""
    if isinstance(v, str):
        return v.isascii() and v.isprintable()
    if isinstance(v, dict):
        # a key of 123 to 128 characters is a simple key to libyaml, whose length leaves out the
        # `!!str` tag PyYAML counts towards the limit of 128: PyYAML writes it `? key`
        return all(isinstance(k, str) and 0 < len(k) <= 120 and k.isascii() and k.isprintable()
                   and _libyaml_writes_alike(x) for k, x in v.items())
    if isinstance(v, list):
        return all(map(_libyaml_writes_alike, v))
    return v is None or isinstance(v, bool | int | float)


def stream(program: Program, result, as_yaml: bool = False) -> Iterator[str]:
    """The text of `dumps(document(program, result))`, or of `dumps_yaml`, in pieces, so that
    the document is never held whole: the header with `objects` opened, then each object
    dumped alone, indented as the list holds it."""
    listing = _listing(program, result.objects)
    first = next(listing, None)
    empty = {**header(result), "objects": []}
    if first is None:
        yield dumps_yaml(empty) if as_yaml else dumps(empty)
        return
    listing = itertools.chain([first], listing)
    if as_yaml:
        text = _yaml_texts(program)
        yield dumps_yaml(empty).removesuffix(" []\n") + "\n"
        # PyYAML does not indent a block list in a mapping: an object's text is that of a one-item list
        yield from (text(o, node) for o, node in listing)
    else:
        text = _json_texts(program)
        yield dumps(empty).removesuffix("[]\n}\n") + "["
        for i, (o, node) in enumerate(listing):
            yield ("\n    " if i == 0 else ",\n    ") + text(o, node)
        yield "\n  ]\n}\n"


# A node's copy of a Route differs from the stored Route only in its head: `name` is `NODE.NAME`
# and `node` is added. Contract and encoding of the rest are the bulk of the document (a Route
# per node and service port) and the same on every node, so `_json_texts` and `_yaml_texts` make
# them once per stored Route, and per copy only join the head's few words to them. Both make the
# same text as dumping the copy whole (tests/test_kube_contract.py holds them to it).


def _copy_head_and_rest(program: Program, r: dict) -> tuple[dict, dict] | None:
    """The contract form of a node's copy of Route `r`, for node "": its head (kind, namespace,
    name, node) and the rest, which every node's copy shares; None where the copy is not that
    shape (a stored Route of a spec's own kind that has a `node` of its own)."""
    if "node" in r:
        return None
    c = contract_object(program, _node_route(r, ""))
    head = ("kind", "namespace", "name", "node")
    if tuple(c)[:4] != head:
        return None
    return {k: c[k] for k in head}, {k: v for k, v in c.items() if k not in head}


def _json_texts(program: Program):
    """text(object, node): the object's JSON, or node's copy of Route `object`, indented as the
    document's `objects` list holds it. json.dumps(indent=2) writes a mapping as `{`, its
    members one a line, `}`; and a string's escapes are character by character, so the text of
    `NODE.NAME` is that of NODE's characters, then of `.NAME`'s."""
    parts: dict[int, tuple[str, str, str] | None] = {}
    node_texts: dict[str, str] = {}

    def whole(o: dict) -> str:
        return _json(contract_object(program, o)).replace("\n", "\n    ")

    def text(o: dict, node: str | None) -> str:
        if node is None:
            return whole(o)
        if id(o) not in parts:
            parts[id(o)] = _json_parts(program, o)
        p = parts[id(o)]
        if p is None:
            return whole(_node_route(o, node))
        if node not in node_texts:
            node_texts[node] = _json(node)
        q = node_texts[node]
        before, after, rest = p
        return f"{before}{q[1:-1]}{after}{q}{rest}"

    return text


def _json_parts(program: Program, r: dict) -> tuple[str, str, str] | None:
    """The text of a copy of `r` but NODE: before NODE's characters in the name, from there to
    the `node` member's value, after it."""
    split = _copy_head_and_rest(program, r)
    if split is None:
        return None
    head, rest = split
    before = f'{{\n  "kind": {_json(head["kind"])},\n  "namespace": {_json(head["namespace"])},\n  "name": "'
    after = f'{_json(head["name"])[1:]},\n  "node": '  # head["name"] is ".NAME"
    tail = "," + _json(rest)[1:] if rest else "\n}"
    return tuple(t.replace("\n", "\n    ") for t in (before, after, tail))


def _yaml_texts(program: Program):
    """text(object, node): the YAML of a one-item list of the object, or of node's copy of
    Route `object`: how the document's `objects` list holds it. A block mapping's entries are
    written one a line, each as it would be alone at that column (the one-item list's `- ` and
    the indent of later entries are both two columns); only `name` differs in every copy. It is
    written plain where PyYAML would (the characters of a DNS name, not read back as a number
    or a boolean), else as PyYAML writes it."""
    from yaml import ScalarNode
    from yaml.resolver import Resolver

    read_back = Resolver().resolve
    # PyYAML writes such a string plain wherever the resolver reads it back as a string: it
    # starts with a letter or digit and holds no space, indicator (`:`, `#`, `,`, brackets…) or quote.
    unquoted = re.compile(r"[0-9A-Za-z][0-9A-Za-z._/-]*")
    parts: dict[int, tuple[str, str] | None] = {}
    node_lines: dict[str, str] = {}

    def entries(mapping: dict) -> str:  # its entries at indent 2
        return "  " + dumps_yaml([mapping])[2:] if mapping else ""

    def name_line(name: str) -> str:
        if unquoted.fullmatch(name) and read_back(ScalarNode, name, (True, False)) == Resolver.DEFAULT_SCALAR_TAG:
            return f"  name: {name}\n"
        return entries({"name": name})

    def text(o: dict, node: str | None) -> str:
        if node is None:
            return dumps_yaml([contract_object(program, o)])
        if id(o) not in parts:
            split = _copy_head_and_rest(program, o)
            parts[id(o)] = None if split is None else (
                "- " + entries({"kind": split[0]["kind"], "namespace": split[0]["namespace"]})[2:],
                entries(split[1]))
        p = parts[id(o)]
        if p is None:
            return dumps_yaml([contract_object(program, _node_route(o, node))])
        if node not in node_lines:
            node_lines[node] = entries({"node": node})
        name = f"{node}.{o['name']}"
        return f"{p[0]}{name_line(name)}{node_lines[node]}{p[1]}"

    return text


__all__ = ["BOOKKEEPING", "CPU_FIELDS", "contract_object", "contract_objects", "defaulted", "document", "dumps",
           "dumps_yaml", "header", "listed_objects", "per_node_routes", "stream", "value"]
