"""The API server: errors, defaulting, admission, validation, concurrency,
watches, the informer, and `konverge get` on a persisted store."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
from fractions import Fraction

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.api import (
    AlreadyExists, APIServer, Conflict, Forbidden, Invalid, NotFound, Unauthorized, _Decodings, decode_object,
    encode_object, resource_name,
)
from engine import api as api_module
from engine.check import check_modules
from engine.cli import main
from engine.errors import KonvergeError
from engine.fixpoint import reconcile
from engine.informer import Informer
from engine.parse import parse_text
from engine.reads import Reads
from engine.store import open_store
from engine.store.base import KeyValue
from engine.values import SORTED_JSON, encode

SPEC = """
record Port {
  containerPort: int
  protocol: string = "TCP"
  hostIP: ip?
}

record Container {
  name: string
  image: string
  cpu: quantity = 100m
  ports: list<Port> = []
}

record Probe {
  path: string = "/healthz"
  period: duration = 10s
}

record Health {
  probe: Probe = {}
  retries: int = 3
}

kind Pod {
  labels: map<string> = {}
  containers: list<Container>
  health: Health?
  podCIDR: cidr?
  node: string?
  phase: string = "Pending"
}

cluster kind Node {
  cpu: quantity
}

kind Quota {
  maxPods: int
}

policy "containers in one pod share a network, so ports must differ" {
  deny pod p when has_duplicates([c.name for c in p.containers])
}

policy "a namespace's pod quota is exceeded" {
  deny pod p when any([q for quota q where q.namespace == p.namespace and p.resourceVersion == none
                       and count(pod o where o.namespace == p.namespace) >= q.maxPods])
    because "quota exceeded in " + p.namespace
}
"""


def program_of(text: str):
    return check_modules([parse_text(text, "spec.konv")])


@pytest.fixture(scope="module")
def program():
    return program_of(SPEC)


@pytest.fixture
def api(program):
    store = open_store()
    yield APIServer(program, store)
    store.close()


def pod(name="web-1", namespace="shop", **fields):
    obj = {"name": name, "namespace": namespace, "containers": [{"name": "c", "image": "nginx"}]}
    obj.update(fields)
    return obj


# ---- errors and their messages ------------------------------------------------------


def test_creating_an_existing_object_is_already_exists(api):
    api.create(api.admin, "pod", pod())
    with pytest.raises(AlreadyExists) as e:
        api.create(api.admin, "Pod", pod())
    assert e.value.message == 'pods "web-1" already exists'
    assert (e.value.code, e.value.reason) == (409, "AlreadyExists")


def test_getting_a_missing_object_is_not_found(api):
    with pytest.raises(NotFound) as e:
        api.get(api.admin, "pod", "shop", "web-1")
    assert e.value.message == 'pods "web-1" not found'
    assert (e.value.code, e.value.reason) == (404, "NotFound")


def test_updating_or_deleting_a_missing_object_is_not_found(api):
    created = api.create(api.admin, "pod", pod())
    api.delete(api.admin, "pod", "shop", "web-1")
    with pytest.raises(NotFound):
        api.update(api.admin, "pod", created)
    with pytest.raises(NotFound):
        api.delete(api.admin, "pod", "shop", "web-1")


def test_updating_from_a_stale_resource_version_is_a_conflict(api):
    created = api.create(api.admin, "pod", pod())
    api.update(api.admin, "pod", dict(created, phase="Running"))
    with pytest.raises(Conflict) as e:
        api.update(api.admin, "pod", dict(created, phase="Failed"))
    assert e.value.message == ('Operation cannot be fulfilled on pods "web-1": the object has been modified; '
                               "please apply your changes to the latest version and try again")
    assert (e.value.code, e.value.reason) == (409, "Conflict")


def test_deleting_with_a_stale_resource_version_is_a_conflict(api):
    created = api.create(api.admin, "pod", pod())
    api.update(api.admin, "pod", dict(created, phase="Running"))
    with pytest.raises(Conflict):
        api.delete(api.admin, "pod", "shop", "web-1", resource_version=created["resourceVersion"])
    assert api.get(api.admin, "pod", "shop", "web-1")["phase"] == "Running"


def test_an_unknown_kind_is_not_found_with_a_suggestion(api):
    with pytest.raises(NotFound) as e:
        api.get(api.admin, "podz", "shop", "x")
    assert e.value.message == 'the server doesn\'t have a resource type "podz"'
    assert e.value.diagnostics[0].hint == "did you mean `pod`?"


def test_forbidden_and_unauthorized_messages():
    program = program_of(SPEC + RBAC_KINDS)
    api = APIServer(program, open_store())
    api.create(api.admin, "user", {"name": "alice", "token": "t-alice"})
    api.create(api.admin, "rolebinding", {"name": "b", "namespace": "other", "role": "r", "subjects": ["bob"]})
    alice = api.authenticate("t-alice")
    with pytest.raises(Forbidden) as e:
        api.create(alice, "pod", pod())
    assert e.value.message == 'pods is forbidden: User "alice" cannot create resource "pods" in the namespace "shop"'
    assert (e.value.code, e.value.reason) == (403, "Forbidden")
    with pytest.raises(Forbidden) as e:
        api.list(alice, "node")
    assert e.value.message == 'nodes is forbidden: User "alice" cannot list resource "nodes" at the cluster scope'
    with pytest.raises(Unauthorized) as e:
        api.authenticate("wrong")
    assert (e.value.message, e.value.code, e.value.reason) == ("Unauthorized", 401, "Unauthorized")


def test_every_api_error_is_a_konverge_error():
    for cls in (AlreadyExists, Conflict, Forbidden, Invalid, NotFound, Unauthorized):
        assert issubclass(cls, KonvergeError)


@pytest.mark.parametrize("kind, plural", [("Pod", "pods"), ("NetworkPolicy", "networkpolicies"),
                                          ("Endpoints", "endpoints"), ("Node", "nodes")])
def test_resource_names_are_lower_case_plurals(kind, plural):
    assert resource_name(kind) == plural


# ---- defaulting ------------------------------------------------------------------


def test_defaults_are_applied_into_nested_records_and_lists_of_records(api):
    obj = api.create(api.admin, "pod", pod(containers=[{"name": "a", "image": "x", "ports": [{"containerPort": 80}]},
                                                       {"name": "b", "image": "y", "cpu": 2}],
                                           health={"retries": 5}))
    assert obj["phase"] == "Pending" and obj["labels"] == {}
    assert obj["containers"][0]["cpu"] == Fraction(1, 10)
    assert obj["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP", "hostIP": None}]
    assert obj["containers"][1]["cpu"] == 2 and obj["containers"][1]["ports"] == []
    assert obj["health"] == {"retries": 5, "probe": {"path": "/healthz", "period": 10}}
    assert obj["node"] is None and obj["podCIDR"] is None
    assert api.get(api.admin, "pod", "shop", "web-1") == obj


def test_an_optional_record_left_out_stays_none(api):
    assert api.create(api.admin, "pod", pod())["health"] is None


def test_a_required_field_given_as_none_takes_its_default(api):
    obj = api.create(api.admin, "pod", pod(phase=None, containers=[{"name": "c", "image": "nginx", "cpu": None}]))
    assert obj["phase"] == "Pending" and obj["containers"][0]["cpu"] == Fraction(1, 10)


def test_a_namespaced_object_without_namespace_goes_to_default(api):
    assert api.create(api.admin, "pod", pod(namespace=None))["namespace"] == "default"
    assert api.create(api.admin, "node", {"name": "n1", "cpu": 4})["namespace"] is None


# ---- admission -----------------------------------------------------------------


def test_an_admission_policy_refuses_a_write_with_its_message(api):
    two = [{"name": "c", "image": "a"}, {"name": "c", "image": "b"}]
    with pytest.raises(Invalid) as e:
        api.create(api.admin, "pod", pod(containers=two))
    assert e.value.message == ('Pod "web-1" is invalid: containers in one pod share a network, '
                               "so ports must differ")
    with pytest.raises(NotFound):
        api.get(api.admin, "pod", "shop", "web-1")


def test_an_admission_policy_refuses_an_update_too(api):
    created = api.create(api.admin, "pod", pod())
    with pytest.raises(Invalid):
        api.update(api.admin, "pod", dict(created, containers=created["containers"] * 2))


def test_a_deny_may_compare_an_update_with_the_object_it_replaces():
    """`before(x)` in a deny is the object as stored before the write (none for a create), as
    ValidateServiceUpdate compares a service with its old self; other objects are as they are."""
    program = program_of("""
kind Item { n: int = 0  tag: string = "" }
kind Other { n: int = 0 }
policy "n only grows" {
  deny item i when before(i) != none and i.n < before(i).n because "n: " + str(before(i).n) + " -> " + str(i.n)
  deny item i when before(i) == none and i.tag == "update-only" because "created"
  deny item i when any(before(o) != o for other o) because "another object looked back"
}
""")
    api = APIServer(program, open_store())
    item = api.create(api.admin, "item", {"name": "a", "n": 2})
    with pytest.raises(Invalid, match="created"):
        api.create(api.admin, "item", {"name": "b", "tag": "update-only"})
    item = api.update(api.admin, "item", dict(item, n=5))
    with pytest.raises(Invalid, match="n: 5 -> 3"):
        api.update(api.admin, "item", dict(item, n=3))
    item = api.update(api.admin, "item", dict(item, tag="update-only"))  # the stored one is there: no refusal
    assert (item["n"], item["tag"]) == (5, "update-only")
    api.create(api.admin, "other", {"name": "o"})
    assert api.update(api.admin, "item", dict(item, n=6))["n"] == 6


def test_a_deny_that_looks_back_is_judged_anew_on_every_write():
    """A verdict of a deny that calls `before` depends on the stored object, not on the fields
    the new one holds: it is neither taken from the verdicts cached by those fields' values nor
    ratcheted when the update keeps them (engine.reads: `before` is not pure)."""
    program = program_of("""
kind Item { n: int = 0  tag: string = "" }
policy "n only grows, and an update moves it" {
  deny item i when before(i) != none and i.n < before(i).n because "n: " + str(before(i).n) + " -> " + str(i.n)
  deny item i when before(i) != none and i.n == before(i).n because "n stays " + str(i.n)
}
""")
    reads = Reads(program)
    assert [reads.pure(d.cond) for d in program.policies[0].denies] == [False, False]
    api = APIServer(program, open_store())
    a = api.update(api.admin, "item", dict(api.create(api.admin, "item", {"name": "a", "n": 2}), n=5))
    b = api.create(api.admin, "item", {"name": "b", "n": 9})
    # n = 5 passed for a (up from 2); for b it is down from 9
    with pytest.raises(Invalid, match="n: 9 -> 5"):
        api.update(api.admin, "item", dict(b, n=5))
    # an update that keeps n, the one field the denies read of the new object, is judged again
    with pytest.raises(Invalid, match="n stays 5"):
        api.update(api.admin, "item", dict(a, tag="x"))


def test_an_admission_policy_reads_other_objects_and_gives_its_because_message(api):
    api.create(api.admin, "quota", {"name": "q", "namespace": "shop", "maxPods": 2})
    api.create(api.admin, "pod", pod("a"))
    api.create(api.admin, "pod", pod("b"))
    api.create(api.admin, "pod", pod("c", namespace="other"))  # another namespace's quota is not ours
    with pytest.raises(Invalid) as e:
        api.create(api.admin, "pod", pod("c"))
    assert e.value.message == 'Pod "c" is invalid: quota exceeded in shop'
    # An update is not a creation: the policy lets it through.
    b = api.get(api.admin, "pod", "shop", "b")
    assert api.update(api.admin, "pod", dict(b, phase="Running"))["phase"] == "Running"


def test_a_policy_sees_every_write_to_what_it_reads_whoever_made_it(program):
    store = open_store()
    api, other = APIServer(program, store), APIServer(program, store)
    api.create(api.admin, "quota", {"name": "q", "namespace": "shop", "maxPods": 2})
    api.create(api.admin, "pod", pod("a"))
    reads = []
    real = store.range
    store.range = lambda key, **kw: reads.append(key) or real(key, **kw)
    api.create(api.admin, "node", {"name": "n1", "cpu": 4})
    api.create(api.admin, "pod", pod("b", namespace="other"))
    # The quotas read for pod a are read again by no later write: none was written since, by anyone.
    assert not any(k.startswith("/registry/quotas/") for k in reads)
    # Another server (a second API server, a restore) lowers the quota to 1: the next write sees it,
    def requota(n):
        other.update(other.admin, "quota", dict(other.get(other.admin, "quota", "shop", "q"), maxPods=n))

    requota(1)
    with pytest.raises(Invalid) as e:
        api.create(api.admin, "pod", pod("c"))
    assert e.value.message == 'Pod "c" is invalid: quota exceeded in shop'
    # and raises it again: seen even after this server wrote a kind of its own in between.
    requota(3)
    api.create(api.admin, "node", {"name": "n2", "cpu": 4})
    assert api.create(api.admin, "pod", pod("c"))["name"] == "c"
    store.close()


def test_a_lease_that_ran_out_takes_its_objects_out_of_what_a_policy_reads(program):
    now = [0]
    store = open_store(clock=lambda: now[0])
    api = APIServer(program, store, clock=lambda: now[0])
    api.create(api.admin, "quota", {"name": "q", "namespace": "shop", "maxPods": 1})
    api.create(api.admin, "pod", pod("a"))
    key = api.key(api.kind_info("pod"), "shop", "a")
    store.put(key, store.range(key).kvs[0].value, lease=store.lease_grant(10))  # pod a now lives 10 s
    api.create(api.admin, "node", {"name": "n1", "cpu": 4})
    with pytest.raises(Invalid):
        api.create(api.admin, "pod", pod("b"))
    now[0] = 11  # the lease ran out: pod a is gone, though no one has read the store since
    assert api.create(api.admin, "pod", pod("b"))["name"] == "b"
    store.close()


QUOTA_DEF = SPEC[:SPEC.index('policy "a namespace\'s pod quota is exceeded"')] + """
def quota_full(ns: string) = any([q for quota q where q.namespace == ns
                                   and count(pod o where o.namespace == ns) >= q.maxPods])

