"""The JSON contract written a piece at a time (`konverge reconcile -o json|yaml`): the same
bytes as the whole document dumped at once, in the same order, without holding kube-proxy's
per-node table; a node's copy of a Route written from texts made once per Route; and YAML
that is PyYAML's own emitter's text wherever libyaml's writes it."""

from __future__ import annotations

import tracemalloc
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from engine.check import check_modules, load_program
from engine.fixpoint import reconcile
from engine.kube.contract import (_json, _json_texts, _node_route, _yaml_texts, contract_object, document, dumps,
                                  dumps_yaml, listed_objects, per_node_routes, stream)
from engine.kube.manifests import load_manifests
from engine.parse import parse_text
from tests.kube import program_of

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "specs" / "demo.konv"

# (spec files, manifest files, options of load_program, options of reconcile)
RUNS = {
    **{p.name: ([p], [], {}, {}) for p in sorted((ROOT / "specs").glob("*.konv"))},
    "demo, cut short": ([DEMO], [], {}, {"budget": 5}),
    "manifests": ([], sorted((ROOT / "specs" / "manifests").glob("*.yaml")), {}, {}),
    "a violation": ([ROOT / "tests" / "data" / "verify" / "scheduler-ignores-memory.konv"], [], {}, {}),
    "no std": ([ROOT / "tests" / "data" / "verify" / "stale-double-create.konv"], [], {"std": False}, {}),
}


def by_key(o: dict) -> tuple:
    return o["kind"], o.get("namespace") or "", o["name"]


def pyyaml(doc) -> str:
    """The text of PyYAML's own (pure Python) emitter, which the contract's YAML is."""
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)


@pytest.mark.parametrize("name", RUNS)
def test_streamed_text_is_the_whole_documents_text_in_json_and_yaml(name):
    specs, manifests, load, options = RUNS[name]
    program = load_program(specs, **load)
    result = reconcile(program, objects=load_manifests(manifests).declared, **options)
    doc = document(program, result)
    assert "".join(stream(program, result)) == dumps(doc)
    assert "".join(stream(program, result, as_yaml=True)) == dumps_yaml(doc) == pyyaml(doc)
    # made lazily, the objects come in the order a sort of the whole per-node table gives
    whole = per_node_routes(result.objects) if "Route" in program.kinds else list(result.objects)
    assert doc["objects"] == [contract_object(program, o) for o in sorted(whole, key=by_key)]


def test_a_document_without_objects_streams_with_empty_lists():
    program = check_modules([parse_text("kind Thing { size: int = 0 }\n", "empty.konv")])
    result = reconcile(program)
    text = "".join(stream(program, result))
    assert text == dumps(document(program, result)) and text.endswith('"violations": [],\n  "objects": []\n}\n')
    text = "".join(stream(program, result, as_yaml=True))
    assert text == dumps_yaml(document(program, result)) and text.endswith("violations: []\nobjects: []\n")


@pytest.fixture(scope="module")
def std():
    return load_program([DEMO])


# Names where `NODE.NAME` does not sort as (NODE, NAME) does ("a-b.x" < "a.x" but "a" < "a-b"),
# and Routes whose names meet once prefixed ("a" + "b.x" and "a.b" + "x").
node_names = st.sampled_from(["a", "a-b", "a.b", "b", "a0", "ab"])
routes = st.builds(lambda ns, name: {"kind": "Route", "namespace": ns, "name": name},
                   st.sampled_from([None, "", "default", "kube-system"]), st.sampled_from(["x", "b.x", "x-1", "x.1"]))
others = st.builds(lambda kind, ns, name: {"kind": kind, "namespace": ns, "name": name},
                   st.sampled_from(["Pod", "Service", "Zone"]), st.sampled_from([None, "default"]), node_names)


# Two Nodes of one name too (a spec's own namespaced Node kind): their copies interleave.
@given(nodes=st.lists(node_names, max_size=4), objects=st.lists(st.one_of(routes, others), max_size=12))
def test_per_node_routes_are_listed_as_a_stable_sort_lists_them(std, nodes, objects):
    objects = [{**o, "place": i} for i, o in enumerate(objects)] + [{"kind": "Node", "name": n} for n in nodes]
    assert list(listed_objects(std, objects)) == sorted(per_node_routes(objects), key=by_key)


def test_per_node_routes_are_made_as_they_are_listed_not_all_at_once(std):
    objects = [{"kind": "Node", "name": f"node-{i}"} for i in range(300)]
    objects += [{"kind": "Route", "namespace": "default", "name": f"svc-{j}.http", "service": f"default/svc-{j}",
                 "port": 80, "backends": []} for j in range(100)]
    tracemalloc.start()
    try:
        whole = per_node_routes(objects)
        held = tracemalloc.get_traced_memory()[0]
        del whole
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        listed = sum(1 for _ in listed_objects(std, objects))
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert listed == 300 * 100 + 300
    assert peak < held / 10


