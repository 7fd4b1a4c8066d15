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
per node and service port, too many to hold at once.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
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
    route = program.kinds.get("Route")
    if route is not None and "node" not in route.fields:  # kube-proxy's, from rules/proxy.konv
        return _merged_routes(objects)
    return iter(sorted(objects, key=_order))


def _order(o: dict) -> tuple[str, str, str]:
    return o["kind"], o.get("namespace") or "", o["name"]


def _merged_routes(objects: list[dict]) -> Iterator[dict]:
    """`per_node_routes(objects)` sorted as the contract lists it, made lazily. For one node the
    names `NODE.NAME` sort as the names do, so each node's routes are the Routes sorted once,
    and merging the nodes' streams (ties broken by the Route's place, as a stable sort does)
    gives the whole table in order."""
    nodes = sorted(o["name"] for o in objects if o["kind"] == "Node")
    rest = sorted((o for o in objects if o["kind"] != "Route"), key=_order)
    routes = [r for r in objects if r["kind"] == "Route"]
    ranked = sorted(range(len(routes)), key=lambda i: (*_order(routes[i]), i))

    def on(n: str) -> Iterator[tuple[tuple, dict]]:
        for i in ranked:
            o = _node_route(routes[i], n)
            yield (*_order(o), i), o

    merged = heapq.merge(((_order(o), o) for o in rest), *(on(n) for n in nodes), key=lambda p: p[0])
    return (o for _, o in merged)


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


def dumps_yaml(doc: dict) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)


def stream(program: Program, result, as_yaml: bool = False) -> Iterator[str]:
    """The text of `dumps(document(program, result))`, or of `dumps_yaml`, in pieces, so that
    the document is never held whole: the header with `objects` opened, then each object
    dumped alone, indented as the list holds it."""
    objects = contract_objects(program, result)
    first = next(objects, None)
    empty = {**header(result), "objects": []}
    if first is None:
        yield dumps_yaml(empty) if as_yaml else dumps(empty)
        return
    objects = itertools.chain([first], objects)
    if as_yaml:
        yield dumps_yaml(empty).removesuffix(" []\n") + "\n"
        # PyYAML does not indent a block list in a mapping: an object's text is that of a one-item list
        yield from (dumps_yaml([o]) for o in objects)
    else:
        yield dumps(empty).removesuffix("[]\n}\n") + "["
        for i, o in enumerate(objects):
            yield ("\n    " if i == 0 else ",\n    ") + _json(o).replace("\n", "\n    ")
        yield "\n  ]\n}\n"


__all__ = ["BOOKKEEPING", "CPU_FIELDS", "contract_object", "contract_objects", "defaulted", "document", "dumps",
           "dumps_yaml", "header", "listed_objects", "per_node_routes", "stream", "value"]