policy "a namespace's pod quota, asked through a def" {
  deny pod p when p.resourceVersion == none and quota_full(p.namespace) because "full: " + p.namespace
}
"""


def test_a_def_a_policy_calls_sees_every_write_to_the_kinds_it_reads():
    now = [0]
    store = open_store(clock=lambda: now[0])
    api = APIServer(program_of(QUOTA_DEF), store, clock=lambda: now[0])
    other = APIServer(api.program, store)
    api.create(api.admin, "quota", {"name": "q", "namespace": "shop", "maxPods": 3})
    api.create(api.admin, "pod", pod("a"))
    api.create(api.admin, "pod", pod("b"))  # quota_full("shop") is false twice: the pods it counts differ
    key = api.key(api.kind_info("pod"), "shop", "b")
    store.put(key, store.range(key).kvs[0].value, lease=store.lease_grant(10))  # pod b now lives 10 s
    api.create(api.admin, "pod", pod("c"))
    with pytest.raises(Invalid) as e:  # this server's own write of a pod
        api.create(api.admin, "pod", pod("d"))
    assert e.value.message.endswith("full: shop")
    now[0] = 11  # pod b's lease ran out
    api.create(api.admin, "pod", pod("d"))
    other.update(other.admin, "quota", dict(other.get(other.admin, "quota", "shop", "q"), maxPods=4))
    api.create(api.admin, "pod", pod("e"))  # another server's write of the quota
    with pytest.raises(Invalid):
        api.create(api.admin, "pod", pod("f"))
    store.close()


def test_a_def_a_policy_calls_tells_true_from_1():
    api = APIServer(program_of(SPEC + """
kind Flag { value: any }
def is_bool(v: any) = any([type_of(x) == "bool" for x in [v]])  # a loop: called, not inlined
policy "a flag is not a bool" { deny flag f when is_bool(f.value) }
"""), open_store())
    api.create(api.admin, "flag", {"name": "one", "value": 1})
    with pytest.raises(Invalid):
        api.create(api.admin, "flag", {"name": "true", "value": True})


def test_editing_a_created_object_does_not_change_what_a_def_answers_later():
    # A mutation puts what a def gives into the object, and the caller may edit what it gets back:
    # the def's answer must not be that very list.
    api = APIServer(program_of(SPEC + """
kind Flag { value: any? }
kind Team {}
def parts(n: string) = [x for x in split(n, "-")]
policy "a flag carries its namespace's parts" { mutate flag f when f.value == none set f.value = parts(f.namespace) }
policy "teams are named in two parts" { deny team t when len(parts(t.namespace)) > 2 because "too many parts" }
"""), open_store())
    a = api.create(api.admin, "flag", {"name": "a", "namespace": "team-x", "value": None})
    a["value"].append("EDITED")
    assert api.create(api.admin, "flag", {"name": "b", "namespace": "team-x", "value": None})["value"] == ["team", "x"]
    api.create(api.admin, "team", {"name": "t", "namespace": "team-x"})


@pytest.mark.parametrize("before, after", [(1, True), (1, 1.0), (0.0, -0.0)])
def test_ratcheting_keeps_no_verdict_for_a_value_changed_only_in_type(before, after):
    # `==` holds of each pair, but the policy tells them apart: the update is judged again.
    api = APIServer(program_of(SPEC + """
kind Flag { value: any? }
policy "a flag is an int, or a float above zero" {
  deny flag f when type_of(f.value) == "bool" or str(f.value) == "1.0" or str(f.value) == "-0.0"
}
"""), open_store())
    a = api.create(api.admin, "flag", {"name": "a", "value": before})
    with pytest.raises(Invalid):
        api.update(api.admin, "flag", dict(a, value=after))


def test_a_pure_policy_judges_a_map_in_its_own_order():
    api = APIServer(program_of(SPEC + """
policy "labels are listed a before z" { deny pod p when str(p.labels) == str({z: "1", a: "1"}) }
"""), open_store())
    api.create(api.admin, "pod", pod("a", labels={"a": "1", "z": "1"}))
    with pytest.raises(Invalid):
        api.create(api.admin, "pod", pod("z", labels={"z": "1", "a": "1"}))


def test_a_pure_policy_judges_a_map_out_of_key_order_apart_from_one_in_it():
    # The map in key order is judged by its stored text; the other by its own order's text.
    api = APIServer(program_of(SPEC + """
policy "labels are listed a before z" { deny pod p when str(p.labels) == str({z: "1", a: "1"}) }
"""), open_store())
    with pytest.raises(Invalid):
        api.create(api.admin, "pod", pod("z", labels={"z": "1", "a": "1"}))
    api.create(api.admin, "pod", pod("a", labels={"a": "1", "z": "1"}))


@settings(max_examples=150)
@given(data=st.data())
def test_writes_judged_by_their_fields_texts_store_what_encode_object_makes_of_the_object_admitted(alike_things, data):
    """Policies judge a field by the SORTED_JSON text of its value where its maps are in key order,
    which encoding takes over: the bytes stored are what encode_object makes of the object admitted
    all the same, a mutation's change to a field judged before it included."""
    fields = _valid_fields(alike_things, alike_things.kinds["Thing"].fields)
    api = APIServer(alike_things, open_store())
    seen = None
    for _ in range(data.draw(st.integers(1, 5))):
        drawn = data.draw(_perturbed(fields))
        if seen is None:
            payload, write = {"name": "t1", "namespace": "shop", **drawn}, api.create
        else:
            payload, write = {**seen, **drawn}, api.update
        try:
            admitted = write(api.admin, "thing", payload)
        except KonvergeError:
            continue
        assert api.store.range("/registry/things/shop/t1").kvs[0].value == encode_object(admitted)
        seen = admitted


def test_mutations_are_validated_once_all_have_run():
    api = APIServer(program_of(SPEC + """
policy "a pod's network is chosen in two steps" {
  mutate pod p when p.podCIDR == none and get(p.labels, "net", "") == "auto"
    set p.podCIDR = get(p.labels, "net", "")
  mutate pod p when str(p.podCIDR) == "auto"
    set p.podCIDR = 10.0.0.0/24
}
"""), open_store())
    assert str(api.create(api.admin, "pod", pod(labels={"net": "auto"}))["podCIDR"]) == "10.0.0.0/24"


def test_a_mutation_may_call_the_address_built_ins():
    api = APIServer(program_of(SPEC + """
policy "a pod's network is its node's first /24" {
  mutate pod p when p.podCIDR == none set p.podCIDR = cidr_subnet(10.0.0.0/16, 24, 0)
}
"""), open_store())
    assert str(api.create(api.admin, "pod", pod())["podCIDR"]) == "10.0.0.0/24"


def test_a_pure_policy_judges_objects_alike_in_what_it_reads_once(api, monkeypatch):
    ports = next(deny.cond for policy, deny, _ in api._policies["Pod"] if "ports" in policy.message)
    judged = []
    real = api._admission.eval
    monkeypatch.setattr(api._admission, "eval", lambda e, env: judged.append(e) or real(e, env))
    api.create(api.admin, "pod", pod("a"))
    api.create(api.admin, "pod", pod("b", labels={"x": "y"}))  # alike in containers: not judged again
    assert judged.count(ports) == 1
    two = [{"name": "c", "image": "nginx"}, {"name": "c", "image": "nginx"}]
    with pytest.raises(Invalid):  # other containers are judged, and refused
        api.create(api.admin, "pod", pod("c", containers=two))
    with pytest.raises(Invalid):  # and the refusal is kept too, with its message
        api.create(api.admin, "pod", pod("d", containers=two))
    assert judged.count(ports) == 2


def test_a_pure_policy_judges_objects_alike_at_the_ends_of_the_paths_it_reads_once(monkeypatch):
    # `s.template.image` reads the template only there: sets whose templates differ in their
    # labels share the verdict on the image; another image, or a template without one, is judged.
    api = APIServer(program_of("""
record Template { labels: map<string> = {}  image: string? }
kind Set { template: Template? }
policy "a template names its image" { deny set s when s.template.image == "" because "no image" }
"""), open_store())
    image = api._policies["Set"][0][1].cond
    judged = []
    real = api._admission.eval
    monkeypatch.setattr(api._admission, "eval", lambda e, env: judged.append(e) or real(e, env))
    api.create(api.admin, "set", {"name": "a", "template": {"labels": {"app": "a"}, "image": "nginx"}})
    api.create(api.admin, "set", {"name": "b", "template": {"labels": {"app": "b"}, "image": "nginx"}})
    assert judged.count(image) == 1
    with pytest.raises(Invalid, match="no image"):
        api.create(api.admin, "set", {"name": "c", "template": {"labels": {"app": "a"}, "image": ""}})
    api.create(api.admin, "set", {"name": "d"})  # no template: named by the whole field
    api.create(api.admin, "set", {"name": "e", "template": {"image": None}})
    assert judged.count(image) == 4


def test_a_create_alike_to_an_earlier_one_is_judged_by_a_policy_reading_other_objects_once_they_change(monkeypatch):
    # The verdict of a policy that reads the object's fields but its name, and other objects,
    # holds for a create alike to an earlier one while no object of those kinds is written.
    api = APIServer(program_of("""
kind Item { size: int = 0 }
kind Ban { size: int }
policy "a banned size is refused" { deny item i when any(ban b where b.size == i.size) because "banned" }
"""), open_store())
    banned = api._policies["Item"][0][1].cond
    judged = []
    real = api._admission.eval
    monkeypatch.setattr(api._admission, "eval", lambda e, env: judged.append(e) or real(e, env))
    api.create(api.admin, "item", {"name": "a", "size": 1}, shared=True)
    api.create(api.admin, "item", {"name": "b", "size": 1}, shared=True)
    assert judged.count(banned) == 1
    api.create(api.admin, "ban", {"name": "one", "size": 1})
    with pytest.raises(Invalid, match="banned"):
        api.create(api.admin, "item", {"name": "c", "size": 1}, shared=True)
    assert judged.count(banned) == 2


def test_an_update_keeping_the_fields_a_pure_policy_reads_is_not_judged_again(api, monkeypatch):
    created = api.create(api.admin, "pod", pod())
    ports, quota = [deny.cond for policy, deny, _ in api._policies["Pod"]]
    judged = []
    real = api._admission.eval
    monkeypatch.setattr(api._admission, "eval", lambda e, env: judged.append(e) or real(e, env))
    api.update(api.admin, "pod", dict(created, phase="Running"))
    # Only the quota policy, which reads other objects, is judged again; the ports policy reads
    # only the containers, which the update keeps.
    assert [e for e in judged if e in (ports, quota)] == [quota]
    judged.clear()
    current = api.get(api.admin, "pod", "shop", "web-1")
    with pytest.raises(Invalid):  # a change to what it reads is judged
        api.update(api.admin, "pod", dict(current, containers=current["containers"] * 2))
    assert [e for e in judged if e in (ports, quota)] == [ports]