# Nodes whose copies must be merged (`a-b.x` sorts before `a.x`), one whose name YAML reads as a
# number, a node port under externalTrafficPolicy Local (a Route's `localBackends`), millicores
# that are fractions of a core, and text beyond ASCII and the Basic Multilingual Plane.
CORNERS = """
namespace "ns-1" {}
node a { cpu: 4  memory: 8Gi  taints: [{key: "example.com/zone", value: "zürich 🏔", effect: "PreferNoSchedule"}] }
node a-b { cpu: 2500m  memory: 8Gi }
node "1" { cpu: 4  memory: 8Gi }
deployment web in "ns-1" {
  replicas: 3
  selector { app: "web" }
  template {
    labels { app: "web" }
    container main { image: "nginx:ä"  cpu: 333m  memory: 100Mi  port http { containerPort: 80 } }
  }
}
service web in "ns-1" {
  selector { app: "web" }  type: "NodePort"  externalTrafficPolicy: "Local"
  port http { port: 80  targetPort: "http" }
}
service idle { selector { app: "none" }  port http { port: 80 } }
"""


def test_route_copies_of_odd_node_names_and_local_node_ports_stream_as_the_document_dumps():
    program = program_of(CORNERS)
    result = reconcile(program)
    doc = document(program, result)
    routes = [o for o in doc["objects"] if o["kind"] == "Route"]
    # kubernetes' and idle's Routes, `a-b.default…` before `a.default…`
    assert [r["node"] for r in routes if r["namespace"] == "default"] == ["1", "1", "a-b", "a-b", "a", "a"]
    assert any(r["localBackends"] for r in routes) and any(r["backends"] == [] for r in routes)
    text = "".join(stream(program, result))
    assert text == dumps(doc) and "zürich 🏔" in text and '"cpu": 2500' in text
    text = "".join(stream(program, result, as_yaml=True))
    assert text == pyyaml(doc) and "\n  node: '1'\n" in text


texts = st.text(max_size=12)
backend = st.fixed_dictionaries({"ip": texts, "port": st.integers(0, 65535),
                                 "probability": st.fractions(0, 1, max_denominator=7)})
stored_routes = st.fixed_dictionaries({
    "kind": st.just("Route"), "namespace": st.none() | texts, "name": texts, "service": texts, "clusterIP": texts,
    "port": st.integers(0, 65535), "backends": st.lists(backend, max_size=2),
    "localBackends": st.lists(st.fixed_dictionaries({"node": texts, "backends": st.lists(backend, max_size=2)}),
                              max_size=2),
    "nodePort": st.none() | st.integers(30000, 32767), "externalTrafficPolicy": st.none() | texts})
# names YAML reads as other than text, or writes quoted
odd_names = st.sampled_from(["1", "1.5", "0x1", "true", "null", "~", "-", "a b", "a: b", "#a", "'", "", "é", "🏔"])


@given(r=stored_routes, nodes=st.lists(odd_names | texts, min_size=1, max_size=3))
def test_a_nodes_copy_of_a_route_is_written_as_the_copy_dumped_whole(std, r, nodes):
    as_json, as_yaml = _json_texts(std), _yaml_texts(std)
    for n in nodes:  # the second node's copy is written from the first's cached texts
        copy = contract_object(std, _node_route(r, n))
        assert as_json(r, n) == _json(copy).replace("\n", "\n    ")
        assert as_yaml(r, n) == pyyaml([copy])


# label keys may be 253 + 63 characters long: PyYAML writes one of 123 to 128 as `? key`, libyaml not
long_keys = [("k" * 120 + "/suffix")[:n] for n in (120, 121, 122, 123, 124, 128, 129, 200)]
# what a contract object's values are: text of any characters, keys among them empty (a label's
# value may be; a spec's own map may have one), numbers, booleans, null, lists and maps of them
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | \
    st.sampled_from(["", "1.5", "yes", "~", "a: b", "- a", "x" * 1200, " ".join(["word"] * 300), "\x85", "\u2028"])
contract_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                               | st.dictionaries(st.text(max_size=6) | st.sampled_from(["", "kind", "x\r", "a\x07", *long_keys]), inner,
                                                 max_size=3), max_leaves=10)


@given(contract_values)
@example({k: "v" for k in long_keys})
@example({"x\r": 1, "a\x07": [1]})
def test_the_contracts_yaml_is_pyyamls_own_text_for_any_value(v):
    # as a list's item and as a mapping's value, as `stream` and the whole document hold objects
    for doc in ([{"kind": "Thing", "v": v}], {"objects": [v]}):
        assert dumps_yaml(doc) == pyyaml(doc)


def test_route_copies_stream_without_holding_the_table(std):
    objects = [{"kind": "Node", "name": f"node-{i}"} for i in range(300)]
    objects += [{"kind": "Route", "namespace": "default", "name": f"svc-{j}.http", "service": f"default/svc-{j}",
                 "port": 80, "backends": [{"ip": f"10.0.0.{j}", "port": 80, "probability": Fraction(1)}]}
                for j in range(30)]
    result = SimpleNamespace(objects=tuple(objects), converged=True, steps=1, revision=1, clock=0, reason="",
                             violations=())
    tracemalloc.start()
    try:
        size = 0
        for piece in stream(std, result):
            size += len(piece)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert size > 300 * 30 * 300  # each copy is some 400 characters
    assert peak < size / 10
