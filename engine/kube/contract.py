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
"""

from __future__ import annotations

import json
import math
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
    route = program.kinds.get("Route")
    if route is not None and "node" not in route.fields:  # kube-proxy's, from rules/proxy.konv
        objects = per_node_routes(result.objects)
    else:
        objects = list(result.objects)
    objects.sort(key=lambda o: (o["kind"], o.get("namespace") or "", o["name"]))
    return {
        "converged": result.converged,
        "steps": result.steps,
        "revision": result.revision,
        "clock": number(result.clock),
        "reason": result.reason or "",
        "violations": list(result.violations),
        "objects": [contract_object(program, o) for o in objects],
    }


def per_node_routes(objects: list[dict]) -> list[dict]:
    """The objects with kube-proxy's table as the contract lists it: a Route per node and
    service port. The rules keep one Route per service port, since every node's proxy programs
    the same chains (rules/proxy.konv); here each is repeated for each node, as `NODE.NAME`
    with its `node`."""
    nodes = sorted(o["name"] for o in objects if o["kind"] == "Node")
    out = [o for o in objects if o["kind"] != "Route"]
    for r in objects:
        if r["kind"] == "Route":
            out += [{"kind": "Route", "namespace": r.get("namespace"), "name": f"{n}.{r['name']}", "node": n,
                     **{k: v for k, v in r.items() if k not in ("kind", "namespace", "name")}} for n in nodes]
    return out


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
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def dumps_yaml(doc: dict) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)


__all__ = ["BOOKKEEPING", "CPU_FIELDS", "contract_object", "defaulted", "document", "dumps", "dumps_yaml",
           "value"]