_ITEMS = """
kind Item {
  a: int = 0
  b: int = 0
  c: int = 0
}

policy "a is not negative" {
  deny item x when x.a < 0
}

policy "b is not negative" {
  deny item x when x.b < 0
}

policy "a and b are at most 100" {
  deny item x when x.a + x.b > 100
}

policy "a is at most 5" {
  deny item x when x.a > 5
}
"""


def test_an_update_is_judged_by_the_denies_reading_what_it_changes_in_their_order(monkeypatch):
    api = APIServer(program_of(_ITEMS), open_store())
    names = {id(deny): policy.message for policy, deny, _ in api._policies["Item"]}
    judged = []
    real = api._holds
    monkeypatch.setattr(api, "_holds", lambda clause, *args: judged.append(names[id(clause)]) or real(clause, *args))
    item = api.create(api.admin, "item", {"name": "i"})
    assert len(judged) == 4
    for change, expected in [({"c": 1}, []),  # a field no deny reads
                             ({"b": 1}, ["b is not negative", "a and b are at most 100"]),
                             ({"a": 2}, ["a is not negative", "a and b are at most 100", "a is at most 5"]),
                             ({"b": 2, "c": 2}, ["b is not negative", "a and b are at most 100"]),
                             ({"c": 3}, [])]:
        judged.clear()
        item = api.update(api.admin, "item", dict(item, **change))
        assert judged == expected, change
    # the first refusal in declaration order, whichever changed field it reads
    for change, refusal, expected in [({"a": -1, "b": -1}, "a is not negative", ["a is not negative"]),
                                      ({"b": -1}, "b is not negative", ["b is not negative"]),
                                      ({"b": 99}, "a and b are at most 100",
                                       ["b is not negative", "a and b are at most 100"])]:
        judged.clear()
        with pytest.raises(Invalid) as e:
            api.update(api.admin, "item", dict(item, **change))
        assert e.value.causes == [refusal] and judged == expected


def test_denies_reading_the_same_field_keep_their_own_verdicts():
    api = APIServer(program_of(_ITEMS), open_store())
    api.create(api.admin, "item", {"name": "three", "a": 3})  # judged by both: neither holds
    for name, a, refusal in [("seven", 7, "a is at most 5"), ("minus", -7, "a is not negative")]:
        with pytest.raises(Invalid) as e:
            api.create(api.admin, "item", {"name": name, "a": a})
        assert e.value.causes == [refusal]


def test_ratcheting_compares_with_what_was_admitted_not_the_object_handed_back(api):
    created = api.create(api.admin, "pod", pod())
    created["containers"].append(dict(created["containers"][0]))  # the caller edits what it got back
    with pytest.raises(Invalid):
        api.update(api.admin, "pod", created)


def test_ratcheting_compares_with_what_an_update_admitted_not_the_object_handed_back(api):
    created = api.create(api.admin, "pod", pod())
    updated = api.update(api.admin, "pod", dict(created, phase="Running"))  # keeps the containers
    updated["containers"].append(dict(updated["containers"][0]))  # the caller edits what it got back
    with pytest.raises(Invalid):
        api.update(api.admin, "pod", updated)


def test_a_deny_of_creates_alone_is_not_judged_on_an_update(monkeypatch):
    # `x.resourceVersion == none and …` is how a policy names a create; an update's object has
    # its resourceVersion, and the rest of the condition (which reads the store) is not asked.
    api = APIServer(program_of(SPEC + """
def quota_full(ns: string) = count(pod o where o.namespace == ns) >= 2
policy "a full namespace takes no new pod" {
  deny pod p when p.resourceVersion == none and quota_full(p.namespace) because "full"
}
policy "a pod named late is refused once the namespace is full" {
  deny pod p when p.name == "late" and quota_full(p.namespace) because "late and full"
}
"""), open_store())
    new, late = [deny.cond for policy, deny, _ in api._policies["Pod"] if "full" in policy.message]
    created = api.create(api.admin, "pod", pod())
    api.create(api.admin, "pod", pod("late"))
    judged = []
    real = api._admission.eval
    monkeypatch.setattr(api._admission, "eval", lambda e, env: judged.append(e) or real(e, env))
    api.update(api.admin, "pod", dict(created, phase="Running"))
    assert new not in judged and late in judged  # `and` reads its left first: only the idiom tells
    with pytest.raises(Invalid, match="late and full"):
        api.update(api.admin, "pod", dict(api.get(api.admin, "pod", "shop", "late"), phase="Running"))
    with pytest.raises(Invalid, match='"web-2" is invalid: full'):
        api.create(api.admin, "pod", pod("web-2"))
    assert new in judged


def test_ratcheting_takes_a_value_a_shared_watch_handed_over_as_kept_without_comparing_it(api, monkeypatch):
    import engine.api

    w = api.watch(api.admin, "pod", api.store.revision + 1, shared=True)
    api.create(api.admin, "pod", pod())
    seen = w.poll()[-1].object
    compared = []
    real = engine.api.differs
    monkeypatch.setattr(engine.api, "differs", lambda a, b, loose: compared.append(b) or real(a, b, loose))
    api.update(api.admin, "pod", dict(seen, phase="Running"))
    assert seen["containers"] not in compared and compared == []
    with pytest.raises(Invalid):  # a container list of its own is compared, and judged
        api.update(api.admin, "pod", dict(w.poll()[-1].object, containers=seen["containers"] * 2))


# ---- mutating admission ---------------------------------------------------------

MUTATING = SPEC + """
policy "a pod names its team and its pager" {
  mutate pod p when p.labels.team == none
    set p.labels = put(p.labels, "team", "platform")
    set p.labels = put(p.labels, "pager", p.labels.team + "-oncall")
}

policy "every pod runs the team's sidecar" {
  mutate pod p when not any(c.name == "sidecar" for c in p.containers)
    set p.containers = p.containers + [{name: "sidecar", image: "envoy:" + p.labels.team}]
}

policy "a pod belongs to a team" {
  deny pod p when p.labels.team == none because "no team"
}
"""


@pytest.fixture
def mutating():
    store = open_store()
    yield APIServer(program_of(MUTATING), store)
    store.close()


def test_a_created_object_is_stored_mutated_in_one_write(mutating):
    before = mutating.revision
    obj = mutating.create(mutating.admin, "pod", pod())
    assert obj["labels"]["team"] == "platform"
    assert mutating.revision == before + 1 == obj["resourceVersion"]
    assert mutating.get(mutating.admin, "pod", "shop", "web-1") == obj


def test_a_mutation_sees_the_sets_and_mutations_before_it(mutating):
    obj = mutating.create(mutating.admin, "pod", pod())
    assert obj["labels"] == {"team": "platform", "pager": "platform-oncall"}
    assert [(c["name"], c["image"]) for c in obj["containers"]] == [("c", "nginx"), ("sidecar", "envoy:platform")]


def test_a_mutation_whose_when_is_false_changes_nothing(mutating):
    obj = mutating.create(mutating.admin, "pod", pod(labels={"team": "db"}))
    assert obj["labels"] == {"team": "db"}
    assert obj["containers"][1]["image"] == "envoy:db"


def test_what_a_mutation_adds_gets_its_defaults(mutating):
    sidecar = mutating.create(mutating.admin, "pod", pod())["containers"][1]
    assert sidecar["cpu"] == Fraction(1, 10) and sidecar["ports"] == []


def test_mutations_apply_to_updates_too(mutating):
    created = mutating.create(mutating.admin, "pod", pod())
    updated = mutating.update(mutating.admin, "pod", dict(created, labels={}, containers=created["containers"][:1]))
    assert updated["labels"] == created["labels"] and updated["containers"] == created["containers"]
    assert updated["resourceVersion"] == created["resourceVersion"]  # mutated back to what is stored: no write


def test_validating_policies_judge_the_mutated_object(mutating):
    assert mutating.create(mutating.admin, "pod", pod())["labels"]["team"] == "platform"  # not denied


def test_ratcheting_compares_what_was_admitted_with_the_mutated_object(mutating, monkeypatch):
    created = mutating.create(mutating.admin, "pod", pod())
    [team] = [deny.cond for policy, deny, _ in mutating._policies["Pod"] if policy.message == "a pod belongs to a team"]
    judged = []
    real = mutating._admission.eval
    monkeypatch.setattr(mutating._admission, "eval", lambda e, env: judged.append(e) or real(e, env))
    mutating.update(mutating.admin, "pod", dict(created, labels={}, phase="Running"))
    # The client dropped the labels and the mutation put them back: unchanged, not judged again.
    assert not any(e is team for e in judged)
    current = mutating.get(mutating.admin, "pod", "shop", "web-1")
    mutating.update(mutating.admin, "pod", dict(current, labels={"team": "db"}))
    assert any(e is team for e in judged)


def test_an_update_stores_what_it_admitted_whether_or_not_a_mutation_applied(mutating):
    # An update where no mutation applies encodes only the fields that were not kept; one where a
    # mutation applies looks at them all. Either way the store holds the object admitted, and the
    # server's record of it (what a shared watch hands over) is what decoding the bytes gives.
    info = mutating.kind_info("pod")
    key = mutating.key(info, "shop", "web-1")
    created = mutating.create(mutating.admin, "pod", pod())
    watched = dict(mutating._stored[key].object)
    for change in ({"phase": "Running"}, {"labels": {}}, {"containers": watched["containers"][:1]},
                   {"phase": "Done", "node": "n1"}, {"labels": {"team": "db"}, "phase": "Failed"}):
        updated = mutating.update(mutating.admin, "pod", {**watched, **change})
        [kv] = mutating.store.range(key).kvs
        assert kv.value == encode_object(updated)
        assert repr(mutating._stored[key].object) == repr(decode_object(kv))
        watched = dict(mutating._stored[key].object)
    assert (updated["labels"], updated["phase"], updated["node"]) == ({"team": "db"}, "Failed", "n1")
    assert len(updated["containers"]) == len(created["containers"])


def test_defaulted_applies_the_mutations_as_a_create_would(mutating):
    wanted = mutating.defaulted("pod", pod())
    created = mutating.create(mutating.admin, "pod", pod())
    assert all(created[k] == v for k, v in wanted.items() if k not in ("resourceVersion", "createdRevision"))


def test_a_mutated_object_is_validated_again():
    api = APIServer(program_of(SPEC + """
policy "pods are placed by their label" {
  mutate pod p when p.node == none
    set p.node = get(p.labels, "node", 1)
}
"""), open_store())
    with pytest.raises(Invalid) as e:
        api.create(api.admin, "pod", pod())
    assert e.value.causes == ["node: Invalid value: 1: must be of type string"]


def test_a_mutation_that_fails_to_evaluate_is_an_internal_error_at_its_expression():
    failing = "    set p.phase = str(1 / len(p.labels))"
    text = SPEC + f"""
policy "a pod's phase is its share" {{
  mutate pod p when p.phase == "Pending"
{failing}
}}
"""
    api = APIServer(program_of(text), open_store())
    with pytest.raises(KonvergeError) as e:
        api.create(api.admin, "pod", pod())
    assert (e.value.code, e.value.reason) == (500, "InternalError")
    assert e.value.message == ('Internal error occurred: admission policy "a pod\'s phase is its share" could not '
                               'mutate Pod "web-1": division by zero')
    d = e.value.diagnostics[0]
    assert (d.span.line, d.span.col) == (text.splitlines().index(failing) + 1, failing.index("1 /") + 1)
    assert d.hint == "narrow the mutation's `when` to the Pods it can change"


