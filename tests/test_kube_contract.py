"""The JSON contract written a piece at a time (`konverge reconcile -o json|yaml`): the same
bytes as the whole document dumped at once, in the same order, without holding kube-proxy's
per-node table."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.check import check_modules, load_program
from engine.fixpoint import reconcile
from engine.kube.contract import (contract_object, document, dumps, dumps_yaml, listed_objects, per_node_routes,
                                  stream)
from engine.kube.manifests import load_manifests
from engine.parse import parse_text

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


@pytest.mark.parametrize("name", RUNS)
def test_streamed_text_is_the_whole_documents_text_in_json_and_yaml(name):
    specs, manifests, load, options = RUNS[name]
    program = load_program(specs, **load)
    result = reconcile(program, objects=load_manifests(manifests).declared, **options)
    doc = document(program, result)
    assert "".join(stream(program, result)) == dumps(doc)
    assert "".join(stream(program, result, as_yaml=True)) == dumps_yaml(doc)
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


@given(nodes=st.lists(node_names, unique=True, max_size=4), objects=st.lists(st.one_of(routes, others), max_size=12))
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
