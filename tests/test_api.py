"""The API server: errors, defaulting, admission, validation, concurrency,
watches, the informer, and `konverge get` on a persisted store."""

from __future__ import annotations

import contextlib
import io
import json
import os
from fractions import Fraction

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from engine.api import (
    AlreadyExists, APIServer, Conflict, Forbidden, Invalid, NotFound, Unauthorized, encode_object,
    resource_name,
)
from engine.check import check_modules
from engine.cli import main
from engine.errors import KonvergeError
from engine.informer import Informer
from engine.parse import parse_text
from engine.store import open_store

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


def test_a_pure_policy_judges_a_map_in_its_own_order():
    api = APIServer(program_of(SPEC + """
policy "labels are listed a before z" { deny pod p when str(p.labels) == str({z: "1", a: "1"}) }
"""), open_store())
    api.create(api.admin, "pod", pod("a", labels={"a": "1", "z": "1"}))
    with pytest.raises(Invalid):
        api.create(api.admin, "pod", pod("z", labels={"z": "1", "a": "1"}))


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


def test_ratcheting_compares_with_what_was_admitted_not_the_object_handed_back(api):
    created = api.create(api.admin, "pod", pod())
    created["containers"].append(dict(created["containers"][0]))  # the caller edits what it got back
    with pytest.raises(Invalid):
        api.update(api.admin, "pod", created)


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


def test_several_validation_errors_are_reported_together(api):
    with pytest.raises(Invalid) as e:
        api.create(api.admin, "pod", pod(containers=[{"name": "c"}], phase=1))
    assert e.value.message == ('Pod "web-1" is invalid: [containers[0].image: Required value, '
                               "phase: Invalid value: 1: must be of type string]")


@pytest.mark.parametrize("name", ["Web-1", "web_1", "-web", "web-", "a" * 254])
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
    assert sorted((e.type, e.object["name"]) for e in events) == [("ADDED", "c"), ("DELETED", "b"), ("MODIFIED", "a")]
    assert [o["name"] for o in inf.scan("pod")] == ["a", "c"]
    assert inf.get("pod", "shop", "a")["phase"] == "Running"
    api.create(api.admin, "pod", pod("d"))  # and it watches again after the relist
    assert [e.object["name"] for e in inf.poll()] == ["d"]
    assert inf.relists == 1


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