def test_a_mutation_is_judged_by_the_fields_as_the_mutations_before_it_left_them():
    api = APIServer(program_of(SPEC + """
policy "a pending pod without a node is queued" {
  mutate pod p when p.phase == "Pending" and p.node == none
    set p.phase = "Queued"
}

policy "a queued pod is labelled" {
  mutate pod p when p.phase == "Queued"
    set p.labels = put(p.labels, "queued", "yes")
}
"""), open_store())
    queued = api.create(api.admin, "pod", pod("a"))
    assert (queued["phase"], queued["labels"]) == ("Queued", {"queued": "yes"})
    # Pending as the second mutation sees it, this time: it is not labelled, though the first
    # pod was when it was Pending as the request had it.
    placed = api.create(api.admin, "pod", pod("b", node="n1"))
    assert (placed["phase"], placed["labels"]) == ("Pending", {})
    again = api.create(api.admin, "pod", pod("c"))
    assert (again["phase"], again["labels"]) == ("Queued", {"queued": "yes"})


# ---- validation ----------------------------------------------------------------


@pytest.mark.parametrize("change, cause", [
    ({"containers": [{"name": "c"}]}, "containers[0].image: Required value"),
    ({"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80}, {"containerPort": "80"}]}]},
     'containers[0].ports[1].containerPort: Invalid value: "80": must be of type int'),
    ({"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 1, "hostIP": "10.0.0.300"}]}]},
     'containers[0].ports[0].hostIP: Invalid value: "10.0.0.300": must be a valid IP address, '
     "(e.g. 10.9.8.7 or 2001:db8::ffff)"),
    ({"podCIDR": "10.0.0.0"}, 'podCIDR: Invalid value: "10.0.0.0": must be a valid CIDR value, '
                              "(e.g. 10.9.8.0/24 or 2001:db8::/64)"),
    ({"containers": [{"name": "c", "image": "x", "cpu": 0.5}]},
     "containers[0].cpu: Invalid value: 0.5: must be of type quantity"),
    ({"labels": {"app": 1}}, "labels[app]: Invalid value: 1: must be of type string"),
    ({"phase": True}, "phase: Invalid value: true: must be of type string"),
    ({"containers": "nginx"}, 'containers: Invalid value: "nginx": must be of type list<Container>'),
    ({"contianers": []}, 'contianers: Unsupported value: field not declared in schema; did you mean "containers"?'),
    ({"health": {"probe": {"path": "/", "periodd": 1}}},
     'health.probe.periodd: Unsupported value: field not declared in schema; did you mean "period"?'),
])
def test_validation_reports_the_path_of_what_is_wrong(api, change, cause):
    with pytest.raises(Invalid) as e:
        api.create(api.admin, "pod", pod(**change))
    assert e.value.causes == [cause]
    assert e.value.message == f'Pod "web-1" is invalid: {cause}'


class _Tag(str):
    """A str subclass: the schema takes it for a string."""


class _Count(int):
    """An int subclass: the schema takes it for an int."""


class _Map(dict):
    """A dict subclass: the schema takes it for a map or a record."""


# A kind with a field of every sort of type, for the schema's promises.
THINGS = """
record Port {
  containerPort: int
  protocol: string = "TCP"
  hostIP: ip?
}

record Item {
  name: string
  tags: list<string> = []
  weights: map<float> = {}
  node: ref<Node>?
  extra: any?
  after: duration = 1s
  share: quantity = 100m
  port: Port?
  ports: list<Port> = []
}

record Pair {
  left: list<int>
  right: any
}

cluster kind Node {
  cpu: quantity
}

kind Thing {
  items: list<Item> = []
  counts: map<int> = {}
  cidrs: list<cidr> = []
  flags: list<bool>?
  nested: map<list<Item>>?
  anything: any = "x"
  enabled: bool = true
  first: Item?
  misc: list<any> = []
  pair: Pair?
}
"""

# Leaves of every sort a caller might send, right and wrong.
LEAVES = (st.none() | st.booleans() | st.integers(-2, 3) | st.sampled_from([0.5, 1.0, -0.0])
          | st.fractions(max_denominator=4) | st.sampled_from(["c", "10.0.0.1", "10.0.0.0/8", "::1", "::1/128"])
          | st.builds(_Tag, st.sampled_from(["c", "10.0.0.1"])) | st.builds(_Count, st.integers(0, 3)))


def _valid(program, t):
    """Values of type `t` that a create takes, some with fields left to their defaults; of the
    plain Python types (`_perturbed` brings the others)."""
    from engine.types import ANY, ListT, MapT, OptT, Prim, RecordT, RefT

    if isinstance(t, OptT):
        return st.none() | _valid(program, t.inner)
    if t == ANY:
        return LEAVES.filter(lambda v: v is not None) | st.lists(st.integers(), max_size=2)
    if isinstance(t, Prim):
        return {"int": st.integers(-3, 3),
                "float": st.integers(-3, 3) | st.sampled_from([0.5, -0.0, 2.0]),
                "bool": st.booleans(),
                "string": st.sampled_from(["", "a", "é"]),
                "quantity": st.integers(0, 3) | st.fractions(0, 2, max_denominator=4),
                "duration": st.integers(0, 3) | st.fractions(0, 2, max_denominator=4),
                "ip": st.sampled_from(["10.0.0.1", "::1"]),
                "cidr": st.sampled_from(["10.0.0.0/8", "::1/128"])}[t.name]
    if isinstance(t, RefT):
        return st.sampled_from(["n1", "n2"])
    if isinstance(t, ListT):
        return st.lists(_valid(program, t.elem), max_size=2)
    if isinstance(t, MapT):
        return st.dictionaries(st.sampled_from(["a", "b", "c"]), _valid(program, t.value), max_size=2)
    if isinstance(t, RecordT):
        return _valid_fields(program, program.records[t.name].fields)
    raise AssertionError(t)


def _valid_fields(program, fields: dict):
    """Records or objects with these fields that a create takes; fields with defaults may be left out."""
    from engine.types import OptT

    needed = {n: _valid(program, f.type) for n, f in fields.items() if f.default is None and not isinstance(f.type, OptT)}
    optional = {n: _valid(program, f.type) for n, f in fields.items() if n not in needed}
    return st.fixed_dictionaries(needed, optional=optional)


def _paths(v, at=()):
    """The paths to every value within `v`, `v`'s own first."""
    yield at
    if isinstance(v, dict | list):
        for k, x in v.items() if isinstance(v, dict) else enumerate(v):
            yield from _paths(x, (*at, k))


def _near(x) -> list:
    """None, and values that pass for `x` by `==` or by their text, of another type."""
    t = type(x)
    if t is bool:
        return [None, int(x), _Count(x)]
    if t is int:
        return [None, x == 1, float(x), Fraction(x), _Count(x), str(x)]
    if t is float:
        return [None, int(x), Fraction(x), x == 1.0]
    if t is Fraction:
        return [None, float(x), int(x)]
    if t is str:
        return [None, _Tag(x), x.encode()]
    return [None]


def _at(v, path):
    for k in path:
        v = v[k]
    return v


def _replace(v, path, new):
    if not path:
        return new
    out = dict(v) if isinstance(v, dict) else list(v)
    out[path[0]] = _replace(v[path[0]], path[1:], new)
    return out


@st.composite
def _perturbed(draw, strategy):
    """An object from `strategy`, most times with one value in it made wrong, or odd but right."""
    v = draw(strategy)
    paths = list(_paths(v))[1:]  # not the object itself: it stays an object
    if not paths or not draw(st.integers(0, 3)):
        return v
    leaves = [p for p in paths if not isinstance(_at(v, p), dict | list)]
    path = draw(st.sampled_from(leaves if leaves and draw(st.booleans()) else paths))
    x = _at(v, path)
    near = st.sampled_from(_near(x))
    odd = [near, near, near, LEAVES]
    if isinstance(x, list):
        odd.append(st.just(tuple(x)))
    if isinstance(x, dict):
        odd += [st.just(_Map(x)), st.just({**x, "extra": 1}), st.just(dict(list(x.items())[1:]))]
        if x:
            first = next(iter(x))  # its key, but not a string
            odd.append(st.just({(1 if k == first else k): y for k, y in x.items()}))
    return _replace(v, path, draw(st.one_of(odd)))


def _containers(v, out=None):
    """The maps and lists in a value, outermost first."""
    out = [] if out is None else out
    if isinstance(v, dict | list | tuple):
        out.append(v)
        for x in v.values() if isinstance(v, dict) else v:
            _containers(x, out)
    return out


def _default_as_declared(api, fields: dict, obj: dict) -> dict:
    """Defaulting as the declarations read, walked anew at every value: what the compiled
    defaulters must do."""
    from engine.types import ListT, MapT, OptT, RecordT

    def value(t, v):
        if v is None:
            return None
        if isinstance(t, OptT):
            return value(t.inner, v)
        if isinstance(t, RecordT) and isinstance(v, dict):
            return record(api.program.records[t.name].fields, v)
        if isinstance(t, ListT) and isinstance(v, list):
            return [value(t.elem, x) for x in v]
        if isinstance(t, MapT) and isinstance(v, dict):
            return {k: value(t.value, x) for k, x in v.items()}
        return v

    def record(fields, obj):
        out = dict(obj)
        for f in fields.values():
            v = out.get(f.name)
            if v is None and (f.name not in out or not isinstance(f.type, OptT)):
                if f.default is not None:
                    v = api._schema._defaults.eval(f.default, {})
                out[f.name] = v
            out[f.name] = value(f.type, out[f.name])
        return out

    return record(fields, obj)


@pytest.fixture(scope="module")
def things():
    return program_of(THINGS)


@settings(max_examples=200)
@given(data=st.data())
def test_the_compiled_schema_defaults_and_validates_as_the_declarations_read(things, data):
    from engine.api import META, _check_fields

    api = APIServer(things, open_store())
    info = api.kind_info("thing")
    obj = api._incoming(info, {"name": "t", "namespace": "shop", **data.draw(_perturbed(_valid_fields(things, info.fields)))})
    defaulted = api._default_fields(info.fields, obj)
    expected = _default_as_declared(api, info.fields, obj)
    assert repr(defaulted) == repr(expected)  # the types and the order of maps too
    given_ids = {id(c) for c in _containers(obj)}
    assert [id(c) in given_ids for c in _containers(defaulted)] == [id(c) in given_ids for c in _containers(expected)]
    causes: list[str] = []
    _check_fields(things, info.fields, defaulted, "", causes, set(META))
    assert not (api._schema.fields_valid(info.fields, defaulted, meta=True) and causes)
    if causes:
        with pytest.raises(Invalid) as e:
            api.create(api.admin, "thing", obj)
        assert e.value.causes == causes
    else:
        assert api.create(api.admin, "thing", obj)["resourceVersion"]


@settings(max_examples=200)
@given(data=st.data())
def test_an_update_defaults_and_validates_as_if_it_were_all_new(things, data):
    # An update defaults and validates only the fields that do not hold the very values of what
    # it replaces: it must come to what doing so to all of its fields does.
    from engine.api import META, _check_fields

    api = APIServer(things, open_store())
    info = api.kind_info("thing")
    made = api.create(api.admin, "thing", {"name": "t", "namespace": "shop",
                                           **data.draw(_valid_fields(things, info.fields))})
    kept = api._stored[api.key(info, "shop", "t")].object  # what a shared watch hands over
    other = data.draw(_perturbed(_valid_fields(things, info.fields)))
    changed = data.draw(st.sets(st.sampled_from(sorted(info.fields))))
    obj = {**kept, **{f: other.get(f) for f in changed}}
    expected = _default_as_declared(api, info.fields, api._incoming(info, obj))
    causes: list[str] = []
    _check_fields(things, info.fields, expected, "", causes, set(META))
    if causes:
        with pytest.raises(Invalid) as e:
            api.update(api.admin, "thing", obj)
        assert e.value.causes == causes
        return
    updated = api.update(api.admin, "thing", obj)
    if updated["resourceVersion"] == made["resourceVersion"]:  # nothing changed: no write
        assert encode_object(updated) == encode_object(expected)
    else:
        assert repr({**updated, "resourceVersion": None}) == repr({**expected, "resourceVersion": None})


def test_written_since_names_the_kinds_written_after_a_revision(api):
    start = api.revision
    api.create(api.admin, "pod", pod("a"))
    middle = api.revision
    api.create(api.admin, "node", {"name": "n1", "cpu": 1})
    api.create(api.admin, "pod", pod("b"))  # the pods' latest write, after the node's
    assert api.written_since(start) == {"Pod", "Node"}
    assert api.written_since(middle) == {"Pod", "Node"}
    assert api.written_since(api.revision - 1) == {"Pod"}
    assert api.written_since(api.revision) == set()


def test_a_value_the_compiled_schema_passes_has_nothing_wrong_with_it(things):
    from engine.api import _check_value
    from engine.types import ANY, ListT, MapT, OptT, Prim, RecordT, RefT

    port_t = RecordT("Port")
    types = [*(Prim(n) for n in ("int", "float", "bool", "string", "quantity", "duration", "ip", "cidr", "none")), ANY,
             RefT("Node"), OptT(Prim("int")), ListT(Prim("int")), ListT(Prim("string")), ListT(port_t), ListT(ANY),
             MapT(Prim("int")), MapT(port_t), MapT(ListT(Prim("int"))), port_t, OptT(port_t), RecordT("Pair")]
    leaves = [None, True, False, 0, 1, -1, 1.0, 0.5, -0.0, Fraction(1, 2), Fraction(2), "", "a", "10.0.0.1", "::1",
              "10.0.0.0/8", "10.0.0.1/33", "300.1.1.1", _Tag("a"), _Tag("10.0.0.1"), _Count(1), b"a"]
    port = {"containerPort": 1, "protocol": "TCP", "hostIP": None}
    ports = [port, {"containerPort": 1}, {**port, "containerPort": True}, {**port, "protocol": None},
             {**port, "hostIP": "x"}, {**port, "hostIP": "::1"}, {**port, "x": 1}, {**port, 2: 1}, _Map(port)]
    values = [*leaves, *ports, [], (), {}, *([x] for x in [*leaves, *ports]), *((x,) for x in ["a", 1]),
              *({"a": x} for x in [*leaves, *ports]), {1: 1}, {1: port}, {1: [1]}, _Map({"a": 1}), {"a": [1]},
              {"a": [True]}, {"a": (1,)}, [[1]], [1, None], [1, "a"],
              {"left": [1], "right": 1}, {"left": None, "right": 1}, {"left": [1], "right": None}, {"left": [1]}]
    passed = 0
    for t in types:
        test = APIServer(things, open_store())._schema.test(t)
        for v in values:
            causes: list[str] = []
            _check_value(things, t, v, "x", causes)
            if test(v):
                passed += 1
                assert causes == [], (t, v)
    assert passed > len(types)  # right values pass, not only wrong ones fail


def test_an_ip_field_takes_exactly_the_addresses_ipaddress_takes(things):
    import ipaddress

    from engine.types import Prim

    octets = ["0", "00", "01", "1", "9", "10", "099", "99", "100", "199", "200", "249", "250", "255", "256", "260",
              "300", "999", "1000", "", "a", "\u0661", "\uff11", " 1", "1 ", "+1", "-1", "0x1"]
    texts = [".".join(["1", "2", "3", "4"][:i] + [o] + ["1", "2", "3", "4"][i + 1:]) for o in octets for i in range(4)]
    texts += [t + tail for t in ["10.0.0.1", "255.255.255.255", "0.0.0.0"] for tail in ["", "\n", "/24", ".1", " "]]
    texts += ["1.2.3", "1.2.3.4.5", "1..2.3", "1:2::3", "::1", "10.0.0.1:80", ""]
    test = APIServer(things, open_store())._schema.test(Prim("ip"))
    for text in texts:
        try:
            ipaddress.ip_address(text)
            valid = True
        except ValueError:
            valid = False
        assert test(text) is valid, text


def test_several_validation_errors_are_reported_together(api):
    with pytest.raises(Invalid) as e:
        api.create(api.admin, "pod", pod(containers=[{"name": "c"}], phase=1))
    assert e.value.message == ('Pod "web-1" is invalid: [containers[0].image: Required value, '
                               "phase: Invalid value: 1: must be of type string]")


@pytest.mark.parametrize("name", ["Web-1", "web_1", "-web", "web-", "a" * 254, "web\n"])
def test_object_names_must_be_rfc_1123_subdomains(api, name):
    with pytest.raises(Invalid) as e:
        api.create(api.admin, "pod", pod(name))
    assert e.value.causes[0].startswith(f"name: Invalid value: {json.dumps(name)}: a lowercase RFC 1123 subdomain")


def test_a_missing_required_field_of_the_kind_is_required_value(api):
    with pytest.raises(Invalid) as e:
        api.create(api.admin, "node", {"name": "n1"})
    assert e.value.message == 'Node "n1" is invalid: cpu: Required value'


def test_a_cluster_scoped_object_cannot_have_a_namespace(api):
    with pytest.raises(Invalid):
        api.create(api.admin, "node", {"name": "n1", "namespace": "shop", "cpu": 1})


def test_the_standard_kinds_default_and_validate_a_pod():
    from engine.show import standard_program

    api = APIServer(standard_program(), open_store())
    obj = api.create(api.admin, "pod", {"name": "web-1", "namespace": "default",
                                        "containers": [{"name": "c", "image": "nginx",
                                                        "ports": [{"containerPort": 80}]}]})
    assert obj["restartPolicy"] == "Always" and obj["terminationGracePeriodSeconds"] == 30
    assert obj["schedulerName"] == "default-scheduler"
    assert obj["containers"][0]["ports"][0]["protocol"] == "TCP"
    with pytest.raises(Invalid) as e:
        api.create(api.admin, "pod", {"name": "web-2", "containers": [{"name": "c", "image": "nginx",
                                                                      "ports": [{"containerPort": 80},
                                                                                {"containerPort": 80}]}]})
    assert e.value.message.startswith('Pod "web-2" is invalid: ')


# ---- commit and optimistic concurrency ---------------------------------------------


def test_two_updates_from_the_same_resource_version_the_second_is_a_conflict(api):
    created = api.create(api.admin, "pod", pod())
    first = api.update(api.admin, "pod", dict(created, phase="Running"))
    assert first["resourceVersion"] > created["resourceVersion"]
    with pytest.raises(Conflict):
        api.update(api.admin, "pod", dict(created, phase="Succeeded"))
    assert api.get(api.admin, "pod", "shop", "web-1")["phase"] == "Running"


@given(st.lists(st.sampled_from(["Pending", "Running", "Failed"]), min_size=1, max_size=6))
def test_only_the_writer_holding_the_latest_version_succeeds(program, phases):
    api = APIServer(program, open_store())
    current = api.create(api.admin, "pod", pod())
    stale = current
    for phase in phases:
        new = api.update(api.admin, "pod", dict(current, phase=phase))
        if new["resourceVersion"] != current["resourceVersion"]:
            with pytest.raises(Conflict):
                api.update(api.admin, "pod", dict(stale, phase="Unknown"))
        stale, current = current, new
    assert api.get(api.admin, "pod", "shop", "web-1") == current


_JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.fractions())
_JSON_VALUES = st.recursive(_JSON_LEAVES, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                            max_leaves=12)


@given(st.dictionaries(st.text(), _JSON_VALUES, max_size=5))
@settings(max_examples=100)
def test_an_object_is_stored_as_the_sorted_json_of_its_encoding(obj):
    stored = {k: v for k, v in obj.items() if k not in ("resourceVersion", "createdRevision")}
    assert encode_object(obj) == json.dumps(encode(stored), sort_keys=True, separators=(",", ":"),
                                            ensure_ascii=False).encode()


def test_an_update_that_changes_nothing_keeps_the_revision(api):
    created = api.create(api.admin, "pod", pod())
    before = api.store.revision
    again = api.update(api.admin, "pod", created)
    assert again == created and api.store.revision == before


def test_an_update_without_resource_version_is_invalid(api):
    api.create(api.admin, "pod", pod())
    with pytest.raises(Invalid):
        api.update(api.admin, "pod", pod(phase="Running"))


def test_objects_carry_revisions_and_are_stored_as_deterministic_json(api):
    created = api.create(api.admin, "pod", pod(managedBy="rs/web"))
    kv = api.store.range("/registry/pods/shop/web-1").kvs[0]
    assert created["resourceVersion"] == created["createdRevision"] == kv.mod_revision
    assert kv.value == encode_object(created)
    data = json.loads(kv.value)
    assert list(data) == sorted(data) and "resourceVersion" not in data
    assert data["containers"][0]["cpu"] == {"$frac": [1, 10]} and data["managedBy"] == "rs/web"
    updated = api.update(api.admin, "pod", dict(created, phase="Running"))
    assert updated["createdRevision"] == created["createdRevision"] < updated["resourceVersion"]


def test_list_is_in_key_order_and_filters_by_namespace(api):
    for ns, name in [("b", "x"), ("a", "y"), ("a", "x")]:
        api.create(api.admin, "pod", pod(name, ns))
    objs, rev = api.list(api.admin, "pods")
    assert [(o["namespace"], o["name"]) for o in objs] == [("a", "x"), ("a", "y"), ("b", "x")]
    assert rev == api.store.revision
    assert [o["name"] for o in api.list(api.admin, "pod", "a")[0]] == ["x", "y"]


# ---- watch and informer -------------------------------------------------------------


def test_watch_reports_added_modified_and_deleted(api):
    w = api.watch(api.admin, "pod", api.store.revision + 1)
    created = api.create(api.admin, "pod", pod())
    api.create(api.admin, "node", {"name": "n1", "cpu": 1})  # another kind: not in this watch
    updated = api.update(api.admin, "pod", dict(created, phase="Running"))
    api.delete(api.admin, "pod", "shop", "web-1")
    events = w.poll()
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[0].object == created and events[0].previous is None
    assert events[1].object == updated and events[1].previous == created
    assert events[2].previous == updated and events[2].object["phase"] == "Running"
    assert events[2].object["resourceVersion"] == api.store.revision
    assert w.poll() == []


def test_watch_from_a_past_revision_replays_history(api):
    created = api.create(api.admin, "pod", pod())
    api.update(api.admin, "pod", dict(created, phase="Running"))
    events = api.watch(api.admin, "pod", created["resourceVersion"]).poll()
    assert [e.type for e in events] == ["ADDED", "MODIFIED"]


def test_informer_lists_then_follows_the_watch(api):
    api.create(api.admin, "pod", pod("a"))
    inf = Informer(api, api.admin, ["pod", "node"])
    assert [o["name"] for o in inf.scan("pod")] == ["a"]
    b = api.create(api.admin, "pod", pod("b"))
    api.create(api.admin, "node", {"name": "n1", "cpu": 1})
    events = inf.poll()
    assert [(e.type, e.object["kind"]) for e in events] == [("ADDED", "Pod"), ("ADDED", "Node")]
    assert inf.get("pod", "shop", "b") == b and inf.get("node", None, "n1")["cpu"] == 1
    api.delete(api.admin, "pod", "shop", "a")
    assert [e.type for e in inf.poll()] == ["DELETED"]
    assert [o["name"] for o in inf.list("pod")] == ["b"]


def test_informer_gives_the_events_of_several_kinds_in_revision_order(api):
    # Each kind's watch gives its own events in order; polled kind by kind, they are merged.
    inf = Informer(api, api.admin, ["pod", "node"])
    api.create(api.admin, "node", {"name": "n1", "cpu": 1})
    api.create(api.admin, "pod", pod("a"))
    api.create(api.admin, "node", {"name": "n2", "cpu": 1})
    events = inf.poll()
    assert [(e.object["kind"], e.object["name"]) for e in events] == [("Node", "n1"), ("Pod", "a"), ("Node", "n2")]
    assert inf.revision == api.revision


def test_informer_relists_after_compaction_and_reports_the_difference(api):
    a = api.create(api.admin, "pod", pod("a"))
    api.create(api.admin, "pod", pod("b"))
    inf = Informer(api, api.admin, ["pod"])
    api.update(api.admin, "pod", dict(a, phase="Running"))
    api.delete(api.admin, "pod", "shop", "b")
    api.create(api.admin, "pod", pod("c"))
    api.create(api.admin, "node", {"name": "n1", "cpu": 1})
    api.store.compact(api.store.revision)  # the watch's history is gone
    events = inf.poll()
    assert inf.relists == 1
    # In revision order, as a watch gives them: the deletion is dated at the list's revision, the latest.
    assert [(e.type, e.object["name"]) for e in events] == [("MODIFIED", "a"), ("ADDED", "c"), ("DELETED", "b")]
    assert [e.revision for e in events] == sorted(e.revision for e in events)
    assert [o["name"] for o in inf.scan("pod")] == ["a", "c"]
    assert inf.get("pod", "shop", "a")["phase"] == "Running"
    api.create(api.admin, "pod", pod("d"))  # and it watches again after the relist
    assert [e.object["name"] for e in inf.poll()] == ["d"]
    assert inf.relists == 1


def test_informer_loses_no_event_of_a_kind_it_had_nothing_of_when_history_is_compacted(api):
    inf = Informer(api, api.admin, ["pod", "node"])
    api.create(api.admin, "pod", pod("a"))
    assert [e.object["name"] for e in inf.poll()] == ["a"]  # no node was written: nothing to ask
    api.create(api.admin, "pod", pod("b"))
    inf.poll()
    api.store.compact(api.store.revision)  # history without any node in it
    api.create(api.admin, "node", {"name": "n1", "cpu": 1})
    assert [(e.type, e.object["name"]) for e in inf.poll()] == [("ADDED", "n1")]
    assert inf.relists == 0
    api.create(api.admin, "node", {"name": "n2", "cpu": 1})
    assert [e.object["name"] for e in inf.poll()] == ["n2"]


def test_informer_relists_a_kind_whose_events_were_compacted_before_it_polled(api):
    inf = Informer(api, api.admin, ["pod", "node"])
    api.create(api.admin, "pod", pod("a"))
    inf.poll()
    api.create(api.admin, "node", {"name": "n1", "cpu": 1})
    api.create(api.admin, "pod", pod("b"))
    api.store.compact(api.store.revision)  # the node's event is gone
    events = inf.poll()
    assert inf.relists == 2
    assert sorted((e.object["kind"], e.object["name"]) for e in events) == [("Node", "n1"), ("Pod", "b")]


class _Failing:
    """A watch that fails at its next poll, once, as a store error would, then works again."""

    def __init__(self, watcher):
        self.watcher, self.failed = watcher, False

    def __getattr__(self, name):
        return getattr(self.watcher, name)

    def poll(self):
        if not self.failed:
            self.failed = True
            raise OSError("the store could not be read")
        return self.watcher.poll()


def test_an_informer_whose_watch_fails_partway_loses_no_event_of_the_kinds_before(api):
    inf = Informer(api, api.admin, ["pod", "node"])
    inf._watchers["Node"] = _Failing(inf._watchers["Node"])
    api.create(api.admin, "pod", pod("a"))
    api.create(api.admin, "node", {"name": "n1", "cpu": 1})
    with pytest.raises(OSError):
        inf.poll()  # the pod's event was applied before the node's watch failed
    assert [(e.type, e.object["name"]) for e in inf.poll()] == [("ADDED", "a"), ("ADDED", "n1")]
    assert inf.poll() == []
    api.create(api.admin, "pod", pod("b"))
    assert [e.object["name"] for e in inf.poll()] == ["b"]


def test_an_informer_whose_relist_is_refused_keeps_its_watch_and_relists_at_the_next_poll(api, monkeypatch):
    inf = Informer(api, api.admin, ["pod"])
    api.create(api.admin, "pod", pod("a"))
    api.create(api.admin, "pod", pod("b"))
    api.store.compact(api.store.revision)  # the watch's history is gone: the pods are listed again
    listed = api.list
    monkeypatch.setattr(api, "list", lambda *a, **k: (_ for _ in ()).throw(OSError("refused")))
    with pytest.raises(OSError):
        inf.poll()
    assert inf.relists == 0 and inf.scan("pod") == []
    monkeypatch.setattr(api, "list", listed)
    assert [(e.type, e.object["name"]) for e in inf.poll()] == [("ADDED", "a"), ("ADDED", "b")]
    assert inf.relists == 1
    api.create(api.admin, "pod", pod("c"))
    assert [e.object["name"] for e in inf.poll()] == ["c"]


def test_informer_named_a_kind_twice_watches_it_once_in_its_first_place(api):
    api.create(api.admin, "node", {"name": "n1", "cpu": 1})
    api.create(api.admin, "pod", pod("a"))
    inf = Informer(api, api.admin, ["node", "pod", "nodes"])
    assert inf.kinds == ["Node", "Pod"]
    api.delete(api.admin, "node", None, "n1")
    api.delete(api.admin, "pod", "shop", "a")
    api.store.compact(api.store.revision)  # relisted: both deletions at the list's revision
    assert [(e.type, e.object["kind"]) for e in inf.poll()] == [("DELETED", "Node"), ("DELETED", "Pod")]


def test_informer_polls_every_kind_after_a_write_by_another_server(api):
    inf = Informer(api, api.admin, ["pod", "node"])
    api.create(api.admin, "pod", pod("a"))
    inf.poll()
    other = APIServer(api.program, api.store)
    other.create(other.admin, "node", {"name": "n1", "cpu": 1})
    assert [e.object["name"] for e in inf.poll()] == ["n1"]
    api.create(api.admin, "pod", pod("b"))  # this server's first write since: it cannot tell either
    other.create(other.admin, "node", {"name": "n2", "cpu": 1})
    assert [e.object["name"] for e in inf.poll()] == ["b", "n2"]


# ---- konverge get on a persisted store ------------------------------------------------


def _snapshot_dir(path):
    out = {}
    for name in sorted(os.listdir(path)):
        p = os.path.join(path, name)
        st_ = os.stat(p)
        with open(p, "rb") as f:
            out[name] = (f.read(), st_.st_mtime_ns, st_.st_size)
    return out


def _run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def data_dir(tmp_path):
    from engine.show import standard_program

    d = str(tmp_path / "store")
    store = open_store(d)
    api = APIServer(standard_program(), store)
    for ns, name in [("shop", "web-1"), ("shop", "web-2"), ("default", "db")]:
        api.create(api.admin, "pod", {"name": name, "namespace": ns,
                                      "containers": [{"name": "c", "image": "nginx", "cpu": Fraction(1, 4)}]})
    api.create(api.admin, "node", {"name": "n1", "cpu": 4, "memory": 8 * 2**30})
    store.close()
    return d


def test_get_lists_a_persisted_store_as_a_table_without_changing_it(data_dir):
    before = _snapshot_dir(data_dir)
    code, out, err = _run("get", "pods", "-n", "shop", "--data-dir", data_dir)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[0] == "NAME" and "NAMESPACE" not in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["web-1", "web-2"]
    for argv in (["get", "pod", "-A"], ["get", "pod", "web-1", "-n", "shop", "-o", "json"],
                 ["get", "nodes", "-o", "yaml"], ["get", "pod", "nope"], ["get", "podz"]):
        _run(*argv, "--data-dir", data_dir)
    assert _snapshot_dir(data_dir) == before


def test_get_all_namespaces_shows_the_namespace_column(data_dir):
    code, out, _ = _run("get", "pod", "-A", "--data-dir", data_dir)
    assert code == 0
    rows = [line.split()[:2] for line in out.splitlines()]
    assert rows == [["NAMESPACE", "NAME"], ["default", "db"], ["shop", "web-1"], ["shop", "web-2"]]


def test_get_json_and_yaml_show_the_full_object_as_the_json_contract_does(data_dir):
    code, out, _ = _run("get", "pod", "web-1", "-n", "shop", "-o", "json", "--data-dir", data_dir)
    obj = json.loads(out)
    assert code == 0 and obj["kind"] == "Pod" and obj["name"] == "web-1" and "resourceVersion" not in obj
    assert obj["containers"][0]["cpu"] == 250 and obj["restartPolicy"] == "Always"  # millicores
    code, out, _ = _run("get", "nodes", "-o", "yaml", "--data-dir", data_dir)
    data = yaml.safe_load(out)
    assert code == 0 and data["kind"] == "List" and data["items"][0]["memory"] == 8 * 2**30  # bytes


def test_get_name_output_is_kind_slash_name(data_dir):
    code, out, _ = _run("get", "Pod", "-n", "shop", "-o", "name", "--data-dir", data_dir)
    assert (code, out) == (0, "pod/web-1\npod/web-2\n")


def test_get_works_while_a_writer_holds_the_store(data_dir):
    from engine.show import standard_program

    writer = open_store(data_dir)
    try:
        APIServer(standard_program(), writer).create(
            APIServer(standard_program(), writer).admin, "node", {"name": "n2", "cpu": 1, "memory": 1})
        code, out, _ = _run("get", "node", "-o", "name", "--data-dir", data_dir)
        assert (code, out) == (0, "node/n1\nnode/n2\n")
    finally:
        writer.close()


@pytest.mark.parametrize("argv, message", [
    (["get", "pod", "nope", "-n", "shop"], 'pods "nope" not found'),
    (["get", "podz"], "the server doesn't have a resource type \"podz\""),
])
def test_get_errors_are_diagnostics_with_exit_1(data_dir, argv, message):
    code, out, err = _run(*argv, "--data-dir", data_dir)
    assert code == 1 and out == "" and message in err and "Traceback" not in err
    if "podz" in argv:
        assert "did you mean `pod`?" in err


def test_get_on_a_missing_directory_is_a_diagnostic_and_creates_nothing(tmp_path):
    missing = str(tmp_path / "nope")
    code, out, err = _run("get", "pods", "--data-dir", missing)
    assert code == 1 and "there is no store data directory" in err
    assert not os.path.exists(missing)


def test_a_read_only_store_refuses_writes(data_dir):
    from engine.store import StoreError

    store = open_store(data_dir, read_only=True)
    with pytest.raises(StoreError):
        store.put("/x", b"1")
    assert store.range("/registry/pods/", prefix=True).count == 3
    store.close()


RBAC_KINDS = """
record PolicyRule {
  verbs: list<string>
  kinds: list<string>
}
kind Role { rules: list<PolicyRule> = [] }
kind RoleBinding { role: string  roleKind: string = "Role"  subjects: list<string> = [] }
cluster kind ClusterRole { rules: list<PolicyRule> = [] }
cluster kind ClusterRoleBinding { role: string  subjects: list<string> = [] }
cluster kind User { token: string  groups: list<string> = [] }
"""


def test_a_forked_run_defaults_records_within_by_its_own_clock():
    from engine.check import check_modules
    from engine.fixpoint import Run, shared_objects
    from engine.parse import parse_text

    program = check_modules([parse_text("""
    record Stamp { at: duration = now() }
    cluster kind Thing { s: Stamp = {}  top: duration = now() }
    thing a {}
    """, "spec.konv")])
    run = Run(program)  # admits thing a: the schema's defaulters are built here
    run.advance(10)
    twin = run.fork(shared_objects(program))
    twin.engine.cache.clock = 100  # the fork moves on; the original stays at 10
    made = twin.api.create(twin.api.admin, "Thing", {"name": "x"})
    assert made["top"] == 100 and made["s"] == {"at": 100}


@pytest.mark.parametrize("fields, path", [
    ('x: {"$frac": [1, 2]}', "x"),
    ('x: [1, {"k": {"$frac": [1, 2]}}]', "x[1][k]"),
    ('m: {"$frac": "12"}', "m"),
    ('r: {m: {"$frac": "1"}}', "r.m"),
])
def test_a_map_shaped_like_a_stored_number_is_refused_not_read_back_as_one(tmp_path, capsys, fields, path):
    # {"$frac": [n, d]} is how the store writes an exact number: such a map would come back as
    # one (a number where a map was written), or not decode at all.
    spec = tmp_path / "spec.konv"
    spec.write_text(f"""record R {{ m: map<string> = {{}} }}
kind Thing {{ x: any?  m: map<string> = {{}}  r: R? }}
thing a {{ {fields} }}
""")
    assert main(["reconcile", str(spec), "--no-std"]) == 1
    err = capsys.readouterr().err
    assert f'spec.konv:3:1: error[E200]: Thing "a" is invalid: {path}: Invalid value: {{…}}: a map whose only ' \
           'key is "$frac" is how the store writes an exact number' in err


def test_a_rule_that_writes_a_map_shaped_like_a_stored_number_is_refused():
    from engine.fixpoint import reconcile

    program = check_modules([parse_text("""
    kind Thing { x: any?  n: quantity = 500m }
    thing a { }
    controller c {
      rule r
        for thing t
        where t.x == none
        set t.x = {"$frac": [1, 2]}
    }
    """, "spec.konv")])
    result = reconcile(program)
    [thing] = [o for o in result.objects if o["kind"] == "Thing"]
    assert thing["x"] is None and thing["n"] == Fraction(1, 2)
    assert [w.verb for w in result.trace if w.kind == "Thing"] == ["create", "refused"]


_STORED_VALUES = st.recursive(
    _JSON_LEAVES | st.lists(st.integers(), min_size=2, max_size=2),
    lambda inner: st.lists(inner) | st.dictionaries(st.text() | st.just("$frac"), inner), max_leaves=12)


@given(_STORED_VALUES)
@settings(max_examples=200)
def test_a_value_the_api_server_takes_reads_back_from_the_store_as_it_was(value):
    from engine.values import same, stray_in

    if stray_in(value) is not None:
        return  # refused (above)
    stored = encode_object({"kind": "Thing", "x": value, "resourceVersion": 1})
    back = decode_object(KeyValue("k", stored, 1, 1, 1))
    assert same(back["x"], value)


def test_a_value_of_no_type_of_the_language_in_an_any_field_is_refused_not_a_crash_of_the_store():
    api = APIServer(program_of("kind Thing { x: any? }"), open_store())
    for value, cause in [(b"c", "x: Invalid value: bytes: must be none"), ([{1: "a"}], "x[0]: Invalid value: 1: map keys")]:
        with pytest.raises(Invalid) as e:
            api.create(api.admin, "thing", {"name": "t", "x": value})
        assert e.value.causes[0].startswith(cause)


# ---- what an update keeps: the server's own objects ------------------------------------------


def _alike(a, b) -> bool:
    """Whether two values are one value exactly: the same types all through, maps in the same
    key order, floats by their bits (NaN as NaN)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return list(a) == list(b) and all(_alike(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(map(_alike, a, b))
    if type(a) is float:
        return a.hex() == b.hex()
    return a == b


def _refusal(write):
    try:
        write()
    except KonvergeError as e:
        return type(e).__name__, [d.message for d in e.diagnostics]
    return None


@settings(max_examples=150)
@given(data=st.data())
def test_an_update_of_a_watched_object_stores_and_hands_over_what_a_whole_write_would(things, data):
    """An update that keeps fields of the object a watch handed over (the same Python objects)
    defaults, validates and encodes only the others, and the watch hands over the server's own
    object rather than decoding the bytes: the same refusals, the bytes encode_object makes of
    the object admitted, and the object decode_object makes of them, exactly."""

    fields = _valid_fields(things, things.kinds["Thing"].fields)
    odd = st.fixed_dictionaries({}, optional={"anything": _JSON_VALUES, "misc": st.lists(_JSON_VALUES, max_size=3)})
    fast, whole = APIServer(things, open_store()), APIServer(things, open_store())
    watch = fast.watch(fast.admin, "thing", shared=True)
    seen = None
    for _ in range(data.draw(st.integers(1, 5))):
        drawn = {**data.draw(_perturbed(fields)), **data.draw(odd)}
        if seen is None:
            payload = {"name": "t", "namespace": "shop", **drawn}
            write = "create"
        else:
            payload = dict(seen)  # what it does not change stays the same objects
            for f in data.draw(st.sets(st.sampled_from(sorted(drawn)))) if drawn else ():
                payload[f] = drawn[f]
            for f in data.draw(st.sets(st.sampled_from(sorted(seen)))):
                if f not in drawn:
                    payload[f] = copy.deepcopy(seen[f])  # equal, made afresh
            write = "update"
        mine = copy.deepcopy(payload)
        whole._stored.clear()  # every field defaulted, validated and encoded, the whole object at once
        assert _refusal(lambda: getattr(fast, write)(fast.admin, "thing", payload)) == \
            _refusal(lambda: getattr(whole, write)(whole.admin, "thing", mine))
        kvs = fast.store.range("/registry/things/shop/t").kvs
        assert [kv.value for kv in kvs] == [kv.value for kv in whole.store.range("/registry/things/shop/t").kvs]
        for ev in watch.poll():
            assert _alike(ev.object, decode_object(kvs[0]))
            assert ev.data == encode_object(ev.object)
            if ev.since is not None:  # it names every field that does not hold the version's very value
                assert ev.since[0] == seen["resourceVersion"] and ev.object.keys() == seen.keys()
                assert all(v is seen[f] for f, v in ev.object.items() if f not in ev.since[1])
            for f, v in ev.object.items():  # the texts it hands over are what encoding makes
                if f not in ("resourceVersion", "createdRevision"):
                    assert ev.field_text(f, v) == SORTED_JSON(v)
            seen = ev.object


@pytest.mark.parametrize("field, odd", [
    ("counts", lambda valid: {1: 1}),  # a key 1 is written "1"
    ("items", lambda valid: [dict(valid[0], share={"$frac": [1, 10]})]),  # as an exact number is written
    ("cidrs", lambda valid: tuple(valid)),  # as a list is written
])
def test_an_update_takes_a_value_as_one_admitted_before_only_where_its_text_names_it_alone(things, field, odd):
    # An update admits a value whose text an earlier update admitted as given without defaulting
    # or validating it again; one written alike but of other types is refused as a whole write is.
    given = {"counts": {"1": 1}, "items": [{"name": "a", "share": Fraction(1, 10)}], "cidrs": ["10.0.0.0/8"]}
    fast, whole = APIServer(things, open_store()), APIServer(things, open_store())
    valid = fast.defaulted("thing", {"name": "t", "namespace": "shop", **given})[field]
    for api in (fast, whole):
        api.create(api.admin, "thing", {"name": "t", "namespace": "shop"})

    def update(api, value):
        current = api.get(api.admin, "thing", "shop", "t")
        return _refusal(lambda: api.update(api.admin, "thing", dict(current, **{field: copy.deepcopy(value)})))

    for value in (valid, {} if field == "counts" else [], valid, odd(valid)):
        whole._stored.clear()  # every field defaulted and validated, as a whole write does
        refused = update(fast, value)
        assert refused == update(whole, value)
    assert refused is not None
    assert [kv.value for kv in fast.store.range("/registry/", prefix=True).kvs] == \
        [kv.value for kv in whole.store.range("/registry/", prefix=True).kvs]


def test_an_update_alike_to_an_earlier_one_in_a_field_it_changes_neither_defaults_nor_validates_it_again(
        things, monkeypatch):
    api = APIServer(things, open_store())
    api.create(api.admin, "thing", {"name": "a", "namespace": "shop", "items": [{"name": "x"}]})
    items = api.get(api.admin, "thing", "shop", "a")["items"]  # as decoded: its maps in key order
    for name in ("b", "c"):
        api.create(api.admin, "thing", {"name": name, "namespace": "shop"})

    def update(name, value):
        current = api.get(api.admin, "thing", "shop", name)
        return api.update(api.admin, "thing", dict(current, items=copy.deepcopy(value)))

    update("b", items)
    judged = []
    default_fields, fields_valid = api._schema.default_fields, api._schema.fields_valid
    monkeypatch.setattr(api._schema, "default_fields", lambda fields, obj, names=None: (
        judged.append(names), default_fields(fields, obj, names))[1])
    monkeypatch.setattr(api._schema, "fields_valid", lambda fields, obj, meta=False, not_kept=None: (
        judged.append(not_kept), fields_valid(fields, obj, meta, not_kept))[1])
    assert update("c", items)["items"] == items  # equal, made afresh
    assert len(judged) == 2 and not any("items" in names for names in judged)
    update("c", [dict(items[0], name="y")])  # another value: defaulted and validated
    assert all("items" in names for names in judged[2:])


def test_a_watch_tells_the_text_of_a_field_only_of_the_value_the_server_wrote(api):
    w = api.watch(api.admin, "pod", api.store.revision + 1, shared=True)
    api.create(api.admin, "pod", pod())
    ev = w.poll()[-1]
    containers = ev.object["containers"]
    assert ev.field_text("containers", containers) == SORTED_JSON(containers)
    assert ev.field_text("containers", copy.deepcopy(containers)) is None  # equal, but not what it encoded
    assert ev.field_text("resourceVersion", ev.object["resourceVersion"]) is None
    api.store.put("/registry/pods/shop/web-1", encode_object(dict(ev.object, phase="Running")))  # another hand
    assert w.poll()[-1].field_text is None


@settings(max_examples=100)
@given(data=st.data())
def test_objects_created_alike_are_handed_over_as_their_bytes_decode(things, data):
    """Objects created with alike fields (a set's pods, from one template) share the values their
    stored fields decode to, made once; each is still exactly what decode_object makes of its
    bytes, and its bytes what encode_object makes of it."""
    fields = _valid_fields(things, things.kinds["Thing"].fields)
    api = APIServer(things, open_store())
    watch = api.watch(api.admin, "thing", shared=True)
    templates = [data.draw(_perturbed(fields)) for _ in range(2)]
    for i in range(data.draw(st.integers(2, 5))):
        payload = {"name": f"t{i}", "namespace": "shop", **copy.deepcopy(data.draw(st.sampled_from(templates)))}
        _refusal(lambda: api.create(api.admin, "thing", payload))
    for ev in watch.poll():
        kv = api.store.range(f"/registry/things/shop/{ev.object['name']}").kvs[0]
        assert _alike(ev.object, decode_object(kv))
        assert ev.data == kv.value == encode_object(ev.object)


ALIKE_POLICIES = """
policy "at most four things" { deny thing t when t.resourceVersion == none and count(thing o) >= 4 because "too many" }
policy "t3 is not enabled" { deny thing t when t.name == "t3" and t.enabled because t.name + " is enabled" }
policy "no item is named bad" { deny thing t when any(i.name == "bad" for i in t.items) }
policy "misc is tagged" { mutate thing t when len(t.misc) == 0 set t.misc = ["tag", str(t.anything)] }
kind Named { note: string? }
policy "a named's note is its name" { mutate named n when n.note == none set n.note = n.name }
"""


@pytest.fixture(scope="module")
def alike_things():
    return program_of(THINGS + ALIKE_POLICIES)


@settings(max_examples=150)
@given(data=st.data())
def test_a_create_alike_to_an_earlier_one_but_for_its_name_is_admitted_as_a_whole_create_would_be(alike_things, data):
    """A shared create (the engine's) whose object is alike to an earlier one's but for its name
    takes that one's admission and encoding: the same refusals, with their messages (a deny that
    reads the store or the name is judged again), and the same bytes as a create admitted whole."""
    fields = _valid_fields(alike_things, alike_things.kinds["Thing"].fields)
    fast, whole = APIServer(alike_things, open_store()), APIServer(alike_things, open_store())
    templates = [data.draw(_perturbed(fields)) for _ in range(2)]
    for i in range(data.draw(st.integers(2, 6))):
        payload = {"name": data.draw(st.sampled_from([f"t{i}", "t3", "T"])), "namespace": "shop",
                   **copy.deepcopy(data.draw(st.sampled_from(templates)))}
        mine = copy.deepcopy(payload)
        assert _refusal(lambda: fast.create(fast.admin, "thing", payload, shared=True)) == \
            _refusal(lambda: whole.create(whole.admin, "thing", mine))
    kvs = fast.store.range("/registry/", prefix=True).kvs
    assert [(kv.key, kv.value) for kv in kvs] == \
        [(kv.key, kv.value) for kv in whole.store.range("/registry/", prefix=True).kvs]
    for kv in kvs:  # each create's own record, though they share values
        record = fast._stored[kv.key]
        assert record.holds(kv) and record.object == decode_object(kv)
        assert ("{" + ",".join(record.pieces.values()) + "}").encode() == kv.value


@pytest.mark.parametrize("first, second", [
    ({"anything": Fraction(1, 2)}, {"anything": {"$frac": [1, 2]}}),
    ({"m": {"1": "x"}}, {"m": {1: "x"}}),
    ({"anything": 1}, {"anything": 1.0}),
    ({"anything": 1}, {"anything": True}),
    ({"m": {"a": "x", "b": "y"}}, {"m": {"b": "y", "a": "x"}}),
])
def test_a_create_whose_text_is_alike_to_an_earlier_ones_but_not_its_values_is_admitted_whole(first, second):
    # A Fraction encodes as a map of that shape, and a key 1 is written "1": the texts are alike,
    # the values are not, and the second is refused or stored as a whole admission would.
    program = program_of('kind Thing { anything: any = "x"\n m: map<string> = {} }')
    fast, whole = APIServer(program, open_store()), APIServer(program, open_store())
    for name, fields in (("a", first), ("b", second)):
        payload = {"name": name, "namespace": "shop", **fields}
        assert _refusal(lambda: fast.create(fast.admin, "thing", copy.deepcopy(payload), shared=True)) == \
            _refusal(lambda: whole.create(whole.admin, "thing", copy.deepcopy(payload)))
    assert [kv.value for kv in fast.store.range("/registry/", prefix=True).kvs] == \
        [kv.value for kv in whole.store.range("/registry/", prefix=True).kvs]


def test_creates_are_named_alike_only_for_values_of_one_type_and_order():
    # 1, True, 1.0, -0.0, an exact 1 and a map shaped like its stored form are each a value of
    # their own, as are two orders of one map: no two of them name one create.
    program = program_of('kind Thing { anything: any = "x" }')
    api = APIServer(program, open_store())
    info = api.kind_info("thing")
    values = [1, True, 1.0, 0.0, -0.0, Fraction(1), {"$frac": [1, 1]}, {"a": 1, "b": 2}, {"b": 2, "a": 1}]
    keys = {api._alike_key(info, {"name": "a", "namespace": "shop", "anything": v})[0] for v in values}
    assert len(keys) == len(values)
    assert api._alike_key(info, {"name": "a", "namespace": "shop", "anything": lambda: 1}) is None


def test_alike_creates_after_many_unlike_ones_are_found_alike_again_and_stored_as_whole_ones_would_be():
    # A kind whose shared creates have long found none alike is named for it only now and then: a
    # run of alike ones is found again, from then on each of them, and stores what whole creates do.
    from engine.api import _Alike

    program = program_of("kind Thing { tags: list<string> = [] }")
    fast, whole = APIServer(program, open_store()), APIServer(program, open_store())
    found = []
    admit_alike = fast._admit_alike
    fast._admit_alike = lambda info, key, earlier, name: found.append(name) or admit_alike(info, key, earlier, name)
    unlike = [{"name": f"u{i}", "tags": [str(i)]} for i in range(3 * _Alike.UNALIKE + 1)]
    alike = [{"name": f"a{i}", "tags": ["same"]} for i in range(3 * _Alike.UNALIKE)]
    for payload in unlike + alike:
        fast.create(fast.admin, "thing", copy.deepcopy(payload), shared=True)
        whole.create(whole.admin, "thing", copy.deepcopy(payload))
    assert [(kv.key, kv.value) for kv in fast.store.range("/registry/", prefix=True).kvs] == \
        [(kv.key, kv.value) for kv in whole.store.range("/registry/", prefix=True).kvs]
    assert found and found == [p["name"] for p in alike[alike.index({"name": found[0], "tags": ["same"]}):]]
    assert len(found) > _Alike.UNALIKE


def test_a_create_alike_to_an_earlier_one_at_another_time_is_defaulted_at_its_own():
    clock = [0]
    api = APIServer(program_of("kind Stamp { at: duration = now() }"), open_store(), clock=lambda: clock[0])
    assert api.create(api.admin, "stamp", {"name": "a", "namespace": "shop"}, shared=True)["at"] == 0
    clock[0] = 5
    assert api.create(api.admin, "stamp", {"name": "b", "namespace": "shop"}, shared=True)["at"] == 5


def test_a_create_alike_to_an_earlier_one_is_not_defaulted_validated_or_mutated_again(alike_things, monkeypatch):
    api = APIServer(alike_things, open_store())

    def create(name):
        return api.create(api.admin, "thing", {"name": name, "namespace": "shop", "items": [{"name": "x"}]}, shared=True)

    create("a")
    monkeypatch.setattr(api, "_admit", lambda *args: pytest.fail("admitted again"))
    b = create("b")
    assert b["name"] == "b" and b["misc"] == ["tag", "x"] and b["items"][0]["tags"] == []
    with pytest.raises(Invalid) as e:  # a deny that reads the name is judged again
        create("t3")
    assert e.value.causes == ["t3 is enabled"]
    create("c")
    create("d")
    with pytest.raises(Invalid) as e:  # and one that reads the store: four exist
        create("e")
    assert e.value.causes == ["too many"]
    monkeypatch.undo()
    with pytest.raises(Invalid) as e:  # a name that is not valid is left to the whole admission, to say so
        create("B")
    assert e.value.causes[0].startswith('name: Invalid value: "B"')


def test_the_newest_creates_are_kept_to_be_taken_alike(alike_things, monkeypatch):
    # Kept to LIMIT, the oldest dropped first (x, here, for z).
    monkeypatch.setattr(api_module._Alike, "LIMIT", 2)
    api = APIServer(alike_things, open_store())
    admitted = []
    admit = api._admit
    monkeypatch.setattr(api, "_admit", lambda info, obj, *rest: admitted.append(obj["name"]) or admit(info, obj, *rest))
    for name, item in (("a", "x"), ("b", "x"), ("c", "y"), ("d", "z")):
        api.create(api.admin, "thing", {"name": name, "namespace": "shop", "items": [{"name": item}]}, shared=True)
    assert admitted == ["a", "c", "d"]  # b is taken alike to a
    assert [entry.given["items"][0]["name"] for entry in api._alike.values()] == ["y", "z"]


def test_a_kind_whose_mutation_reads_the_name_is_admitted_whole_at_every_create(alike_things):
    api = APIServer(alike_things, open_store())
    assert api._judged_again["Named"] is None
    for name in ("a", "b"):
        assert api.create(api.admin, "named", {"name": name, "namespace": "shop"}, shared=True)["note"] == name


def test_pods_created_alike_share_their_stored_containers(api):
    w = api.watch(api.admin, "pod", api.store.revision + 1, shared=True)
    api.create(api.admin, "pod", pod("web-1"))
    api.create(api.admin, "pod", pod("web-2"))
    one, two = [ev.object for ev in w.poll()]
    assert one["containers"] is two["containers"] and one["name"] != two["name"]


def test_a_shared_watch_decodes_what_another_hand_wrote(api):
    w = api.watch(api.admin, "pod", api.store.revision + 1, shared=True)
    created = api.create(api.admin, "pod", pod())
    api.store.put("/registry/pods/shop/web-1", encode_object(dict(created, phase="Running")))  # as explore restores
    obj = w.poll()[-1].object
    assert obj["phase"] == "Running"
    updated = api.update(api.admin, "pod", dict(obj, node="n1"))
    kv = api.store.range("/registry/pods/shop/web-1").kvs[0]
    assert kv.value == encode_object(updated) and decode_object(kv)["phase"] == "Running"


def test_a_shared_watched_object_changed_at_its_top_level_is_written_as_changed(api):
    w = api.watch(api.admin, "pod", api.store.revision + 1, shared=True)
    api.create(api.admin, "pod", pod())
    obj = w.poll()[-1].object
    obj["phase"] = "Running"  # the watcher's own top level: the server's object stays as stored
    api.update(api.admin, "pod", obj)
    assert decode_object(api.store.range("/registry/pods/shop/web-1").kvs[0])["phase"] == "Running"
    assert w.poll()[-1].object["phase"] == "Running"


def _stored_pod(api) -> dict:
    return decode_object(api.store.range("/registry/pods/shop/web-1").kvs[0])


def test_a_watch_not_shared_hands_over_objects_the_watcher_may_change_in_place(api):
    """Only a watcher that asked for shared objects gets the server's own: any other may edit
    what it got, or what an update gave back, in place and send it, as before."""
    w = api.watch(api.admin, "pod", api.store.revision + 1)
    api.create(api.admin, "pod", pod())
    seen = w.poll()[-1].object
    seen["containers"][0]["image"] = "redis"  # in place
    back = api.update(api.admin, "pod", seen)
    assert _stored_pod(api)["containers"][0]["image"] == "redis"
    back["containers"].append({"name": "sidecar", "image": "envoy"})  # what the update gave back
    api.update(api.admin, "pod", back)
    assert [c["name"] for c in _stored_pod(api)["containers"]] == ["c", "sidecar"]
    assert [[c["image"] for c in e.object["containers"]] for e in api.watch(api.admin, "pod", 1).poll()] == \
        [["nginx"], ["redis"], ["redis", "envoy"]]


def test_an_edited_copy_of_what_an_update_gave_back_is_judged_again(api):
    w = api.watch(api.admin, "pod", api.store.revision + 1)
    api.create(api.admin, "pod", pod())
    seen = w.poll()[-1].object
    api.create(api.admin, "pod", pod("web-2", containers=copy.deepcopy(seen["containers"])))  # verdicts kept
    updated = api.update(api.admin, "pod", dict(seen, phase="Running"))
    updated["containers"].append(dict(updated["containers"][0]))  # two containers of one name
    with pytest.raises(Invalid):
        api.update(api.admin, "pod", updated)


RATCHETED_REVISION = """
kind Job { phase: string = "Pending"  note: string = "" }
policy "an update does not leave a job Failed" {
  deny job j when j.resourceVersion != none and j.phase == "Failed"
}
"""


def test_a_policy_reading_the_revision_finds_it_unchanged_on_every_update():
    # An update names the revision it updates (else it conflicts): as in Kubernetes, whose update
    # carries its old object's resourceVersion, a ratcheted policy finds it unchanged, every time.
    api = APIServer(program_of(RATCHETED_REVISION), open_store())
    job = api.create(api.admin, "job", {"name": "a", "namespace": "default", "phase": "Failed"})
    for note in ("one", "two", "three"):
        job = api.update(api.admin, "job", dict(job, note=note))
    job = api.update(api.admin, "job", dict(job, phase="Pending"))
    with pytest.raises(Invalid):  # the phase changed: judged
        api.update(api.admin, "job", dict(job, phase="Failed"))


def test_nans_created_or_updated_are_one_value_to_in():
    # Decoding makes every NaN one object, which `in` finds by identity before equality: a created
    # or updated object keeps its decoded NaN, not the caller's.
    prog = program_of("""
    kind Item { score: float?  seen: bool = false }
    kind Seed { n: int = 0 }
    seed s { n: 1 }
    controller c {
      rule make for seed s create item "a" { score: float("nan") }
      rule make2 for seed s create item "b" { score: float("nan") }
      rule make3 for seed s create item "c" { score: 0.0 }
      rule spoil for item x where x.name == "c" and x.score == 0.0 set x.score = float("nan")
      rule mark for item x where not x.seen and any([o for item o where o.name != x.name and x.score in [o.score]])
        set x.seen = true
    }
    """)
    for naive in (False, True):
        result = reconcile(prog, naive=naive)
        assert {o["name"]: o["seen"] for o in result.objects if o["kind"] == "Item"} == {"a": True, "b": True,
                                                                                          "c": True}


def test_long_texts_are_decoded_afresh_not_kept():
    decodings = _Decodings()
    short, long = '["x"]', "[" + ",".join(['"x"'] * 1000) + "]"
    assert decodings.value(short) is decodings.value(short)
    assert decodings.value(long) == decodings.value(long) and decodings.value(long) is not decodings.value(long)


def test_updates_alike_share_the_values_their_new_fields_decode_to(api):
    # A kubelet starting a set's pods gives each the same new containers: decoded once, as they
    # would read back from the store, and shared by the stored objects.
    started = [{"name": "c", "image": "nginx:2", "cpu": Fraction(1, 4), "ports": [{"containerPort": 80}]}]
    for name in ("web-1", "web-2"):
        made = api.create(api.admin, "pod", pod(name))
        api.update(api.admin, "pod", dict(made, containers=copy.deepcopy(started)))
    info = api.kind_info("pod")
    one, two = (api._stored[api.key(info, "shop", name)].object for name in ("web-1", "web-2"))
    assert one["containers"] is two["containers"]
    assert one["containers"] == [{"cpu": Fraction(1, 4), "image": "nginx:2", "name": "c",
                                  "ports": [{"containerPort": 80, "hostIP": None, "protocol": "TCP"}]}]
    assert [api.get(api.admin, "pod", "shop", name)["containers"] for name in ("web-1", "web-2")] == \
        [one["containers"]] * 2


def test_a_field_growing_update_by_update_keeps_a_bounded_number_of_its_versions(api):
    # Values shared by text are kept for a few of the latest update texts alone: a field that
    # grows update by update, with the server's records gone (another hand's write empties them,
    # so no update builds on them), keeps no more versions than that.
    pod_ = api.create(api.admin, "pod", pod())
    for n in range(300):
        api._stored.clear()
        pod_ = api.update(api.admin, "pod", dict(pod_, labels={**pod_["labels"], f"k{n}": "v"}))
    assert pod_["labels"] == {f"k{n}": "v" for n in range(300)}
    assert not any('"k0"' in text for text in api._decoded._values)
    assert 0 < len(api._updated._values) <= 256
